#!/usr/bin/env bash
# Compare the reference broker, mosquitto 2.0, mochi-mqtt and aedes on the
# same work: the conformance suite and the built-in load (10 publishers →
# 10 subscribers, QoS 1, 1,000 msg/s, 10 s). Each peer broker is started
# (installed on first use) by its script in scripts/brokers/ and stopped
# at the end. Results: results/compare/ (report.html, compare.json and
# each broker's raw results). Extra arguments go to mqttbench compare.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/mqttbench ./cmd/mqttbench
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
read -r mport mpid < <(scripts/brokers/mosquitto.sh start); pids+=("$mpid")
read -r cport cpid < <(scripts/brokers/mochi.sh start); pids+=("$cpid")
read -r aport apid < <(scripts/brokers/aedes.sh start); pids+=("$apid")
echo "mosquitto :$mport (pid $mpid), mochi :$cport (pid $cpid), aedes :$aport (pid $apid)" >&2
rm -rf results/compare
status=0
bin/mqttbench compare -o results/compare \
  --broker ref=inproc \
  --broker mosquitto=tcp://127.0.0.1:"$mport" --profile mosquitto=profiles/mosquitto-2.0.yaml --grace mosquitto=10s \
  --broker mochi=tcp://127.0.0.1:"$cport" \
  --broker aedes=tcp://127.0.0.1:"$aport" "$@" || status=$?
exit "$status"
