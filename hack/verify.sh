#!/usr/bin/env bash
# verify: fails when generated code is stale, any static check fails, or
# govulncheck finds a reachable vulnerability (hack/govulncheck.sh).
# Run by `make verify` and by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/goenv.sh
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

step "every go.mod and go.work names the toolchain of go.mod ($(sed -n 's/^toolchain //p' go.mod))"
want=$(sed -n 's/^toolchain //p' go.mod)
for f in $(git ls-files -- 'go.work' 'go.mod' '*/go.mod'); do
  if [[ "$(sed -n 's/^toolchain //p' "$f")" != "$want" ]]; then
    echo "verify: $f: toolchain line differs from go.mod's ($want)" >&2; fail=1
  fi
done

# Modules outside go.work (hack/*) are tidied on their own.
workspace=$(go list -m -f '{{.Dir}}')
for mod in $(git ls-files -- 'go.mod' '*/go.mod' | xargs -n1 dirname); do
  step "go.mod and go.sum are tidy in $mod"
  gowork=off
  if grep -qxF "$(cd "$mod" && pwd)" <<<"$workspace"; then gowork=; fi
  tmp=$(mktemp -d)
  cp "$mod/go.mod" "$mod/go.sum" "$tmp/"
  (cd "$mod" && GOWORK=$gowork go mod tidy)
  if ! git diff --exit-code --stat -- "$mod/go.mod" "$mod/go.sum"; then
    echo "verify: go mod tidy changed $mod/go.mod or go.sum" >&2; fail=1
  fi
  cp "$tmp/go.mod" "$tmp/go.sum" "$mod/"
  rm -rf "$tmp"
done

for mod in . integration; do
  step "go vet in $mod"
  (cd "$mod" && go vet ./...) || fail=1

  step "golangci-lint in $mod"
  (cd "$mod" && golangci-lint run --config "$root/.golangci.yml" ./...) || fail=1
done

step "govulncheck: no module calls a vulnerable function (offline database; hack/govulncheck.sh)"
start=$SECONDS
bash hack/govulncheck.sh || fail=1
echo "verify: govulncheck took $((SECONDS - start))s"

if [ "$fail" -ne 0 ]; then
  echo "verify: FAILED" >&2
  exit 1
fi
echo "verify: OK"
