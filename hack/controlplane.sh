#!/usr/bin/env bash
# Builds a real local control plane — etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok — from the Go module proxy,
# once, into a cache directory outside the repository, and prints that
# directory. The integration tests run these binaries. A cold build takes
# several minutes on two cores; later runs only check that the binaries are
# there. Progress goes to stderr; only the directory goes to stdout.
#
# k8s.io/kubernetes cannot be built with `go install pkg@version` (its go.mod
# replaces the staging modules with local paths), so a throwaway module in the
# cache directory requires it and points each staging module at its published
# version. etcd is a tiny main around go.etcd.io/etcd/server/v3/embed, written
# into its own throwaway module. kwok's go.mod has no replace directives, so
# `go install` builds it directly.
#
# At most two builds run at once (the machines have two cores): the
# Kubernetes binaries in one lane, etcd then kwok in the other.
set -euo pipefail
# The control plane is a test fixture, built with the machine's own Go
# whatever release Flotilla itself builds with (GOTOOLCHAIN from the Makefile
# or hack/goenv.sh): the cache directory's name does not say which Go built
# it, and a rebuild takes 11 to 20 minutes.
export GOTOOLCHAIN=local

K8S_VERSION=v1.37.2      # kube-apiserver, kube-controller-manager, kube-scheduler
STAGING_VERSION=v0.37.2  # the k8s.io/* staging modules of that release
ETCD_VERSION=v3.6.16     # go.etcd.io/etcd/server/v3 (embed)
KWOK_VERSION=v0.8.0      # sigs.k8s.io/kwok

# The directory name lists what it holds, so an older cache with fewer
# binaries is never mistaken for this one.
name="k8s-$K8S_VERSION-kcm-etcdembed-$ETCD_VERSION-kwok-$KWOK_VERSION"
dir="${FLOTILLA_CONTROLPLANE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla/controlplane/$name}"
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler)

have() {
  local b
  for b in "$@"; do [[ -s "$dir/$b" ]] || return 1; done
}

if have etcd kwok kwok-stages.yaml "${k8s_bins[@]}"; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
say() { echo "controlplane: $(date +%T) $*" >&2; }

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
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  (cd "$src" && go mod tidy)
  say "building ${k8s_bins[*]} (several minutes on a cold machine)"
  local pkgs=() b
  for b in "${k8s_bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  (cd "$src" && go build -trimpath -ldflags=-s -o "$dir/" "${pkgs[@]}")
  say "built ${k8s_bins[*]}"
}

build_etcd() {
  local src="$dir/src-etcd"
  mkdir -p "$src"
  cat > "$src/go.mod" <<GOMOD
module flotilla.local/controlplane/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
GOMOD
  # A single-member etcd for tests, taking the few flags of the real etcd
  # binary that the tests pass.
  cat > "$src/main.go" <<'GO'
// Command etcd runs a single-member embedded etcd for local tests.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.etcd.io/etcd/server/v3/embed"
)

func urls(s string) ([]url.URL, error) {
	var out []url.URL
	for _, part := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("url %q: %w", part, err)
		}
		out = append(out, *u)
	}
	return out, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "etcd:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := embed.NewConfig()
	var listenClient, advertiseClient, listenPeer, advertisePeer string
	flag.StringVar(&cfg.Name, "name", "default", "member name")
	flag.StringVar(&cfg.Dir, "data-dir", "default.etcd", "data directory")
	flag.StringVar(&listenClient, "listen-client-urls", "http://127.0.0.1:2379", "client URLs to listen on")
	flag.StringVar(&advertiseClient, "advertise-client-urls", "", "client URLs to advertise (default: listen URLs)")
	flag.StringVar(&listenPeer, "listen-peer-urls", "http://127.0.0.1:2380", "peer URLs to listen on")
	flag.StringVar(&advertisePeer, "initial-advertise-peer-urls", "", "peer URLs to advertise (default: listen URLs)")
	flag.StringVar(&cfg.InitialCluster, "initial-cluster", "", "initial cluster (default: this member alone)")
	flag.BoolVar(&cfg.UnsafeNoFsync, "unsafe-no-fsync", false, "skip fsync (tests only)")
	flag.StringVar(&cfg.LogLevel, "log-level", "warn", "log level")
	flag.Parse()
	if advertiseClient == "" {
		advertiseClient = listenClient
	}
	if advertisePeer == "" {
		advertisePeer = listenPeer
	}
	var err error
	for _, f := range []struct {
		dst *[]url.URL
		s   string
	}{
		{&cfg.ListenClientUrls, listenClient}, {&cfg.AdvertiseClientUrls, advertiseClient},
		{&cfg.ListenPeerUrls, listenPeer}, {&cfg.AdvertisePeerUrls, advertisePeer},
	} {
		if *f.dst, err = urls(f.s); err != nil {
			return err
		}
	}
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	defer e.Close()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintln(os.Stderr, "etcd: ready, serving clients on", listenClient)
	case err := <-e.Err():
		return err
	case <-sig:
		return nil
	}
	select {
	case err := <-e.Err():
		return err
	case <-sig:
		return nil
	}
}
GO
  say "fetching go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  (cd "$src" && go mod tidy)
  say "building etcd (embed $ETCD_VERSION)"
  (cd "$src" && go build -trimpath -ldflags=-s -o "$dir/etcd" .)
  say "built etcd"
}

build_kwok() {
  say "building kwok $KWOK_VERSION"
  GOBIN="$dir" go install -trimpath -ldflags=-s "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  say "built kwok"
}

# kwok itself loads no stages; kwokctl feeds it the defaults kwok ships in
# its module (kustomize/stage). Gather those into one --config file: nodes
# become Ready and send heartbeats, bound pods run, deleted pods go away.
write_kwok_stages() {
  local mod
  mod=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
  local stage="$mod/kustomize/stage" out="$dir/kwok-stages.yaml.tmp" f
  : > "$out"
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---" >> "$out"
    cat "$stage/$f" >> "$out"
  done
  mv "$out" "$dir/kwok-stages.yaml"
  say "wrote kwok-stages.yaml"
}

# Each lane runs in its own background subshell so that `set -e` stays in
# force inside the build functions.
( have "${k8s_bins[@]}" || build_kubernetes ) &
k8s_lane=$!
( have etcd || build_etcd; have kwok || build_kwok; have kwok-stages.yaml || write_kwok_stages ) &
other_lane=$!
k8s_status=0 other_status=0
wait "$k8s_lane" || k8s_status=$?
wait "$other_lane" || other_status=$?
if (( k8s_status != 0 || other_status != 0 )); then
  say "build failed (kubernetes lane: exit $k8s_status, etcd/kwok lane: exit $other_status)"
  exit 1
fi
say "control plane ready in $dir"
echo "$dir"
