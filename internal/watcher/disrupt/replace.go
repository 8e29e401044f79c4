package disrupt

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	"github.com/flotilla-io/flotilla/internal/watcher/provisioning"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// ReplacementAnnotationKey marks a NodeClaim created to replace others,
// with the reason.
const ReplacementAnnotationKey = "flotilla.io/replacement-for"

func objectMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

// CreateReplacements creates one NodeClaim per planned replacement from its
// NodePool and EC2NodeClass.
func CreateReplacements(ctx context.Context, c client.Client, claims []*typesv1.NodeClaim, reason string, m *metrics.Metrics) ([]string, error) {
	var names []string
	for _, tc := range claims {
		np := &karpv1.NodePool{}
		if err := c.Get(ctx, client.ObjectKey{Name: tc.GetNodePool()}, np); err != nil {
			return names, fmt.Errorf("nodepool %s of a replacement: %w", tc.GetNodePool(), err)
		}
		var class *awsv1.EC2NodeClass
		if ref := np.Spec.Template.Spec.NodeClassRef; ref != nil {
			class = &awsv1.EC2NodeClass{}
			if err := c.Get(ctx, client.ObjectKey{Name: ref.Name}, class); err != nil {
				return names, fmt.Errorf("ec2nodeclass %s of a replacement: %w", ref.Name, err)
			}
		}
		claim, err := provisioning.NodeClaim(provisioning.Planned(tc), np, class)
		if err != nil {
			return names, err
		}
		claim.Annotations[ReplacementAnnotationKey] = reason
		if err := provisioning.Create(ctx, c, claim); err != nil {
			return names, err
		}
		m.Created(np.Name, "replacement")
		names = append(names, claim.Name)
	}
	return names, nil
}

// UnseenGrace is how long WaitInitialized waits for a NodeClaim it just
// created to appear in a cached reader before it counts as deleted.
const UnseenGrace = 15 * time.Second

// WaitInitialized polls until every named NodeClaim is Initialized; a
// NodeClaim that disappears (deleted after a launch failure) is an error.
// One that was never seen yet is not: r may be an informer cache that has
// not caught up with the creation, for up to UnseenGrace.
func WaitInitialized(ctx context.Context, r client.Reader, names []string, poll time.Duration) error {
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	start, seen := time.Now(), map[string]bool{}
	for {
		ready, err := initialized(ctx, r, names, seen, time.Since(start) > UnseenGrace)
		if err != nil {
			return err
		}
		if ready == len(names) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("replacements %v not initialized: %w", names, ctx.Err())
		case <-t.C:
		}
	}
}

// initialized counts the Initialized NodeClaims of names, recording those
// seen; NotFound is an error for a NodeClaim seen before or once
// unseenExpired.
func initialized(ctx context.Context, r client.Reader, names []string, seen map[string]bool, unseenExpired bool) (int, error) {
	ready := 0
	for _, n := range names {
		nc := &karpv1.NodeClaim{}
		if err := r.Get(ctx, client.ObjectKey{Name: n}, nc); err != nil {
			if apierrors.IsNotFound(err) && !seen[n] && !unseenExpired {
				continue
			}
			return 0, fmt.Errorf("replacement %s: %w", n, err)
		}
		seen[n] = true
		if nc.DeletionTimestamp != nil {
			return 0, fmt.Errorf("replacement %s is being deleted", n)
		}
		if meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionInitialized) {
			ready++
		}
	}
	return ready, nil
}
