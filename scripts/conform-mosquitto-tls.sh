#!/usr/bin/env bash
# The conformance suite against mosquitto 2.0 over TLS, with users, an ACL
# and client certificates. One mosquitto serves three listeners: plain TCP,
# TLS (server certificate only) and TLS requiring a client certificate
# (mutual), with certificates from `mqttbench cert`, a password_file and an
# acl_file. Then:
#   1. the suite (all but the security specs, one seed) over tcp://, over
#      mqtts:// and over mqtts:// with a client certificate: the 3.1.1
#      verdicts must be the same (scripts/verdicts.py); over mutual TLS the
#      5.0 suite runs too (conform-mosquitto.sh runs it over tcp://);
#      every run takes two specs at a time, to keep within make test's time;
#   2. the security specs (label security) with a profile naming the users,
#      over tcp://, mqtts:// and mutual TLS, where the client-certificate
#      specs run too (no certificate, an expired one, an unknown CA's);
#   3. plain MQTT to the TLS port fails with one clear line.
# Results: results/mosquitto-tls/*.json. The passwords are throwaway ones,
# made up here; none may appear in any result (checked at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
out=results/mosquitto-tls
mkdir -p "$out"
work=$(mktemp -d /tmp/mqttbench-mosquitto-tls.XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

go build -o "$work/mqttbench" ./cmd/mqttbench
mb="$work/mqttbench"
"$mb" cert --out "$work/certs" >/dev/null
certs="$work/certs"
scripts/brokers/mosquitto.sh install

# Users: the suite's own (every topic), alice and bob (some topics each),
# "+" (a user name that must not widen the %u pattern); mallory is in no
# file and must be refused.
suite_pw="suite-$RANDOM$RANDOM" alice_pw="alice-$RANDOM$RANDOM" bob_pw="bob-$RANDOM$RANDOM" plus_pw="plus-$RANDOM$RANDOM"
mosquitto_passwd -c -b "$work/passwd" suite "$suite_pw"
mosquitto_passwd -b "$work/passwd" alice "$alice_pw"
mosquitto_passwd -b "$work/passwd" bob "$bob_pw"
mosquitto_passwd -b "$work/passwd" + "$plus_pw"
cat > "$work/acl" <<'ACL'
user suite
topic readwrite #
user alice
topic readwrite sec/public/#
topic write sec/alice/#
user bob
topic readwrite sec/secret/#
topic read sec/alice/#
topic write sec/public/#
pattern readwrite sec/c/%c/#
pattern readwrite sec/u/%u/#
ACL
tls_port=$(free_port)
mtls_port=$(free_port)
cat > "$work/extra.conf" <<CONF
password_file $work/passwd
acl_file $work/acl
listener $tls_port 127.0.0.1
cafile $certs/ca.pem
certfile $certs/server.pem
keyfile $certs/server-key.pem
listener $mtls_port 127.0.0.1
cafile $certs/ca.pem
certfile $certs/server.pem
keyfile $certs/server-key.pem
require_certificate true
CONF
read -r port pid < <(MOSQUITTO_EXTRA_CONF="$work/extra.conf" scripts/brokers/mosquitto.sh start)
trap 'scripts/brokers/mosquitto.sh stop "$pid"; rm -rf "$work"' EXIT
echo "mosquitto on 127.0.0.1: tcp $port, tls $tls_port, mutual tls $mtls_port (pid $pid)" >&2

# The profile: mosquitto's deviations, the suite's credentials and the
# security section; the mutual-TLS run's also says client certificates
# are required.
security() {
  cat <<YAML
username: suite
password: "$suite_pw"
security:
  users:
    - name: alice
      password: "$alice_pw"
      may_publish: ["sec/public/#", "sec/alice/#"]
      may_subscribe: ["sec/public/#"]
      denied_publish: ["sec/secret/#"]
      # wildcards that would widen alice's sec/public/# among them
      denied_subscribe: ["sec/secret/#", "sec/#", "#", "+/secret/#", "sec/+/+", "sec/alice/#"]
    - name: bob
      password: "$bob_pw"
      may_publish: ["sec/secret/#", "sec/public/#"]
      may_subscribe: ["sec/secret/#", "sec/alice/#"]
      denied_publish: ["sec/alice/#"]
      denied_subscribe: ["sec/public/#", "+/public/+"]
    - name: "+"
      password: "$plus_pw"
  refused_user: {name: mallory, password: "mallory-$RANDOM"}
  patterns: ["sec/c/%c/#", "sec/u/%u/#"]
YAML
}
{ cat profiles/mosquitto-2.0.yaml; security; } > "$work/profile.yaml"
{ cat profiles/mosquitto-2.0.yaml; security; cat <<YAML
  require_client_cert: true
  client_certs:
    expired: {cert: $certs/client-expired.pem, key: $certs/client-expired-key.pem}
    unknown_ca: {cert: $certs/client-unknown-ca.pem, key: $certs/client-unknown-ca-key.pem}
YAML
} > "$work/profile-mutual.yaml"

seed=$(( (RANDOM << 15 | RANDOM) + 1 ))
tls=(--cacert "$certs/ca.pem")
mutual=(--cacert "$certs/ca.pem" --cert "$certs/client.pem" --key "$certs/client-key.pem")
conform() { # name profile url [flags...]: the summary line, or everything on failure
  local name=$1 profile=$2 url=$3 code=0
  shift 3
  "$mb" conform --broker "$url" --profile "$profile" --grace 10s --seed "$seed" --concurrency 2 \
    --json "$out/$name.json" --junit "$out/$name.xml" "$@" >"$out/$name.txt" 2>&1 || code=$?
  echo "$name ($url): $(tail -n 1 "$out/$name.txt")" >&2
  if [ "$code" != 0 ]; then cat "$out/$name.txt" >&2; return "$code"; fi
}

# 1. The same verdicts over TCP, TLS and mutual TLS (see conform-mosquitto.sh
# for the grace).
conform tcp "$work/profile.yaml" "tcp://127.0.0.1:$port" --label-filter '!security'
conform tls "$work/profile.yaml" "mqtts://127.0.0.1:$tls_port" "${tls[@]}" --label-filter '!security'
conform mutual "$work/profile-mutual.yaml" "mqtts://127.0.0.1:$mtls_port" "${mutual[@]}" --label-filter '!security' \
  --protocol all
python3 scripts/verdicts.py --protocol 3.1.1 "$out/tcp.json" "$out/tls.json" "$out/mutual.json"

# 2. The security specs.
conform security-tcp "$work/profile.yaml" "tcp://127.0.0.1:$port" --label-filter security
conform security-tls "$work/profile.yaml" "mqtts://127.0.0.1:$tls_port" "${tls[@]}" --label-filter security
conform security-mutual "$work/profile-mutual.yaml" "mqtts://127.0.0.1:$mtls_port" "${mutual[@]}" --label-filter security
python3 - "$out/security-mutual.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
skipped = [s["name"] for s in res["specs"] if s["state"] != "passed"]
if skipped:
    sys.exit("over mutual TLS every security spec must run and pass; not: %s" % skipped)
PY

# 3. Plain MQTT to the TLS port: exit 2 and one line that says why.
set +e
msg=$("$mb" conform --broker "tcp://127.0.0.1:$tls_port" --username suite 2>&1 >/dev/null)
code=$?
set -e
echo "plain tcp:// to the TLS port: exit $code: $msg" >&2
if [ "$code" != 2 ] || [ "$(printf '%s\n' "$msg" | wc -l)" != 1 ] || ! grep -q TLS <<<"$msg"; then
  echo "plain tcp:// to a TLS port must fail with exit 2 and one line naming TLS" >&2
  exit 1
fi

# No password in any result.
for pw in "$suite_pw" "$alice_pw" "$bob_pw" "$plus_pw"; do
  if grep -rlF -- "$pw" "$out"; then
    echo "a password appears in the results above" >&2
    exit 1
  fi
done
