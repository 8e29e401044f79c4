package disruption

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

// Candidates are tainted before their replacement is created, so no new
// pod lands on a node about to go; the taint stays through the delete.
func TestRunTaintsBeforeReplacing(t *testing.T) {
	pool, class := newPool("default"), newClass()
	cl := &fakeCluster{cands: []Candidate{newCandidate("n1", pool, class, busy("n1")), newCandidate("n2", pool, class, busy("n2"))}}
	s := &fakeSolver{resp: &solverv1.ConsolidateResponse{Actions: []*solverv1.ConsolidationAction{replaceAction("n1", "n2")}}}
	act, _, err := run(t, cl, s)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"taint:n1", "taint:n2", "replace:m5.xlarge:Underutilized", "delete:n1:Underutilized", "delete:n2:Underutilized"}
	if !slices.Equal(act.order, want) {
		t.Errorf("order %v, want %v", act.order, want)
	}
}

// A failed replacement takes the taints off again; so does a failed delete.
func TestRunUntaintsOnFailure(t *testing.T) {
	pool, class := newPool("default"), newClass()
	cl := &fakeCluster{cands: []Candidate{newCandidate("n1", pool, class, busy("n1")), newCandidate("n2", pool, class, busy("n2"))}}
	s := &fakeSolver{resp: &solverv1.ConsolidateResponse{Actions: []*solverv1.ConsolidationAction{replaceAction("n1", "n2")}}}
	act := &fakeActuator{replaceErr: errors.New("no capacity")}
	c := &Controller{Cluster: cl, Actuator: act, Solver: s, Now: func() time.Time { return t0 }, Log: quiet}
	if _, err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"taint:n1", "taint:n2", "replace:m5.xlarge:Underutilized", "untaint:n1", "untaint:n2"}
	if !slices.Equal(act.order, want) {
		t.Errorf("replace failure: order %v, want %v", act.order, want)
	}

	cl = &fakeCluster{cands: []Candidate{newCandidate("e", pool, class, onlyDaemon("e"))}}
	act = &fakeActuator{deleteErr: map[string]error{"e": errors.New("conflict")}}
	c = &Controller{Cluster: cl, Actuator: act, Now: func() time.Time { return t0 }, Log: quiet}
	if _, err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"taint:e", "delete:e:Empty", "untaint:e"}; !slices.Equal(act.order, want) {
		t.Errorf("delete failure: order %v, want %v", act.order, want)
	}
}

// A node that cannot be tainted is kept: no replacement, no delete, the
// taints already put on the action's other nodes taken off, a Warning.
func TestRunTaintFailureKeepsTheNodes(t *testing.T) {
	pool, class := newPool("default"), newClass()
	cl := &fakeCluster{cands: []Candidate{newCandidate("n1", pool, class, busy("n1")), newCandidate("n2", pool, class, busy("n2"))}}
	s := &fakeSolver{resp: &solverv1.ConsolidateResponse{Actions: []*solverv1.ConsolidationAction{replaceAction("n1", "n2")}}}
	act := &fakeActuator{taintErr: map[string]error{"n2": errors.New("conflict")}}
	c := &Controller{Cluster: cl, Actuator: act, Solver: s, Now: func() time.Time { return t0 }, Log: quiet}
	rep, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"taint:n1", "taint:n2", "untaint:n1"}; !slices.Equal(act.order, want) {
		t.Errorf("order %v, want %v", act.order, want)
	}
	if len(rep.Decisions) != 0 || len(rep.Blocked) != 2 || rep.Blocked[0].Reason != BlockedTaintFailed {
		t.Errorf("report %+v", rep)
	}
	if ev := act.eventsFor("nodeclaim/n1", EventTaintFailed); len(ev) != 1 || ev[0].eventType != "Warning" {
		t.Errorf("events %+v", act.events)
	}
}
