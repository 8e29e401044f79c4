#!/usr/bin/env bash
# govulncheck: fails when the code of any Go module in the repository (the
# root module, integration, each module under hack/) calls a function that a
# Go vulnerability report names, in the standard library or in a dependency.
# Run by hack/verify.sh and `make vuln`.
#
# The database is the golang.org/x/vulndb module at a pinned version, taken
# from the Go module proxy like any module (checked against the hash below)
# and turned by hack/vulndb into the layout `govulncheck -db file://...`
# reads, once, in the cache directory beside the tools. Nothing is fetched
# from the vulnerability database's own server. Bump VULNDB_VERSION (and its
# hash, from `go mod download -json golang.org/x/vulndb@<version>`) to take
# newer reports.
#
#   hack/govulncheck.sh                 # every module
#   hack/govulncheck.sh . integration   # only these module directories
#   FLOTILLA_VULN_STDLIB=warn hack/govulncheck.sh   # standard-library findings only warn
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/goenv.sh
root=$PWD

VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018
VULNDB_SUM=h1:mfngRv0Yoh0VApsXKEN82CjD99kl7mtparN3bs3JnqI=

bin=$(bash hack/tools.sh vuln)
cache="${FLOTILLA_VULNDB_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla}"
db="$cache/vulndb-$VULNDB_VERSION"

# hack/vulndb is rebuilt when its sources or module change.
stamp="$bin/.vulndb-$(cat hack/vulndb/go.mod hack/vulndb/go.sum hack/vulndb/*.go | sha256sum | cut -c1-16)"
if [[ ! -x "$bin/vulndb" || ! -f "$stamp" ]]; then
  echo "govulncheck: building hack/vulndb" >&2
  (cd hack/vulndb && GOWORK=off go build -trimpath -o "$bin/vulndb" .)
  rm -f "$bin/.vulndb-"*
  touch "$stamp"
fi
"$bin/vulndb" build -version "$VULNDB_VERSION" -sum "$VULNDB_SUM" -out "$db"

if [[ $# -gt 0 ]]; then
  mods=("$@")
else
  mapfile -t mods < <(git ls-files -- 'go.mod' '*/go.mod' | xargs -n1 dirname)
fi
# The modules of go.work are scanned as the workspace builds them; the others
# (hack/*) on their own, as their scripts build them.
mapfile -t workspace < <(go list -m -f '{{.Dir}}')
in_workspace() {
  local d
  for d in "${workspace[@]}"; do [[ "$d" == "$root/$1" || ("$1" == . && "$d" == "$root") ]] && return 0; done
  return 1
}

fail=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for mod in "${mods[@]}"; do
  gowork=off
  if in_workspace "$mod"; then gowork=; fi
  if ! (cd "$mod" && GOWORK=$gowork "$bin/govulncheck" -db "file://$db" -format json ./... >"$out"); then
    echo "govulncheck: govulncheck failed in $mod" >&2
    fail=1
    continue
  fi
  "$bin/vulndb" report -module "$mod" -stdlib "${FLOTILLA_VULN_STDLIB:-fail}" <"$out" || fail=1
done
if [[ "$fail" -ne 0 ]]; then
  echo "govulncheck: for every trace: (cd MODULE && govulncheck -db file://$db -show traces ./...)" >&2
fi
exit "$fail"
