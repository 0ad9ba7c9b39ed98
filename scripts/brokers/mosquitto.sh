#!/usr/bin/env bash
# Start mosquitto 2.0 (Debian) on a free loopback port, installing it if
# missing. Prints "PORT PID" on stdout; the broker runs until killed.
#   scripts/brokers/mosquitto.sh start [PORT]    -> "18831 12345"
#   scripts/brokers/mosquitto.sh stop PID
#   scripts/brokers/mosquitto.sh install      (only install it, with mosquitto_passwd)
# MOSQUITTO_EXTRA_CONF names a file of more configuration lines (further
# listeners, password_file, acl_file...) appended to the generated one.
set -euo pipefail
cmd=${1:-start}
if [ "$cmd" = stop ]; then
  kill "${2:?pid}" 2>/dev/null || true
  exit 0
fi
if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ]; then
  echo "installing mosquitto (apt)..." >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mosquitto >&2
fi
if [ "$cmd" = install ]; then exit 0; fi
bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)
port=${2:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
dir=$(mktemp -d /tmp/mqttbench-mosquitto.XXXXXX)
cat > "$dir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest file $dir/mosquitto.log
CONF
if [ -n "${MOSQUITTO_EXTRA_CONF:-}" ]; then cat "$MOSQUITTO_EXTRA_CONF" >> "$dir/mosquitto.conf"; fi
# As root mosquitto would switch to user "mosquitto" and lose /tmp access.
if [ "$(id -u)" = 0 ]; then echo "user root" >> "$dir/mosquitto.conf"; fi
"$bin" -c "$dir/mosquitto.conf" >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "$port $pid"
    exit 0
  fi
  sleep 0.1
done
echo "mosquitto did not start on port $port; log: $dir/mosquitto.log" >&2
kill "$pid" 2>/dev/null || true
exit 2
