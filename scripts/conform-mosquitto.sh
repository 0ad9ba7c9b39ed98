#!/usr/bin/env bash
# Runs the conformance suite, MQTT 3.1.1 and 5.0 (--protocol all), against
# mosquitto 2.0 (installed and started by scripts/brokers/mosquitto.sh)
# with its profile of known deviations: each is listed, with its statement
# and reason, as a known deviation in the output and the results (never
# skipped silently); a deviation that no longer shows is reported too.
# Results: results/mosquitto.json and results/mosquitto.xml (JUnit).
# mosquitto checks keep alive coarsely: a silent client with a 1 s keep
# alive was dropped after 2.7 to 6.8 s here, later on a loaded machine, so
# the grace beyond the specification's 1.5 s is 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results
read -r port pid < <(scripts/brokers/mosquitto.sh start)
trap 'scripts/brokers/mosquitto.sh stop "$pid"' EXIT
echo "mosquitto on 127.0.0.1:$port (pid $pid)" >&2
go run ./cmd/mqttbench conform --broker "tcp://127.0.0.1:$port" --protocol all --concurrency 2 \
  --profile profiles/mosquitto-2.0.yaml --grace 10s \
  --json results/mosquitto.json --junit results/mosquitto.xml
