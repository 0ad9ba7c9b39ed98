#!/usr/bin/env bash
# Start ejabberd (Debian, mod_mqtt: MQTT 5.0 and 3.1.1) on a free loopback
# port, installing it if missing. Prints "PORT PID" on stdout; the broker
# runs until stopped (PID leads its process group: stop kills the group).
#   scripts/brokers/ejabberd.sh start [PORT]    -> "18831 12345"
#   scripts/brokers/ejabberd.sh stop PID
# Clients must send a user name and a password (any values: anonymous
# login), else CONNACK refuses them (rc=5 / 0x87).
# ejabberd runs as user ejabberd (root is refused) through setpriv, not
# its own su (which drops the open-file limit to 1024), with no epmd: the
# Erlang distribution listens on a free loopback port of its own.
set -euo pipefail
cmd=${1:-start}
if [ "$cmd" = stop ]; then
  kill -- "-${2:?pid}" 2>/dev/null || kill "$2" 2>/dev/null || true
  exit 0
fi
if [ ! -x /usr/sbin/ejabberdctl ]; then
  echo "installing ejabberd (apt)..." >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ejabberd >&2
fi
if [ "$cmd" = install ]; then exit 0; fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=${2:-$(free_port)}
dist=$(free_port)
dir=$(mktemp -d /tmp/mqttbench-ejabberd.XXXXXX)
mkdir -p "$dir/spool" "$dir/logs"
cat > "$dir/ejabberd.yml" <<YAML
loglevel: warning
hosts: [localhost]
listen:
  - {port: $port, ip: "127.0.0.1", module: mod_mqtt}
auth_method: [anonymous]
anonymous_protocol: login_anon
acl:
  local: {user_regexp: ""}
access_rules:
  local: {allow: all}
modules:
  mod_mqtt: {}
YAML
# ejabberdctl reads this after its command line: it must not point back
# at /etc/ejabberd/ejabberd.yml.
cat > "$dir/ejabberdctl.cfg" <<CFG
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
ERLANG_NODE=mqttbench$port@localhost
ERL_DIST_PORT=$dist
INET_DIST_INTERFACE=127.0.0.1
EJABBERD_BYPASS_WARNINGS=true
CFG
chmod 755 "$dir"
if [ "$(id -u)" = 0 ]; then
  chown -R ejabberd:ejabberd "$dir"
  run=(setpriv --reuid=ejabberd --regid=ejabberd --init-groups)
else
  run=()
fi
cd "$dir"
# setsid: ejabberdctl runs erl as a child, so the group is what to stop.
setsid "${run[@]}" env HOME="$dir" /usr/sbin/ejabberdctl --config "$dir/ejabberd.yml" \
  --ctl-config "$dir/ejabberdctl.cfg" --spool "$dir/spool" --logs "$dir/logs" \
  foreground >"$dir/out.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "$port $pid"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.1
done
echo "ejabberd did not start on port $port; logs: $dir/out.log, $dir/logs" >&2
kill -- "-$pid" 2>/dev/null || true
exit 2
