// Package peerbench runs Flotilla and Karpenter's KWOK provider side by side
// on fresh local control planes with one instance-type catalog, one
// NodePool and one workload, and measures both from the API server alone
// with the same Observer (see docs/bench.md, "Live side by side").
package peerbench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
)

// Region and Zones are where both sides offer every type.
const Region = "us-east-1"

// Zones are the three zones of Region both sides offer every type in.
var Zones = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

// SpotDiscount is ec2sim's spot price as a fraction of on-demand (its
// default); the KWOK file carries the same per-zone spot prices.
const SpotDiscount = 0.3

// Capacity types, as the karpenter.sh/capacity-type label spells them.
const (
	OnDemand = "on-demand"
	Spot     = "spot"
)

// KWOKKubeReserved is what Karpenter's KWOK provider subtracts from every
// type's resources (kwok/cloudprovider/helpers.go, newInstanceType): 100m
// CPU and 10Mi of memory. The KWOK file adds it back onto Flotilla's
// allocatable so both sides plan with the same allocatable.
var KWOKKubeReserved = corev1.ResourceList{
	corev1.ResourceCPU:    resource.MustParse("100m"),
	corev1.ResourceMemory: resource.MustParse("10Mi"),
}

// selected is the subset both sides offer: current-generation (5 to 7)
// compute, general and memory optimised families, Intel, AMD or Graviton,
// no GPUs, no bare metal, at most 96 vCPUs.
var selected = regexp.MustCompile(`^[cmr][5-7][adgin]*\.`)

