#!/usr/bin/env bash
# Installs the pinned code-generation, debugging, lint and vulnerability-check
# tools with `go install` into a cache directory outside the repository, and
# prints that directory, one per Go release (golangci-lint and govulncheck
# refuse code for a newer Go than built them, and a checkout on another
# release keeps its own). Each tool is built once per version; later runs
# (and offline runs, once the module cache holds the sources) only check the
# stamp files.
set -euo pipefail
source "$(dirname "$0")/goenv.sh"

BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
GRPCURL_VERSION=v1.9.3
GOLANGCI_LINT_VERSION=v2.15.0
CONTROLLER_GEN_VERSION=v0.23.0
GOVULNCHECK_VERSION=v1.9.0

goversion=$(go env GOVERSION)
bin="${FLOTILLA_TOOLS_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla/bin}/$goversion"
mkdir -p "$bin"

install() { # install NAME PACKAGE VERSION
  local name=$1 pkg=$2 version=$3
  local stamp="$bin/.$name-$version"
  if [[ -x "$bin/$name" && -f "$stamp" ]]; then return; fi
  echo "tools: installing $name $version with $goversion" >&2
  GOBIN="$bin" GOFLAGS=-mod=mod go install "$pkg@$version" >&2
  rm -f "$bin/.$name-"*
  touch "$stamp"
}

want=${1:-all}
case "$want" in
  all|generate)
    install buf github.com/bufbuild/buf/cmd/buf "$BUF_VERSION"
    install protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
    install protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
    install controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen "$CONTROLLER_GEN_VERSION"
    ;;&
  all|debug)
    install grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl "$GRPCURL_VERSION"
    ;;&
  all|lint)
    install golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION"
    ;;&
  all|vuln)
    install govulncheck golang.org/x/vuln/cmd/govulncheck "$GOVULNCHECK_VERSION"
    ;;
esac
echo "$bin"
