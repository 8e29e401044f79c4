package disruption

import (
	"testing"
	"time"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestNodePoolHashStable(t *testing.T) {
	a := newPool("default", func(np *karpv1.NodePool) {
		np.Spec.Template.Spec.Taints = []corev1.Taint{{Key: "a", Effect: corev1.TaintEffectNoSchedule}, {Key: "b", Value: "1", Effect: corev1.TaintEffectNoExecute}}
	})
	b := newPool("default", func(np *karpv1.NodePool) {
		np.Spec.Template.Spec.Taints = []corev1.Taint{{Key: "b", Value: "1", Effect: corev1.TaintEffectNoExecute}, {Key: "a", Effect: corev1.TaintEffectNoSchedule}}
		np.Spec.Template.ObjectMeta.Annotations = map[string]string{} // empty and missing hash alike
	})
	h := NodePoolHash(a)
	if h == "" || h != NodePoolHash(b) {
		t.Fatalf("hashes differ: %s vs %s", h, NodePoolHash(b))
	}
	for range 20 {
		if NodePoolHash(a) != h {
			t.Fatal("hash is not deterministic")
		}
	}
	// A golden value catches accidental changes to the scheme, which would
	// mark every node in every cluster as drifted.
	if golden := NodePoolHash(newPool("x")); golden != "14337782109031307297" {
		t.Errorf("NodePoolHash(newPool) = %s, the scheme changed: bump NodePoolHashVersion", golden)
	}
}

func TestNodePoolHashFields(t *testing.T) {
	base := NodePoolHash(newPool("default"))
	changed := map[string]func(*karpv1.NodePool){
		"label":      func(np *karpv1.NodePool) { np.Spec.Template.ObjectMeta.Labels["team"] = "b" },
		"annotation": func(np *karpv1.NodePool) { np.Spec.Template.ObjectMeta.Annotations = map[string]string{"x": "y"} },
		"taint": func(np *karpv1.NodePool) {
			np.Spec.Template.Spec.Taints = []corev1.Taint{{Key: "a", Effect: corev1.TaintEffectNoSchedule}}
		},
		"startup taint": func(np *karpv1.NodePool) {
			np.Spec.Template.Spec.StartupTaints = []corev1.Taint{{Key: "a", Effect: corev1.TaintEffectNoSchedule}}
		},
		"expireAfter": func(np *karpv1.NodePool) { np.Spec.Template.Spec.ExpireAfter = dur(time.Hour) },
		"terminationGracePeriod": func(np *karpv1.NodePool) {
			np.Spec.Template.Spec.TerminationGracePeriod = &metav1.Duration{Duration: time.Hour}
		},
		"nodeClassRef": func(np *karpv1.NodePool) { np.Spec.Template.Spec.NodeClassRef.Name = "other" },
	}
	for name, f := range changed {
		if NodePoolHash(newPool("default", f)) == base {
			t.Errorf("changing the %s does not change the hash", name)
		}
	}
	unchanged := map[string]func(*karpv1.NodePool){
		"requirements": func(np *karpv1.NodePool) { np.Spec.Template.Spec.Requirements = nil },
		"budgets":      func(np *karpv1.NodePool) { np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "1"}} },
		"policy": func(np *karpv1.NodePool) {
			np.Spec.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyWhenEmpty
		},
		"consolidateAfter": func(np *karpv1.NodePool) {
			np.Spec.Disruption.ConsolidateAfter = dur(time.Hour)
		},
		"limits": func(np *karpv1.NodePool) {
			np.Spec.Limits = karpv1.Limits{corev1.ResourceCPU: resource.MustParse("10")}
		},
		"weight": func(np *karpv1.NodePool) { np.Spec.Weight = new(int32(5)) },
		"name":   func(np *karpv1.NodePool) { np.Name = "other" },
	}
	for name, f := range unchanged {
		if NodePoolHash(newPool("default", f)) != base {
			t.Errorf("changing the %s changes the hash", name)
		}
	}
	if NodePoolHash(nil) != "" {
		t.Error("nil pool hash")
	}
}

func TestNodeClassHash(t *testing.T) {
	base := NodeClassHash(newClass())
	if base == "" || base != NodeClassHash(newClass()) {
		t.Fatal("unstable")
	}
	sel := newClass()
	sel.Spec.AMISelectorTerms = []awsv1.AMISelectorTerm{{Alias: "al2023@latest"}}
	sel.Status.AMIs = nil
	if NodeClassHash(sel) != base {
		t.Error("selector terms and status must not change the hash")
	}
	ud := newClass()
	ud.Spec.UserData = new("#!/bin/sh\necho hi")
	if NodeClassHash(ud) == base {
		t.Error("user data must change the hash")
	}
	role := newClass()
	role.Spec.Role = "Other"
	if NodeClassHash(role) == base {
		t.Error("role must change the hash")
	}
}
