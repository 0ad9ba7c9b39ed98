#!/usr/bin/env bash
# mqttbench load at MQTT 5.0 against mosquitto 2.0 (installed and started
# by scripts/brokers/mosquitto.sh): point to point at QoS 0, 1 and 2 with
# properties on every message (user properties, content type, message
# expiry, UTF-8 payloads, topic aliases, subscription identifiers), then
# publishers nobody hears. Every run must be clean (exit 0): every message
# delivered once with its properties unaltered. The summaries must report
# mosquitto's CONNACK (Receive Maximum 20 by default, so 20 is each
# publisher's window), bytes saved by topic aliases, and PUBACK 0x10 for
# the QoS 1 messages nobody subscribed to (mosquitto 2.0.11 answers QoS 2
# ones with PUBREC 0x00: 0x10 is a MAY, §3.5.2.1). Results:
# results/load-mosquitto/.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/mqttbench ./cmd/mqttbench
read -r port pid < <(scripts/brokers/mosquitto.sh start)
trap 'scripts/brokers/mosquitto.sh stop "$pid"' EXIT
echo "mosquitto on 127.0.0.1:$port (pid $pid)" >&2
out=results/load-mosquitto
rm -rf "$out"
props=(--protocol 5 --session-expiry 30s --message-expiry 60s --user-properties 2 --user-property-size 16
  --content-type application/x-mqttbench --payload-format --topic-alias --subscription-id)
for qos in 0 1 2; do
  bin/mqttbench load --broker "tcp://127.0.0.1:$port" "${props[@]}" --publishers 10 --subscribers 10 \
    --topic 'bench/{p}' --qos "$qos" --rate 2000 --duration 3s --drain 5s --max-lag 0 --quiet \
    --out "$out/p2p-qos$qos" >/dev/null
done
bin/mqttbench load --broker "tcp://127.0.0.1:$port" --protocol 5 --publishers 2 --subscribers 0 \
  --qos 1 --rate 200 --duration 1s --max-lag 0 --quiet --out "$out/nobody-qos1" >/dev/null
python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    return json.load(open(os.path.join(out, name, "summary.json")))
for qos in (0, 1, 2):
    s = load(f"p2p-qos{qos}")
    m, c = s["messages"], s.get("connack") or {}
    problems = []
    if s["scenario"].get("protocol") != "5.0":
        problems.append(f"protocol {s['scenario'].get('protocol')}")
    if m["sent"] == 0 or m["received"] != m["expected"] or m["expected"] != m["sent"]:
        problems.append(f"sent {m['sent']}, expected {m['expected']}, received {m['received']}")
    if s.get("violations") or s.get("errors"):
        problems.append(f"violations {s.get('violations')}, errors {s.get('errors')}")
    if not c or c["inflight_window"] != min(c["receive_maximum"], 65535) or c["receive_maximum"] >= 65535:
        problems.append(f"CONNACK {c}: mosquitto advertises a Receive Maximum")
    if c.get("topic_alias_maximum", 0) > 0 and m.get("topic_alias_bytes_saved", 0) <= 0:
        problems.append(f"topic aliases saved {m.get('topic_alias_bytes_saved')} bytes")
    if problems:
        sys.exit(f"load-mosquitto: p2p QoS {qos}: " + "; ".join(problems))
    print(f"load-mosquitto: p2p QoS {qos}: {m['received']} delivered with properties, CONNACK {c}, "
          f"{m.get('topic_alias_bytes_saved', 0)} bytes saved by topic aliases", file=sys.stderr)
s = load("nobody-qos1")
n = sum(r["count"] for r in s.get("reason_codes") or [] if r["packet"] == "PUBACK" and r["code"] == 0x10)
if n != s["messages"]["sent"] or n == 0:
    sys.exit(f"load-mosquitto: QoS 1 to nobody: PUBACK 0x10 counted {n} times, {s['messages']['sent']} sent: {s.get('reason_codes')}")
print(f"load-mosquitto: QoS 1 to nobody: PUBACK 0x10 × {n}", file=sys.stderr)
PY
