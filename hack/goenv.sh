# Sourced by the scripts that run go (hack/*.sh, .ci/run). Flotilla builds
# with the Go release named by the toolchain line of go.mod. A machine's own
# Go ignores that line unless GOTOOLCHAIN says otherwise (its go.env sets
# GOTOOLCHAIN=local), so it is exported here; the go command then takes that
# release from the Go module proxy, once per machine (about 76 MB). A
# GOTOOLCHAIN already in the environment wins (GOTOOLCHAIN=local: the
# machine's Go).
if [[ -z "${GOTOOLCHAIN:-}" ]]; then
  GOTOOLCHAIN=$(sed -n 's/^toolchain //p' "$(dirname "${BASH_SOURCE[0]}")/../go.mod")
  export GOTOOLCHAIN
fi
