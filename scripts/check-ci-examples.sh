#!/usr/bin/env bash
# Lints the GitHub Actions workflow a broker team copies
# (ci-examples/github-actions.yml), or the workflows given, with
# actionlint: expressions, action inputs, runner labels, and the run:
# scripts with shellcheck when it is installed. actionlint is installed
# with go install when neither PATH nor GOBIN has it; MQTTBENCH_NO_INSTALL=1
# makes a missing actionlint an error instead (the Go test sets it, so a
# test never reaches the network). Exit 0 clean, 1 findings, 2 no
# actionlint.
set -euo pipefail
version=v1.7.12
cd "$(dirname "$0")/.."
gobin=$(go env GOBIN)
gobin=${gobin:-$(go env GOPATH)/bin}
lint=$(command -v actionlint || true)
if [ -z "$lint" ] && [ -x "$gobin/actionlint" ]; then
  lint=$gobin/actionlint
fi
if [ -z "$lint" ]; then
  if [ "${MQTTBENCH_NO_INSTALL:-}" = 1 ]; then
    echo "check-ci-examples: actionlint is not installed (go install github.com/rhysd/actionlint/cmd/actionlint@$version)" >&2
    exit 2
  fi
  echo "check-ci-examples: installing actionlint $version" >&2
  go install "github.com/rhysd/actionlint/cmd/actionlint@$version"
  lint=$gobin/actionlint
fi
if [ $# -eq 0 ]; then
  set -- ci-examples/github-actions.yml
fi
"$lint" -no-color "$@"
echo "check-ci-examples: $* clean" >&2
