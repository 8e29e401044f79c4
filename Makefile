# Flotilla developer targets. The tools are pinned in hack/tools.sh and built
# once into a cache directory outside the repository.
SHELL := /usr/bin/env bash
# The Go release named by go.mod's toolchain line, for every go command run
# here (a machine's own Go ignores that line; see hack/goenv.sh). An exported
# GOTOOLCHAIN wins.
export GOTOOLCHAIN ?= $(shell sed -n 's/^toolchain //p' go.mod)
TOOLS_BIN = $(shell bash hack/tools.sh generate)

.PHONY: all generate verify vuln test test-unit test-integration bench bench-go tools solve demo manifests peer-bench

all: verify test

## tools: install buf, protoc plugins, grpcurl and golangci-lint at their pinned versions
tools:
	@bash hack/tools.sh all

## generate: regenerate the Go code of the protos (committed next to them), and the deep-copy code and CRDs of internal/apis
generate:
	@PATH="$(TOOLS_BIN):$$PATH" buf generate
	@bash hack/crds.sh
	@bash hack/render-manifests.sh

## manifests: render deploy/manifests/*.yaml from the Helm chart and copy deploy/crds into it
manifests:
	@bash hack/render-manifests.sh

## verify: everything CI checks besides tests (generated code, buf lint and breaking, gofmt, go vet, golangci-lint, govulncheck)
verify:
	@bash hack/verify.sh

## vuln: govulncheck on every Go module against the pinned, offline vulnerability database (part of verify)
vuln:
	@bash hack/govulncheck.sh

## test: the whole test suite, as CI runs it: unit, property and fuzz-seed tests, then the integration tests
test: test-unit test-integration

## test-unit: the root module's tests (race detector on), and hack/vulndb's
test-unit:
	go test -race -count=1 ./...
	cd hack/vulndb && GOWORK=off go test -count=1 ./...

## test-integration: plans applied to a real kube-apiserver and kube-scheduler (built once by hack/controlplane.sh)
test-integration:
	bash hack/controlplane.sh >/dev/null
	cd integration && go test -count=1 -timeout 40m ./...

## bench: one row per workload (karpenter-mix-1000/5000/20000, the trace, 100k pods × 800 types): pods, nodes, $/h, lower bound, ratio, seconds, pods/s, peak MB
bench:
	go run ./cmd/flotilla bench

## bench-go: the same workloads as Go benchmarks
bench-go:
	go test -run '^$$' -bench . -benchtime 3x ./internal/workload/

## peer-bench: Flotilla and Karpenter's KWOK provider (v1.15.0, built once by hack/peerbench/build.sh) side by side on fresh local clusters, one catalog, one NodePool, the karpenter-mix spike then 20%; ARGS=--pods 5000, --json FILE, --keep DIR (docs/bench.md)
peer-bench:
	bash hack/controlplane.sh >/dev/null
	bash hack/peerbench/build.sh >/dev/null
	cd integration && go run ./cmd/peerbench $(ARGS)

## demo: Flotilla on a local cluster (control plane built on the first run): a spike, a Spot interruption, consolidation, with a live view; Ctrl-C stops it. ARGS=--once runs it once and exits 0 when every step succeeded
demo:
	cd integration && go run ./cmd/flotilla-demo $(ARGS)

## images: OCI images of the four services and the flotilla CLI (linux/amd64, linux/arm64) from the HEAD commit, without Docker: dist/oci (image layout), dist/sbom (SPDX), dist/images.lock (digests); PUSH=ghcr.io/flotilla-io also pushes them (docs/deploy.md, Images)
.PHONY: images test-images
images:
	cd hack/imagebuild && GOWORK=off go run . -root ../.. -out ../../dist $(if $(PUSH),-push $(PUSH))

## test-images: hack/imagebuild's tests: builds the images twice and opens them (configs, files, SBOMs, push, --version, the services serving); not in test-unit, since its -trimpath builds for two architectures share no build cache with the other tests
test-images:
	cd hack/imagebuild && GOWORK=off go test -count=1 ./...

## solve: the main job, the solver CLI on the examples
solve:
	go run ./cmd/flotilla solve --pods examples/pods.yaml --nodepools examples/nodepools.yaml --instance-types examples/catalog.csv --spot-price-factor 0.35
