#!/usr/bin/env bash
# The conformance suite over MQTT over WebSocket, where section 6 of the
# specification becomes testable (binary frames only, packets across frame
# boundaries, the mqtt subprotocol). Debian's mosquitto 2.0.11 cannot open
# a WebSocket listener, so:
#   - the reference broker (mqttbench broker) on tcp://, ws:// and wss://
#     (certificates from `mqttbench cert`): the whole suite over each;
#     the verdicts over ws:// and wss:// must be those over tcp://
#     (scripts/verdicts.py);
#   - mochi-mqtt v2's WebSocket listener: the suite but the malformed-packet
#     specs (they test the codec, not the transport, and mochi answers many
#     of them by timing out, which is slow). mochi breaks statements, so
#     its run may fail; its verdicts are not compared with a TCP run, as
#     some of them change from run to run whatever the transport (a
#     retained message sometimes delivered twice, answers that sometimes
#     do not come in 5 s).
# Over both, the section 6 specs must run and pass. Results:
# results/websocket/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/websocket
mkdir -p "$out"
work=$(mktemp -d /tmp/mqttbench-websocket.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go build -o "$work/mqttbench" ./cmd/mqttbench
mb="$work/mqttbench"
"$mb" cert --out "$work/certs" >/dev/null
certs="$work/certs"
seed=$(( (RANDOM << 15 | RANDOM) + 1 ))

conform() { # name url [flags...]: the summary line; a run that failed to run at all stops the script
  local name=$1 url=$2 code=0
  shift 2
  "$mb" conform --broker "$url" --seed "$seed" --concurrency 2 --json "$out/$name.json" --junit "$out/$name.xml" "$@" \
    >"$out/$name.txt" 2>&1 || code=$?
  echo "$name ($url): $(tail -n 1 "$out/$name.txt") [exit $code]" >&2
  if [ "$code" != 0 ] && [ "$code" != 1 ]; then cat "$out/$name.txt" >&2; return "$code"; fi
  if [ "$code" != 0 ] && [ "${MAY_FAIL:-}" != 1 ]; then cat "$out/$name.txt" >&2; return "$code"; fi
}
websocket_passed() { # result...: every section 6 spec ran and passed
  python3 - "$@" <<'PY'
import json, sys
for path in sys.argv[1:]:
    specs = [s for s in json.load(open(path))["specs"] if "websocket" in (s.get("labels") or [])]
    bad = [f'{s["state"]}: {s["name"]}' for s in specs if s["state"] != "passed"]
    if len(specs) != 3 or bad:
        sys.exit(f"{path}: want the 3 section 6 specs passed; got {len(specs)}, not passed: {bad}")
PY
}

# The reference broker on all three.
"$mb" broker --listen tcp://127.0.0.1:0 --listen ws://127.0.0.1:0 --listen wss://127.0.0.1:0 \
  --cert "$certs/server.pem" --key "$certs/server-key.pem" >"$work/ref.out" 2>"$work/ref.log" &
pids+=($!)
for _ in $(seq 1 50); do
  [ "$(grep -c '^listening on' "$work/ref.out")" = 3 ] && break
  sleep 0.1
done
ref_tcp=$(sed -n 's/^listening on \(tcp:.*\)/\1/p' "$work/ref.out")
ref_ws=$(sed -n 's/^listening on \(ws:.*\)/\1/p' "$work/ref.out")
ref_wss=$(sed -n 's/^listening on \(wss:.*\)/\1/p' "$work/ref.out")
if [ -z "$ref_tcp" ] || [ -z "$ref_ws" ] || [ -z "$ref_wss" ]; then
  echo "the reference broker did not listen; log:" >&2
  cat "$work/ref.out" "$work/ref.log" >&2
  exit 2
fi
conform ref-tcp "$ref_tcp"
conform ref-ws "$ref_ws"
conform ref-wss "$ref_wss" --cacert "$certs/ca.pem"
python3 scripts/verdicts.py --ignore-label websocket "$out/ref-tcp.json" "$out/ref-ws.json" "$out/ref-wss.json"
websocket_passed "$out/ref-ws.json" "$out/ref-wss.json"

# mochi-mqtt v2's WebSocket listener.
mochi_ws=$(free_port)
read -r _ mochi_pid < <(scripts/brokers/mochi.sh start "$(free_port)" "$mochi_ws")
pids+=("$mochi_pid")
MAY_FAIL=1 conform mochi-ws "ws://127.0.0.1:$mochi_ws/mqtt" --label-filter 'websocket || !malformed'
websocket_passed "$out/mochi-ws.json"
