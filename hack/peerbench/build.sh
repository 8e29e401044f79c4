#!/usr/bin/env bash
# Builds Karpenter's KWOK provider (sigs.k8s.io/karpenter/kwok at the version
# go.mod pins, fetched from the Go module proxy, never vendored) into a cache
# directory outside the repository, and prints the binary's path. It is
# rebuilt only when go.mod or go.sum change. Karpenter v1.15.0 needs a newer
# Go than the machine's: only this build uses GOTOOLCHAIN=go1.27.3.
#
#   hack/peerbench/build.sh           # prints .../karpenter-kwok
#   hack/peerbench/build.sh --types   # prints .../kwoktypes (KWOK's own reader of the types file)
#   hack/peerbench/build.sh --crds    # prints the directories of its CRDs
#   hack/peerbench/build.sh --types --if-built   # prints the path, or exits 3 when a build would be needed
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=go1.27.3 GOWORK=off GOFLAGS=-mod=mod
bin="${FLOTILLA_PEERBENCH_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla/peerbench}"
mkdir -p "$bin"
version=$(go list -m -f '{{.Version}}' sigs.k8s.io/karpenter)
if [[ "${1:-}" == "--crds" ]]; then
  dir=$(go list -m -f '{{.Dir}}' sigs.k8s.io/karpenter)
  echo "$dir/kwok/charts/crds"
  echo "$dir/kwok/apis/crds"
  exit 0
fi
stamp="$bin/.peerbench-$(cat go.mod go.sum kwoktypes/*.go | sha256sum | cut -c1-16)"
if [[ ! -x "$bin/karpenter-kwok" || ! -x "$bin/kwoktypes" || ! -f "$stamp" ]]; then
  if [[ "${2:-}" == "--if-built" ]]; then
    exit 3
  fi
  echo "peerbench: building sigs.k8s.io/karpenter/kwok@$version (a few minutes the first time)" >&2
  go build -trimpath -o "$bin/karpenter-kwok.tmp" sigs.k8s.io/karpenter/kwok
  go build -trimpath -o "$bin/kwoktypes.tmp" ./kwoktypes
  mv "$bin/karpenter-kwok.tmp" "$bin/karpenter-kwok"
  mv "$bin/kwoktypes.tmp" "$bin/kwoktypes"
  rm -f "$bin/.peerbench-"*
  touch "$stamp"
fi
if [[ "${1:-}" == "--types" ]]; then
  echo "$bin/kwoktypes"
else
  echo "$bin/karpenter-kwok"
fi
