// Package service serves flotilla.watcher.v1.WatcherService: Disrupt, for
// the interruption service (taint, replacement, drain and termination of a
// node before a deadline, idempotent per node), and GetState and GetStatus,
// the controller's view for operators.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	"github.com/flotilla-io/flotilla/internal/watcher/disrupt"
	"github.com/flotilla-io/flotilla/internal/watcher/drain"
	"github.com/flotilla-io/flotilla/internal/watcher/journal"
	"github.com/flotilla-io/flotilla/internal/watcher/metrics"
	"github.com/flotilla-io/flotilla/internal/watcher/provisioning"
	"github.com/flotilla-io/flotilla/internal/watcher/state"
	"github.com/flotilla-io/flotilla/internal/watcher/termination"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// Service implements WatcherServiceServer.
type Service struct {
	watcherv1.UnimplementedWatcherServiceServer
	Client      client.Client
	Reader      client.Reader
	Clientset   kubernetes.Interface
	Solver      provisioning.Solver
	Types       provisioning.TypeSource
	Provisioner *provisioning.Provisioner
	Recorder    provisioning.Recorder
	Journal     *journal.Journal
	Metrics     *metrics.Metrics
	Log         *slog.Logger
	// Elected closes when this replica becomes leader.
	Elected <-chan struct{}
	// Ctx bounds the background work Disrupt starts (the process's context).
	Ctx context.Context
	// MinGrace is the least time a disruption leaves before pods may be
	// deleted instead of evicted: a Disrupt deadline earlier than now plus
	// MinGrace is moved to it. 0 means termination.DefaultMinGrace.
	MinGrace time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu       sync.Mutex
	inFlight map[string]bool // NodeClaims being disrupted (begin, done)
}

func (s *Service) leader() bool {
	if s.Elected == nil {
		return true
	}
	select {
	case <-s.Elected:
		return true
	default:
		return false
	}
}

// DefaultDisruptDeadline is the deadline of a Disrupt request that gives none.
const DefaultDisruptDeadline = 2 * time.Minute

// reasonPattern is what a Disrupt reason may look like: it is written into an
// annotation (after which a ";" would add a flag) and into events.
var reasonPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// Disrupt starts disrupting a node of ours; repeating it changes nothing.
// The request must name, by instance_id or node_name, a NodeClaim of one of
// this cluster's NodePools; the deadline is moved to now plus MinGrace when
// it is earlier. A refused request changes nothing.
func (s *Service) Disrupt(ctx context.Context, req *watcherv1.DisruptRequest) (*watcherv1.DisruptResponse, error) {
	if err := checkDisrupt(req); err != nil {
		return nil, err
	}
	if !s.leader() {
		return nil, fmt.Errorf("%w: this replica is not the leader", apierr.ErrUnavailable)
	}
	snap, err := state.Load(ctx, s.Reader)
	if err != nil {
		return nil, err
	}
	claim, node, err := managedClaim(snap, req.GetInstanceId(), req.GetNodeName())
	if err != nil {
		return nil, err
	}
	name := claim.Status.NodeName
	if node != nil {
		name = node.Name
	}
	resp := &watcherv1.DisruptResponse{Accepted: true, NodeName: name}
	if claim.DeletionTimestamp != nil {
		resp.Message = "already terminating"
		return resp, nil
	}
	if !s.begin(claim.Name) {
		resp.Message = "already under way"
		return resp, nil
	}
	now := s.now()
	requested := now.Add(DefaultDisruptDeadline)
	if req.GetDeadline() != nil {
		requested = req.GetDeadline().AsTime()
	}
	deadline := s.floor(requested, now)
	reason := req.GetReason()
	if reason == "" {
		reason = "Interrupted"
	}
	if node != nil {
		if err := drain.TaintDisrupted(ctx, s.Clientset, node.Name); err != nil && !apierrors.IsNotFound(err) {
			s.done(claim.Name)
			return nil, err
		}
	}
	// Record the request on the NodeClaim before accepting it: the caller
	// deletes its message once we answer, and a watcher restarted before
	// the node is gone resumes from this record (Resume).
	if err := s.record(ctx, claim, reason, deadline, req.GetReplaceFirst()); err != nil {
		// Refused: the node stays, so new pods may land on it again.
		if node != nil {
			if uerr := drain.UntaintDisrupted(context.WithoutCancel(ctx), s.Clientset, node.Name); uerr != nil {
				s.Log.Warn("untaint after a refused disruption", "node", node.Name, "err", uerr)
			}
		}
		s.done(claim.Name)
		return nil, err
	}
	s.Journal.Add("Interrupt", "nodeclaim/"+claim.Name, fmt.Sprintf("%s, deadline %s", reason, deadline.Format(time.RFC3339)))
	s.Recorder.Eventf(claim, nil, corev1.EventTypeWarning, "Disrupting", "Interrupt", "%s: the node must be gone by %s", reason, deadline.Format(time.RFC3339))
	go s.run(claim.Name, name, reason, deadline, req.GetReplaceFirst()) //nolint:gosec // outlives the request on purpose: bounded by s.Ctx and the deadline
	resp.Message = "disruption started"
	if deadline.After(requested) {
		resp.Message = fmt.Sprintf("disruption started; deadline %s moved to %s, the minimum grace of %s for evictions",
			requested.UTC().Format(time.RFC3339), deadline.UTC().Format(time.RFC3339), s.minGrace())
	}
	return resp, nil
}

