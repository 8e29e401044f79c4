package disruption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

var quiet = slog.New(slog.DiscardHandler)

type fakeCluster struct {
	cands       []Candidate
	pdbs        []*policyv1.PodDisruptionBudget
	err         error
	unconverted []UnconvertedDaemonSet
}

func (f *fakeCluster) Candidates(context.Context) ([]Candidate, error) { return f.cands, f.err }
func (f *fakeCluster) PDBs(context.Context) ([]*policyv1.PodDisruptionBudget, error) {
	return f.pdbs, nil
}
func (f *fakeCluster) InstanceTypes(context.Context) ([]*typesv1.InstanceType, error) {
	return []*typesv1.InstanceType{{Name: "m5.large"}, {Name: "m5.xlarge"}}, nil
}
func (f *fakeCluster) DaemonSets(context.Context) ([]*typesv1.DaemonSet, []UnconvertedDaemonSet, error) {
	return nil, f.unconverted, nil
}

type event struct {
	object, eventType, reason, message string
}

type fakeActuator struct {
	calls      []string // "replace:<types>:<reason>" and "delete:<name>:<reason>" in order
	replaceErr error
	deleteErr  map[string]error
	taintErr   map[string]error
	order      []string // calls with "taint:<node>" and "untaint:<node>" among them
	events     []event
}

func (f *fakeActuator) Replace(_ context.Context, claims []*typesv1.NodeClaim, reason string) ([]string, error) {
	var types []string
	for _, c := range claims {
		types = append(types, c.GetInstanceType())
	}
	f.calls = append(f.calls, "replace:"+strings.Join(types, ",")+":"+reason)
	f.order = append(f.order, f.calls[len(f.calls)-1])
	if f.replaceErr != nil {
		return nil, f.replaceErr
	}
	return []string{"replacement-1"}, nil
}

func (f *fakeActuator) Taint(_ context.Context, node string) error {
	f.order = append(f.order, "taint:"+node)
	return f.taintErr[node]
}

func (f *fakeActuator) Untaint(_ context.Context, node string) error {
	f.order = append(f.order, "untaint:"+node)
	return nil
}

func (f *fakeActuator) Delete(_ context.Context, name, reason string) error {
	f.calls = append(f.calls, "delete:"+name+":"+reason)
	f.order = append(f.order, f.calls[len(f.calls)-1])
	return f.deleteErr[name]
}

func (f *fakeActuator) Event(obj runtime.Object, eventType, reason, message string) {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(err)
	}
	name := "other/" + m.GetName()
	if _, ok := obj.(*karpv1.NodeClaim); ok {
		name = "nodeclaim/" + m.GetName()
	}
	f.events = append(f.events, event{name, eventType, reason, message})
}

func (f *fakeActuator) eventsFor(object, reason string) []event {
	var out []event
	for _, e := range f.events {
		if e.object == object && e.reason == reason {
			out = append(out, e)
		}
	}
	return out
}

type fakeSolver struct {
	resp  *solverv1.ConsolidateResponse
	err   error
	calls int
	req   *solverv1.ConsolidateRequest
}

func (f *fakeSolver) Consolidate(_ context.Context, req *solverv1.ConsolidateRequest) (*solverv1.ConsolidateResponse, error) {
	f.calls++
	f.req = req
	if f.resp == nil {
		return &solverv1.ConsolidateResponse{}, f.err
	}
	return f.resp, f.err
}

func run(t *testing.T, cl *fakeCluster, s *fakeSolver) (*fakeActuator, Report, error) {
	t.Helper()
	act := &fakeActuator{}
	c := &Controller{Cluster: cl, Actuator: act, Now: func() time.Time { return t0 }, Log: quiet, Metrics: NewMetrics()}
	if s != nil {
		c.Solver = s
	}
	rep, err := c.Run(context.Background())
	return act, rep, err
}

func busy(name string) candOpt { return withPods(newPod(name + "-web")) }
func onlyDaemon(name string) candOpt {
	return withPods(newPod(name+"-ds", daemonPod))
}

