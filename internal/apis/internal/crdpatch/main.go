// Command crdpatch adds to the CRDs controller-gen writes the schema bounds
// that kubebuilder markers cannot express, because the fields belong to
// types of other packages or to map values: the key and values of node
// selector requirements (corev1.NodeSelectorRequirement, embedded in
// NodeSelectorRequirementWithMinValues), the values of NodeClaim template
// labels and the effect, key and value of taints and startup taints
// (corev1.Taint). Besides validating, the bounds keep the estimated cost of the CEL
// rules on those fields within the API server's budget; without them the
// API server rejects the CRDs.
//
// Usage: crdpatch DIR (hack/crds.sh runs it on deploy/crds). It rewrites
// each file it patches and fails if an expected schema path is missing.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/yaml"
)

// Label keys are qualified names: an optional DNS subdomain prefix and a
// name of at most 63 characters; label values are empty or at most 63
// characters of alphanumerics, '-', '_' and '.', starting and ending with an
// alphanumeric.
const (
	labelKeyMaxLength   = 316
	labelKeyPattern     = `^(([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*)/)?(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])$`
	labelValueMaxLength = 63
	labelValuePattern   = `^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`
)

// Taints as Karpenter's CRDs bound them: one of the three effects, a
// non-empty key and a value of the same form (an optional lower-case DNS
// subdomain prefix and '/', then alphanumerics, '-', '_' and '.', starting
// and ending with an alphanumeric).
const taintPattern = `^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(\/))?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`

var taintEffects = []any{"NoSchedule", "PreferNoSchedule", "NoExecute"}

// patch sets fields of the schema node found by following path (property
// names, and "[]" for array items or "{}" for map values) from the version's
// openAPIV3Schema.
type patch struct {
	path []string
	set  map[string]any
}

func requirementPatches(prefix ...string) []patch {
	reqs := append(append([]string{}, prefix...), "requirements", "[]")
	return []patch{
		{path: append(append([]string{}, reqs...), "key"), set: map[string]any{"maxLength": labelKeyMaxLength, "pattern": labelKeyPattern}},
		{path: append(append([]string{}, reqs...), "values", "[]"), set: map[string]any{"maxLength": labelValueMaxLength, "pattern": labelValuePattern}},
	}
}

func taintPatches(prefix ...string) []patch {
	var out []patch
	for _, field := range []string{"taints", "startupTaints"} {
		item := append(append([]string{}, prefix...), field, "[]")
		out = append(out,
			patch{path: append(append([]string{}, item...), "effect"), set: map[string]any{"enum": taintEffects}},
			patch{path: append(append([]string{}, item...), "key"), set: map[string]any{"minLength": 1, "pattern": taintPattern}},
			patch{path: append(append([]string{}, item...), "value"), set: map[string]any{"pattern": taintPattern}},
		)
	}
	return out
}

var patches = map[string][]patch{
	"karpenter.sh_nodepools.yaml": append(append(requirementPatches("spec", "template", "spec"),
		patch{path: []string{"spec", "template", "metadata", "labels", "{}"}, set: map[string]any{"maxLength": labelValueMaxLength, "pattern": labelValuePattern}}),
		taintPatches("spec", "template", "spec")...),
	"karpenter.sh_nodeclaims.yaml": append(requirementPatches("spec"), taintPatches("spec")...),
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: crdpatch DIR")
		os.Exit(2)
	}
	for file, ps := range patches {
		if err := patchFile(filepath.Join(os.Args[1], file), ps); err != nil {
			fmt.Fprintln(os.Stderr, "crdpatch:", err)
			os.Exit(1)
		}
	}
}

func patchFile(path string, ps []patch) error {
	b, err := os.ReadFile(path) //nolint:gosec // a CRD file named by the developer running make generate
	if err != nil {
		return fmt.Errorf("reading CRD: %w", err)
	}
	var crd map[string]any
	if err := yaml.Unmarshal(b, &crd); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	versions, _ := dig(crd, "spec", "versions").([]any)
	if len(versions) == 0 {
		return fmt.Errorf("%s: no spec.versions", path)
	}
	for _, v := range versions {
		root, _ := dig(v, "schema", "openAPIV3Schema").(map[string]any)
		for _, p := range ps {
			if err := apply(root, p); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
	}
	out, err := yaml.Marshal(crd)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// Generated manifests are committed and read by everyone: 0644 as git
	// checks them out.
	return os.WriteFile(path, append([]byte("---\n"), out...), 0o644) //nolint:gosec // see above
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

var errNoPath = errors.New("schema path not found")

func apply(root map[string]any, p patch) error {
	node := root
	for _, step := range p.path {
		var next any
		switch step {
		case "[]":
			next = node["items"]
		case "{}":
			next = node["additionalProperties"]
		default:
			next = dig(node, "properties", step)
		}
		m, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: %v (at %q)", errNoPath, p.path, step)
		}
		node = m
	}
	for k, v := range p.set {
		node[k] = v
	}
	return nil
}
