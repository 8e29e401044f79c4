package apis_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
)

var quotedAWSKey = regexp.MustCompile(`karpenter\.k8s\.aws/[a-z0-9-]+`)

// TestCRDsAllowKarpenterKeysAndOperators reads the generated CRDs: every
// rule restricting the karpenter.k8s.aws domain must allow exactly
// Karpenter's keys, and the operator rules must admit Gte and Lte with the
// same single-integer check as Gt and Lt.
func TestCRDsAllowKarpenterKeysAndOperators(t *testing.T) {
	want := make([]string, len(karpv1.KarpenterAWSKeys))
	for i, k := range karpv1.KarpenterAWSKeys {
		want[i] = "karpenter.k8s.aws/" + k
	}
	slices.Sort(want)
	for _, tc := range []struct {
		file     string
		awsRules int // requirement keys, plus template labels for NodePools
	}{
		{"karpenter.sh_nodepools.yaml", 2},
		{"karpenter.sh_nodeclaims.yaml", 1},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "crds", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := yaml.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			rules := 0
			var operatorRule, integerRule bool
			for _, rule := range celRules(doc) {
				if strings.Contains(rule, "endsWith('karpenter.k8s.aws')") {
					rules++
					got := quotedAWSKey.FindAllString(rule, -1)
					slices.Sort(got)
					got = slices.Compact(got)
					if !slices.Equal(got, want) {
						t.Errorf("karpenter.k8s.aws keys allowed:\n got %v\nwant %v", got, want)
					}
				}
				if strings.HasPrefix(rule, "self.operator in") {
					operatorRule = strings.Contains(rule, "'Gte'") && strings.Contains(rule, "'Lte'")
				}
				if strings.Contains(rule, "self.values[0].matches('^[0-9]+$')") {
					integerRule = strings.Contains(rule, "'Gte'") && strings.Contains(rule, "'Lte'")
				}
			}
			if rules != tc.awsRules {
				t.Errorf("%d karpenter.k8s.aws rules, want %d", rules, tc.awsRules)
			}
			if !operatorRule {
				t.Error("the operator rule does not admit Gte and Lte")
			}
			if !integerRule {
				t.Error("Gte and Lte are not held to a single non-negative integer value")
			}
		})
	}
}

// celRules returns the rules of every x-kubernetes-validations list in v.
func celRules(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k != "x-kubernetes-validations" {
				out = append(out, celRules(e)...)
				continue
			}
			list, _ := e.([]any)
			for _, r := range list {
				if m, ok := r.(map[string]any); ok {
					if rule, ok := m["rule"].(string); ok {
						out = append(out, rule)
					}
				}
			}
		}
	case []any:
		for _, e := range v {
			out = append(out, celRules(e)...)
		}
	}
	return out
}

// TestCRDsValidateTaints reads the generated CRDs: taints and startup
// taints of NodePools and NodeClaims allow only Karpenter's three effects,
// and their keys and values match Karpenter's pattern (checked here on
// examples of each side).
func TestCRDsValidateTaints(t *testing.T) {
	for _, tc := range []struct {
		file   string
		prefix []string
	}{
		{"karpenter.sh_nodepools.yaml", []string{"spec", "template", "spec"}},
		{"karpenter.sh_nodeclaims.yaml", []string{"spec"}},
	} {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "crds", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		var crd map[string]any
		if err := yaml.Unmarshal(b, &crd); err != nil {
			t.Fatal(err)
		}
		versions, _ := crd["spec"].(map[string]any)["versions"].([]any)
		schema := versions[0].(map[string]any)["schema"].(map[string]any)["openAPIV3Schema"]
		for _, field := range []string{"taints", "startupTaints"} {
			t.Run(tc.file+"/"+field, func(t *testing.T) {
				props := schemaAt(t, schema, append(append([]string{}, tc.prefix...), field)...)
				props = props["items"].(map[string]any)["properties"].(map[string]any)
				effect := props["effect"].(map[string]any)
				if got := effect["enum"]; !reflect.DeepEqual(got, []any{"NoSchedule", "PreferNoSchedule", "NoExecute"}) {
					t.Errorf("effect enum %v", got)
				}
				key, value := props["key"].(map[string]any), props["value"].(map[string]any)
				if key["minLength"] != float64(1) {
					t.Errorf("key minLength %v, want 1", key["minLength"])
				}
				keyRE := regexp.MustCompile(key["pattern"].(string))
				valueRE := regexp.MustCompile(value["pattern"].(string))
				for _, k := range []string{"nvidia.com/gpu", "billing-team", "example.com/Special_Key.1", "a"} {
					if !keyRE.MatchString(k) {
						t.Errorf("key %q refused", k)
					}
				}
				for _, k := range []string{"Example.com/x", "-a", "a-", "a/b/c", "a b", "/a"} {
					if keyRE.MatchString(k) {
						t.Errorf("key %q allowed", k)
					}
				}
				for _, v := range []string{"true", "my-team", "v1.2_3"} {
					if !valueRE.MatchString(v) {
						t.Errorf("value %q refused", v)
					}
				}
				for _, v := range []string{"a b", "x-", "é"} {
					if valueRE.MatchString(v) {
						t.Errorf("value %q allowed", v)
					}
				}
			})
		}
	}
}

// schemaAt follows properties by name from an openAPIV3Schema node.
func schemaAt(t *testing.T, node any, names ...string) map[string]any {
	t.Helper()
	for _, n := range names {
		m, _ := node.(map[string]any)
		props, _ := m["properties"].(map[string]any)
		if props[n] == nil {
			t.Fatalf("no property %q", n)
		}
		node = props[n]
	}
	return node.(map[string]any)
}
