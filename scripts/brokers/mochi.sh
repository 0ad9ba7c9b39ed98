#!/usr/bin/env bash
# Start mochi-mqtt v2 (built from scripts/brokers/mochi, its own module) on
# a free loopback port, and with WSPORT on a WebSocket listener too
# (ws://127.0.0.1:WSPORT/mqtt). Prints "PORT PID" on stdout; runs until
# killed.
#   scripts/brokers/mochi.sh start [PORT [WSPORT]]    -> "18831 12345"
#   scripts/brokers/mochi.sh stop PID
set -euo pipefail
cmd=${1:-start}
if [ "$cmd" = stop ]; then
  kill "${2:?pid}" 2>/dev/null || true
  exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
bin=${MQTTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mqttbench}/bin/mochi
if [ ! -x "$bin" ] || [ "$here/mochi/main.go" -nt "$bin" ] || [ "$here/mochi/go.mod" -nt "$bin" ]; then
  echo "building mochi-mqtt..." >&2
  mkdir -p "$(dirname "$bin")"
  (cd "$here/mochi" && GOWORK=off go build -o "$bin" .) >&2
fi
port=${2:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
wsport=${3:-}
log=$(mktemp /tmp/mqttbench-mochi.XXXXXX.log)
"$bin" -addr "127.0.0.1:$port" ${wsport:+-ws "127.0.0.1:$wsport"} >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
     { [ -z "$wsport" ] || (exec 3<>"/dev/tcp/127.0.0.1/$wsport") 2>/dev/null; }; then
    echo "$port $pid"
    exit 0
  fi
  sleep 0.1
done
echo "mochi-mqtt did not start on port $port; log: $log" >&2
kill "$pid" 2>/dev/null || true
exit 2
