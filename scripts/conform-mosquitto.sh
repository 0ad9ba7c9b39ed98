#!/usr/bin/env bash
# Runs the conformance suite against mosquitto 2.0 (installed and started
# by scripts/brokers/mosquitto.sh) with its profile of known deviations.
# Results: results/mosquitto.json and results/mosquitto.xml (JUnit).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results
read -r port pid < <(scripts/brokers/mosquitto.sh start)
trap 'scripts/brokers/mosquitto.sh stop "$pid"' EXIT
echo "mosquitto on 127.0.0.1:$port (pid $pid)" >&2
go run ./cmd/mqttbench conform --broker "tcp://127.0.0.1:$port" \
  --profile profiles/mosquitto-2.0.yaml --grace 5s \
  --json results/mosquitto.json --junit results/mosquitto.xml
