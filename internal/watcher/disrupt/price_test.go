package disrupt

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// classTypes lists m5.large on-demand in us-east-1a for every class but
// the broken ones.
type classTypes struct{ broken map[string]bool }

func (c classTypes) InstanceTypes(_ context.Context, nc *awsv1.EC2NodeClass) ([]*typesv1.InstanceType, error) {
	if c.broken[nc.Name] {
		return nil, errors.New("launcher unavailable")
	}
	return []*typesv1.InstanceType{{Name: "m5.large", Offerings: []*typesv1.Offering{
		{Zone: "us-east-1a", CapacityType: "on-demand", PricePerHour: 0.096, Available: true}}}}, nil
}

func launchedClaim(name, pool, it string) *karpv1.NodeClaim {
	nc := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		karpv1.NodePoolLabelKey: pool, corev1.LabelInstanceTypeStable: it,
		corev1.LabelTopologyZone: "us-east-1a", karpv1.CapacityTypeLabelKey: "on-demand"}}}
	nc.Status.Conditions = []metav1.Condition{{Type: karpv1.ConditionLaunched, Status: metav1.ConditionTrue, Reason: "Launched", LastTransitionTime: metav1.Now()}}
	return nc
}

func poolOf(name, class string) *karpv1.NodePool {
	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: name}}
	np.Spec.Template.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: class}
	return np
}

// A candidate is priced from its class's types; a type no offering prices,
// or a class whose types could not be listed, leaves it Unpriced with why,
// never priced 0 in silence.
func TestCandidatesPricedOrUnpriced(t *testing.T) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, karpv1.AddToScheme, awsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	objs := []client.Object{
		&awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "good"}}, &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "broken"}},
		poolOf("a", "good"), poolOf("b", "broken"),
		launchedClaim("priced", "a", "m5.large"), launchedClaim("unknown-type", "a", "x9.huge"), launchedClaim("unlisted", "b", "m5.large"),
	}
	kube := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).Build()
	c := &Cluster{Reader: kube, Types: classTypes{broken: map[string]bool{"broken": true}}}
	cands, err := c.Candidates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]disruption.Candidate{}
	for _, cand := range cands {
		got[cand.NodeClaim.Name] = cand
	}
	if p := got["priced"]; p.PricePerHour != 0.096 || p.Unpriced != "" {
		t.Errorf("priced: %v %q", p.PricePerHour, p.Unpriced)
	}
	if u := got["unknown-type"]; u.UnpricedReason != disruption.BlockedUnpriced || !strings.Contains(u.Unpriced, "x9.huge") {
		t.Errorf("unknown-type: %q %q", u.UnpricedReason, u.Unpriced)
	}
	if u := got["unlisted"]; u.UnpricedReason != disruption.BlockedTypesUnlisted || !strings.Contains(u.Unpriced, "broken") || !strings.Contains(u.Unpriced, "launcher unavailable") {
		t.Errorf("unlisted: %q %q", u.UnpricedReason, u.Unpriced)
	}
}
