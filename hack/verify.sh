#!/usr/bin/env bash
# verify: fails when generated code is stale or any static check fails.
# Run by `make verify` and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(bash hack/tools.sh all)
export PATH="$bin:$PATH"
fail=0
step() { echo "verify: $*"; }

step "buf generate is up to date"
buf generate
if ! git diff --exit-code --stat -- proto; then
  echo "verify: generated code differs from the protos; run 'make generate' and commit" >&2
  fail=1
fi
if [ -n "$(git ls-files --others --exclude-standard -- proto)" ]; then
  echo "verify: untracked generated files under proto/:" >&2
  git ls-files --others --exclude-standard -- proto >&2
  fail=1
fi

step "buf lint"
buf lint || fail=1

step "buf breaking against main"
if git rev-parse --verify -q main >/dev/null; then
  buf breaking --against '.git#branch=main' || fail=1
else
  echo "verify: no main branch yet; nothing to compare"
fi

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "verify: gofmt needed:" >&2; echo "$unformatted" >&2; fail=1
fi

step "go.mod and go.sum are tidy"
cp go.mod /tmp/flotilla-go.mod.$$; cp go.sum /tmp/flotilla-go.sum.$$
go mod tidy
if ! git diff --exit-code --stat -- go.mod go.sum; then
  echo "verify: go mod tidy changed go.mod or go.sum" >&2; fail=1
fi
cp /tmp/flotilla-go.mod.$$ go.mod; cp /tmp/flotilla-go.sum.$$ go.sum
rm -f /tmp/flotilla-go.mod.$$ /tmp/flotilla-go.sum.$$

step "go vet"
go vet ./... || fail=1

step "golangci-lint"
golangci-lint run ./... || fail=1

if [ "$fail" -ne 0 ]; then
  echo "verify: FAILED" >&2
  exit 1
fi
echo "verify: OK"