// checkDisrupt validates the request's fields on their own.
func checkDisrupt(req *watcherv1.DisruptRequest) error {
	if req.GetInstanceId() == "" && req.GetNodeName() == "" {
		return fmt.Errorf("%w: instance_id or node_name is required", apierr.ErrInvalidArgument)
	}
	if d := req.GetDeadline(); d != nil {
		if err := d.CheckValid(); err != nil {
			return fmt.Errorf("%w: deadline: %w", apierr.ErrInvalidArgument, err)
		}
	}
	if r := req.GetReason(); r != "" && !reasonPattern.MatchString(r) {
		return fmt.Errorf("%w: reason %q: want up to 63 letters, digits, '.', '_' or '-'", apierr.ErrInvalidArgument, clip(r))
	}
	return nil
}

// managedClaim finds the NodeClaim the request names and checks that this
// watcher manages it: it carries karpenter.sh/nodepool naming an existing
// NodePool. Errors name the request field.
func managedClaim(snap *state.Snapshot, instanceID, nodeName string) (*karpv1.NodeClaim, *corev1.Node, error) {
	field, value := "instance_id", instanceID
	if nodeName != "" {
		field, value = "node_name", nodeName
	}
	claim, node := find(snap, instanceID, nodeName)
	if claim == nil {
		return nil, nil, fmt.Errorf("%w: %s %q: no NodeClaim of this cluster has that %s", apierr.ErrNotFound, field, clip(value), strings.ReplaceAll(field, "_", " "))
	}
	if instanceID != "" && nodeName != "" && !hasInstance(claim, instanceID) {
		return nil, nil, fmt.Errorf("%w: node_name %q is NodeClaim %s, whose instance is not instance_id %q", apierr.ErrInvalidArgument,
			clip(nodeName), claim.Name, clip(instanceID))
	}
	pool := claim.Labels[karpv1.NodePoolLabelKey]
	if pool == "" {
		return nil, nil, fmt.Errorf("%w: %s %q: NodeClaim %s has no %s label, so no NodePool of this watcher owns it", apierr.ErrFailedPrecondition,
			field, clip(value), claim.Name, karpv1.NodePoolLabelKey)
	}
	if snap.NodePool(pool) == nil {
		return nil, nil, fmt.Errorf("%w: %s %q: NodeClaim %s belongs to NodePool %q, which does not exist", apierr.ErrFailedPrecondition,
			field, clip(value), claim.Name, clip(pool))
	}
	return claim, node, nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) minGrace() time.Duration {
	if s.MinGrace > 0 {
		return s.MinGrace
	}
	return termination.DefaultMinGrace
}

// floor returns the deadline, or now plus the minimum grace when that is
// later, rounded up to the second the annotation records.
func (s *Service) floor(deadline, now time.Time) time.Time {
	least := now.Add(s.minGrace())
	if r := least.Truncate(time.Second); r.Before(least) {
		least = r.Add(time.Second)
	}
	if deadline.Before(least) {
		return least
	}
	return deadline
}

