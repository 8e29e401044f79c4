package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/journal"
	"github.com/flotilla-io/flotilla/internal/watcher/provisioning"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// GarbageCollector terminates the cluster's instances whose NodeClaim has
// been gone for Grace, and deletes launched NodeClaims whose instance is
// gone. It runs on the leader every Interval. An instance without a
// NodeClaim tag is reported, not terminated: the launcher terminates only
// an instance it can tell is a NodeClaim's.
type GarbageCollector struct {
	Client   client.Client
	Launcher launcherv1.LauncherServiceClient
	Recorder provisioning.Recorder
	Interval time.Duration
	Grace    time.Duration
	Journal  *journal.Journal
	Log      *slog.Logger
	Now      func() time.Time

	reported map[string]bool // instances without a NodeClaim tag, logged once
}

// Start runs collections until ctx ends.
func (g *GarbageCollector) Start(ctx context.Context) error {
	t := time.NewTicker(g.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := g.Collect(ctx); err != nil && ctx.Err() == nil {
				g.Log.Error("garbage collection", "err", err)
			}
		}
	}
}

func (g *GarbageCollector) now() time.Time {
	if g.Now == nil {
		return time.Now()
	}
	return g.Now()
}

// Collect makes one pass. A termination that fails does not stop the
// pass; the failures come back joined.
func (g *GarbageCollector) Collect(ctx context.Context) error {
	resp, err := g.Launcher.ListInstances(ctx, &launcherv1.ListInstancesRequest{})
	if err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	var claims karpv1.NodeClaimList
	if err := g.Client.List(ctx, &claims); err != nil {
		return fmt.Errorf("list nodeclaims: %w", err)
	}
	byName := map[string]bool{}
	byProvider := map[string]bool{}
	for _, c := range claims.Items {
		byName[c.Name] = true
		if c.Status.ProviderID != "" {
			byProvider[c.Status.ProviderID] = true
		}
	}
	live := map[string]bool{}
	now := g.now()
	var errs []error
	untagged := map[string]bool{}
	for _, inst := range resp.GetInstances() {
		live[inst.GetProviderId()] = true
		if byName[inst.GetNodeClaim()] || byProvider[inst.GetProviderId()] {
			continue
		}
		if inst.GetLaunchTime() != nil && now.Sub(inst.GetLaunchTime().AsTime()) < g.Grace {
			continue
		}
		if inst.GetNodeClaim() == "" {
			untagged[inst.GetId()] = true
			g.reportUntagged(inst)
			continue
		}
		if _, err := g.Launcher.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: inst.GetId(), NodeClaim: inst.GetNodeClaim()}); err != nil {
			errs = append(errs, fmt.Errorf("terminate leaked instance %s of nodeclaim %s: %w", inst.GetId(), inst.GetNodeClaim(), err))
			continue
		}
		g.Journal.Add("GarbageCollect", "instance/"+inst.GetId(), fmt.Sprintf("NodeClaim %s gone for %s: terminated", inst.GetNodeClaim(), g.Grace))
		g.Log.Info("terminated instance without nodeclaim", "instance", inst.GetId(), "nodeclaim_tag", inst.GetNodeClaim())
	}
	for id := range g.reported {
		if !untagged[id] {
			delete(g.reported, id) // gone, or tagged since
		}
	}
	for i := range claims.Items {
		c := &claims.Items[i]
		if c.DeletionTimestamp != nil || c.Status.ProviderID == "" || live[c.Status.ProviderID] {
			continue
		}
		cond := meta.FindStatusCondition(c.Status.Conditions, karpv1.ConditionLaunched)
		if cond == nil || now.Sub(cond.LastTransitionTime.Time) < g.Grace {
			continue
		}
		g.Recorder.Eventf(c, nil, corev1.EventTypeWarning, "InstanceGone", "Delete", "instance %s no longer exists", c.Status.ProviderID)
		g.Journal.Add("GarbageCollect", "nodeclaim/"+c.Name, "its instance no longer exists")
		if err := g.Client.Delete(ctx, c); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete nodeclaim %s: %w", c.Name, err))
		}
	}
	return errors.Join(errs...)
}

// reportUntagged logs, once per instance, an instance tagged for the
// cluster and a NodePool but with no NodeClaim: made outside Flotilla (or
// with its tags edited), it is left for a person to look at.
func (g *GarbageCollector) reportUntagged(inst *launcherv1.Instance) {
	if g.reported[inst.GetId()] {
		return
	}
	if g.reported == nil {
		g.reported = map[string]bool{}
	}
	g.reported[inst.GetId()] = true
	g.Journal.Add("GarbageCollect", "instance/"+inst.GetId(), "tagged for the cluster and a NodePool but without a NodeClaim tag: not terminated")
	g.Log.Warn("instance without a nodeclaim tag is not collected; terminate it by hand if it is not needed", "instance", inst.GetId())
}
