package disrupt

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
)

// laggingCache answers Get from a script of NodeClaim states, one per call:
// nil means NotFound (not in the cache yet, or deleted).
type laggingCache struct {
	mu     sync.Mutex
	script []*karpv1.NodeClaim
	calls  int
}

func (c *laggingCache) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := min(c.calls, len(c.script)-1)
	c.calls++
	if c.script[i] == nil {
		return apierrors.NewNotFound(schema.GroupResource{Group: "karpenter.sh", Resource: "nodeclaims"}, key.Name)
	}
	c.script[i].DeepCopyInto(obj.(*karpv1.NodeClaim))
	return nil
}

func (c *laggingCache) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return nil
}

func claimWith(initialized bool) *karpv1.NodeClaim {
	nc := &karpv1.NodeClaim{ObjectMeta: metav1.ObjectMeta{Name: "general-abcde"}}
	status := metav1.ConditionUnknown
	if initialized {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&nc.Status.Conditions, metav1.Condition{Type: karpv1.ConditionInitialized, Status: status, Reason: "Test"})
	return nc
}

// A replacement the cache has not seen yet is waited for, not taken for a
// deleted one (which made every replacement fail, and its instance leak,
// when the cache lagged the creation).
func TestWaitInitializedWaitsForTheCache(t *testing.T) {
	r := &laggingCache{script: []*karpv1.NodeClaim{nil, nil, claimWith(false), claimWith(true)}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := WaitInitialized(ctx, r, []string{"general-abcde"}, time.Millisecond); err != nil {
		t.Fatalf("WaitInitialized: %v", err)
	}
}

func TestWaitInitializedFailsWhenASeenReplacementGoes(t *testing.T) {
	r := &laggingCache{script: []*karpv1.NodeClaim{nil, claimWith(false), nil}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := WaitInitialized(ctx, r, []string{"general-abcde"}, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("WaitInitialized = %v, want the NotFound of a deleted replacement", err)
	}
}
