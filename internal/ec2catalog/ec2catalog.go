// Package ec2catalog holds raw EC2 instance type specs and prices: what
// DescribeInstanceTypes and the Pricing API say about a type, before any
// Kubernetes view (allocatable, labels) is derived from it. The launcher
// embeds one as its fallback catalog and ec2sim serves one.
package ec2catalog

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Spec is one instance type.
type Spec struct {
	Name string // e.g. m5.large
	// Family is the part of Name before the dot, e.g. m5 or m7i-flex.
	Family    string
	VCPU      int
	MemoryMiB int64
	GPUs      int
	// GPUManufacturer is nvidia, amd or habana; empty when the type has
	// no GPU model (it may have one with GPUs 0: fractional GPUs, g6f).
	GPUManufacturer string
	Arch            string // amd64 or arm64
	ENIs            int    // network interfaces
	IPv4PerENI      int
	// OnDemandPrice is the us-east-1 Linux on-demand price, US dollars per hour.
	OnDemandPrice float64

	// Facts below come from Karpenter's reference (see ApplyReference);
	// they are zero for types it does not list.
	Facts
}

// Facts are what DescribeInstanceTypes (and Karpenter's generated
// bandwidth and VPC-limits tables) say about a type beyond the CSV's
// columns. Every field is comparable, so Specs compare with ==.
type Facts struct {
	// Known is true when the facts were filled in.
	Known bool
	// Hypervisor is nitro, xen, or empty for bare metal.
	Hypervisor string
	// CPUManufacturer is lower case: intel, amd or aws.
	CPUManufacturer   string
	SustainedClockMHz int
	// EBSBandwidthMbps is the EBS-optimized maximum; 0 when the type is
	// not EBS-optimized by default.
	EBSBandwidthMbps     int
	NetworkBandwidthMbps int
	EncryptionInTransit  bool
	// LocalNVMeGB is the total NVMe instance storage, GB.
	LocalNVMeGB int
	// GPUName is the GPU model as Karpenter labels it (lower case, no
	// spaces); a type may have a GPU model with a GPU count of 0
	// (fractional GPUs, g6f).
	GPUName      string
	GPUMemoryMiB int64
	// Accelerator* describe Neuron or inference accelerators.
	AcceleratorName, AcceleratorManufacturer string
	Accelerators                             int
	// NeuronDevices and NeuronCores are the Neuron devices and their cores in total.
	NeuronDevices, NeuronCores int
	// EFAs is the maximum number of EFA interfaces.
	EFAs int
	// BranchENIs is the number of branch interfaces (pods with security groups).
	BranchENIs int
	// DefaultCardENIs is the network interfaces of the default network
	// card, which alone count for pods; ENIs when 0.
	DefaultCardENIs int
}

// MaxPodsENI is the EKS VPC CNI pod limit: ENIs of the default network
// card × (IPv4 per ENI − 1) + 2.
func (s Spec) MaxPodsENI() int { return s.DefaultENIs()*(s.IPv4PerENI-1) + 2 }

// DefaultENIs is the network interfaces of the default network card.
func (s Spec) DefaultENIs() int {
	if s.DefaultCardENIs > 0 {
		return s.DefaultCardENIs
	}
	return s.ENIs
}

// Columns are the CSV header names, in the order Write uses. Parse finds
// columns by name and ignores unknown ones; the first six are required.
var Columns = []string{"instance_type", "vcpu", "memory_mib", "arch", "on_demand_usd_per_hour",
	"family", "gpu", "gpu_manufacturer", "enis", "ipv4_per_eni"}

const requiredColumns = 5

// Parse reads a catalog CSV (the format of shared/data/ec2-us-east-1.csv).
// Errors name the line and column.
func Parse(r io.Reader) ([]Spec, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("catalog header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	for _, c := range Columns[:requiredColumns] {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("catalog header: missing column %q", c)
		}
	}
	var out []Spec
	seen := map[string]bool{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("catalog line %d: %w", line, err)
		}
		s, err := parseRow(rec, col)
		if err != nil {
			return nil, fmt.Errorf("catalog line %d: %w", line, err)
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("catalog line %d: instance type %q appears twice", line, s.Name)
		}
		seen[s.Name] = true
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, errors.New("catalog: no instance types")
	}
	return out, nil
}

func parseRow(rec []string, col map[string]int) (Spec, error) {
	get := func(name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	var s Spec
	var err error
	num := func(name string, dst *int) {
		if v := get(name); v != "" && err == nil {
			if *dst, err = strconv.Atoi(v); err != nil || *dst < 0 {
				err = fmt.Errorf("column %s: %q is not a non-negative integer", name, v)
			}
		}
	}
	s.Name, s.Arch, s.GPUManufacturer = get("instance_type"), get("arch"), get("gpu_manufacturer")
	if s.Name == "" {
		return s, errors.New("column instance_type: empty")
	}
	s.Family, _, _ = strings.Cut(s.Name, ".")
	if f := get("family"); f != "" {
		s.Family = f
	}
	num("vcpu", &s.VCPU)
	num("gpu", &s.GPUs)
	num("enis", &s.ENIs)
	num("ipv4_per_eni", &s.IPv4PerENI)
	var mem int
	num("memory_mib", &mem)
	s.MemoryMiB = int64(mem)
	if err != nil {
		return s, err
	}
	if s.Arch != "amd64" && s.Arch != "arm64" {
		return s, fmt.Errorf("column arch: %q is neither amd64 nor arm64", s.Arch)
	}
	price := get("on_demand_usd_per_hour")
	if s.OnDemandPrice, err = strconv.ParseFloat(price, 64); err != nil || !(s.OnDemandPrice >= 0) || math.IsInf(s.OnDemandPrice, 0) {
		return s, fmt.Errorf("column on_demand_usd_per_hour: %q is not a non-negative price", price)
	}
	return s, nil
}

var highMemory = regexp.MustCompile(`^-[0-9]+tb`)

// ParseName splits an instance type name into the parts Karpenter's
// well-known labels carry: family and size (at the first dot), category
// (the family's leading letters) and generation (the digits right after
// the category, without leading zeros). Parts the name lacks are empty.
func ParseName(name string) (family, size, category, generation string) {
	family, size, ok := strings.Cut(name, ".")
	if !ok || family == "" || size == "" {
		return "", "", "", ""
	}
	i := 0
	for i < len(family) && family[i] >= 'a' && family[i] <= 'z' {
		i++
	}
	category = family[:i]
	// High-memory names put their size between category and generation
	// (u-3tb1: category u, generation 1), as Karpenter's pattern reads them.
	if m := highMemory.FindString(family[i:]); m != "" {
		i += len(m)
	}
	j := i
	for j < len(family) && family[j] >= '0' && family[j] <= '9' {
		j++
	}
	if len(category) > 0 && j > i {
		if g, err := strconv.Atoi(family[i:j]); err == nil {
			generation = strconv.Itoa(g)
		}
	}
	return family, size, category, generation
}
