package interruption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// Defaults of Actor fields.
const (
	DefaultUnavailableTTL = 3 * time.Minute
	DefaultCallTimeout    = 10 * time.Second
	// DefaultRebalanceNotice is the deadline given to the watcher for a
	// rebalance recommendation acted on: no notice was announced.
	DefaultRebalanceNotice = 10 * time.Minute
	instanceCacheTTL       = 30 * time.Second
	instanceMinRefresh     = time.Second
)

// Reasons given to the watcher's Disrupt, by kind.
var disruptReasons = map[string]string{
	KindSpotInterruption:                "SpotInterrupted",
	KindRebalanceRecommendation:         "RebalanceRecommended",
	KindScheduledChange:                 "ScheduledChange",
	KindStateChange:                     "InstanceStateChange",
	KindCapacityReservationInterruption: "CapacityReservationInterrupted",
}

// Outcome is what was done about one instance of an event.
type Outcome struct {
	InstanceID string
	Action     string
	Message    string
	NodeName   string
	Deadline   time.Time
}

// Actor carries out the actions of validated events through the launcher
// and the watcher.
type Actor struct {
	// Watcher receives Disrupt.
	Watcher watcherv1.WatcherServiceClient
	// Launcher lists the cluster's instances and receives MarkUnavailable.
	Launcher launcherv1.LauncherServiceClient
	// ClusterName is the cluster whose instances are ours. The launcher
	// lists only its own cluster's (its --cluster-name), so it is not sent.
	ClusterName string
	// ActOnRebalance disrupts nodes on rebalance recommendations; otherwise
	// they are only recorded.
	ActOnRebalance bool
	// UnavailableTTL is how long an interrupted Spot offering stays
	// unavailable; 0 means 3 minutes.
	UnavailableTTL time.Duration
	// CallTimeout bounds each gRPC call; 0 means 10 s.
	CallTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics receives the delay to disruption; may be nil.
	Metrics *Metrics
	// Log receives warnings; nil means slog.Default().
	Log *slog.Logger

	once      sync.Once
	instances *instanceCache
}

func (a *Actor) init() {
	a.once.Do(func() {
		if a.UnavailableTTL <= 0 {
			a.UnavailableTTL = DefaultUnavailableTTL
		}
		if a.CallTimeout <= 0 {
			a.CallTimeout = DefaultCallTimeout
		}
		if a.Now == nil {
			a.Now = time.Now
		}
		if a.Log == nil {
			a.Log = slog.Default()
		}
		a.instances = &instanceCache{launcher: a.Launcher, now: a.Now, timeout: a.CallTimeout}
	})
}

// Act carries out ev for each of its instances. It returns the outcomes so
// far and an error when a call failed: then the message must stay on the
// queue to be retried (repeating the calls is harmless).
func (a *Actor) Act(ctx context.Context, ev *Event) ([]Outcome, error) {
	a.init()
	out := make([]Outcome, 0, len(ev.InstanceIDs))
	var errs []error
	for _, id := range ev.InstanceIDs {
		o, err := a.actOne(ctx, ev, id)
		out = append(out, o)
		if err != nil {
			errs = append(errs, fmt.Errorf("instance %s: %w", id, err))
		}
	}
	return out, errors.Join(errs...)
}

