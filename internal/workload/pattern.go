package workload

import (
	"fmt"
	"math"
	"slices"

	"github.com/flotilla-io/flotilla/internal/patternlp"
	"github.com/flotilla-io/flotilla/internal/solver"
)

// PatternInput turns the pending pods and instance types of p into the
// vectors of a pattern LP (internal/patternlp): the dimensions are every
// resource some pod requests, then a pod count; a class is the pods with
// equal requests; a type is an
// instance type's allocatable at its cheapest available offering (index i
// of the input is p.InstanceTypes[i]; a type with no available offering
// gets an infinite price and is never used). Everything else in p is left
// out, so a bound for the input is a bound for p.
func PatternInput(p *solver.Problem) (in patternlp.Input, dims []string) {
	names := map[string]bool{}
	for _, pod := range p.Pods {
		for r, v := range pod.Requests {
			if v > 0 && r != solver.ResourcePods {
				names[r] = true
			}
		}
	}
	for r := range names {
		dims = append(dims, r)
	}
	slices.Sort(dims)
	dims = append(dims, solver.ResourcePods)
	byKey := map[string]int{}
	for _, pod := range p.Pods {
		w := make([]int64, len(dims))
		for d, r := range dims[:len(dims)-1] {
			w[d] = pod.Requests[r]
		}
		w[len(dims)-1] = 1
		key := fmt.Sprint(w)
		c, ok := byKey[key]
		if !ok {
			c = len(in.Classes)
			byKey[key] = c
			in.Classes = append(in.Classes, patternlp.Class{Requests: w})
		}
		in.Classes[c].Count++
	}
	for _, it := range p.InstanceTypes {
		price := math.Inf(1)
		for _, o := range it.Offerings {
			if o.Available {
				price = math.Min(price, o.PricePerHour)
			}
		}
		capacity := make([]int64, len(dims))
		for d, r := range dims {
			capacity[d] = it.Allocatable[r]
		}
		if _, ok := it.Allocatable[solver.ResourcePods]; !ok {
			capacity[len(dims)-1] = 110
		}
		in.Types = append(in.Types, patternlp.Type{Capacity: capacity, Price: price})
	}
	return in, dims
}
