#!/usr/bin/env bash
# crds: regenerates, from the Go types and kubebuilder markers under
# internal/apis, their deep-copy functions (zz_generated.deepcopy.go next to
# the types) and the CustomResourceDefinitions in deploy/crds.
# Run by `make generate`; hack/verify.sh checks the output is committed.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(bash hack/tools.sh generate)
"$bin/controller-gen" object paths=./internal/apis/...
rm -f deploy/crds/*.yaml
"$bin/controller-gen" crd:crdVersions=v1 paths=./internal/apis/... output:crd:artifacts:config=deploy/crds
# Bounds markers cannot express (fields of corev1 types, map values).
go run ./internal/apis/internal/crdpatch deploy/crds
# gofmt rewrites '' in a type's doc comment as a typographic quote (”), which
# breaks a CEL rule in a kubebuilder marker there; the API server would
# refuse the CRD. Write such a rule without '' (size(x) > 0).
if grep -n $'\u201c\|\u201d' deploy/crds/*.yaml; then
  echo "crds: typographic quotes in a generated CRD (a CEL rule with '' in a type's doc comment, rewritten by gofmt)" >&2
  exit 1
fi