func (a *Actor) actOne(ctx context.Context, ev *Event, id string) (Outcome, error) {
	o := Outcome{InstanceID: id}
	switch {
	case !ev.Actionable:
		o.Action, o.Message = ActionIgnored, ev.Note
		return o, nil
	case ev.Kind == KindRebalanceRecommendation && !a.ActOnRebalance:
		o.Action, o.Message = ActionObserved, "rebalance recommendation recorded; --act-on-rebalance is off"
		return o, nil
	}
	var markErr error
	if ev.Kind == KindSpotInterruption {
		markErr = a.markUnavailable(ctx, ev, id)
	}
	deadline := ev.Deadline
	if deadline.IsZero() {
		deadline = a.Now().Add(DefaultRebalanceNotice)
	}
	o.Deadline = deadline
	resp, err := a.disrupt(ctx, ev, id, deadline)
	if code := status.Code(err); code == codes.NotFound || code == codes.FailedPrecondition {
		// The watcher refused: no NodeClaim of its NodePools has this
		// instance. Final, not retried.
		o.Action, o.Message = ActionIgnored, "not a node of this cluster: "+status.Convert(err).Message()
		return o, markErr
	}
	if err != nil {
		a.countError("watcher")
		o.Action, o.Message = ActionFailed, "Disrupt: watcher: "+err.Error()
		return o, errors.Join(markErr, fmt.Errorf("watcher: %w", err))
	}
	if !resp.GetAccepted() {
		o.Action, o.Message = ActionIgnored, "not a node of this cluster: "+resp.GetMessage()
		return o, markErr
	}
	if a.Metrics != nil {
		a.Metrics.DisruptDelay.WithLabelValues(ev.Kind).Observe(a.Now().Sub(ev.Time).Seconds())
	}
	o.Action, o.NodeName, o.Message = ActionDisrupted, resp.GetNodeName(), resp.GetMessage()
	if markErr != nil {
		o.Action, o.Message = ActionFailed, "node disrupted, but marking the offering unavailable failed: "+markErr.Error()
	}
	return o, markErr
}

func (a *Actor) disrupt(ctx context.Context, ev *Event, id string, deadline time.Time) (*watcherv1.DisruptResponse, error) {
	cctx, cancel := context.WithTimeout(ctx, a.CallTimeout)
	defer cancel()
	return a.Watcher.Disrupt(cctx, &watcherv1.DisruptRequest{
		InstanceId: id, Reason: disruptReasons[ev.Kind], Deadline: timestamppb.New(deadline), ReplaceFirst: true,
	})
}

// markUnavailable marks the Spot offering of instance id unavailable at the
// launcher. An instance the launcher does not list for the cluster is not
// ours (or already gone): nothing is marked.
func (a *Actor) markUnavailable(ctx context.Context, ev *Event, id string) error {
	inst, err := a.instances.lookup(ctx, id)
	if err != nil {
		a.countError("launcher")
		return err
	}
	if inst == nil || inst.GetInstanceType() == "" || inst.GetZone() == "" {
		return nil
	}
	capacityType := inst.GetCapacityType()
	if capacityType == "" {
		capacityType = "spot"
	}
	cctx, cancel := context.WithTimeout(ctx, a.CallTimeout)
	defer cancel()
	_, err = a.Launcher.MarkUnavailable(cctx, &launcherv1.MarkUnavailableRequest{
		InstanceType: inst.GetInstanceType(), Zone: inst.GetZone(), CapacityType: capacityType,
		Ttl: durationpb.New(a.UnavailableTTL), Reason: fmt.Sprintf("Spot interruption of %s (event %s)", id, ev.ID),
	})
	if err != nil {
		a.countError("launcher")
		return fmt.Errorf("launcher MarkUnavailable %s/%s/%s: %w", inst.GetInstanceType(), inst.GetZone(), capacityType, err)
	}
	return nil
}

func (a *Actor) countError(stage string) {
	if a.Metrics != nil {
		a.Metrics.Errors.WithLabelValues(stage).Inc()
	}
}

// instanceCache caches the launcher's list of the cluster's instances. A
// miss refreshes it, at most once per instanceMinRefresh; lookups wait for a
// refresh under way instead of starting their own.
type instanceCache struct {
	launcher launcherv1.LauncherServiceClient
	now      func() time.Time
	timeout  time.Duration

	mu      sync.Mutex
	byID    map[string]*launcherv1.Instance
	fetched time.Time
}

func (c *instanceCache) lookup(ctx context.Context, id string) (*launcherv1.Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	age := c.now().Sub(c.fetched)
	if inst, ok := c.byID[id]; ok && age < instanceCacheTTL {
		return inst, nil
	}
	if !c.fetched.IsZero() && age < instanceMinRefresh {
		return c.byID[id], nil
	}
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// The launcher lists its own cluster's (--cluster-name) instances.
	resp, err := c.launcher.ListInstances(cctx, &launcherv1.ListInstancesRequest{})
	if err != nil {
		return nil, fmt.Errorf("launcher ListInstances: %w", err)
	}
	c.byID = make(map[string]*launcherv1.Instance, len(resp.GetInstances()))
	for _, inst := range resp.GetInstances() {
		c.byID[inst.GetId()] = inst
	}
	c.fetched = c.now()
	return c.byID[id], nil
}
