#!/usr/bin/env bash
# make bench-load: standard load scenarios against the reference broker and
# mosquitto, and the generator's CPU per message next to
# github.com/krylovsk/mqtt-benchmark's on the same broker and scenario in
# the same run. Loopback only; every run is bounded by a timeout; every
# broker started here is stopped on exit.
#
#   scripts/bench-load.sh            # everything (about 6 minutes on 2 cores)
#   SKIP_100K=1 SKIP_TLS=1 scripts/bench-load.sh
#
# CPU is user+sys of the generator's processes (workers included: they are
# waited for) from /usr/bin/time, divided by the messages the generator
# handled: sent plus delivered to its subscribers. Where mqtt-benchmark
# cannot be installed, the ratio is against a stand-in built on its client
# library (paho.mqtt.golang, one client per connection, one message at a
# time), compiled in the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/mqttbench/bench-load
work=$(mktemp -d /tmp/mqttbench-bench-load.XXXXXX)
mkdir -p "$cache/bin"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "building mqttbench..." >&2
go build -o "$work/mqttbench" ./cmd/mqttbench
mb="$work/mqttbench"

# mqtt-benchmark goes into the cache, never into go.mod.
theirs="$cache/bin/mqtt-benchmark"
if [ ! -x "$theirs" ]; then
  echo "installing github.com/krylovsk/mqtt-benchmark into $cache/bin..." >&2
  if ! (cd "$work" && GOBIN="$cache/bin" GOFLAGS=-mod=mod timeout 300 go install github.com/krylovsk/mqtt-benchmark@latest) >"$work/install.log" 2>&1; then
    echo "mqtt-benchmark could not be installed (the comparison is left out): $(tail -1 "$work/install.log")" >&2
    theirs=""
  fi
fi

# A stand-in with mqtt-benchmark's model, for when it cannot be installed:
# one github.com/eclipse/paho.mqtt.golang client per connection, each
# publishing its messages one after another, waiting for each to complete.
# Built in its own module in the cache, never in ours.
stand="$cache/paho-baseline/paho-baseline"
if [ ! -x "$stand" ]; then
  mkdir -p "$cache/paho-baseline"
  cat >"$cache/paho-baseline/main.go" <<'GO'
// paho-baseline: CLIENTS paho.mqtt.golang clients each publish COUNT
// messages of SIZE bytes at QOS, one at a time, waiting for each.
package main

import (
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	broker := flag.String("broker", "tcp://127.0.0.1:1883", "broker URL")
	clients := flag.Int("clients", 10, "connections")
	count := flag.Int("count", 100, "messages per connection")
	qos := flag.Int("qos", 0, "QoS")
	size := flag.Int("size", 64, "payload bytes")
	topic := flag.String("topic", "/bench", "topic")
	flag.Parse()
	payload := make([]byte, *size)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for i := 0; i < *clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := mqtt.NewClientOptions().AddBroker(*broker).SetClientID(fmt.Sprintf("pb%d-%d", os.Getpid(), i)).
				SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(30 * time.Second)
			c := mqtt.NewClient(o)
			if t := c.Connect(); t.Wait() && t.Error() != nil {
				failed.Add(int64(*count))
				return
			}
			for j := 0; j < *count; j++ {
				t := c.Publish(*topic, byte(*qos), false, payload)
				if t.Wait() && t.Error() != nil {
					failed.Add(1)
				}
			}
			c.Disconnect(100)
		}()
	}
	wg.Wait()
	fmt.Printf("%d messages, %d failed, %.2fs\n", *clients**count, failed.Load(), time.Since(start).Seconds())
	if failed.Load() > 0 {
		os.Exit(1)
	}
}
GO
  if ! (cd "$cache/paho-baseline" && rm -f go.mod go.sum && go mod init paho-baseline >/dev/null 2>&1 &&
        GOFLAGS=-mod=mod timeout 300 go get github.com/eclipse/paho.mqtt.golang@v1.5.0 >/dev/null 2>&1 &&
        GOFLAGS=-mod=mod go build -o paho-baseline .) >"$work/stand.log" 2>&1; then
    echo "the paho baseline could not be built: $(tail -1 "$work/stand.log")" >&2
    stand=""
  fi
fi

# Brokers: the reference broker served on TCP by its own process, and
# mosquitto (six of them for 100k connections: one process holds < 20k).
"$mb" broker --listen 127.0.0.1:0 --max-queued 1000000 >"$work/ref.out" 2>"$work/ref.err" &
pids+=($!)
for _ in $(seq 1 50); do grep -q "listening on" "$work/ref.out" 2>/dev/null && break; sleep 0.1; done
ref="tcp://$(awk '/listening on/{print $3; exit}' "$work/ref.out")"
read -r mport mpid < <(scripts/brokers/mosquitto.sh start)
pids+=("$mpid")
mosq="tcp://127.0.0.1:$mport"

rows="$work/rows.tsv"
: >"$rows"

