#!/usr/bin/env bash
# Install Debian's chromium if it is missing and print the path of the
# binary; the browser test of the HTML reports (cmd/mqttbench) runs it.
# Exits 2 when chromium cannot be installed.
#   scripts/chromium.sh    -> /usr/bin/chromium
set -euo pipefail
find_chromium() {
  for c in chromium chromium-browser; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}
if bin=$(find_chromium); then
  echo "$bin"
  exit 0
fi
echo "installing chromium (apt)..." >&2
if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium; } >&2; then
  echo "chromium.sh: apt-get could not install chromium" >&2
  exit 2
fi
if bin=$(find_chromium); then
  echo "$bin"
  exit 0
fi
echo "chromium.sh: chromium installed but not on PATH" >&2
exit 2
