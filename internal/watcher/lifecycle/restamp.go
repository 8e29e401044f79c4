package lifecycle

import (
	"context"
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
)

// restamp gives a NodeClaim stamped under another hash scheme (by
// Karpenter, before a move to Flotilla) the current NodePool and
// EC2NodeClass hashes under Flotilla's hash versions. Drift compares hashes
// of one scheme only, so without this a template change after the move
// would go unnoticed on those NodeClaims; with it, they drift from the
// next change on, not from the move itself. It does nothing when the
// versions already match or the NodePool is gone.
func (c *Controller) restamp(ctx context.Context, claim *karpv1.NodeClaim) error {
	a := claim.Annotations
	poolStale := a[karpv1.NodePoolHashVersionAnnotationKey] != disruption.NodePoolHashVersion
	classStale := claim.Spec.NodeClassRef != nil && a[karpv1.NodeClassHashVersionAnnotationKey] != disruption.NodeClassHashVersion
	if !poolStale && !classStale {
		return nil
	}
	np := &karpv1.NodePool{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: claim.Labels[karpv1.NodePoolLabelKey]}, np); err != nil {
		return client.IgnoreNotFound(err)
	}
	patch := client.MergeFrom(claim.DeepCopy())
	if claim.Annotations == nil {
		claim.Annotations = map[string]string{}
	}
	if poolStale {
		claim.Annotations[karpv1.NodePoolHashAnnotationKey] = disruption.NodePoolHash(np)
		claim.Annotations[karpv1.NodePoolHashVersionAnnotationKey] = disruption.NodePoolHashVersion
	}
	if classStale {
		class, err := c.classOf(ctx, claim)
		if err != nil {
			return client.IgnoreNotFound(err)
		}
		claim.Annotations[karpv1.NodeClassHashAnnotationKey] = disruption.NodeClassHash(class)
		claim.Annotations[karpv1.NodeClassHashVersionAnnotationKey] = disruption.NodeClassHashVersion
	}
	if err := c.Client.Patch(ctx, claim, patch); err != nil {
		return fmt.Errorf("re-stamp hashes of %s: %w", claim.Name, err)
	}
	return nil
}
