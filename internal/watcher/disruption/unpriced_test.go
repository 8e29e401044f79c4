package disruption

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func unpriced(reason, msg string) candOpt {
	return func(c *Candidate) { c.PricePerHour, c.UnpricedReason, c.Unpriced = 0, reason, msg }
}

// requestNodes lists the solver request's nodes as name=pool.
func requestNodes(s *fakeSolver) []string {
	var out []string
	for _, n := range s.req.GetNodes() {
		out = append(out, n.GetName()+"="+n.GetNodePool())
	}
	return out
}

// An unpriced node is never sent as a consolidation candidate (priced 0 it
// would look free): it is blocked with its reason, counted, and announced
// once however many passes it lasts.
func TestRunUnpricedCandidateBlocked(t *testing.T) {
	pool, class := newPool("default"), newClass()
	cl := &fakeCluster{cands: []Candidate{
		newCandidate("n1", pool, class, busy("n1"), unpriced(BlockedUnpriced, `no offering prices instance type "m5.large"`)),
		newCandidate("n2", pool, class, busy("n2"), unpriced(BlockedTypesUnlisted, "the instance types of EC2NodeClass default could not be listed")),
		newCandidate("n3", pool, class, busy("n3")),
	}}
	s := &fakeSolver{}
	act := &fakeActuator{}
	now := t0
	c := &Controller{Cluster: cl, Actuator: act, Solver: s, Now: func() time.Time { return now }, Log: quiet, Metrics: NewMetrics()}
	for pass := range 3 {
		rep, err := c.Run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := requestNodes(s); !slices.Equal(got, []string{"n1=", "n2=", "n3=default"}) {
			t.Fatalf("pass %d: request nodes %v: want the unpriced nodes as destinations only", pass, got)
		}
		var codes []string
		for _, b := range rep.Blocked {
			codes = append(codes, b.NodeClaim+":"+b.Reason)
		}
		if !slices.Equal(codes, []string{"n1:" + BlockedUnpriced, "n2:" + BlockedTypesUnlisted}) {
			t.Fatalf("pass %d: blocked %v", pass, codes)
		}
		now = now.Add(time.Minute)
	}
	for _, name := range []string{"n1", "n2"} {
		if ev := act.eventsFor("nodeclaim/"+name, EventBlocked); len(ev) != 1 || !strings.Contains(ev[0].message, "EC2NodeClass default") && !strings.Contains(ev[0].message, "no offering prices") {
			t.Errorf("%s: events %+v: want one, however many passes", name, ev)
		}
	}
	if got := testutil.ToFloat64(c.Metrics.BlockedNow.WithLabelValues(BlockedUnpriced)); got != 1 {
		t.Errorf("blocked_candidates{Unpriced} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(c.Metrics.Blocked.WithLabelValues(BlockedTypesUnlisted)); got != 3 {
		t.Errorf("blocked_total{InstanceTypesUnlisted} = %v, want 3 (one per pass)", got)
	}
	// A block that lasts is announced again after RenoticeAfter.
	now = now.Add(RenoticeAfter)
	if _, err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ev := act.eventsFor("nodeclaim/n1", EventBlocked); len(ev) != 2 {
		t.Errorf("events after RenoticeAfter %+v: want a second", ev)
	}
	// Once priced, the node is a candidate again and the gauge drops.
	cl.cands[0].Unpriced, cl.cands[0].UnpricedReason, cl.cands[0].PricePerHour = "", "", 0.096
	if _, err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := requestNodes(s); !slices.Equal(got, []string{"n1=default", "n2=", "n3=default"}) {
		t.Errorf("request nodes %v after pricing n1", got)
	}
	if got := testutil.ToFloat64(c.Metrics.BlockedNow.WithLabelValues(BlockedUnpriced)); got != 0 {
		t.Errorf("blocked_candidates{Unpriced} = %v, want 0", got)
	}
}

// A DaemonSet that does not convert blocks consolidation of every node
// (its overhead unknown), naming it; emptiness still runs.
func TestRunUnconvertedDaemonSetBlocksConsolidation(t *testing.T) {
	pool, other, class := newPool("default"), newPool("other"), newClass()
	cl := &fakeCluster{
		cands: []Candidate{
			newCandidate("n1", pool, class, busy("n1")),
			newCandidate("n2", other, class, busy("n2")),
			newCandidate("n3", pool, class, onlyDaemon("n3")),
		},
		unconverted: []UnconvertedDaemonSet{{Name: "kube-system/agent", Err: errors.New("volume data: PersistentVolumeClaim kube-system/data not found")}},
	}
	s := &fakeSolver{}
	act, rep, err := run(t, cl, s)
	if err != nil {
		t.Fatal(err)
	}
	if s.calls != 0 {
		t.Errorf("solver asked %d times with no candidate left", s.calls)
	}
	if !slices.Equal(act.calls, []string{"delete:n3:Empty"}) {
		t.Errorf("calls %v: want only the empty node deleted", act.calls)
	}
	var blocked []string
	for _, b := range rep.Blocked {
		blocked = append(blocked, b.NodeClaim+":"+b.Reason)
		if !strings.Contains(b.Message, "kube-system/agent") || !strings.Contains(b.Message, "not found") {
			t.Errorf("message %q does not name the DaemonSet and its error", b.Message)
		}
	}
	if !slices.Equal(blocked, []string{"n1:" + BlockedDaemonSetUnconverted, "n2:" + BlockedDaemonSetUnconverted}) {
		t.Errorf("blocked %v", blocked)
	}
	if ev := act.eventsFor("nodeclaim/n2", EventBlocked); len(ev) != 1 || !strings.Contains(ev[0].message, "kube-system/agent") {
		t.Errorf("events %+v", ev)
	}
}
