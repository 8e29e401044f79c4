package demo

import (
	"bytes"
	"strings"
	"testing"
	"time"

	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

func testState() *watcherv1.GetStateResponse {
	return &watcherv1.GetStateResponse{
		PendingPods: []*watcherv1.PendingPod{{Pod: "demo/web-1"}},
		NodeClaims: []*watcherv1.NodeClaimState{
			{Name: "a", InstanceType: "c7g.2xlarge", Zone: "us-east-1c", CapacityType: "spot", PricePerHour: 0.08},
			{Name: "b", InstanceType: "c7g.2xlarge", Zone: "us-east-1c", CapacityType: "spot", PricePerHour: 0.08},
			{Name: "c"},
		},
		CostPerHour: 0.16,
		LastSolve:   &watcherv1.SolveSummary{Pods: 43, NodeClaims: 3, CostPerHour: 0.25, LowerBoundPerHour: 0.2},
	}
}

func TestGroups(t *testing.T) {
	g := groups(testState())
	if len(g) != 2 || g[0].instanceType != "(launching)" || g[1].count != 2 || g[1].pricePerHour != 0.16 {
		t.Fatalf("groups = %+v", g)
	}
}

func TestRenderOneLinePerChange(t *testing.T) {
	var out bytes.Buffer
	v := newView(&out, nil, time.Second)
	st := testState()
	v.render(st)
	v.render(st)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("an unchanged state printed %d lines:\n%s", len(lines), out.String())
	}
	for _, want := range []string{"pending 1", "3 NodeClaims $0.160/h", "bound $0.200/h", "2×c7g.2xlarge us-east-1c spot"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
}

func TestTable(t *testing.T) {
	tab := table(testState(), 3*time.Second)
	for _, want := range []string{"pending pods 1", "lower bound $0.200/h (1.25× the bound)", "c7g.2xlarge", "INSTANCE TYPE"} {
		if !strings.Contains(tab, want) {
			t.Errorf("table lacks %q:\n%s", want, tab)
		}
	}
}
