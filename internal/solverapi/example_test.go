package solverapi_test

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flotilla-io/flotilla/internal/solverapi"
	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

// examplePath is the documented grpcurl example; this test keeps it valid.
var examplePath = filepath.Join("..", "..", "examples", "grpc", "solve-request.json")

func loadExample(t testing.TB) *solverv1.SolveRequest {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	req := &solverv1.SolveRequest{}
	if err := protojson.Unmarshal(data, req); err != nil {
		t.Fatalf("%s: %v", examplePath, err)
	}
	return req
}

func TestExampleSolveRequest(t *testing.T) {
	req := loadExample(t)
	if len(req.GetInstanceTypes()) != 3 || len(req.GetNodePools()) != 1 || len(req.GetPods()) < 3 {
		t.Fatalf("example lost its shape: %d instance types, %d NodePools, %d pods",
			len(req.GetInstanceTypes()), len(req.GetNodePools()), len(req.GetPods()))
	}
	resp, err := solverapi.Solve(t.Context(), req)
	if err != nil {
		t.Fatalf("Solve(%s): %v", examplePath, err)
	}
	plan := resp.GetPlan()
	if len(plan.GetUnschedulable()) > 0 {
		t.Errorf("example leaves pods unschedulable: %v", plan.GetUnschedulable())
	}
	placed := 0
	for _, c := range plan.GetNodeClaims() {
		placed += len(c.GetPods())
		if c.GetNodePool() != "general" || c.GetInstanceType() == "" || c.GetZone() == "" {
			t.Errorf("node claim %v", c)
		}
	}
	for _, b := range plan.GetExistingNodeBindings() {
		placed += len(b.GetPods())
	}
	if placed != len(req.GetPods()) {
		t.Errorf("plan places %d of %d pods", placed, len(req.GetPods()))
	}
	if plan.GetCostPerHour() <= 0 {
		t.Errorf("cost per hour %v", plan.GetCostPerHour())
	}
}
