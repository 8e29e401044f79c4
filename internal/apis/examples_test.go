// Package apis_test checks the example manifests in examples/karpenter
// against the Go API types of internal/apis.
package apis_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/kubeyaml"
)

const examplesDir = "../../examples/karpenter"

// exampleDocs returns every YAML document of the example files, keyed by
// file:index.
func exampleDocs(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples in %s: %v", examplesDir, err)
	}
	docs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range bytes.Split(b, []byte("\n---")) {
			if len(bytes.TrimSpace(stripComments(d))) == 0 {
				continue
			}
			docs[fmt.Sprintf("%s:%d", filepath.Base(f), i)] = d
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
			out = append(out, '\n')
		}
	}
	return out
}

func newScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	if err := karpv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := awsv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestExamplesRoundTrip decodes every example strictly (an unknown field
// fails) into the Go type its apiVersion and kind name, encodes it again, and
// requires the result to say the same as the manifest: no field is lost or
// changed by the types.
func TestExamplesRoundTrip(t *testing.T) {
	s := newScheme(t)
	kinds := map[string]int{}
	for name, doc := range exampleDocs(t) {
		t.Run(name, func(t *testing.T) {
			var hdr struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &hdr); err != nil {
				t.Fatal(err)
			}
			obj, err := s.New(schema.FromAPIVersionAndKind(hdr.APIVersion, hdr.Kind))
			if err != nil {
				t.Fatalf("%s %s is not a registered type: %v", hdr.APIVersion, hdr.Kind, err)
			}
			kinds[hdr.Kind]++
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Fatalf("strict decode: %v", err)
			}
			// A deep copy is equal and encodes the same.
			cp := obj.DeepCopyObject()
			if !reflect.DeepEqual(cp, obj) {
				t.Fatalf("DeepCopyObject differs from the original")
			}
			out, err := json.Marshal(cp)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			if err := yaml.Unmarshal(doc, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatal(err)
			}
			for _, d := range diff("", want, got) {
				t.Error(d)
			}
		})
	}
	if kinds[karpv1.KindNodePool] < 3 || kinds[awsv1.KindEC2NodeClass] < 1 {
		t.Errorf("examples hold %v, want at least 3 NodePools and an EC2NodeClass", kinds)
	}
}

// diff lists the differences between a manifest and its re-encoding.
// Quantities and durations compare by value ("1000" is "1k", "48h" is
// "48h0m0s"); empty objects the encoder adds (status: {}) do not count.
func diff(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %v became %v", path, want, got)}
		}
		var out []string
		for _, k := range sortedKeys(w) {
			out = append(out, diff(path+"."+k, w[k], g[k])...)
		}
		for _, k := range sortedKeys(g) {
			if _, ok := w[k]; !ok && !isEmpty(g[k]) {
				out = append(out, fmt.Sprintf("%s.%s: added %v", path, k, g[k]))
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: %v became %v", path, want, got)}
		}
		var out []string
		for i := range w {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	}
	if reflect.DeepEqual(want, got) || sameQuantity(want, got) || sameDuration(want, got) {
		return nil
	}
	return []string{fmt.Sprintf("%s: %v (%T) became %v (%T)", path, want, want, got, got)}
}

func isEmpty(v any) bool {
	m, ok := v.(map[string]any)
	return v == nil || ok && len(m) == 0
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sameQuantity(a, b any) bool {
	qa, err1 := resource.ParseQuantity(strings.TrimSpace(fmt.Sprint(a)))
	qb, err2 := resource.ParseQuantity(strings.TrimSpace(fmt.Sprint(b)))
	return err1 == nil && err2 == nil && qa.Cmp(qb) == 0
}

func sameDuration(a, b any) bool {
	da, err1 := time.ParseDuration(fmt.Sprint(a))
	db, err2 := time.ParseDuration(fmt.Sprint(b))
	return err1 == nil && err2 == nil && da == db
}

// TestExampleNodePoolsLoad reads the examples with the solver's NodePool
// loader, which skips the EC2NodeClass.
func TestExampleNodePoolsLoad(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*.yaml"))
	pools := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kubeyaml.LoadNodePools(f, bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", f, err)
		}
		pools += len(got)
	}
	if pools != 3 {
		t.Errorf("loaded %d NodePools, want 3", pools)
	}
}
