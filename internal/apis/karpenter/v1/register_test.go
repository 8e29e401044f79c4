package v1

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestSchemeRegistersKinds(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string]runtime.Object{
		KindNodePool: &NodePool{}, KindNodePool + "List": &NodePoolList{},
		KindNodeClaim: &NodeClaim{}, KindNodeClaim + "List": &NodeClaimList{},
	} {
		got, err := s.New(GroupVersion.WithKind(kind))
		if err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		if reflect.TypeOf(got) != reflect.TypeOf(want) {
			t.Errorf("%s: new object is %T", kind, got)
		}
	}
	gvks, _, err := s.ObjectKinds(&NodePool{})
	if err != nil || len(gvks) != 1 || gvks[0].GroupVersion().String() != APIVersion {
		t.Errorf("ObjectKinds(NodePool) = %v, %v", gvks, err)
	}
	if got := Resource("nodepools").String(); got != "nodepools.karpenter.sh" {
		t.Errorf("Resource = %s", got)
	}
}

// TestDeepCopyIsIndependent changes every reference-typed field of a copy
// and checks the original keeps its values.
func TestDeepCopyIsIndependent(t *testing.T) {
	d := 720 * time.Hour
	minValues, weight := 2, int32(10)
	schedule := "@daily"
	np := &NodePool{Spec: NodePoolSpec{
		Weight: &weight,
		Limits: Limits{corev1.ResourceCPU: resource.MustParse("1000")},
		Template: NodeClaimTemplate{
			ObjectMeta: ObjectMeta{Labels: map[string]string{"team": "a"}},
			Spec: NodeClaimTemplateSpec{
				ExpireAfter:  NillableDuration{Duration: &d, Raw: "720h"},
				NodeClassRef: &NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"},
				Requirements: []NodeSelectorRequirementWithMinValues{{
					NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: "k", Operator: corev1.NodeSelectorOpIn, Values: []string{"a", "b"}},
					MinValues:               &minValues,
				}},
			},
		},
		Disruption: Disruption{Budgets: []Budget{{Nodes: "1", Schedule: &schedule}}},
	}}
	cp := np.DeepCopyObject().(*NodePool)
	if !reflect.DeepEqual(cp, np) {
		t.Fatal("copy differs")
	}
	*cp.Spec.Weight = 1
	cp.Spec.Limits[corev1.ResourceCPU] = resource.MustParse("1")
	cp.Spec.Template.ObjectMeta.Labels["team"] = "b"
	*cp.Spec.Template.Spec.ExpireAfter.Duration = time.Hour
	cp.Spec.Template.Spec.NodeClassRef.Name = "other"
	cp.Spec.Template.Spec.Requirements[0].Values[0] = "z"
	*cp.Spec.Template.Spec.Requirements[0].MinValues = 5
	*cp.Spec.Disruption.Budgets[0].Schedule = "@hourly"
	q := np.Spec.Limits[corev1.ResourceCPU]
	if *np.Spec.Weight != 10 || q.String() != "1k" || np.Spec.Template.ObjectMeta.Labels["team"] != "a" ||
		*np.Spec.Template.Spec.ExpireAfter.Duration != d || np.Spec.Template.Spec.NodeClassRef.Name != "default" ||
		np.Spec.Template.Spec.Requirements[0].Values[0] != "a" || *np.Spec.Template.Spec.Requirements[0].MinValues != 2 ||
		*np.Spec.Disruption.Budgets[0].Schedule != "@daily" {
		t.Errorf("changing the copy changed the original: %+v", np.Spec)
	}
	var nilPool *NodePool
	if nilPool.DeepCopy() != nil {
		t.Error("DeepCopy of nil is not nil")
	}
}

func TestWellKnownTaints(t *testing.T) {
	if got := UnregisteredNoExecuteTaint(); got.Key != "karpenter.sh/unregistered" || got.Effect != corev1.TaintEffectNoExecute {
		t.Errorf("unregistered taint = %+v", got)
	}
	if got := DisruptedNoScheduleTaint(); got.Key != "karpenter.sh/disrupted" || got.Effect != corev1.TaintEffectNoSchedule {
		t.Errorf("disrupted taint = %+v", got)
	}
}
