package workload

import (
	"math"
	"slices"
	"testing"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// Pods with equal requests form one class; a type gets its cheapest
// available offering and 110 pods when allocatable has no "pods".
func TestPatternInput(t *testing.T) {
	gpu := solver.Resources{solver.ResourceCPU: 1000, ResourceNVIDIAGPU: 1}
	p := &solver.Problem{
		Pods: []*solver.Pod{
			{Name: "a", Requests: solver.Resources{solver.ResourceCPU: 500}},
			{Name: "b", Requests: gpu},
			{Name: "c", Requests: solver.Resources{solver.ResourceCPU: 500, solver.ResourceMemory: 0}},
		},
		InstanceTypes: []solver.InstanceType{
			{Name: "cheap", Allocatable: solver.Resources{solver.ResourceCPU: 4000, ResourceNVIDIAGPU: 1}, Offerings: []solver.Offering{
				{PricePerHour: 2, Available: true}, {PricePerHour: 1, Available: true}, {PricePerHour: 0.5, Available: false}}},
			{Name: "gone", Allocatable: solver.Resources{solver.ResourcePods: 8}, Offerings: []solver.Offering{{PricePerHour: 1}}},
		},
	}
	in, dims := PatternInput(p)
	if want := []string{solver.ResourceCPU, ResourceNVIDIAGPU, solver.ResourcePods}; !slices.Equal(dims, want) {
		t.Fatalf("dims %v, want %v", dims, want)
	}
	if len(in.Classes) != 2 || in.Classes[0].Count != 2 || in.Classes[1].Count != 1 ||
		!slices.Equal(in.Classes[0].Requests, []int64{500, 0, 1}) || !slices.Equal(in.Classes[1].Requests, []int64{1000, 1, 1}) {
		t.Fatalf("classes %+v", in.Classes)
	}
	if in.Types[0].Price != 1 || !slices.Equal(in.Types[0].Capacity, []int64{4000, 1, 110}) {
		t.Fatalf("type cheap: %+v", in.Types[0])
	}
	if !math.IsInf(in.Types[1].Price, 1) || !slices.Equal(in.Types[1].Capacity, []int64{0, 0, 8}) {
		t.Fatalf("type gone: %+v", in.Types[1])
	}
}
