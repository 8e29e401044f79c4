#!/usr/bin/env bash
# Builds a real local control plane — etcd, kube-apiserver and kube-scheduler —
# from the Go module proxy, once, into a cache directory outside the
# repository, and prints that directory. The integration tests run these
# binaries. A cold build takes several minutes on two cores; later runs only
# check that the binaries are there.
#
# k8s.io/kubernetes cannot be built with `go install pkg@version` (its go.mod
# replaces the staging modules with local paths), so a throwaway module in the
# cache directory requires it and points each staging module at its published
# version. etcd's server module does the same with its sibling modules.
set -euo pipefail

K8S_VERSION=v1.37.2      # kube-apiserver, kube-scheduler
STAGING_VERSION=v0.37.2  # the k8s.io/* staging modules of that release
ETCD_VERSION=v3.7.3

dir="${FLOTILLA_CONTROLPLANE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla/controlplane/k8s-$K8S_VERSION-etcd-$ETCD_VERSION}"
if [[ -x "$dir/etcd" && -x "$dir/kube-apiserver" && -x "$dir/kube-scheduler" ]]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
say() { echo "controlplane: $*" >&2; }

build_kubernetes() {
  local src="$dir/src-kubernetes"
  mkdir -p "$src"
  say "fetching k8s.io/kubernetes $K8S_VERSION"
  local gomod
  gomod=$(cd "$src" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  {
    echo "module flotilla.local/controlplane/kubernetes"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk -v v="$STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } > "$src/go.mod"
  cat > "$src/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  (cd "$src" && go mod tidy)
  say "building kube-apiserver and kube-scheduler (several minutes on a cold machine)"
  (cd "$src" && go build -trimpath -ldflags=-s -o "$dir/" k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-scheduler)
}

build_etcd() {
  local src="$dir/src-etcd"
  mkdir -p "$src"
  cat > "$src/go.mod" <<GOMOD
module flotilla.local/controlplane/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  cat > "$src/tools.go" <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  (cd "$src" && go mod tidy)
  say "building etcd"
  (cd "$src" && go build -trimpath -ldflags=-s -o "$dir/etcd" go.etcd.io/etcd/server/v3)
}

[[ -x "$dir/etcd" ]] || build_etcd
[[ -x "$dir/kube-apiserver" && -x "$dir/kube-scheduler" ]] || build_kubernetes
echo "$dir"