func TestRunEmptyNodeDeleted(t *testing.T) {
	pool, class := newPool("default"), newClass()
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("n1", pool, class, onlyDaemon("n1")),
		newCandidate("n2", pool, class, busy("n2")),
	}}
	s := &fakeSolver{}
	act, rep, err := run(t, cl, s)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(act.calls, []string{"delete:n1:Empty"}) {
		t.Fatalf("calls = %v", act.calls)
	}
	if len(rep.Decisions) != 1 || rep.Decisions[0].Reason != ReasonEmpty || rep.Decisions[0].Node != "n1" {
		t.Fatalf("decisions = %+v", rep.Decisions)
	}
	if ev := act.eventsFor("nodeclaim/n1", EventDisrupting); len(ev) != 1 || !strings.Contains(ev[0].message, "empty") {
		t.Fatalf("events = %+v", act.events)
	}
	// The empty node left is not sent to the solver; the busy one is a candidate.
	if s.calls != 1 || len(s.req.GetNodes()) != 1 || s.req.GetNodes()[0].GetName() != "n2" || s.req.GetNodes()[0].GetNodePool() != "default" {
		t.Fatalf("solver request = %v", s.req)
	}
	if pods := s.req.GetNodes()[0].GetPods(); len(pods) != 1 || pods[0].GetContainers()[0].GetRequests()["cpu"] != "100m" {
		t.Fatalf("pods = %v", pods)
	}
}

func TestRunEmptyWaitsForConsolidateAfter(t *testing.T) {
	pool := newPool("default", func(np *karpv1.NodePool) { np.Spec.Disruption.ConsolidateAfter = dur(time.Hour) })
	cl := &fakeCluster{cands: []Candidate{newCandidate("n1", pool, newClass(), onlyDaemon("n1"))}}
	act, rep, err := run(t, cl, &fakeSolver{})
	if err != nil || len(act.calls) != 0 || len(rep.Decisions) != 0 {
		t.Fatalf("calls %v, report %+v, err %v", act.calls, rep, err)
	}
}

func replaceAction(nodes ...string) *solverv1.ConsolidationAction {
	return &solverv1.ConsolidationAction{
		Kind: "Replace", Nodes: nodes, SavingsPerHour: 0.05, Reason: "pods fit on one cheaper node",
		Replacement: &typesv1.PlannedNodeClaim{NodePool: "default", InstanceType: "m5.xlarge", Zone: "us-east-1a",
			CapacityType: "on-demand", PricePerHour: 0.192},
	}
}

func TestRunConsolidationReplaceBeforeDelete(t *testing.T) {
	pool, class := newPool("default"), newClass()
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("n1", pool, class, busy("n1")),
		newCandidate("n2", pool, class, busy("n2")),
		newCandidate("n3", pool, class, busy("n3"), withPods(newPod("pinned", doNotDisruptPod))),
	}}
	s := &fakeSolver{resp: &solverv1.ConsolidateResponse{Actions: []*solverv1.ConsolidationAction{replaceAction("n1", "n2")}}}
	act, rep, err := run(t, cl, s)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"replace:m5.xlarge:Underutilized", "delete:n1:Underutilized", "delete:n2:Underutilized"}
	if !slices.Equal(act.calls, want) {
		t.Fatalf("calls = %v, want %v", act.calls, want)
	}
	if len(rep.Decisions) != 2 || rep.Decisions[0].Action != ActionReplace || !slices.Equal(rep.Decisions[0].Replacements, []string{"replacement-1"}) {
		t.Fatalf("decisions = %+v", rep.Decisions)
	}
	// The blocked node is sent as a destination without its NodePool.
	var pools []string
	for _, n := range s.req.GetNodes() {
		pools = append(pools, n.GetName()+"="+n.GetNodePool())
	}
	if !slices.Equal(pools, []string{"n1=default", "n2=default", "n3="}) {
		t.Fatalf("request nodes = %v", pools)
	}
	if len(s.req.GetNodePools()) != 1 || len(s.req.GetInstanceTypes()) != 2 {
		t.Fatalf("request = %v", s.req)
	}
}

func TestRunReplaceFailureDeletesNothing(t *testing.T) {
	pool, class := newPool("default"), newClass()
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("n1", pool, class, busy("n1")),
		newCandidate("n2", pool, class, busy("n2")),
	}}
	s := &fakeSolver{resp: &solverv1.ConsolidateResponse{Actions: []*solverv1.ConsolidationAction{replaceAction("n1", "n2")}}}
	act := &fakeActuator{replaceErr: context.DeadlineExceeded}
	c := &Controller{Cluster: cl, Actuator: act, Solver: s, Now: func() time.Time { return t0 }, Log: quiet}
	rep, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(act.calls, []string{"replace:m5.xlarge:Underutilized"}) {
		t.Fatalf("calls = %v", act.calls)
	}
	if len(rep.Decisions) != 0 || len(rep.Blocked) != 2 || rep.Blocked[0].Reason != BlockedReplaceFailed {
		t.Fatalf("report = %+v", rep)
	}
	if ev := act.eventsFor("nodeclaim/n2", EventReplaceFailed); len(ev) != 1 || ev[0].eventType != "Warning" {
		t.Fatalf("events = %+v", act.events)
	}
}

