#!/usr/bin/env bash
# verify: fails when generated code is stale or any static check fails.
# Run by `make verify` and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

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

step "CRDs and deep-copy code are up to date"
bash hack/crds.sh
if ! git diff --exit-code --stat -- internal/apis deploy/crds; then
  echo "verify: generated CRDs or deep-copy code differ from internal/apis; run 'make generate' and commit" >&2
  fail=1
fi
if [ -n "$(git ls-files --others --exclude-standard -- internal/apis deploy/crds)" ]; then
  echo "verify: untracked files under internal/apis or deploy/crds (generated, or not committed):" >&2
  git ls-files --others --exclude-standard -- internal/apis deploy/crds >&2
  fail=1
fi

step "Helm chart CRDs and deploy/manifests are up to date"
bash hack/verify-manifests.sh || fail=1

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

for mod in . integration; do
  step "go.mod and go.sum are tidy in $mod"
  tmp=$(mktemp -d)
  cp "$mod/go.mod" "$mod/go.sum" "$tmp/"
  (cd "$mod" && go mod tidy)
  if ! git diff --exit-code --stat -- "$mod/go.mod" "$mod/go.sum"; then
    echo "verify: go mod tidy changed $mod/go.mod or go.sum" >&2; fail=1
  fi
  cp "$tmp/go.mod" "$tmp/go.sum" "$mod/"
  rm -rf "$tmp"

  step "go vet in $mod"
  (cd "$mod" && go vet ./...) || fail=1

  step "golangci-lint in $mod"
  (cd "$mod" && golangci-lint run --config "$root/.golangci.yml" ./...) || fail=1
done

if [ "$fail" -ne 0 ]; then
  echo "verify: FAILED" >&2
  exit 1
fi
echo "verify: OK"
