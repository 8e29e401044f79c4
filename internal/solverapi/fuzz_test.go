package solverapi

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
)

// Limits that keep one fuzz input from becoming a large problem.
const (
	fuzzMaxPods      = 50
	fuzzMaxTypes     = 20
	fuzzMaxOfferings = 100
	fuzzMaxNodes     = 20
	fuzzMaxOther     = 20
)

func fuzzTooBig(r *solverv1.SolveRequest) bool {
	pods := len(r.GetPods())
	for _, n := range r.GetNodes() {
		pods += len(n.GetPods())
	}
	for _, c := range r.GetNodeClaims() {
		pods += len(c.GetPods())
	}
	offerings := 0
	for _, it := range r.GetInstanceTypes() {
		offerings += len(it.GetOfferings())
	}
	return pods > fuzzMaxPods || len(r.GetInstanceTypes()) > fuzzMaxTypes || offerings > fuzzMaxOfferings ||
		len(r.GetNodes())+len(r.GetNodeClaims()) > fuzzMaxNodes ||
		len(r.GetNodePools()) > fuzzMaxOther || len(r.GetDaemonSets()) > fuzzMaxOther
}

// FuzzValidate feeds arbitrary bytes, decoded as a SolveRequest in binary
// and JSON form, to Solve: it must never panic, and must either plan or
// refuse with an error wrapping ErrInvalidArgument.
func FuzzValidate(f *testing.F) {
	valid, err := proto.Marshal(validRequest())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	if js, err := protojson.Marshal(validRequest()); err == nil {
		f.Add(js)
	}
	if ex, err := os.ReadFile(filepath.Join("..", "..", "examples", "grpc", "solve-request.json")); err == nil {
		f.Add(ex)
	}
	f.Add([]byte(`{"pods":[{"name":"p","containers":[{"requests":{"cpu":"1e30"}}]}],"instanceTypes":[{"name":"t"}]}`))
	f.Add([]byte(`{"instanceTypes":[{"name":"t","offerings":[{"zone":"a","capacityType":"spot","pricePerHour":"NaN"}]}]}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, decode := range []func([]byte, proto.Message) error{
			proto.Unmarshal,
			func(b []byte, m proto.Message) error { return protojson.Unmarshal(b, m) },
		} {
			req := &solverv1.SolveRequest{}
			if decode(data, req) != nil || fuzzTooBig(req) {
				continue
			}
			resp, err := Solve(t.Context(), req)
			if err != nil {
				if !errors.Is(err, ErrInvalidArgument) {
					t.Fatalf("Solve failed without ErrInvalidArgument: %v", err)
				}
				continue
			}
			if resp.GetPlan() == nil {
				t.Fatal("Solve returned no plan")
			}
		}
	})
}
