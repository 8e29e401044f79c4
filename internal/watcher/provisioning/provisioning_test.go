package provisioning

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// TestBatcherIdleAndMax checks the window rules with lower bounds only
// (timers never fire early) and wide margins, so a loaded machine cannot
// fail it: Idle closes a quiet window, a trigger restarts Idle, and Max
// closes a window whatever the triggers.
func TestBatcherIdleAndMax(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	wait := func(b *Batcher) time.Duration {
		t.Helper()
		start := time.Now()
		if !b.Wait(ctx) {
			t.Fatal("window did not close")
		}
		return time.Since(start)
	}
	// Quiet: Idle closes it, long before Max.
	b := NewBatcher(50*time.Millisecond, time.Hour)
	b.Trigger()
	if d := wait(b); d < 50*time.Millisecond {
		t.Errorf("idle window closed after %s, before Idle (50ms)", d)
	}
	// A trigger 100ms in restarts the 1s Idle: the window lasts past 1.1s.
	b = NewBatcher(time.Second, time.Hour)
	b.Trigger()
	time.AfterFunc(100*time.Millisecond, b.Trigger)
	if d := wait(b); d < 1100*time.Millisecond {
		t.Errorf("window closed after %s although a trigger at 100ms restarted the 1s Idle", d)
	}
	// Busy: with Idle out of reach, Max closes it.
	b = NewBatcher(time.Hour, 200*time.Millisecond)
	b.Trigger()
	if d := wait(b); d < 200*time.Millisecond {
		t.Errorf("busy window closed after %s, before Max (200ms)", d)
	}
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	b.Trigger()
	if b.Wait(cancelled) {
		t.Error("Wait on a cancelled context returned true")
	}
}

func TestNodeClaimFromPlan(t *testing.T) {
	np := &karpv1.NodePool{ObjectMeta: metav1.ObjectMeta{Name: "general"}}
	np.Spec.Template.ObjectMeta.Labels = map[string]string{"team": "web"}
	np.Spec.Template.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "web", Effect: corev1.TaintEffectNoSchedule}}
	np.Spec.Template.Spec.NodeClassRef = &karpv1.NodeClassReference{Group: "karpenter.k8s.aws", Kind: "EC2NodeClass", Name: "default"}
	planned := &typesv1.PlannedNodeClaim{
		NodePool: "general", InstanceType: "m5.large", InstanceTypeOptions: []string{"m5.large", "m5.xlarge"},
		Requirements: []*typesv1.Requirement{
			{Key: corev1.LabelInstanceTypeStable, Operator: "In", Values: []string{"m5.xlarge", "m5.large"}},
			{Key: karpv1.CapacityTypeLabelKey, Operator: "In", Values: []string{"on-demand"}},
			{Key: karpv1.NodePoolLabelKey, Operator: "In", Values: []string{"general"}},
		},
		Requests: map[string]string{"cpu": "1500m", "memory": "2Gi"},
	}
	c, err := NodeClaim(planned, np, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Labels[karpv1.NodePoolLabelKey] != "general" || c.Labels["team"] != "web" {
		t.Errorf("labels %v", c.Labels)
	}
	if c.Annotations[karpv1.NodePoolHashAnnotationKey] == "" || c.Annotations[karpv1.NodePoolHashVersionAnnotationKey] == "" {
		t.Errorf("annotations %v", c.Annotations)
	}
	var types, pools int
	for _, r := range c.Spec.Requirements {
		switch r.Key {
		case corev1.LabelInstanceTypeStable:
			types++
			if len(r.Values) != 2 || r.Values[0] != "m5.large" {
				t.Errorf("instance types %v, want the plan's options cheapest first", r.Values)
			}
		case karpv1.NodePoolLabelKey:
			pools++
		}
	}
	if types != 1 || pools != 1 {
		t.Errorf("requirements %+v: want one instance-type and one nodepool requirement", c.Spec.Requirements)
	}
	if q := c.Spec.Resources.Requests[corev1.ResourceCPU]; q.MilliValue() != 1500 {
		t.Errorf("cpu request %s", q.String())
	}
	if len(c.Spec.Taints) != 1 || c.Spec.NodeClassRef.Name != "default" || len(c.OwnerReferences) != 0 {
		t.Errorf("spec %+v", c.Spec)
	}
	if _, err := NodeClaim(&typesv1.PlannedNodeClaim{Requests: map[string]string{"cpu": "lots"}}, np, nil); err == nil {
		t.Error("a bad planned quantity was accepted")
	}
	if s := randomSuffix(); len(s) != 5 {
		t.Errorf("suffix %q", s)
	}
}
