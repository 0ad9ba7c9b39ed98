#!/usr/bin/env bash
# The fault tools against mosquitto 2.0 (Debian, installed by
# scripts/brokers/mosquitto.sh) with `persistence true` and the default
# autosave_interval (1800 s: no save during a run). mqttbench starts the
# broker itself (--broker-cmd), so that it can signal and restart it.
# QoS 1, persistent sessions, one of the two subscribers away (session
# kept) from 2 s to 6 s, so the broker holds queued messages at 5 s:
#   (a) restart@5s: SIGTERM, mosquitto saves its database on the way out;
#       nothing acknowledged may be lost (exit 1 otherwise);
#   (b) kill@5s: SIGKILL, no save since start; mosquitto's documentation
#       says what was not saved is lost. Reported as found: the checker
#       must see the sessions gone and the queued messages with them
#       (exit 1 if it sees nothing: the checker would be blind).
#   Around (a) and (b) the survival probes publish 20 retained messages
#   (QoS 1, acknowledged) and leave a pending 5.0 will (delay 2 s); the
#   script prints whether they came back. Expected: kept after the
#   restart, lost after kill -9 (a violation: they were acknowledged).
#   (c) a partition of half the subscribers (blackhole on
#       group=subscribers/2 from 3 s for 5 s, then healed), persistent
#       sessions at QoS 1: no QoS 1 loss, sessions resumed.
# About a minute. Results: results/faults-mosquitto/{restart,kill,partition}.
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/mqttbench ./cmd/mqttbench
scripts/brokers/mosquitto.sh install
bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
tmp=$(mktemp -d /tmp/mqttbench-faults-mosquitto.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
out=results/faults-mosquitto
rm -rf "$out"
mkdir -p "$out"

# run NAME LOAD-ARGS...: a fresh mosquitto with its own persistence
# directory, started, killed and restarted by mqttbench. Exit 1 (the
# checker found violations) is a result; anything above is an error.
run() {
  local name=$1
  shift
  local dir="$tmp/$name" port
  mkdir -p "$dir/db"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence true
persistence_location $dir/db/
log_dest file $dir/mosquitto.log
CONF
  # As root mosquitto would switch to user "mosquitto" and lose /tmp access.
  if [ "$(id -u)" = 0 ]; then echo "user root" >> "$dir/mosquitto.conf"; fi
  local status=0
  bin/mqttbench load --broker "tcp://127.0.0.1:$port" --broker-cmd "exec $bin -c $dir/mosquitto.conf" \
    --qos 1 --clean-session=false --publishers 2 --rate 200 --keepalive 2s --connect-timeout 2s \
    --quiet --out "$out/$name" "$@" > "$out/$name.txt" 2>&1 || status=$?
  cp "$dir/mosquitto.log" "$out/$name/mosquitto.log" 2>/dev/null || true
  if [ "$status" -gt 1 ]; then
    echo "faults-mosquitto: $name: mqttbench load exited $status" >&2
    cat "$out/$name.txt" >&2
    exit 1
  fi
}

away=(--subscribers 2 --offline-subscribers 1 --offline-at 2s --offline-for 4s --duration 10s --drain 5s)
run restart "${away[@]}" --fault restart@5s
run kill "${away[@]}" --fault kill@5s
run partition --subscribers 4 --duration 12s --drain 10s --fault blackhole@3s+5s:group=subscribers/2

python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]

def load(name):
    return json.load(open(os.path.join(out, name, "summary.json")))

def ms(us):
    return f"{us / 1000:.1f}ms"

def show(name, s):
    h = s["history"]
    for c in h["classes"]:
        print(f"faults-mosquitto: {name}: QoS {c['qos']}: due {c['due']}, delivered {c['delivered']}, "
              f"acked_lost {c['acked_lost']}, lost with session {c['acked_lost_session_lost']}, "
              f"unknown {c['unknown']}, duplicated {c['duplicated']}", file=sys.stderr)
    for f in h.get("faults") or []:
        c = f["classes"][0] if f["classes"] else {}
        w = f.get("loss_window")
        ss = f["sessions"]
        rec = f.get("recovery_s")
        window = f"{w['from_s']:.1f}s-{w['to_s']:.1f}s ({w['messages']})" if w else "-"
        back = f"{rec:.1f}s" if rec is not None else "never"
        print(f"faults-mosquitto: {name}: fault {f['name']} {f['start_s']:.1f}s-{f['end_s']:.1f}s "
              f"(broker/proxy back at {f.get('recovered_s', 0):.2f}s): acked_lost {c.get('acked_lost')}, "
              f"lost with session {c.get('acked_lost_session_lost')}, "
              f"loss window {window}, "
              f"sessions {ss['resumed']} resumed / {ss['fresh']} fresh of {ss['dropped']} dropped, "
              f"rate back after {back}, "
              f"p99 {ms(f['p99_before_us'])} -> {ms(f['p99_after_us'])}", file=sys.stderr)
        print(f"faults-mosquitto: {name}: fault {f['name']}: retained: {f['retained']}; wills: {f['wills']}", file=sys.stderr)
    for v in h.get("violations") or []:
        print(f"faults-mosquitto: {name}: found: {v}", file=sys.stderr)

def totals(s):
    cs = [c for c in s["history"]["classes"] if c["qos"] > 0]
    return sum(c["acked_lost"] for c in cs), sum(c["acked_lost_session_lost"] for c in cs), sum(c["delivered"] for c in cs)

def injected(name, s, kind):
    fs = s.get("faults") or []
    if len(fs) != 1 or fs[0]["kind"] != kind or fs[0].get("error") or not s["history"].get("faults"):
        sys.exit(f"faults-mosquitto: {name}: fault not carried out: {fs}")

problems = []
for name, kind in (("restart", "restart"), ("kill", "kill"), ("partition", "blackhole")):
    s = load(name)
    injected(name, s, kind)
    show(name, s)
    acked, sess, delivered = totals(s)
    fresh = sum(f["sessions"]["fresh"] for f in s["history"]["faults"])
    resumed = sum(f["sessions"]["resumed"] for f in s["history"]["faults"])
    if delivered == 0:
        problems.append(f"{name}: nothing delivered")
    if name == "kill":
        # What mosquitto's documentation predicts: nothing saved, so the
        # sessions and the messages queued for the absent subscriber go.
        if fresh == 0 or sess == 0:
            problems.append(f"kill: the checker found no lost session ({fresh} fresh) or queued message ({sess}): blind?")
    elif acked or sess or fresh or resumed == 0 or s["history"].get("violations") or s.get("violations"):
        problems.append(f"{name}: acked_lost {acked}, lost with session {sess}, sessions {resumed} resumed / {fresh} fresh, "
                        f"violations {s.get('violations')}")
if problems:
    sys.exit("faults-mosquitto: " + "; ".join(problems))
print("faults-mosquitto: ok: clean restart and partition lose nothing acknowledged; kill -9 loses what the checker reports", file=sys.stderr)
PY