func TestRunSolverDeleteAndBlocked(t *testing.T) {
	pool, class := newPool("default"), newClass()
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("n1", pool, class, busy("n1")),
		newCandidate("n2", pool, class, busy("n2")),
	}}
	s := &fakeSolver{resp: &solverv1.ConsolidateResponse{
		Actions: []*solverv1.ConsolidationAction{{Kind: "Delete", Nodes: []string{"n1"}, SavingsPerHour: 0.096, Reason: "pods fit on n2"}},
		Blocked: []*solverv1.BlockedCandidate{{Node: "n2", Reason: "pod default/n2-web fits nowhere else"}},
	}}
	act, rep, err := run(t, cl, s)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(act.calls, []string{"delete:n1:Underutilized"}) {
		t.Fatalf("calls = %v", act.calls)
	}
	if len(rep.Blocked) != 1 || rep.Blocked[0].Reason != BlockedSolver || rep.Blocked[0].Node != "n2" {
		t.Fatalf("blocked = %+v", rep.Blocked)
	}
	if len(act.eventsFor("nodeclaim/n2", EventUnconsolidatable)) != 1 {
		t.Fatalf("events = %+v", act.events)
	}
}

func TestRunBudgetLimitsDisruptions(t *testing.T) {
	for _, tc := range []struct {
		name        string
		budget      string
		deleting    int
		wantDeletes int
	}{
		{"count", "2", 0, 2},
		{"percent rounds up", "30%", 0, 2}, // 30% of 6 nodes = 1.8 -> 2
		{"deleting nodes count", "2", 1, 1},
		{"zero", "0", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool("default", func(np *karpv1.NodePool) { np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: tc.budget}} })
			var cands []Candidate
			for _, n := range []string{"n1", "n2", "n3", "n4", "n5"} {
				cands = append(cands, newCandidate(n, pool, newClass(), onlyDaemon(n)))
			}
			gone := newCandidate("n0", pool, newClass(), busy("n0"))
			if tc.deleting > 0 {
				ts := metav1.NewTime(t0)
				gone.NodeClaim.DeletionTimestamp = &ts
			}
			cands = append(cands, gone)
			act, rep, err := run(t, &fakeCluster{cands: cands}, &fakeSolver{})
			if err != nil {
				t.Fatal(err)
			}
			if len(act.calls) != tc.wantDeletes || len(rep.Decisions) != tc.wantDeletes {
				t.Fatalf("calls = %v", act.calls)
			}
			var budgetBlocked int
			for _, b := range rep.Blocked {
				if b.Reason == BlockedBudget && b.NodeClaim != "n0" {
					budgetBlocked++
					if !strings.Contains(b.Message, "disruption budget allows") {
						t.Fatalf("message = %q", b.Message)
					}
				}
			}
			if budgetBlocked != 5-tc.wantDeletes {
				t.Fatalf("budget-blocked = %d, report %+v", budgetBlocked, rep.Blocked)
			}
		})
	}
}

func TestRunConsolidationActionOverBudget(t *testing.T) {
	pool := newPool("default", func(np *karpv1.NodePool) { np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "1"}} })
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("n1", pool, newClass(), busy("n1")),
		newCandidate("n2", pool, newClass(), busy("n2")),
	}}
	s := &fakeSolver{resp: &solverv1.ConsolidateResponse{Actions: []*solverv1.ConsolidationAction{replaceAction("n1", "n2")}}}
	act, rep, err := run(t, cl, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(act.calls) != 0 || len(rep.Blocked) != 2 || rep.Blocked[0].Reason != BlockedBudget {
		t.Fatalf("calls %v, blocked %+v", act.calls, rep.Blocked)
	}
}

func TestRunDoNotDisruptBlocksWithEvent(t *testing.T) {
	pool := newPool("default")
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("n1", pool, newClass(), onlyDaemon("n1"), withPods(newPod("pinned", doNotDisruptPod, daemonPod))),
	}}
	act, rep, err := run(t, cl, &fakeSolver{})
	if err != nil {
		t.Fatal(err)
	}
	if len(act.calls) != 0 {
		t.Fatalf("calls = %v", act.calls)
	}
	if len(rep.Blocked) != 1 || rep.Blocked[0].Reason != BlockedDoNotDisrupt {
		t.Fatalf("blocked = %+v", rep.Blocked)
	}
	for _, obj := range []string{"nodeclaim/n1", "other/n1"} {
		ev := act.eventsFor(obj, EventBlocked)
		if len(ev) != 1 || !strings.Contains(ev[0].message, "pod default/pinned has the karpenter.sh/do-not-disrupt annotation") {
			t.Fatalf("%s events = %+v", obj, act.events)
		}
	}
}

