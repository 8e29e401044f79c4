package solver

import (
	"sort"
	"strconv"
)

// Container is the part of a container spec that decides its requests.
// RestartPolicyAlways marks an init container as a restartable sidecar.
type Container struct {
	Requests            Resources
	RestartPolicyAlways bool
}

// EffectiveRequests computes a pod's requests the way kube-scheduler does:
// regular containers run together with every sidecar; each init container
// runs alone with the sidecars started before it; the pod needs the larger
// of the two, per resource, plus its overhead.
func EffectiveRequests(containers []Container, initContainers []Container, overhead Resources) Resources {
	regular := Resources{}
	for _, c := range containers {
		addResources(regular, c.Requests)
	}
	sidecars := Resources{}
	initPeak := Resources{}
	for _, c := range initContainers {
		if c.RestartPolicyAlways {
			// A sidecar keeps running: it adds to everything after it,
			// and while starting it runs with the sidecars before it.
			addResources(sidecars, c.Requests)
			maxResources(initPeak, sidecars)
			continue
		}
		peak := Resources{}
		addResources(peak, c.Requests)
		addResources(peak, sidecars)
		maxResources(initPeak, peak)
	}
	out := Resources{}
	addResources(out, regular)
	addResources(out, sidecars)
	maxResources(out, initPeak)
	addResources(out, overhead)
	return out
}

func addResources(dst, src Resources) {
	for k, v := range src {
		dst[k] += v
	}
}

func maxResources(dst, src Resources) {
	for k, v := range src {
		if v > dst[k] {
			dst[k] = v
		}
	}
}

// Dense resource vectors: the solver numbers every resource name it meets
// once per solve so that hot loops compare small slices, not maps.
const (
	resCPU  = 0
	resMem  = 1
	resPods = 2

	defaultPods = DefaultPods
)

// DefaultPods is the pod capacity the solver assumes for an instance type,
// existing node or in-flight claim whose allocatable has no "pods" entry
// (the kubelet's default maxPods).
const DefaultPods = 110

type resIndex struct {
	names []string
	idx   map[string]int
}

func newResIndex(seen map[string]bool) resIndex {
	names := []string{ResourceCPU, ResourceMemory, ResourcePods, ResourceEphemeralStorage}
	var rest []string
	for n := range seen {
		if n != ResourceCPU && n != ResourceMemory && n != ResourcePods && n != ResourceEphemeralStorage {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	names = append(names, rest...)
	idx := make(map[string]int, len(names))
	for i, n := range names {
		idx[n] = i
	}
	return resIndex{names: names, idx: idx}
}

func (x *resIndex) n() int { return len(x.names) }

// vec converts r; names outside the index are ignored (nothing requests them).
func (x *resIndex) vec(r Resources) []int64 {
	v := make([]int64, len(x.names))
	for k, q := range r {
		if i, ok := x.idx[k]; ok {
			v[i] = q
		}
	}
	return v
}

// podVec is a pod's request vector: "pods" is always exactly 1.
func (x *resIndex) podVec(r Resources) []int64 {
	v := x.vec(r)
	v[resPods] = 1
	return v
}

// allocVec is an allocatable vector; a missing "pods" becomes defPods.
func (x *resIndex) allocVec(r Resources, defPods int64) []int64 {
	v := x.vec(r)
	if _, ok := r[ResourcePods]; !ok {
		v[resPods] = defPods
	}
	return v
}

func (x *resIndex) resources(v []int64) Resources {
	out := Resources{}
	for i, q := range v {
		if q != 0 {
			out[x.names[i]] = q
		}
	}
	return out
}

// fitsIn reports whether used+req <= alloc for every resource req asks for.
func fitsIn(used, req, alloc []int64) bool {
	for i, q := range req {
		if q > 0 && used[i]+q > alloc[i] {
			return false
		}
	}
	return true
}

func addVec(dst, src []int64) {
	for i, q := range src {
		dst[i] += q
	}
}

func subVec(dst, src []int64) {
	for i, q := range src {
		dst[i] -= q
	}
}

func maxVec(dst, src []int64) {
	for i, q := range src {
		if q > dst[i] {
			dst[i] = q
		}
	}
}

// copiesIn is how many pods requesting req fit in free.
func copiesIn(req, free []int64) int64 {
	best := int64(-1)
	for i, q := range req {
		if q <= 0 {
			continue
		}
		k := free[i] / q
		if free[i] < 0 {
			k = 0
		}
		if best < 0 || k < best {
			best = k
		}
	}
	if best < 0 {
		return 1 << 30
	}
	return best
}

// quantity formats an amount for humans: cpu in cores, memory in GiB.
func quantity(name string, q int64) string {
	switch name {
	case ResourceCPU:
		if q%1000 == 0 {
			return strconv.FormatInt(q/1000, 10)
		}
		return strconv.FormatFloat(float64(q)/1000, 'f', -1, 64)
	case ResourceMemory, ResourceEphemeralStorage:
		return strconv.FormatFloat(float64(q)/(1<<30), 'f', 2, 64) + "Gi"
	}
	return strconv.FormatInt(q, 10)
}