// Select picks the benchmark's types from the shared catalog, sorted by name.
func Select(specs []ec2catalog.Spec) []ec2catalog.Spec {
	var out []ec2catalog.Spec
	for _, s := range specs {
		if selected.MatchString(s.Name) && s.GPUs == 0 && s.VCPU <= 96 && !ec2catalog.IsBareMetal(s.Name) && s.OnDemandPrice > 0 {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b ec2catalog.Spec) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// LoadShared reads the shared catalog CSV (shared/data/ec2-us-east-1.csv)
// and selects the benchmark's types.
func LoadShared(path string) ([]ec2catalog.Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	specs, err := ec2catalog.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Select(specs), nil
}

// WriteEC2SimCSV writes specs in the CSV format `flotilla ec2sim --catalog` reads.
func WriteEC2SimCSV(w io.Writer, specs []ec2catalog.Spec) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ec2catalog.Columns); err != nil {
		return err
	}
	for _, s := range specs {
		rec := []string{s.Name, strconv.Itoa(s.VCPU), strconv.FormatInt(s.MemoryMiB, 10), s.Arch,
			strconv.FormatFloat(s.OnDemandPrice, 'f', -1, 64), s.Family, strconv.Itoa(s.GPUs),
			s.GPUManufacturer, strconv.Itoa(s.ENIs), strconv.Itoa(s.IPv4PerENI)}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// KWOKRequirement is a corev1.NodeSelectorRequirement as the KWOK file spells it.
type KWOKRequirement = corev1.NodeSelectorRequirement

// KWOKOffering is one offering of the KWOK instance-types file: the shape
// sigs.k8s.io/karpenter v1.15.0 reads (KWOKOffering, an embedded
// cloudprovider.Offering whose JSON fields keep their Go names, and the
// requirements that pick zone and capacity type).
type KWOKOffering struct {
	Price        float64           `json:"Price"`
	Available    bool              `json:"Available"`
	Requirements []KWOKRequirement `json:"Requirements"`
}

// KWOKType is one entry of the file (InstanceTypeOptions there).
type KWOKType struct {
	Name             string              `json:"name"`
	Offerings        []KWOKOffering      `json:"offerings"`
	Architecture     string              `json:"architecture"`
	OperatingSystems []corev1.OSName     `json:"operatingSystems"`
	Resources        corev1.ResourceList `json:"resources"`
}

// Offering is one (type, zone, capacity type) with its hourly price.
type Offering struct {
	Type, Zone, CapacityType string
}

// Catalog is the one instance-type list both sides are given.
type Catalog struct {
	Specs []ec2catalog.Spec
	// Allocatable is what Flotilla's launcher (and ec2sim's node bridge)
	// derive for each type with default kubelet settings.
	Allocatable map[string]corev1.ResourceList
	// Prices are every offering's $/hour: on-demand from the catalog,
	// spot as ec2sim computes it (per zone).
	Prices map[Offering]float64
}

// NewCatalog derives allocatable and prices for specs.
func NewCatalog(specs []ec2catalog.Spec) (*Catalog, error) {
	sim := ec2sim.New(ec2sim.Options{Catalog: specs, Region: Region, Zones: Zones, SpotDiscount: SpotDiscount})
	c := &Catalog{Specs: specs, Allocatable: map[string]corev1.ResourceList{}, Prices: map[Offering]float64{}}
	for _, s := range specs {
		it, err := instancetype.Convert(instancetype.InfoFromSpec(s), nil, nil, 0)
		if err != nil {
			return nil, fmt.Errorf("instance type %s: %w", s.Name, err)
		}
		alloc := corev1.ResourceList{}
		for k, v := range it.GetAllocatable() {
			q, err := resource.ParseQuantity(v)
			if err != nil {
				return nil, fmt.Errorf("instance type %s allocatable %s=%q: %w", s.Name, k, v, err)
			}
			alloc[corev1.ResourceName(k)] = q
		}
		c.Allocatable[s.Name] = alloc
		for _, z := range Zones {
			c.Prices[Offering{s.Name, z, OnDemand}] = s.OnDemandPrice
			p, ok := sim.SpotPrice(s.Name, z)
			if !ok {
				return nil, fmt.Errorf("ec2sim has no spot price for %s in %s", s.Name, z)
			}
			c.Prices[Offering{s.Name, z, Spot}] = p
		}
	}
	return c, nil
}

// Price is the hourly price of an offering; ok is false for one outside the catalog.
func (c *Catalog) Price(instanceType, zone, capacityType string) (float64, bool) {
	p, ok := c.Prices[Offering{instanceType, zone, capacityType}]
	return p, ok
}

// KWOKTypes is the catalog as Karpenter's KWOK provider reads it: each
// type's resources are Flotilla's allocatable plus KWOKKubeReserved (which
// KWOK subtracts again), with one on-demand and one spot offering per zone
// at the same prices.
func (c *Catalog) KWOKTypes() []KWOKType {
	out := make([]KWOKType, 0, len(c.Specs))
	for _, s := range c.Specs {
		res := c.Allocatable[s.Name].DeepCopy()
		for k, v := range KWOKKubeReserved {
			q := res[k]
			q.Add(v)
			res[k] = q
		}
		t := KWOKType{Name: s.Name, Architecture: s.Arch, OperatingSystems: []corev1.OSName{corev1.Linux}, Resources: res}
		for _, z := range Zones {
			for _, ct := range []string{OnDemand, Spot} {
				t.Offerings = append(t.Offerings, KWOKOffering{
					Price: c.Prices[Offering{s.Name, z, ct}], Available: true,
					Requirements: []KWOKRequirement{
						{Key: "karpenter.sh/capacity-type", Operator: corev1.NodeSelectorOpIn, Values: []string{ct}},
						{Key: corev1.LabelTopologyZone, Operator: corev1.NodeSelectorOpIn, Values: []string{z}},
					},
				})
			}
		}
		out = append(out, t)
	}
	return out
}

// WriteKWOKFile writes the KWOK provider's --instance-types-file-path file.
func (c *Catalog) WriteKWOKFile(path string) error {
	data, err := json.MarshalIndent(c.KWOKTypes(), "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// WriteEC2SimFile writes ec2sim's --catalog file.
func (c *Catalog) WriteEC2SimFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteEC2SimCSV(f, c.Specs); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
