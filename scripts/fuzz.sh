#!/usr/bin/env bash
# Runs every Go native fuzz target of the module, one after another, each
# for the given time (default 30s). New crashers land in the package's
# testdata/fuzz/<Target>/ and fail the run.
set -euo pipefail
fuzztime=${1:-30s}
cd "$(dirname "$0")/.."
status=0
for pkg in $(go list ./...); do
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "== $pkg $target ($fuzztime)" >&2
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel "${FUZZPARALLEL:-2}" "$pkg"; then
      status=1
    fi
  done
done
exit $status