// DisruptionAnnotationKey records on a NodeClaim that Disrupt accepted it,
// with the reason and, after a semicolon, "replace-first" when a
// replacement is launched before the drain; the deadline is in
// termination.DeadlineAnnotationKey.
const DisruptionAnnotationKey = "flotilla.io/disruption"

// EventMalformedAnnotation is the Warning event reason of a NodeClaim whose
// DisruptionAnnotationKey value Resume cannot read.
const EventMalformedAnnotation = "MalformedDisruptionAnnotation"

func (s *Service) record(ctx context.Context, claim *karpv1.NodeClaim, reason string, deadline time.Time, replaceFirst bool) error {
	c := &karpv1.NodeClaim{}
	if err := s.Client.Get(ctx, client.ObjectKey{Name: claim.Name}, c); err != nil {
		return fmt.Errorf("record disruption of %s: %w", claim.Name, err)
	}
	patch := client.MergeFrom(c.DeepCopy())
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[DisruptionAnnotationKey] = disruptionRecord{Reason: reason, ReplaceFirst: replaceFirst}.String()
	c.Annotations[termination.DeadlineAnnotationKey] = deadline.UTC().Format(time.RFC3339)
	if err := s.Client.Patch(ctx, c, patch); err != nil {
		return fmt.Errorf("record disruption of %s: %w", claim.Name, err)
	}
	return nil
}

// Resume continues the disruptions a previous watcher accepted but did not
// finish (it was restarted or lost the lease): every NodeClaim recorded by
// Disrupt that is not yet deleting is replaced (if asked and there is time
// left) and deleted, as Disrupt would have. It runs once, on the leader,
// and returns after starting them. A record Disrupt could not have written
// (foreign or mangled) is reported with a Warning event on the NodeClaim
// and ignored: the NodeClaim is left alone.
func (s *Service) Resume(ctx context.Context) error {
	var claims karpv1.NodeClaimList
	if err := s.Reader.List(ctx, &claims); err != nil {
		return fmt.Errorf("resume disruptions: %w", err)
	}
	for i := range claims.Items {
		c := &claims.Items[i]
		value, ok := c.Annotations[DisruptionAnnotationKey]
		if !ok || c.DeletionTimestamp != nil {
			continue
		}
		rec, err := parseDisruption(value)
		if err != nil {
			s.Log.Warn("ignoring disruption annotation", "nodeclaim", c.Name, "err", err)
			s.Recorder.Eventf(c, nil, corev1.EventTypeWarning, EventMalformedAnnotation, "Resume",
				"annotation %s ignored, the NodeClaim is not disrupted: %v", DisruptionAnnotationKey, err)
			continue
		}
		reason := rec.Reason
		// The recorded deadline may have passed while no watcher led, and
		// an unreadable one counts as past: either way the pods still get
		// the minimum grace of evictions.
		deadline, err := time.Parse(time.RFC3339, c.Annotations[termination.DeadlineAnnotationKey])
		if err != nil {
			deadline = time.Time{}
		}
		deadline = s.floor(deadline, s.now())
		if !s.begin(c.Name) {
			continue
		}
		s.Log.Info("resuming disruption", "nodeclaim", c.Name, "reason", reason, "deadline", deadline)
		s.Journal.Add("Interrupt", "nodeclaim/"+c.Name, fmt.Sprintf("%s, deadline %s (resumed after a restart)", reason, deadline.Format(time.RFC3339)))
		go s.run(c.Name, c.Status.NodeName, reason, deadline, rec.ReplaceFirst) //nolint:gosec // bounded by s.Ctx and the deadline, as Disrupt's
	}
	return nil
}

// begin marks a disruption of the claim under way; false when one already is.
func (s *Service) begin(claim string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight[claim] {
		return false
	}
	if s.inFlight == nil {
		s.inFlight = map[string]bool{}
	}
	s.inFlight[claim] = true
	return true
}

// done ends the claim's disruption.
func (s *Service) done(claim string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.inFlight, claim)
}

