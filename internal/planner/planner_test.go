package planner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/server"
	"github.com/flotilla-io/flotilla/internal/solverapi"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

func offline() *CatalogTypes { return &CatalogTypes{Specs: testSpecs} }

func opts(types *CatalogTypes) Options {
	return Options{Types: types, Solver: InProcess{}, InstanceTypesSource: "test catalog", SolverName: "in-process", Now: func() time.Time { return t0 }}
}

func TestPlanProvisionsAndConsolidatesReadOnly(t *testing.T) {
	v := &verbs{}
	kube := fakeCluster(t, v, nil, scenario()...)
	rep, err := Plan(context.Background(), kube, opts(offline()))
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Provisioning
	if p.PendingPods != 4 {
		t.Errorf("pending pods = %d, want 4", p.PendingPods)
	}
	var planned []string
	for _, nc := range p.NodeClaims {
		planned = append(planned, nc.Pods...)
		if nc.NodePool == "" || nc.InstanceType == "" || nc.Zone != "us-east-1a" || nc.CapacityType != "on-demand" || nc.PricePerHour <= 0 || len(nc.InstanceTypeOptions) == 0 {
			t.Errorf("incomplete NodeClaim %+v", nc)
		}
	}
	slices.Sort(planned)
	if want := []string{"default/web-1", "default/web-2", "default/web-3"}; !slices.Equal(planned, want) {
		t.Errorf("pods on new NodeClaims = %v, want %v", planned, want)
	}
	if len(p.Unschedulable) != 1 || p.Unschedulable[0].Pod != "default/huge" || p.Unschedulable[0].Reason == "" || len(p.Unschedulable[0].NodePools) == 0 {
		t.Errorf("unschedulable = %+v, want default/huge with per-NodePool reasons", p.Unschedulable)
	}
	if p.CostPerHour <= 0 || p.LowerBoundPerHour <= 0 || p.LowerBoundPerHour > p.CostPerHour+1e-9 {
		t.Errorf("cost %v, lower bound %v", p.CostPerHour, p.LowerBoundPerHour)
	}

	c := rep.Consolidation
	if c.Candidates != 6 {
		t.Errorf("candidates = %d, want 6", c.Candidates)
	}
	decided := map[string]Decision{}
	for _, d := range c.Decisions {
		decided[d.NodeClaim] = d
	}
	if d, ok := decided["empty"]; !ok || d.Reason != "Empty" || d.Action != "Delete" || d.SavingsPerHour != 0.096 {
		t.Errorf("empty node decision = %+v", d)
	}
	if d, ok := decided["underused"]; !ok || d.Reason != "Underutilized" || d.SavingsPerHour <= 0 || d.PricePerHour != 0.384 {
		t.Errorf("underused node decision = %+v", d)
	} else if d.Action == "Replace" && (len(d.Replacements) == 0 || d.NewCostPerHour >= d.PricePerHour) {
		t.Errorf("replacement is no cheaper: %+v", d)
	}
	if d, ok := decided["stale"]; !ok || d.Reason != "Drifted" || d.Action != "Replace" || len(d.Replacements) != 1 || d.NewCostPerHour != 0.096 {
		t.Errorf("drifted node decision = %+v", d)
	}
	kept := map[string]string{}
	for _, k := range c.Kept {
		kept[k.NodeClaim] = k.Reason
		if k.Message == "" || k.PricePerHour <= 0 {
			t.Errorf("kept without message or price: %+v", k)
		}
	}
	for name, want := range map[string]string{"guarded": "PodDisruptionBudget", "pinned": "DoNotDisrupt", "quiet-1": KeptConsolidationPolicy} {
		if kept[name] != want {
			t.Errorf("%s kept for %q, want %q (decisions %+v)", name, kept[name], want, c.Decisions)
		}
	}
	if len(c.Decisions)+len(c.Kept) != 6 {
		t.Errorf("%d decisions and %d kept for 6 candidates", len(c.Decisions), len(c.Kept))
	}

	cost := rep.Cost
	wantCurrent := 0.384 + 5*0.096
	if math.Abs(cost.CurrentPerHour-wantCurrent) > 1e-9 {
		t.Errorf("current cost = %v, want %v", cost.CurrentPerHour, wantCurrent)
	}
	if want := cost.CurrentPerHour + cost.LaunchPerHour - cost.RemovedPerHour + cost.ReplacementsPerHour; math.Abs(cost.PlannedPerHour-want) > 1e-9 || cost.RemovedPerHour < 0.096+0.384-1e-9 {
		t.Errorf("cost = %+v", cost)
	}

	calls := v.snapshot()
	for verb := range calls {
		if verb != "get" && verb != "list" {
			t.Errorf("verb %s used", verb)
		}
	}
	// One list per kind (11 kinds) plus the NodePool CRD check: the
	// snapshot reader serves the disruption pass from the same view.
	if calls["list"] != 12 {
		t.Errorf("%d lists, want 12", calls["list"])
	}
	t.Logf("plan: %d NodeClaims $%.4f/h (bound $%.4f/h); %d decisions, %d kept; cost %+v; calls %v",
		len(p.NodeClaims), p.CostPerHour, p.LowerBoundPerHour, len(c.Decisions), len(c.Kept), cost, calls)

	var text bytes.Buffer
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PROVISIONING: 4 pending pods", "default/huge", "DISRUPTION: 6 launched NodeClaims", "Replace Drifted", "keep (PodDisruptionBudget)",
		"keep (DoNotDisrupt)", "keep (ConsolidationPolicy)", "Delete Empty", "Cost: $0.8640/hour now", "lower bound"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	t.Logf("text output:\n%s", text.String())
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"lowerBoundPerHour"`, `"nodeClaims"`, `"decisions"`, `"kept"`, `"plannedPerHour"`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestPendingPodsOnExistingNodeKeepItFromDisruption(t *testing.T) {
	claim, node := launched("roomy", "general", "m5.2xlarge")
	objs := []client.Object{testClass(), testPool("general", karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized), claim, node, pending("fits", "500m")}
	rep, err := Plan(context.Background(), fakeCluster(t, &verbs{}, nil, objs...), opts(offline()))
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Provisioning.ExistingNodeBindings["roomy"]; len(got) != 1 || len(rep.Provisioning.NodeClaims) != 0 {
		t.Fatalf("bindings %v, NodeClaims %v: want the pod on roomy", rep.Provisioning.ExistingNodeBindings, rep.Provisioning.NodeClaims)
	}
	if len(rep.Consolidation.Decisions) != 0 || len(rep.Consolidation.Kept) != 1 || rep.Consolidation.Kept[0].Reason != KeptNominated {
		t.Errorf("the empty node the pod goes to must be kept as Nominated: %+v", rep.Consolidation)
	}
}

func TestSilentReasons(t *testing.T) {
	pool := testPool("general", karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized)
	pool.Spec.Disruption.ConsolidateAfter = dur(time.Hour)
	never := testPool("never", karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized)
	never.Spec.Disruption.ConsolidateAfter = karpv1.NillableDuration{Raw: "Never"}
	a, an := launched("recent", "general", "m5.large")
	b, bn := launched("never-1", "never", "m5.large")
	objs := []client.Object{testClass(), pool, never, a, an, b, bn, running("x", "1", "recent"), running("y", "1", "never-1")}
	rep, err := Plan(context.Background(), fakeCluster(t, &verbs{}, nil, objs...), opts(offline()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Kept{}
	for _, k := range rep.Consolidation.Kept {
		got[k.NodeClaim] = k
	}
	if k := got["recent"]; k.Reason != KeptConsolidateAfter || !strings.Contains(k.Message, "1h0m0s") {
		t.Errorf("recent: %+v", k)
	}
	if k := got["never-1"]; k.Reason != KeptConsolidateAfter || !strings.Contains(k.Message, "Never") {
		t.Errorf("never-1: %+v", k)
	}
}

func TestKubernetesErrorsAreClassified(t *testing.T) {
	noCRD := &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "karpenter.sh", Kind: "NodePool"}, SearchedVersions: []string{"v1"}}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New(`User "viewer" cannot list resource "pods"`))
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for _, tc := range []struct {
		name string
		err  error
		want error
		msg  string
	}{
		{"no CRDs", noCRD, ErrNoCRDs, "cluster has no karpenter.sh/v1 NodePool CRD; install deploy/crds"},
		{"RBAC", forbidden, ErrForbidden, "RBAC denied a read"},
		{"unreachable", refused, ErrUnreachable, "cannot reach the Kubernetes API server"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error { return tc.err }
			_, err := Plan(context.Background(), fakeCluster(t, &verbs{}, list, scenario()...), opts(offline()))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tc.want, tc.msg)
			}
		})
	}
}

// fakeLauncher serves ListInstanceTypes from a catalog and counts calls.
type fakeLauncher struct {
	launcherv1.UnimplementedLauncherServiceServer
	types *CatalogTypes
	calls chan string
}

func (f *fakeLauncher) ListInstanceTypes(ctx context.Context, req *launcherv1.ListInstanceTypesRequest) (*launcherv1.ListInstanceTypesResponse, error) {
	f.calls <- req.GetNodeClass().GetName()
	its, err := f.types.InstanceTypes(ctx, testClass())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &launcherv1.ListInstanceTypesResponse{InstanceTypes: its}, nil
}

// serve starts a gRPC server on loopback and returns its address.
func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func dial(t *testing.T, addr, service string) *grpc.ClientConn {
	t.Helper()
	conn, err := server.DialWith(addr, server.DialOptions{Insecure: true, Services: []string{service}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestPlanThroughLauncherAndRemoteSolver(t *testing.T) {
	fl := &fakeLauncher{types: offline(), calls: make(chan string, 100)}
	laddr := serve(t, func(s *grpc.Server) { launcherv1.RegisterLauncherServiceServer(s, fl) })
	saddr := serve(t, func(s *grpc.Server) { solverv1.RegisterSolverServiceServer(s, solverapi.NewService()) })
	o := Options{
		Types:  LauncherTypes(launcherv1.NewLauncherServiceClient(dial(t, laddr, launcherv1.LauncherService_ServiceDesc.ServiceName)), laddr),
		Solver: Remote{Client: solverv1.NewSolverServiceClient(dial(t, saddr, solverv1.SolverService_ServiceDesc.ServiceName))},
		Now:    func() time.Time { return t0 },
	}
	rep, err := Plan(context.Background(), fakeCluster(t, &verbs{}, nil, scenario()...), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Provisioning.NodeClaims) == 0 || len(rep.Consolidation.Decisions) == 0 {
		t.Fatalf("plan through the services: %+v", rep)
	}
	if n := len(fl.calls); n != 1 || <-fl.calls != "default" {
		t.Errorf("launcher called %d times; want once, for class default (the list is cached)", n)
	}
}

func TestUnreachableLauncherAndSolver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	launcher := launcherv1.NewLauncherServiceClient(dial(t, dead, launcherv1.LauncherService_ServiceDesc.ServiceName))
	o := opts(offline())
	o.Types = LauncherTypes(launcher, dead)
	_, err = Plan(ctx, fakeCluster(t, &verbs{}, nil, scenario()...), o)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "the launcher at "+dead) {
		t.Errorf("dead launcher: %v", err)
	}
	o = opts(offline())
	o.Solver = Remote{Client: solverv1.NewSolverServiceClient(dial(t, dead, solverv1.SolverService_ServiceDesc.ServiceName))}
	_, err = Plan(ctx, fakeCluster(t, &verbs{}, nil, scenario()...), o)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "the solver does not answer") {
		t.Errorf("dead solver: %v", err)
	}
}

func TestCatalogTypesFollowTheClass(t *testing.T) {
	ct := &CatalogTypes{Specs: testSpecs, SpotPriceFactor: 0.3}
	nc := testClass()
	nc.Status.Subnets = append(nc.Status.Subnets, awsv1.Subnet{ID: "subnet-b", Zone: "us-east-1b"})
	its, err := ct.InstanceTypes(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	if len(its) != len(testSpecs) {
		t.Fatalf("%d types", len(its))
	}
	m5 := its[0]
	if m5.GetName() != "m5.large" || len(m5.GetOfferings()) != 4 || m5.GetLabels()["karpenter.k8s.aws/instance-family"] != "m5" {
		t.Errorf("m5.large = %v", m5)
	}
	for _, o := range m5.GetOfferings() {
		want := 0.096
		if o.GetCapacityType() == "spot" {
			want = 0.0288
		}
		if math.Abs(o.GetPricePerHour()-want) > 1e-9 || (o.GetZone() != "us-east-1a" && o.GetZone() != "us-east-1b") {
			t.Errorf("offering %v", o)
		}
	}
	if m5.GetAllocatable()["pods"] != "29" {
		t.Errorf("m5.large allocatable pods = %q, want 29 (ENI limit)", m5.GetAllocatable()["pods"])
	}
	bare := testClass()
	bare.Name, bare.Status.Subnets = "bare", nil
	its, err = ct.InstanceTypes(context.Background(), bare)
	if err != nil || len(its[0].GetOfferings()) != 6 {
		t.Errorf("class without subnets: %d offerings, %v; want the 3 default zones", len(its[0].GetOfferings()), err)
	}
	if _, err := (&CatalogTypes{}).InstanceTypes(context.Background(), nc); err == nil {
		t.Error("an empty catalog must fail")
	}
}