# ours NAME BROKER-LABEL ARGS...: one run of mqttbench load, timed.
ours() {
  local name=$1 label=$2
  shift 2
  local out="$work/$name-$label"
  local code=0
  /usr/bin/time -f '%U %S' -o "$out.time" timeout 300 "$mb" load --quiet --out "$out" "$@" >"$out.stdout" 2>"$out.stderr" || code=$?
  python3 - "$out" "$name" "$label" "$code" >>"$rows" <<'PY'
import json, sys
out, name, label, code = sys.argv[1:]
u, s = map(float, open(out + ".time").read().split()[-2:])
try:
    j = json.load(open(out + "/summary.json"))
except Exception:
    print(f"{name}\t{label}\tmqttbench\tfailed (exit {code})\t\t\t\t\t\t")
    sys.exit()
m, c = j["messages"], j["connections"]
msgs = m["sent"] + m["received"]
cpu = u + s
per = f"{cpu / msgs * 1e6:.2f}" if msgs else "-"
rate = f"{c['target'] / c['connect_seconds']:.0f}" if c["connect_seconds"] else "-"
mem = f"{c.get('mem_per_conn_bytes', 0):.0f}"
print(f"{name}\t{label}\tmqttbench\t{c['ready']}/{c['target']}\t{m['sent']}\t{m['received']}/{m['expected']}\t{m['missed']}\t{cpu:.2f}\t{per}\t{rate}\t{mem}")
PY
}

# theirs_run NAME BROKER-LABEL URL QOS CLIENTS COUNT: mqtt-benchmark, and
# the paho stand-in.
theirs_run() {
  local name=$1 label=$2 url=$3 qos=$4 clients=$5 count=$6
  if [ -n "$theirs" ]; then
    timed_baseline mqtt-benchmark "$theirs" -broker "$url" -clients "$clients" -count "$count" -qos "$qos" -size 64 -topic "/bench/$name" -quiet
  else
    printf '%s\t%s\tmqtt-benchmark\tnot installed\t\t\t\t\t\t\t\n' "$name" "$label" >>"$rows"
  fi
  if [ -n "$stand" ]; then
    timed_baseline paho-baseline "$stand" -broker "$url" -clients "$clients" -count "$count" -qos "$qos" -size 64 -topic "/bench/$name"
  fi
}

# timed_baseline TOOL CMD...: one baseline run (uses name, label, clients, count).
timed_baseline() {
  local tool=$1
  shift
  local out="$work/$name-$label-$tool" code=0
  /usr/bin/time -f '%U %S' -o "$out.time" timeout 300 "$@" >"$out.stdout" 2>&1 || code=$?
  python3 - "$out" "$name" "$label" "$((clients * count))" "$tool" "$code" >>"$rows" <<'PY'
import sys
out, name, label, msgs, tool, code = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
u, s = map(float, open(out + ".time").read().split()[-2:])
cpu = u + s
state = "" if code == "0" else f"failed (exit {code})"
print(f"{name}\t{label}\t{tool}\t{state}\t{msgs}\t\t\t{cpu:.2f}\t{cpu / msgs * 1e6:.2f}\t\t")
PY
}

for b in ref mosq; do
  url=${!b}
  label=$([ "$b" = ref ] && echo reference-tcp || echo mosquitto)
  # Publish-only, the shape mqtt-benchmark runs: 1,000 clients, 100,000
  # messages of 64 bytes.
  for q in 0 1 2; do
    ours "publish-1k-qos$q" "$label" --broker "$url" --publishers 1000 --subscribers 0 --qos "$q" --rate 20000 --duration 5s --ramp 5000
    theirs_run "publish-1k-qos$q" "$label" "$url" "$q" 1000 100
  done
  # 1,000 publishers -> 1,000 subscribers, point to point.
  for q in 0 1 2; do
    ours "p2p-1k-qos$q" "$label" --broker "$url" --publishers 1000 --subscribers 1000 --topic 'bench/{p}' --qos "$q" --rate 10000 --duration 5s --ramp 5000
  done
  # Fan-out: 1 publisher -> 10,000 subscribers.
  ours "fanout-10k" "$label" --broker "$url" --publishers 1 --subscribers 10000 --topic bench/fan --qos 0 --rate 10 --duration 5s --ramp 5000 --drain 10s
done

if [ -z "${SKIP_100K:-}" ]; then
  ours "idle-100k" in-process --connections 100000 --publishers 0 --subscribers 0 --ramp 20000 --duration 10s
  urls=""
  for _ in 1 2 3 4 5 6; do
    read -r p pid < <(scripts/brokers/mosquitto.sh start)
    pids+=("$pid")
    urls="$urls${urls:+,}tcp://127.0.0.1:$p"
  done
  ours "idle-100k" mosquitto-x6 --broker "$urls" --connections 100000 --publishers 0 --subscribers 0 \
    --source-ips 127.0.0.2-127.0.0.40 --ramp 10000 --duration 20s
