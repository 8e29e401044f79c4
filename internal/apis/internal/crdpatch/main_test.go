package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const crd = `---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: nodeclaims.karpenter.sh}
spec:
  versions:
  - name: v1
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              requirements:
                type: array
                items:
                  type: object
                  properties:
                    key: {type: string}
                    values: {type: array, items: {type: string}}
              taints:
                type: array
                items:
                  type: object
                  properties: {effect: {type: string}, key: {type: string}, value: {type: string}}
              startupTaints:
                type: array
                items:
                  type: object
                  properties: {effect: {type: string}, key: {type: string}, value: {type: string}}
`

func TestPatchFileSetsBounds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "karpenter.sh_nodeclaims.yaml")
	if err := os.WriteFile(path, []byte(crd), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := patchFile(path, patches["karpenter.sh_nodeclaims.yaml"]); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, want := range []string{"maxLength: 316", "maxLength: 63", "pattern: ^(([a-zA-Z0-9]", "pattern: ^(([A-Za-z0-9]",
		"- NoSchedule\n", "- PreferNoSchedule\n", "- NoExecute\n", "minLength: 1", "pattern: ^([a-z0-9]([-a-z0-9]*[a-z0-9])?"} {
		if !strings.Contains(out, want) {
			t.Errorf("patched CRD lacks %q:\n%s", want, out)
		}
	}
	// Both taint lists get the effect enum and the key and value patterns.
	if n := strings.Count(out, "- PreferNoSchedule"); n != 2 {
		t.Errorf("effect enum %d times, want 2 (taints, startupTaints)", n)
	}
	if n := strings.Count(out, "pattern: ^([a-z0-9]([-a-z0-9]*[a-z0-9])?"); n != 4 {
		t.Errorf("taint pattern %d times, want 4 (key and value of both lists)", n)
	}
	// Patching again gives the same file.
	if err := patchFile(path, patches["karpenter.sh_nodeclaims.yaml"]); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(path)
	if string(again) != out {
		t.Error("patching is not idempotent")
	}
}

func TestPatchFileMissingPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crd.yaml")
	if err := os.WriteFile(path, []byte(crd), 0o600); err != nil {
		t.Fatal(err)
	}
	err := patchFile(path, patches["karpenter.sh_nodepools.yaml"])
	if !errors.Is(err, errNoPath) {
		t.Errorf("err = %v, want a missing schema path", err)
	}
}