// run replaces (when asked) then deletes the claim, with the deadline as
// the forced drain time.
func (s *Service) run(claimName, nodeName, reason string, deadline time.Time, replaceFirst bool) {
	defer s.done(claimName)
	base := s.Ctx
	if base == nil {
		base = context.Background()
	}
	if replaceFirst && nodeName != "" {
		// Leave a third of the time for the drain.
		wait := time.Until(deadline) * 2 / 3
		ctx, cancel := context.WithTimeout(base, wait)
		if err := s.replace(ctx, nodeName, reason); err != nil {
			s.Log.Warn("replacement before disruption failed; draining anyway", "node", nodeName, "err", err)
		}
		cancel()
	}
	ctx, cancel := context.WithTimeout(base, 30*time.Second)
	defer cancel()
	if err := s.deleteWithDeadline(ctx, claimName, deadline); err != nil {
		s.Log.Error("disrupt", "nodeclaim", claimName, "err", err)
		return
	}
	s.Metrics.Disrupted(reason)
}

// replace solves the node's pods without the node and launches what the
// plan needs, waiting until it is Initialized.
func (s *Service) replace(ctx context.Context, nodeName, reason string) error {
	snap, err := state.Load(ctx, s.Reader)
	if err != nil {
		return err
	}
	var pods []*corev1.Pod
	for _, p := range snap.PodsOn(nodeName) {
		if !state.IsDaemonSetPod(p) && p.DeletionTimestamp == nil {
			pods = append(pods, p)
		}
	}
	if len(pods) == 0 {
		return nil
	}
	// The interruption service marks the interrupted offering unavailable
	// at the launcher before it asks for a disruption: plan the replacement
	// on fresh offerings, not on the cached ones.
	if s.Types != nil {
		s.Types.Invalidate()
	}
	req, err := snap.Request(ctx, s.Types, pods, state.Options{ExcludeNodes: map[string]bool{nodeName: true}})
	if err != nil {
		return err
	}
	resp, err := s.Solver.Solve(ctx, req.Solve)
	if err != nil {
		return fmt.Errorf("solve replacement: %w", err)
	}
	var names []string
	for _, planned := range resp.GetPlan().GetNodeClaims() {
		np := snap.NodePool(planned.GetNodePool())
		if np == nil {
			continue
		}
		claim, err := provisioning.NodeClaim(planned, np, snap.NodeClassOf(np))
		if err != nil {
			return err
		}
		claim.Annotations[disrupt.ReplacementAnnotationKey] = reason
		if err := provisioning.Create(ctx, s.Client, claim); err != nil {
			return err
		}
		s.Metrics.Created(np.Name, "replacement")
		names = append(names, claim.Name)
	}
	if len(names) == 0 {
		return nil
	}
	return disrupt.WaitInitialized(ctx, s.Reader, names, time.Second)
}

func (s *Service) deleteWithDeadline(ctx context.Context, name string, deadline time.Time) error {
	claim := &karpv1.NodeClaim{}
	if err := s.Client.Get(ctx, client.ObjectKey{Name: name}, claim); err != nil {
		return client.IgnoreNotFound(err)
	}
	patch := client.MergeFrom(claim.DeepCopy())
	if claim.Annotations == nil {
		claim.Annotations = map[string]string{}
	}
	claim.Annotations[termination.DeadlineAnnotationKey] = deadline.UTC().Format(time.RFC3339)
	if err := s.Client.Patch(ctx, claim, patch); err != nil {
		return client.IgnoreNotFound(err)
	}
	return client.IgnoreNotFound(s.Client.Delete(ctx, claim))
}

// find returns the claim (and node) for a node name or, without one, an
// instance id.
func find(snap *state.Snapshot, instanceID, nodeName string) (*karpv1.NodeClaim, *corev1.Node) {
	if nodeName != "" {
		if n := snap.Node(nodeName); n != nil {
			if c := snap.ClaimFor(n); c != nil {
				return c, n
			}
		}
		return nil, nil
	}
	for _, c := range snap.NodeClaims {
		if hasInstance(c, instanceID) {
			return c, snap.NodeFor(c)
		}
	}
	return nil, nil
}

// hasInstance reports whether the claim's provider id names the instance.
func hasInstance(c *karpv1.NodeClaim, instanceID string) bool {
	return instanceID != "" && (state.InstanceID(c.Status.ProviderID) == instanceID || strings.HasSuffix(c.Status.ProviderID, "/"+instanceID))
}

// clip shortens a caller's string quoted in an error.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}

var errNoReader = errors.New("service has no reader")
