#!/usr/bin/env bash
# Start RabbitMQ 3.10 (Debian) with its MQTT plugin on a free loopback port,
# installing it if missing. Everything lives in a private directory; no
# AMQP listener is opened. Prints "PORT PID DIR" on stdout; the broker runs
# until stopped.
#   scripts/brokers/rabbitmq.sh start        -> "18831 12345 /tmp/mqttbench-rabbitmq.XXXXXX"
#   scripts/brokers/rabbitmq.sh stop PID DIR
#
# RabbitMQ would spawn an epmd of its own that outlives it, so this script
# starts epmd itself, in the foreground on a port of its own, and stops it
# by the PID it saved in DIR. Start-up takes 7 to 14 s here.
set -euo pipefail
cmd=${1:-start}
if [ "$cmd" = stop ]; then
  pid=${2:?pid}
  dir=${3:?dir}
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  if [ -f "$dir/epmd.pid" ]; then kill "$(cat "$dir/epmd.pid")" 2>/dev/null || true; fi
  exit 0
fi
server=/usr/lib/rabbitmq/bin/rabbitmq-server
if [ ! -x "$server" ]; then
  echo "installing rabbitmq-server (apt)..." >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq rabbitmq-server >&2
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
dist=$(free_port)
epmd_port=$(free_port)
dir=$(mktemp -d /tmp/mqttbench-rabbitmq.XXXXXX)
mkdir -p "$dir/mnesia" "$dir/log" "$dir/home"
cat > "$dir/rabbitmq.conf" <<CONF
listeners.tcp = none
mqtt.listeners.tcp.default = 127.0.0.1:$port
mqtt.allow_anonymous = true
CONF
echo "[rabbitmq_mqtt]." > "$dir/enabled_plugins"
# The cookie file lives in HOME: a private one keeps it out of /root.
export HOME="$dir/home"
export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$dir/mnesia"
export RABBITMQ_LOG_BASE="$dir/log"
export RABBITMQ_NODENAME="rabbit$port@localhost"
export RABBITMQ_DIST_PORT=$dist
export ERL_EPMD_PORT=$epmd_port
export ERL_EPMD_ADDRESS=127.0.0.1
epmd -port "$epmd_port" -address 127.0.0.1 >/dev/null 2>&1 &
echo $! > "$dir/epmd.pid"
"$server" > "$dir/server.out" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "$port $pid $dir"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.1
done
echo "rabbitmq did not start on port $port; output: $dir/server.out, logs: $dir/log" >&2
"$0" stop "$pid" "$dir"
exit 2
