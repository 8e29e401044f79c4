package solver

import (
	"fmt"
	"strings"
	"testing"
)

// TestNodePortsRule states kube-scheduler's NodePorts filter: a pod does not
// fit a node when one of its host ports has the same protocol (empty is
// TCP) and port as one in use there and the host IPs overlap (0.0.0.0 or
// empty overlaps every address).
func TestNodePortsRule(t *testing.T) {
	tests := []struct {
		name     string
		used, p  HostPort
		conflict bool
	}{
		{"same port and protocol", HostPort{Port: 9100, Protocol: "TCP"}, HostPort{Port: 9100, Protocol: "TCP"}, true},
		{"empty protocol is TCP", HostPort{Port: 9100}, HostPort{Port: 9100, Protocol: "TCP"}, true},
		{"different protocol", HostPort{Port: 53, Protocol: "TCP"}, HostPort{Port: 53, Protocol: "UDP"}, false},
		{"different port", HostPort{Port: 9100}, HostPort{Port: 9101}, false},
		{"0.0.0.0 overlaps specific", HostPort{Port: 9100, HostIP: "0.0.0.0"}, HostPort{Port: 9100, HostIP: "10.0.0.1"}, true},
		{"specific overlaps 0.0.0.0", HostPort{Port: 9100, HostIP: "10.0.0.1"}, HostPort{Port: 9100, HostIP: "0.0.0.0"}, true},
		{"empty IP overlaps specific", HostPort{Port: 9100}, HostPort{Port: 9100, HostIP: "10.0.0.1"}, true},
		{"same specific IP", HostPort{Port: 9100, HostIP: "10.0.0.1"}, HostPort{Port: 9100, HostIP: "10.0.0.1"}, true},
		{"two different specific IPs", HostPort{Port: 9100, HostIP: "10.0.0.1"}, HostPort{Port: 9100, HostIP: "10.0.0.2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := portsConflict([]HostPort{tt.used}, []HostPort{tt.p}); got != tt.conflict {
				t.Errorf("portsConflict(%+v, %+v) = %v, want %v", tt.used, tt.p, got, tt.conflict)
			}
		})
	}
}

// exporter is a DaemonSet binding host port 9100 on the nodes of zone z1.
func exporter(proto string) DaemonSet {
	return DaemonSet{Namespace: "monitoring", Name: "node-exporter", Template: Pod{
		Requests:     res(100, 0),
		NodeSelector: map[string]string{LabelZone: "z1"},
		HostPorts:    []HostPort{{Port: 9100, Protocol: proto}},
	}}
}

// noPortConflicts fails when a node of the plan would hold two pods, or a
// pod and a DaemonSet pod that runs there, with clashing host ports.
func noPortConflicts(t *testing.T, p *Problem, pl *Plan) {
	t.Helper()
	pods := map[PodRef]*Pod{}
	for _, pod := range p.Pods {
		pods[pod.Ref()] = pod
	}
	check := func(name string, labels map[string]string, taints []Taint, refs []PodRef) {
		var used []HostPort
		for i := range p.DaemonSets {
			ds := &p.DaemonSets[i].Template
			if ds.NodeSelectorMatches(labels) && ds.ToleratesHardTaints(taints) {
				used = append(used, ds.HostPorts...)
			}
		}
		for _, r := range refs {
			if portsConflict(used, pods[r].HostPorts) {
				t.Errorf("%s: pod %v host ports %+v clash with %+v", name, r, pods[r].HostPorts, used)
			}
			used = append(used, pods[r].HostPorts...)
		}
	}
	for i, nc := range pl.NodeClaims {
		labels := map[string]string{LabelZone: nc.Zone, LabelCapacityType: nc.CapacityType, LabelInstanceType: nc.InstanceType}
		for k, v := range nc.Labels {
			labels[k] = v
		}
		check(fmt.Sprintf("claim %d (%s, %s)", i, nc.InstanceType, nc.Zone), labels, nc.Taints, nc.Pods)
	}
	for _, nc := range p.NodeClaims {
		labels := map[string]string{LabelZone: nc.Zone, LabelCapacityType: nc.CapacityType, LabelInstanceType: nc.InstanceType}
		check(nc.Name, labels, nc.Taints, pl.ExistingBindings[nc.Name])
	}
}

func TestDaemonSetHostPorts(t *testing.T) {
	appPods := func() []*Pod {
		ps := mkPods("app", 2, 100, nil)
		for _, pod := range ps {
			pod.HostPorts = []HostPort{{Port: 9100}}
		}
		return ps
	}
	t.Run("new claims avoid the DaemonSet's port", func(t *testing.T) {
		p := basicProblem(appPods()...)
		p.DaemonSets = []DaemonSet{exporter("TCP")}
		pl := mustSolve(t, p)
		if len(pl.Unschedulable) != 0 || len(pl.NodeClaims) != 2 {
			t.Fatalf("claims %+v unschedulable %+v", pl.NodeClaims, pl.Unschedulable)
		}
		for _, nc := range pl.NodeClaims {
			if nc.Zone == "z1" {
				t.Errorf("claim in z1, where node-exporter holds 9100: %+v", nc)
			}
		}
		noPortConflicts(t, p, pl)
	})
	t.Run("other protocol shares the node", func(t *testing.T) {
		p := basicProblem(appPods()[0])
		p.DaemonSets = []DaemonSet{exporter("UDP")}
		pl := mustSolve(t, p)
		if len(pl.NodeClaims) != 1 || pl.NodeClaims[0].Zone != "z1" {
			t.Fatalf("claims %+v", pl.NodeClaims)
		}
	})
	t.Run("in-flight claim keeps the port for its DaemonSet", func(t *testing.T) {
		ps := append(appPods()[:1], mkPod("plain", 100))
		p := basicProblem(ps...)
		p.DaemonSets = []DaemonSet{exporter("")}
		p.NodeClaims = []NodeClaim{{Name: "c1", NodePool: "default", InstanceType: "large", Zone: "z1",
			CapacityType: CapacityTypeOnDemand, Allocatable: Resources{ResourceCPU: 8000, ResourcePods: 110}}}
		pl := mustSolve(t, p)
		if b := pl.ExistingBindings["c1"]; len(b) != 1 || b[0].Name != "plain" {
			t.Fatalf("c1 got %+v", b)
		}
		if len(pl.NodeClaims) != 1 || pl.NodeClaims[0].Zone == "z1" {
			t.Fatalf("claims %+v", pl.NodeClaims)
		}
		noPortConflicts(t, p, pl)
	})
	t.Run("unschedulable when every node runs the DaemonSet", func(t *testing.T) {
		p := basicProblem(appPods()...)
		ds := exporter("TCP")
		ds.Template.NodeSelector = nil
		p.DaemonSets = []DaemonSet{ds}
		pl := mustSolve(t, p)
		if len(pl.NodeClaims) != 0 || len(pl.Unschedulable) != 2 {
			t.Fatalf("claims %+v unschedulable %+v", pl.NodeClaims, pl.Unschedulable)
		}
		for _, u := range pl.Unschedulable {
			if !strings.Contains(u.Reason, "host port TCP/9100") || !strings.Contains(u.Reason, "monitoring/node-exporter") {
				t.Errorf("reason %q", u.Reason)
			}
			if len(u.NodePools) != 1 || !strings.Contains(u.NodePools[0].Reason, "DaemonSet monitoring/node-exporter") {
				t.Errorf("NodePool reasons %+v", u.NodePools)
			}
		}
	})
}
