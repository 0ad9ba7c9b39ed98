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
# ones with PUBREC 0x00: 0x10 is a MAY, §3.5.2.1), scraped from
# --metrics-addr while the run goes; a short --find-max (three steps from
# 1,000 msg/s, each a verified run, all clean). Then shared
# subscriptions: 4 groups × 5 members of 10 publishers at QoS 1, at 5.0
# and at 3.1.1 (mosquitto takes $share/ at both), each group judged as one
# consumer (every message to exactly one member), and request/response
# at QoS 1 (responders stay within mosquitto's Receive Maximum). Results:
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
# Publishers nobody hears, scraped while they run (--metrics-addr): the
# PUBACK 0x10 counts must show on /metrics before the run ends.
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bin/mqttbench load --broker "tcp://127.0.0.1:$port" --protocol 5 --publishers 2 --subscribers 0 \
  --qos 1 --rate 200 --duration 4s --max-lag 0 --quiet --out "$out/nobody-qos1" \
  --metrics-addr "127.0.0.1:$mport" >/dev/null &
lpid=$!
scraped=""
for _ in $(seq 1 100); do
  sleep 0.1
  body=$(curl -sf "http://127.0.0.1:$mport/metrics" || true)
  if grep -q '^mqttbench_phase{phase="publish"} 1' <<<"$body" &&
     grep -q '^mqttbench_reason_codes_total{code="0x10".*packet="PUBACK"} [1-9]' <<<"$body"; then
    scraped=$(grep '^mqttbench_reason_codes_total{' <<<"$body")
    break
  fi
done
wait "$lpid"
if [ -z "$scraped" ]; then
  echo "load-mosquitto: no PUBACK 0x10 on /metrics while publishing" >&2
  exit 1
fi
echo "load-mosquitto: scraped while publishing: $scraped" >&2
# The knee, a short --find-max: three clean steps from 1,000 msg/s at QoS
# 1, 10 -> 10; each step is a verified run and knee.json holds them.
bin/mqttbench load --broker "tcp://127.0.0.1:$port" --protocol 5 --publishers 10 --subscribers 10 \
  --topic 'bench/{p}' --qos 1 --duration 1s --drain 3s --find-max --find-max-start 1000 --find-max-steps 3 \
  --slo 'e2e.p99<500ms' --quiet --out "$out/knee" >/dev/null
for proto in 5 3.1.1; do
  bin/mqttbench load --broker "tcp://127.0.0.1:$port" --protocol "$proto" --publishers 10 --subscribers 20 \
    --shared-group g0,g1,g2,g3 --topic 'bench/{p}' --filter 'bench/+' --qos 1 --rate 2000 --duration 3s \
    --drain 5s --max-lag 0 --quiet --out "$out/shared-$proto" >/dev/null
done
bin/mqttbench load --broker "tcp://127.0.0.1:$port" --protocol 5 --publishers 10 --subscribers 0 --responders 4 \
  --topic 'req/{p}' --qos 1 --rate 1000 --duration 3s --drain 5s --max-lag 0 --quiet --out "$out/reqresp" >/dev/null
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
for proto in ("5", "3.1.1"):
    s = load(f"shared-{proto}")
    groups = (s.get("shared") or {}).get("groups") or []
    sent = s["messages"]["sent"]
    bad = [g for g in groups if g["members"] != 5 or g["received"] != sent or g["lost"] or g["duplicates"] or g.get("violations")]
    if len(groups) != 4 or bad or s.get("violations") or sent == 0:
        sys.exit(f"load-mosquitto: shared groups at {proto}: sent {sent}, groups {groups}, violations {s.get('violations')}")
    spread = ", ".join(f"{g['name']} {g['min']}/{g['mean']:.0f}/{g['max']} cv {g['cv']:.3f}" for g in groups)
    print(f"load-mosquitto: shared groups at {proto}: {sent} messages once per group; per member min/mean/max: {spread}", file=sys.stderr)
k = json.load(open(os.path.join(out, "knee", "knee.json")))
steps = k["steps"]
if len(steps) != 3 or not all(s["clean"] for s in steps) or k["answer"]["rate"] < 4000:
    sys.exit(f"load-mosquitto: --find-max: steps {[(s['offered_rate'], s['clean'], s.get('why_unclean')) for s in steps]}, answer {k['answer']}")
print(f"load-mosquitto: --find-max: {k['answer']['text']}", file=sys.stderr)
s = load("reqresp")
r = s.get("request_response") or {}
if not r or r["requests"] == 0 or r["answered"] != r["requests"] or s.get("violations"):
    sys.exit(f"load-mosquitto: request/response: {r}, violations {s.get('violations')}")
rr = next(l for l in s["latency"] if l["metric"] == "request_response")
print(f"load-mosquitto: request/response: {r['answered']} of {r['requests']} answered, p50 {rr['p50_us']}µs p99 {rr['p99_us']}µs", file=sys.stderr)
PY