fi

# TLS: 20,000 idle mqtts:// connections to two reference brokers (one
# process holds fewer than 20k files), certificates from `mqttbench cert`.
# First at a ramp the machine keeps up with, for the generator's memory
# per idle TLS connection; then as fast as handshakes go, full ones and
# resumed ones (--tls-resume), for TLS connects per second.
if [ -z "${SKIP_TLS:-}" ]; then
  "$mb" cert --out "$work/certs" >/dev/null
  tlsurls=""
  for k in 1 2; do
    "$mb" broker --listen tls://127.0.0.1:0 --cert "$work/certs/server.pem" --key "$work/certs/server-key.pem" >"$work/tls$k.out" 2>"$work/tls$k.err" &
    pids+=($!)
    for _ in $(seq 1 50); do grep -q "listening on" "$work/tls$k.out" 2>/dev/null && break; sleep 0.1; done
    tlsurls="$tlsurls${tlsurls:+,}$(awk '/listening on/{print $3; exit}' "$work/tls$k.out")"
  done
  tlsargs=(--broker "$tlsurls" --cacert "$work/certs/ca.pem" --connections 20000 --publishers 0 --subscribers 0
    --source-ips 127.0.0.2-127.0.0.40 --connect-timeout 120s)
  ours "tls-idle-20k" reference-tls "${tlsargs[@]}" --ramp 500 --duration 10s
  ours "tls-connect-20k" reference-tls "${tlsargs[@]}" --ramp 2000 --duration 2s
  ours "tls-resume-20k" reference-tls "${tlsargs[@]}" --ramp 2000 --duration 2s --tls-resume
fi

python3 - "$rows" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
head = ["scenario", "broker", "tool", "ready", "sent", "delivered/expected", "missed", "CPU s", "CPU µs/msg", "conn/s", "mem B/conn"]
# The ratio is against mqtt-benchmark, or the paho stand-in without it.
theirs = {}
for tool in ("paho-baseline", "mqtt-benchmark"):
    theirs.update({(r[0], r[1]): r[8] for r in rows if r[2] == tool and len(r) > 8 and r[8] and not r[3]})
for r in rows:
    r += [""] * (len(head) - len(r))
head.append("ours/theirs")
for r in rows:
    t = theirs.get((r[0], r[1]))
    r.append(f"{float(r[8]) / float(t):.2f}" if r[2] == "mqttbench" and t and r[8] not in ("", "-") else "")
w = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
line = lambda xs: "  ".join(str(x).ljust(n) for x, n in zip(xs, w))
print(line(head))
print("  ".join("-" * n for n in w))
for r in rows:
    print(line(r))
PY

# The TLS runs: connects per second, handshakes resumed, what was
# negotiated, and memory per idle connection two ways: each worker's heap
# and stacks grown per connection it holds (what a connection costs), and
# the summed RSS of every generator process over all connections (fixed
# costs of three processes included).
if [ -z "${SKIP_TLS:-}" ]; then
  python3 - "$work" <<'PY'
import glob, json, os, sys
work = sys.argv[1]
print()
print("TLS (mqtts://, 20,000 connections, 2 reference brokers; goal: <= 12288 B per idle connection)")
for name, what in (("tls-idle-20k", "full handshakes, ramp 500/s"),
                   ("tls-connect-20k", "full handshakes, ramp 2000/s"),
                   ("tls-resume-20k", "--tls-resume, ramp 2000/s")):
    d = os.path.join(work, name + "-reference-tls")
    try:
        j = json.load(open(os.path.join(d, "summary.json")))
    except Exception:
        print(f"  {name}: failed (see {d}.stderr)")
        continue
    c, t = j["connections"], j.get("tls") or {}
    rate = c["ready"] / c["connect_seconds"] if c["connect_seconds"] else 0
    heap, n = 0.0, 0
    for f in glob.glob(os.path.join(d, "shard-*", "summary.json")):
        s = json.load(open(f))["connections"]
        heap += s.get("mem_per_conn_bytes", 0) * s["target"]
        n += s["target"]
    heap = heap / n if n else c.get("mem_per_conn_bytes", 0)
    neg = "; ".join(f'{x["version"]} {x["cipher"]} {x.get("group", "")}'.strip() for x in t.get("negotiated", []))
    errs = sum(j.get("errors", {}).values())
    print(f"  {name:16} {what:30} ready {c['ready']}/{c['target']}, {rate:.0f} TLS connects/s, "
          f"{t.get('handshakes', 0)} handshakes ({t.get('resumed', 0)} resumed), {neg}, errors {errs}")
    if name == "tls-idle-20k":
        verdict = "met" if heap <= 12288 else "NOT met"
        print(f"  {'':16} memory per idle TLS connection: {heap:.0f} B heap+stacks per worker ({verdict}), "
              f"{c.get('mem_per_conn_bytes', 0):.0f} B summed RSS of the generator's processes")
PY
fi
echo "runs: $work" >&2
