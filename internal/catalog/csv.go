package catalog

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// CSV column names. Columns are found by name (case-insensitively); others
// are ignored.
const (
	ColInstanceType     = "instance_type"
	ColVCPU             = "vcpu"
	ColMemoryMiB        = "memory_mib"
	ColGPU              = "gpu"
	ColArch             = "arch"
	ColMaxPods          = "max_pods"
	ColOnDemandPrice    = "on_demand_usd_per_hour"
	ColGPUManufacturer  = "gpu_manufacturer"
	ColEphemeralStorage = "ephemeral_storage_gib"
)

// requiredColumns must be in every CSV header; gpu, max_pods,
// gpu_manufacturer and ephemeral_storage_gib are optional.
var requiredColumns = []string{ColInstanceType, ColVCPU, ColMemoryMiB, ColArch, ColOnDemandPrice}

// gpuResources maps a gpu_manufacturer value to the extended resource its
// GPUs are requested by.
var gpuResources = map[string]string{
	"":       "nvidia.com/gpu",
	"nvidia": "nvidia.com/gpu",
	"amd":    "amd.com/gpu",
	"habana": "habana.ai/gaudi",
}

func loadCSV(name string, data []byte, opts Options) ([]*typesv1.InstanceType, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a byte-order mark
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	cr.Comment = '#'
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: the catalog is empty: it needs a header line naming its columns and one row per instance type", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %s", name, csvError(err))
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := col[h]; dup && h != "" {
			return nil, fmt.Errorf("%s: line 1: column %q appears twice", name, h)
		}
		col[h] = i
	}
	for _, c := range requiredColumns {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%s: line 1: missing column %q (the header needs %s)", name, c, strings.Join(requiredColumns, ", "))
		}
	}
	var out []*typesv1.InstanceType
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %s", name, csvError(err))
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		row := csvRow{name: name, line: line, rec: rec, col: col}
		it, err := row.instanceType(opts)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[it.Name]; ok {
			return nil, fmt.Errorf("%s: line %d: instance type %q is listed twice (also on line %d)", name, line, it.Name, prev)
		}
		seen[it.Name] = line
		out = append(out, it)
	}
	return out, nil
}

func csvError(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d: %v", pe.Line, pe.Err)
	}
	return err.Error()
}

type csvRow struct {
	name string
	line int
	rec  []string
	col  map[string]int
}

// get returns the trimmed value in column c, or "" when the row has no
// such column.
func (r csvRow) get(c string) string {
	i, ok := r.col[c]
	if !ok || i >= len(r.rec) {
		return ""
	}
	return strings.TrimSpace(r.rec[i])
}

func (r csvRow) errorf(c, format string, args ...any) error {
	return fmt.Errorf("%s: line %d, column %s: %s", r.name, r.line, c, fmt.Sprintf(format, args...))
}

// count reads a non-negative integer column; empty gives def when def >= 0.
func (r csvRow) count(c string, def int64, positive bool) (int64, error) {
	s := r.get(c)
	if s == "" {
		if def >= 0 {
			return def, nil
		}
		return 0, r.errorf(c, "missing value")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > 1<<40 {
		return 0, r.errorf(c, "%q is not a whole number", s)
	}
	if positive && v == 0 {
		return 0, r.errorf(c, "must be above 0")
	}
	return v, nil
}

func (r csvRow) instanceType(opts Options) (*typesv1.InstanceType, error) {
	name := r.get(ColInstanceType)
	if name == "" {
		return nil, r.errorf(ColInstanceType, "missing value")
	}
	if strings.ContainsAny(name, " \t/") {
		return nil, r.errorf(ColInstanceType, "%q is not an instance type name", name)
	}
	vcpu, err := r.count(ColVCPU, -1, true)
	if err != nil {
		return nil, err
	}
	mem, err := r.count(ColMemoryMiB, -1, true)
	if err != nil {
		return nil, err
	}
	gpu, err := r.count(ColGPU, 0, false)
	if err != nil {
		return nil, err
	}
	maxPods, err := r.count(ColMaxPods, DefaultMaxPods, true)
	if err != nil {
		return nil, err
	}
	arch := r.get(ColArch)
	if arch == "" {
		return nil, r.errorf(ColArch, "missing value")
	}
	ps := r.get(ColOnDemandPrice)
	price, err := strconv.ParseFloat(ps, 64)
	if ps == "" {
		return nil, r.errorf(ColOnDemandPrice, "missing value")
	}
	if err != nil || math.IsNaN(price) || math.IsInf(price, 0) || price < 0 {
		return nil, r.errorf(ColOnDemandPrice, "%q is not a price in US dollars per hour", ps)
	}
	manufacturer := r.get(ColGPUManufacturer)
	manufacturer = strings.ToLower(manufacturer)
	gpuResource, ok := gpuResources[manufacturer]
	if !ok {
		return nil, r.errorf(ColGPUManufacturer, "unknown manufacturer %q: use nvidia, amd or habana", manufacturer)
	}
	capacity := map[string]string{
		"cpu":    strconv.FormatInt(vcpu, 10),
		"memory": strconv.FormatInt(mem, 10) + "Mi",
		"pods":   strconv.FormatInt(maxPods, 10),
	}
	if gpu > 0 {
		capacity[gpuResource] = strconv.FormatInt(gpu, 10)
	}
	if _, ok := r.col[ColEphemeralStorage]; ok {
		gib, err := r.count(ColEphemeralStorage, 0, false)
		if err != nil {
			return nil, err
		}
		if gib > 0 {
			capacity["ephemeral-storage"] = strconv.FormatInt(gib, 10) + "Gi"
		}
	}
	alloc, err := allocatable(capacity, opts.Overhead)
	if err != nil {
		return nil, r.errorf(ColInstanceType, "%v", err)
	}
	labels := nameLabels(name)
	labels[LabelArch] = arch
	labels[LabelOS] = "linux"
	labels[LabelCPU] = strconv.FormatInt(vcpu, 10)
	labels[LabelMemory] = strconv.FormatInt(mem, 10)
	if gpu > 0 {
		labels[LabelGPUCount] = strconv.FormatInt(gpu, 10)
		if manufacturer == "" {
			manufacturer = "nvidia"
		}
		labels[LabelGPUManufacturer] = manufacturer
	}
	it := &typesv1.InstanceType{Name: name, Capacity: capacity, Allocatable: alloc, Labels: labels}
	for _, z := range opts.zones() {
		it.Offerings = append(it.Offerings, &typesv1.Offering{Zone: z, CapacityType: "on-demand", PricePerHour: price, Available: true})
	}
	if opts.SpotPriceFactor > 0 {
		for _, z := range opts.zones() {
			it.Offerings = append(it.Offerings, &typesv1.Offering{Zone: z, CapacityType: "spot", PricePerHour: roundPrice(price * opts.SpotPriceFactor), Available: true})
		}
	}
	return it, nil
}
