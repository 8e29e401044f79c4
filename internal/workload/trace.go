package workload

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flotilla-io/flotilla/internal/solver"
)

// Files Trace reads, relative to its directory.
const (
	TracePodsFile    = "alibaba-gpu-v2023/openb_pod_list_default.csv"
	TraceCatalogFile = "ec2-us-east-1.csv"
)

// TraceZones are the zones the trace catalog's on-demand offerings are in.
var TraceZones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

// ResourceNVIDIAGPU is the resource the trace pods' GPUs are requested as.
const ResourceNVIDIAGPU = "nvidia.com/gpu"

var gpuResources = map[string]string{
	"":       ResourceNVIDIAGPU,
	"nvidia": ResourceNVIDIAGPU,
	"amd":    "amd.com/gpu",
	"habana": "habana.ai/gaudi",
}

// Trace returns a problem built from the shared reference data in dir
// (normally shared/data beside the repository, see FindSharedData): every
// pod of the Alibaba GPU trace v2023 default pod list (8,152 pods in
// namespace "default", requesting cpu_milli, memory_mib and num_gpu as
// nvidia.com/gpu), the EC2 us-east-1 catalog (on-demand in us-east-1a, b
// and c at the listed price, allocatable = capacity, max pods capped at 110
// for types with at most 30 vCPUs and 250 above), and one NodePool "default"
// with no requirements.
func Trace(dir string) (*solver.Problem, error) {
	pods, err := readTracePods(filepath.Join(dir, TracePodsFile))
	if err != nil {
		return nil, err
	}
	types, err := readTraceCatalog(filepath.Join(dir, TraceCatalogFile))
	if err != nil {
		return nil, err
	}
	return &solver.Problem{
		Pods:          pods,
		NodePools:     []solver.NodePool{{Name: "default"}},
		InstanceTypes: types,
	}, nil
}

// FindSharedData walks up from the working directory looking for a
// directory shared/data (in this project's layout, the sibling "../shared"
// of the repository root) and returns its path.
func FindSharedData() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		candidate := filepath.Join(dir, "shared", "data")
		if st, err := os.Stat(candidate); err == nil && st.IsDir() {
			return candidate, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// table is a CSV file read into rows, with columns looked up by header name.
type table struct {
	path string
	cols map[string]int
	rows [][]string
}

func readTable(path string, want ...string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = false
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: reading header: %w", path, err)
	}
	t := &table{path: path, cols: map[string]int{}}
	for i, h := range header {
		t.cols[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	for _, w := range want {
		if _, ok := t.cols[w]; !ok {
			return nil, fmt.Errorf("%s: no column %q in header %v", path, w, header)
		}
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		t.rows = append(t.rows, rec)
	}
	return t, nil
}

func (t *table) str(row int, col string) string {
	return strings.TrimSpace(t.rows[row][t.cols[col]])
}

func (t *table) int(row int, col string) (int64, error) {
	s := t.str(row, col)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// Some exports write integers as decimals ("12000.0").
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != float64(int64(f)) {
			return 0, fmt.Errorf("%s: row %d: column %s: %q is not an integer", t.path, row+2, col, s)
		}
		v = int64(f)
	}
	if v < 0 {
		return 0, fmt.Errorf("%s: row %d: column %s: negative value %d", t.path, row+2, col, v)
	}
	return v, nil
}

func readTracePods(path string) ([]*solver.Pod, error) {
	t, err := readTable(path, "name", "cpu_milli", "memory_mib", "num_gpu")
	if err != nil {
		return nil, err
	}
	pods := make([]*solver.Pod, 0, len(t.rows))
	for i := range t.rows {
		cpu, err := t.int(i, "cpu_milli")
		if err != nil {
			return nil, err
		}
		mem, err := t.int(i, "memory_mib")
		if err != nil {
			return nil, err
		}
		gpu, err := t.int(i, "num_gpu")
		if err != nil {
			return nil, err
		}
		req := solver.Resources{solver.ResourceCPU: cpu, solver.ResourceMemory: mem << 20}
		if gpu > 0 {
			req[ResourceNVIDIAGPU] = gpu
		}
		name := t.str(i, "name")
		if name == "" {
			return nil, fmt.Errorf("%s: row %d: empty name", path, i+2)
		}
		pods = append(pods, &solver.Pod{Namespace: "default", Name: name, Requests: req})
	}
	return pods, nil
}

func readTraceCatalog(path string) ([]solver.InstanceType, error) {
	t, err := readTable(path, "instance_type", "vcpu", "memory_mib", "gpu", "arch", "max_pods",
		"on_demand_usd_per_hour", "gpu_manufacturer")
	if err != nil {
		return nil, err
	}
	types := make([]solver.InstanceType, 0, len(t.rows))
	for i := range t.rows {
		name := t.str(i, "instance_type")
		vcpu, err := t.int(i, "vcpu")
		if err != nil {
			return nil, err
		}
		mem, err := t.int(i, "memory_mib")
		if err != nil {
			return nil, err
		}
		gpu, err := t.int(i, "gpu")
		if err != nil {
			return nil, err
		}
		maxPods, err := t.int(i, "max_pods")
		if err != nil {
			return nil, err
		}
		price, err := strconv.ParseFloat(t.str(i, "on_demand_usd_per_hour"), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: row %d: on_demand_usd_per_hour: %w", path, i+2, err)
		}
		podCap := int64(110)
		if vcpu > 30 {
			podCap = 250
		}
		capacity := solver.Resources{
			solver.ResourceCPU:    vcpu * 1000,
			solver.ResourceMemory: mem << 20,
			solver.ResourcePods:   min(maxPods, podCap),
		}
		if gpu > 0 {
			res, ok := gpuResources[strings.ToLower(t.str(i, "gpu_manufacturer"))]
			if !ok {
				return nil, fmt.Errorf("%s: row %d: unknown gpu_manufacturer %q", path, i+2, t.str(i, "gpu_manufacturer"))
			}
			capacity[res] = gpu
		}
		allocatable := solver.Resources{}
		for k, v := range capacity {
			allocatable[k] = v
		}
		var offerings []solver.Offering
		for _, z := range TraceZones {
			offerings = append(offerings, solver.Offering{Zone: z, CapacityType: solver.CapacityTypeOnDemand, PricePerHour: price, Available: true})
		}
		types = append(types, solver.InstanceType{
			Name:        name,
			Capacity:    capacity,
			Allocatable: allocatable,
			Labels: map[string]string{
				solver.LabelArch:         t.str(i, "arch"),
				solver.LabelOS:           "linux",
				solver.LabelInstanceType: name,
			},
			Offerings: offerings,
		})
	}
	return types, nil
}
