#!/usr/bin/env bash
# The wire fuzzer against a real broker: mosquitto 2.0 (installed and
# started by scripts/brokers/mosquitto.sh). A short seeded run must finish
# with a verdict (exit 0, or 1 for mosquitto's known spec deviations),
# never a setup error, a crash or a hang; a kept mosquitto reproducer must
# still reproduce there (exit 1) and must pass on the reference broker.
# Results: results/fuzz-mosquitto/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results
go build -o bin/mqttbench ./cmd/mqttbench
read -r port pid < <(scripts/brokers/mosquitto.sh start)
trap 'scripts/brokers/mosquitto.sh stop "$pid"' EXIT
echo "mosquitto on 127.0.0.1:$port (pid $pid)" >&2
rm -rf results/fuzz-mosquitto
status=0
bin/mqttbench fuzz --broker "tcp://127.0.0.1:$port" --pid "$pid" --cases 600 --seed 7 \
  --out results/fuzz-mosquitto || status=$?
if [ "$status" -gt 1 ]; then
  echo "fuzz-mosquitto: mqttbench fuzz exited $status" >&2
  exit 1
fi
python3 - results/fuzz-mosquitto/fuzz.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
bad = [f for f in r["findings"] if f["class"] in ("crash", "hang")]
if r["cases"] < 600 or bad:
    sys.exit(f"fuzz-mosquitto: {r['cases']} cases, crash/hang findings: {bad}")
unnamed = [f for f in r["findings"] if f["class"] == "spec-deviation" and not f.get("rule")]
if unnamed:
    sys.exit(f"fuzz-mosquitto: spec deviations without a statement: {unnamed}")
print(f"fuzz-mosquitto: {r['cases']} cases, {len(r['findings'])} spec deviations", file=sys.stderr)
PY
rep=testdata/reproducers/mosquitto/3.1.1-spec-deviation-reserved-flags-52.json
status=0
bin/mqttbench fuzz --replay "$rep" --broker "tcp://127.0.0.1:$port" || status=$?
if [ "$status" -ne 1 ]; then
  echo "fuzz-mosquitto: $rep should reproduce on mosquitto (exit 1), got $status" >&2
  exit 1
fi
bin/mqttbench fuzz --replay "$rep"
