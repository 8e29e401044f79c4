package main

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/planner"
)

// csvTypeNames are the instance types of examples/catalog.csv.
func csvTypeNames(t *testing.T, dir string) map[string]bool {
	t.Helper()
	fh, err := os.Open(filepath.Join(dir, "catalog.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	specs, err := ec2catalog.Parse(fh)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, s := range specs {
		names[s.Name] = true
	}
	return names
}

// TestSolveEmbeddedCatalog: without --instance-types, solve plans the
// example workload on real EC2 types of the embedded catalog, priced at
// the catalog's on-demand price and 0.3x for spot, in us-east-1's zones,
// honouring the NodePools' karpenter.k8s.aws requirements.
func TestSolveEmbeddedCatalog(t *testing.T) {
	dir := examplesDir(t)
	code, stdout, stderr := runCLI("solve", "--pods", filepath.Join(dir, "pods.yaml"), "--nodepools", filepath.Join(dir, "nodepools.yaml"), "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if stderr != "" {
		t.Errorf("stderr = %q", stderr)
	}
	var out Output
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Unschedulable) != 0 {
		t.Errorf("unschedulable: %+v", out.Unschedulable)
	}
	if len(out.NodeClaims) == 0 {
		t.Fatal("no node claims")
	}
	inCSV := csvTypeNames(t, dir)
	zones, _ := ec2catalog.RegionZones("us-east-1")
	pods, spot, beyondCSV := 0, 0, 0
	for _, nc := range out.NodeClaims {
		pods += len(nc.Pods)
		spec, ok := ec2catalog.Lookup(nc.InstanceType)
		if !ok {
			t.Errorf("claim on %q, not in the embedded catalog", nc.InstanceType)
			continue
		}
		if !contains(zones, nc.Zone) {
			t.Errorf("%s: zone %q not in %v", nc.InstanceType, nc.Zone, zones)
		}
		want := spec.OnDemandPrice
		switch nc.CapacityType {
		case "spot":
			spot++
			want = math.Max(math.Round(spec.OnDemandPrice*planner.DefaultSpotPriceFactor*1e4)/1e4, 0.0001)
		case "on-demand":
		default:
			t.Errorf("%s: capacity type %q", nc.InstanceType, nc.CapacityType)
		}
		if math.Abs(nc.PricePerHour-want) > 1e-9 {
			t.Errorf("%s %s: price %v, want %v", nc.InstanceType, nc.CapacityType, nc.PricePerHour, want)
		}
		for _, o := range nc.InstanceTypeOptions {
			if _, ok := ec2catalog.Lookup(o); !ok {
				t.Errorf("option %q not in the embedded catalog", o)
			}
			if !inCSV[o] {
				beyondCSV++
			}
		}
		switch nc.NodePool {
		case "gpu":
			if !strings.HasPrefix(nc.InstanceType, "p3.") || nc.CapacityType != "on-demand" {
				t.Errorf("gpu claim on %s %s", nc.InstanceType, nc.CapacityType)
			}
		case "team":
			// karpenter.k8s.aws/instance-family In [m5, c5, r5]
			if spec.Family != "m5" && spec.Family != "c5" && spec.Family != "r5" {
				t.Errorf("team claim on %s (family %s)", nc.InstanceType, spec.Family)
			}
		}
	}
	if pods != 14 {
		t.Errorf("%d pods on new nodes, want 14", pods)
	}
	if spot == 0 {
		t.Error("no spot claim: the embedded catalog should offer spot by default")
	}
	if beyondCSV == 0 {
		t.Error("every option is in examples/catalog.csv: the embedded catalog was not used")
	}
}

// TestSolveEmbeddedTypes: the request's instance types are the launcher's
// view of the whole embedded catalog (exactly what `flotilla plan` uses for
// an EC2NodeClass with defaults), with karpenter.k8s.aws labels and on-demand
// and spot offerings in each zone of the region.
func TestSolveEmbeddedTypes(t *testing.T) {
	dir := examplesDir(t)
	f, err := parseSolveFlags([]string{"--pods", filepath.Join(dir, "pods.yaml"), "--region", "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	in, err := loadInputs(f)
	if err != nil {
		t.Fatal(err)
	}
	types := in.req.InstanceTypes
	specs := ec2catalog.Embedded()
	if len(types) != len(specs) {
		t.Fatalf("%d instance types, want the %d of the embedded catalog", len(types), len(specs))
	}
	ref := &planner.CatalogTypes{Specs: specs, SpotPriceFactor: planner.DefaultSpotPriceFactor}
	want, err := ref.InstanceTypes(context.Background(), &awsv1.EC2NodeClass{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range types {
		if !proto.Equal(types[i], want[i]) {
			t.Fatalf("instance type %d (%s) differs from flotilla plan's:\n got %v\nwant %v", i, types[i].GetName(), types[i], want[i])
		}
	}
	var m5 bool
	for _, it := range types {
		if len(it.Offerings) != 6 {
			t.Errorf("%s: %d offerings, want on-demand and spot in 3 zones", it.Name, len(it.Offerings))
		}
		if it.Name != "m5.large" {
			continue
		}
		m5 = true
		for k, v := range map[string]string{
			"node.kubernetes.io/instance-type":      "m5.large",
			"karpenter.k8s.aws/instance-family":     "m5",
			"karpenter.k8s.aws/instance-size":       "large",
			"karpenter.k8s.aws/instance-category":   "m",
			"karpenter.k8s.aws/instance-generation": "5",
			"karpenter.k8s.aws/instance-cpu":        "2",
			"karpenter.k8s.aws/instance-memory":     "8192",
			"kubernetes.io/arch":                    "amd64",
		} {
			if got := it.Labels[k]; got != v {
				t.Errorf("m5.large label %s = %q, want %q", k, got, v)
			}
		}
		if it.Allocatable["pods"] != "29" {
			t.Errorf("m5.large allocatable pods %q, want 29 (ENI limit)", it.Allocatable["pods"])
		}
	}
	if !m5 {
		t.Error("m5.large missing")
	}
}

// TestSolveEmbeddedFlags: --spot-price-factor 0 removes spot, --zones
// narrows the region's zones.
func TestSolveEmbeddedFlags(t *testing.T) {
	dir := examplesDir(t)
	f, err := parseSolveFlags([]string{"--pods", filepath.Join(dir, "pods.yaml"), "--spot-price-factor", "0", "--zones", "us-east-1b"})
	if err != nil {
		t.Fatal(err)
	}
	in, err := loadInputs(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range in.req.InstanceTypes {
		if len(it.Offerings) != 1 || it.Offerings[0].CapacityType != "on-demand" || it.Offerings[0].Zone != "us-east-1b" {
			t.Fatalf("%s: offerings %v, want on-demand in us-east-1b only", it.Name, it.Offerings)
		}
	}
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
