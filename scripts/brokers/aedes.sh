#!/usr/bin/env bash
# Start aedes (npm, Node.js) on a free loopback port, installing its
# package into the cache on first use. Prints "PORT PID"; runs until killed.
#   scripts/brokers/aedes.sh start [PORT]    -> "18831 12345"
#   scripts/brokers/aedes.sh stop PID
set -euo pipefail
cmd=${1:-start}
if [ "$cmd" = stop ]; then
  kill "${2:?pid}" 2>/dev/null || true
  exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1; then
  echo "installing nodejs and npm (apt)..." >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >&2
fi
dir=${MQTTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mqttbench}/aedes
if [ ! -d "$dir/node_modules/aedes" ] || [ "$here/aedes/package.json" -nt "$dir/package.json" ]; then
  echo "installing aedes (npm)..." >&2
  mkdir -p "$dir"
  cp "$here/aedes/package.json" "$dir/"
  (cd "$dir" && npm install --silent --no-audit --no-fund) >&2
fi
cp "$here/aedes/server.mjs" "$dir/"
port=${2:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
log=$(mktemp /tmp/mqttbench-aedes.XXXXXX.log)
node "$dir/server.mjs" "$port" 127.0.0.1 >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "$port $pid"
    exit 0
  fi
  sleep 0.1
done
echo "aedes did not start on port $port; log: $log" >&2
kill "$pid" 2>/dev/null || true
exit 2
