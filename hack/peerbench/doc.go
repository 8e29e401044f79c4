// Package peerbench only pins Karpenter's KWOK provider
// (sigs.k8s.io/karpenter/kwok, a tool dependency in go.mod) for
// `make peer-bench`: build.sh builds it from the Go module proxy into a cache
// directory outside the repository. It is a module of its own, outside
// go.work, so Karpenter's dependencies stay out of Flotilla's modules, and
// the only one that needs GOTOOLCHAIN=go1.27.3.
package peerbench
