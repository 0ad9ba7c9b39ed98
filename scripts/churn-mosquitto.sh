#!/usr/bin/env bash
# mqttbench load's churn at MQTT 5.0 against mosquitto 2.0 (installed and
# started by scripts/brokers/mosquitto.sh), QoS 1, sessions kept 60 s:
#   flap         subscribers dropped abruptly 4 times a second, resuming
#                their sessions: every message delivered (exit 0), the
#                reconnects timed;
#   flap-clean   the same with a clean start: the lost sessions' messages
#                are excused, the run clean;
#   backlog      5 of 10 subscribers away 2 s (200 messages each, under
#                mosquitto's max_queued_messages of 1000): every one of
#                them delivered after their return, drain time measured;
#   over-limit   1 subscriber away 2 s from a 1,000 msg/s publisher: about
#                2,000 due, mosquitto keeps 1,000 (+ its in-flight window)
#                and drops the rest. With --profile
#                profiles/mosquitto-2.0.yaml (queue_limit 1000) the drops
#                are its promise kept (exit 0, lost_queue_limit > 0); the
#                same run without the profile must exit 1 (the drops are
#                acknowledged messages lost): the negative control;
#   wills        200 connections with wills closed at once: 200 wills;
#   retained     800 retained topics, 5 subscribers to a wildcard over
#                them: each gets all;
#   retained-over-limit  2,000 of them: mosquitto queues 1,000 (+ 20 in
#                flight) for each new subscriber and drops the rest; with
#                the profile's queue_limit that is its promise kept;
#   template     payloads from a JSON template: delivered and verified.
# About a minute. Results: results/churn-mosquitto/NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/mqttbench-churn.XXXXXX)
mb="$work/mqttbench" # its own build: make test runs it beside scripts that rebuild bin/mqttbench
go build -o "$mb" ./cmd/mqttbench
read -r port pid < <(scripts/brokers/mosquitto.sh start)
trap 'scripts/brokers/mosquitto.sh stop "$pid"; rm -rf "$work"' EXIT
echo "mosquitto on 127.0.0.1:$port (pid $pid)" >&2
out=results/churn-mosquitto
rm -rf "$out"
mkdir -p "$out"
base=(--broker "tcp://127.0.0.1:$port" --protocol 5 --qos 1 --clean-session=false --session-expiry 60s
  --max-lag 0 --drain 3s --quiet)

# run NAME WANT-EXIT ARGS...: one load run, its exit code checked.
run() {
  local name=$1 want=$2 code=0 t0=$SECONDS
  shift 2
  "$mb" load "${base[@]}" --out "$out/$name" "$@" >"$out/$name.txt" 2>&1 || code=$?
  if [ "$code" != "$want" ]; then
    echo "churn-mosquitto: $name exited $code, want $want:" >&2
    tail -20 "$out/$name.txt" >&2
    exit 1
  fi
  echo "churn-mosquitto: $name ran $((SECONDS - t0)) s" >&2
}

run flap 0 --publishers 5 --subscribers 10 --topic 'bench/{p}' --rate 500 --duration 4s \
  --flap-rate 4 --flap-group subscribers
run flap-clean 0 --publishers 5 --subscribers 10 --topic 'bench/{p}' --rate 500 --duration 4s \
  --flap-rate 4 --flap-group subscribers --flap-clean-start
run backlog 0 --publishers 10 --subscribers 10 --topic 'bench/{p}' --rate 1000 --duration 4s \
  --offline-subscribers 5 --offline-at 1s --offline-for 2s --profile profiles/mosquitto-2.0.yaml
run over-limit 0 --publishers 1 --subscribers 1 --topic 'bench/one' --rate 1000 --duration 4s \
  --offline-subscribers 1 --offline-at 1s --offline-for 2s --profile profiles/mosquitto-2.0.yaml
run over-limit-unknown 1 --publishers 1 --subscribers 1 --topic 'bench/one' --rate 1000 --duration 4s \
  --offline-subscribers 1 --offline-at 1s --offline-for 2s
run wills 0 --publishers 2 --subscribers 2 --topic 'bench/{p}' --rate 100 --duration 3s \
  --will-storm 200 --will-storm-at 1s
run retained 0 --publishers 2 --subscribers 2 --topic 'bench/{p}' --rate 100 --duration 2s \
  --retained 800 --retained-subscribers 5
run retained-over-limit 0 --publishers 2 --subscribers 2 --topic 'bench/{p}' --rate 100 --duration 2s \
  --retained 2000 --retained-subscribers 5 --connect-timeout 3s --profile profiles/mosquitto-2.0.yaml