func TestRunExpirationIsForceful(t *testing.T) {
	pool := newPool("default", func(np *karpv1.NodePool) {
		np.Spec.Template.Spec.ExpireAfter = dur(30 * time.Minute)
		np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "0"}}
	})
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("old", pool, newClass(), withPods(newPod("pinned", doNotDisruptPod))),
		newCandidate("young", pool, newClass(), busy("young"), func(c *Candidate) {
			c.NodeClaim.CreationTimestamp = metav1.NewTime(t0.Add(-10 * time.Minute))
		}),
		newCandidate("never", pool, newClass(), busy("never"), func(c *Candidate) {
			c.NodeClaim.Spec.ExpireAfter = karpv1.NillableDuration{Raw: karpv1.Never}
		}),
	}}
	act, rep, err := run(t, cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(act.calls, []string{"delete:old:Expired"}) {
		t.Fatalf("calls = %v", act.calls)
	}
	if d := rep.Decisions[0]; d.Reason != ReasonExpired || !strings.Contains(d.Message, "expireAfter is 30m0s") {
		t.Fatalf("decision = %+v", d)
	}
}

func TestRunDrift(t *testing.T) {
	old := newPool("default")
	pool := newPool("default", func(np *karpv1.NodePool) { np.Spec.Template.ObjectMeta.Labels["team"] = "b" })
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("busy", old, newClass(), busy("busy"), func(c *Candidate) { c.NodePool = pool }),
		newCandidate("empty", old, newClass(), onlyDaemon("empty"), func(c *Candidate) { c.NodePool = pool }),
		newCandidate("current", pool, newClass(), busy("current")),
	}}
	act, rep, err := run(t, cl, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"replace:m5.large:Drifted", "delete:busy:Drifted", "delete:empty:Drifted"}
	if !slices.Equal(act.calls, want) {
		t.Fatalf("calls = %v, want %v", act.calls, want)
	}
	if rep.Decisions[0].Action != ActionReplace || rep.Decisions[1].Action != ActionDelete {
		t.Fatalf("decisions = %+v", rep.Decisions)
	}
}

func TestDriftReplacementFollowsRequirements(t *testing.T) {
	pool := newPool("default", func(np *karpv1.NodePool) {
		np.Spec.Template.Spec.Requirements[0].Values = []string{"spot"}
	})
	c := newCandidate("n1", pool, newClass())
	claim, err := driftReplacement(&c)
	if err != nil {
		t.Fatal(err)
	}
	if claim.GetCapacityType() != "" || claim.GetInstanceType() != "m5.large" || claim.GetLabels()["team"] != "a" ||
		claim.GetLabels()[karpv1.NodePoolLabelKey] != "default" {
		t.Fatalf("claim = %v", claim)
	}
}

func TestRunErrors(t *testing.T) {
	if _, _, err := run(t, &fakeCluster{err: errors.New("boom")}, nil); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("err = %v", err)
	}
	pool := newPool("default")
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("e", pool, newClass(), onlyDaemon("e")),
		newCandidate("b", pool, newClass(), busy("b")),
	}}
	act, rep, err := run(t, cl, &fakeSolver{err: errors.New("solver down")})
	if err == nil || len(rep.Decisions) != 1 || !slices.Equal(act.calls, []string{"delete:e:Empty"}) {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	if _, err := (&Controller{}).Run(context.Background()); err == nil {
		t.Fatal("want an error without a Cluster")
	}
}

func TestRunWhenEmptySkipsSolver(t *testing.T) {
	pool := newPool("default", func(np *karpv1.NodePool) {
		np.Spec.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyWhenEmpty
	})
	s := &fakeSolver{}
	cl := &fakeCluster{cands: []Candidate{newCandidate("b", pool, newClass(), busy("b"))}}
	if _, _, err := run(t, cl, s); err != nil || s.calls != 0 {
		t.Fatalf("err %v, solver calls %d", err, s.calls)
	}
}

func TestRunDeleteFailureReported(t *testing.T) {
	pool := newPool("default")
	cl := &fakeCluster{cands: []Candidate{newCandidate("e", pool, newClass(), onlyDaemon("e"))}}
	act := &fakeActuator{deleteErr: map[string]error{"e": errors.New("conflict")}}
	c := &Controller{Cluster: cl, Actuator: act, Now: func() time.Time { return t0 }, Log: quiet}
	rep, err := c.Run(context.Background())
	if err != nil || len(rep.Decisions) != 0 || len(rep.Blocked) != 1 || rep.Blocked[0].Reason != BlockedDeleteFailed {
		t.Fatalf("err %v, report %+v", err, rep)
	}
}

