package lifecycle

import (
	"context"
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

// GarbageCollector terminates the cluster's instances that have had no
// NodeClaim for Grace, and deletes launched NodeClaims whose instance is
// gone. It runs on the leader every Interval.
type GarbageCollector struct {
	Client      client.Client
	Launcher    launcherv1.LauncherServiceClient
	Recorder    provisioning.Recorder
	ClusterName string
	Interval    time.Duration
	Grace       time.Duration
	Journal     *journal.Journal
	Log         *slog.Logger
	Now         func() time.Time
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

// Collect makes one pass.
func (g *GarbageCollector) Collect(ctx context.Context) error {
	resp, err := g.Launcher.ListInstances(ctx, &launcherv1.ListInstancesRequest{Cluster: g.ClusterName})
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
	for _, inst := range resp.GetInstances() {
		live[inst.GetProviderId()] = true
		if byName[inst.GetNodeClaim()] || byProvider[inst.GetProviderId()] {
			continue
		}
		if inst.GetLaunchTime() != nil && now.Sub(inst.GetLaunchTime().AsTime()) < g.Grace {
			continue
		}
		if _, err := g.Launcher.Terminate(ctx, &launcherv1.TerminateRequest{InstanceId: inst.GetId()}); err != nil {
			return fmt.Errorf("terminate leaked instance %s: %w", inst.GetId(), err)
		}
		g.Journal.Add("GarbageCollect", "instance/"+inst.GetId(), fmt.Sprintf("no NodeClaim (tag %q) for %s: terminated", inst.GetNodeClaim(), g.Grace))
		g.Log.Info("terminated instance without nodeclaim", "instance", inst.GetId(), "nodeclaim_tag", inst.GetNodeClaim())
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
			return fmt.Errorf("delete nodeclaim %s: %w", c.Name, err)
		}
	}
	return nil
}