printf '{"device":"d-{{publisher}}","n":{{index}},"t":{{unixms}},"v":{{rand 1000}},"mb":"{{header}}"}' >"$out/template.tmpl"
run template 0 --publishers 5 --subscribers 5 --topic 'bench/{p}' --rate 500 --duration 3s \
  --payload-template "$out/template.tmpl"

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    return json.load(open(os.path.join(out, name, "summary.json")))
def fail(name, what):
    sys.exit(f"churn-mosquitto: {name}: {what}")
def say(name, what):
    print(f"churn-mosquitto: {name}: {what}", file=sys.stderr)
def clean(name, s):
    m = s["messages"]
    if s["scenario"].get("protocol") != "5.0":
        fail(name, f"protocol {s['scenario'].get('protocol')}")
    if s.get("violations") or m["sent"] == 0:
        fail(name, f"violations {s.get('violations')}, sent {m['sent']}")
    return m
def lat(s, metric):
    return next((l for l in s["latency"] if l["metric"] == metric), None)

for name in ("flap", "flap-clean"):
    s = load(name)
    m, f = clean(name, s), s["churn"]["flap"]
    r = lat(s, "reconnect")
    if f["drops"] < 8 or f["reconnected"] < 8 or not r or r["count"] < 8:
        fail(name, f"flap {f}, reconnect {r}")
    if name == "flap" and m["received"] != m["expected"]:
        fail(name, f"persistent sessions: received {m['received']} of {m['expected']}")
    say(name, f"{f['drops']} drops, {f['reconnected']} reconnected (p50 {r['p50_us']/1000:.1f} ms, p99 {r['p99_us']/1000:.1f} ms), "
        f"{m['received']} of {m['expected']} delivered")

s = load("backlog")
m, b = clean("backlog", s), s["churn"]["offline"]
if b["returned"] != 5 or b["due"] == 0 or b["delivered"] < b["due"] or sum(b["lost_by_qos"]) or m["received"] != m["expected"]:
    fail("backlog", f"offline {b}, received {m['received']} of {m['expected']}")
say("backlog", f"{b['due']} messages due to 5 offline subscribers while away, {b['delivered']} held by the broker delivered on return in "
    f"{b['drain_seconds']*1000:.0f} ms ({b['drain_per_second']:.0f}/s), none lost")

s = load("over-limit")
clean("over-limit", s)
b = s["churn"]["offline"]
if b.get("queue_limit") != 1000 or b["lost_by_qos"][1] == 0 or b["lost_queue_limit"] != b["lost_by_qos"][1] or b["delivered"] < 1000:
    fail("over-limit", f"offline {b}: want mosquitto to keep 1,000 and the rest excused by queue_limit 1000")
say("over-limit", f"{b['due']} due to an offline subscriber, {b['delivered']} delivered on return, "
    f"{b['lost_queue_limit']} dropped beyond mosquitto's queue limit (1000, from the profile): not violations")
s = load("over-limit-unknown")
if not s.get("violations"):
    fail("over-limit-unknown", "no violation without the queue limit: the check is blind")
say("over-limit-unknown", "without the profile the same drops are violations (exit 1), as they should be")

s = load("wills")
clean("wills", s)
w, r = s["churn"]["will_storm"], lat(s, "will")
if w["expected"] != 200 or w["received"] != 200 or w.get("duplicates") or not r:
    fail("wills", f"will storm {w}")
say("wills", f"{w['received']} of {w['expected']} wills, close to delivery p50 {r['p50_us']/1000:.1f} ms, p99 {r['p99_us']/1000:.1f} ms")

s = load("retained")
clean("retained", s)
r, l = s["churn"]["retained"], lat(s, "retained_fetch")
if r["set"] != 800 or r["complete"] != 5 or not l:
    fail("retained", f"retained {r}")
say("retained", f"{r['set']} retained topics set in {r['set_seconds']:.2f} s, 5 of 5 subscribers got all: "
    f"p50 {l['p50_us']/1000:.0f} ms, p99 {l['p99_us']/1000:.0f} ms")
s = load("retained-over-limit")
clean("retained-over-limit", s)
r = s["churn"]["retained"]
if r["set"] != 2000 or r["missing"] or r.get("queue_limit") != 1000 or not r.get("dropped_queue_limit"):
    fail("retained-over-limit", f"retained {r}: want mosquitto to drop beyond its queue limit of 1000")
say("retained-over-limit", f"2000 retained topics, 5 new subscribers got {2000 - r['dropped_queue_limit'] // 5} each on average: "
    f"{r['dropped_queue_limit']} dropped beyond mosquitto's queue limit (1000, from the profile)")

s = load("template")
m, t = clean("template", s), s["churn"]["payload_template"]
if not t["header_field"] or t["messages"] != m["sent"] or m["received"] != m["expected"]:
    fail("template", f"template {t}, received {m['received']} of {m['expected']}")
say("template", f"{t['messages']} payloads of {t['min_bytes']}-{t['max_bytes']} bytes from the template, all delivered and verified")
PY