func TestRunInvalidBudgetFailsClosed(t *testing.T) {
	pool := newPool("default", func(np *karpv1.NodePool) { np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "lots"}} })
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("e1", pool, newClass(), onlyDaemon("e1")),
		newCandidate("e2", pool, newClass(), onlyDaemon("e2")),
	}}
	act, rep, err := run(t, cl, &fakeSolver{})
	if err != nil || len(act.calls) != 0 || len(rep.Blocked) != 2 {
		t.Fatalf("err %v, calls %v, report %+v", err, act.calls, rep)
	}
	if len(act.eventsFor("other/default", EventBudgetMisconfigured)) != 1 {
		t.Fatalf("events = %+v", act.events)
	}
}

func TestRunUnderutilizedBudgetZeroReported(t *testing.T) {
	pool := newPool("default", func(np *karpv1.NodePool) {
		np.Spec.Disruption.Budgets = []karpv1.Budget{{Nodes: "0", Reasons: []karpv1.DisruptionReason{karpv1.DisruptionReasonUnderutilized}}}
	})
	s := &fakeSolver{}
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("b", pool, newClass(), busy("b")),
		newCandidate("e", pool, newClass(), onlyDaemon("e")),
	}}
	act, rep, err := run(t, cl, s)
	if err != nil || s.calls != 0 {
		t.Fatalf("err %v, solver calls %d", err, s.calls)
	}
	// Emptiness has its own reason and is not held by the Underutilized budget.
	if !slices.Equal(act.calls, []string{"delete:e:Empty"}) {
		t.Fatalf("calls = %v", act.calls)
	}
	if len(rep.Blocked) != 1 || rep.Blocked[0].NodeClaim != "b" || rep.Blocked[0].Reason != BlockedBudget ||
		!strings.Contains(rep.Blocked[0].Message, "allows 0 more Underutilized") {
		t.Fatalf("blocked = %+v", rep.Blocked)
	}
}

// slowActuator's replacements never become Initialized: Replace waits
// until its context ends, as the real one does, and says so.
type slowActuator struct{ fakeActuator }

func (s *slowActuator) Replace(ctx context.Context, claims []*typesv1.NodeClaim, reason string) ([]string, error) {
	if _, err := s.fakeActuator.Replace(ctx, claims, reason); err != nil {
		return nil, err
	}
	<-ctx.Done()
	return nil, fmt.Errorf("replacements [replacement-1] not initialized: %w", ctx.Err())
}

// A replacement that never becomes Initialized (a node that registers but
// is never Ready) is rolled back within ReplaceTimeout: the pass returns,
// nothing is deleted, the candidates' taints come off, and the block names
// the timeout, so later passes can disrupt again.
func TestReplaceTimesOutAndRollsBack(t *testing.T) {
	pool, class := newPool("default"), newClass()
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("n1", pool, class, busy("n1")),
		newCandidate("n2", pool, class, busy("n2")),
	}}
	s := &fakeSolver{resp: &solverv1.ConsolidateResponse{Actions: []*solverv1.ConsolidationAction{replaceAction("n1", "n2")}}}
	act := &slowActuator{}
	c := &Controller{Cluster: cl, Actuator: act, Solver: s, Now: func() time.Time { return t0 }, Log: quiet, ReplaceTimeout: 50 * time.Millisecond}
	done := make(chan struct{})
	var rep Report
	var err error
	go func() { rep, err = c.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the pass is still waiting for a replacement that never initializes")
	}
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(act.calls, []string{"replace:m5.xlarge:Underutilized"}) {
		t.Fatalf("calls = %v: nothing may be deleted", act.calls)
	}
	if len(rep.Blocked) != 2 || rep.Blocked[0].Reason != BlockedReplaceFailed || !strings.Contains(rep.Blocked[0].Message, "not Initialized within 50ms") {
		t.Fatalf("blocked = %+v", rep.Blocked)
	}
	untainted := 0
	for _, o := range act.order {
		if strings.HasPrefix(o, "untaint:") {
			untainted++
		}
	}
	if untainted != 2 {
		t.Errorf("order = %v: both candidates must be untainted", act.order)
	}
}

// decisions_total is exposed before the first decision (the dashboards
// query it; a restarted watcher has made none yet).
func TestDecisionsExposedAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewMetrics().Decisions)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 1 || len(families[0].GetMetric()) != 8 {
		t.Fatalf("decisions_total before any decision: %v", families)
	}
}
