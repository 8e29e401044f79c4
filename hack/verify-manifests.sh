#!/usr/bin/env bash
# verify-manifests: fails when the committed plain manifests
# (deploy/manifests/flotilla.yaml, deploy/manifests/servicemonitor.yaml) or the
# chart's copy of the CRDs (deploy/helm/flotilla/crds) are stale with respect
# to the chart and deploy/crds. Fix with hack/render-manifests.sh.
set -euo pipefail
exec bash "$(dirname "$0")/render-manifests.sh" --check
