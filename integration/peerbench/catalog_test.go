package peerbench

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/flotilla-io/flotilla/integration/cluster"
	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/pricingsim"
	"github.com/flotilla-io/flotilla/internal/launcher/instancetype"
	"github.com/flotilla-io/flotilla/internal/workload"
)

// view is one side's picture of a type: allocatable CPU, memory, pods and
// ephemeral storage, architecture, and the price of every offering.
type view struct {
	arch   string
	alloc  map[corev1.ResourceName]int64 // milli-CPU, bytes, pods, bytes
	prices map[Offering]float64
}

func testCatalog(t *testing.T) *Catalog {
	t.Helper()
	var specs []ec2catalog.Spec
	if dir, ok := workload.FindSharedData(); ok {
		var err error
		if specs, err = LoadShared(filepath.Join(dir, "ec2-us-east-1.csv")); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Log("shared/data not found: selecting from the embedded catalog (built from the same CSV)")
		specs = Select(ec2catalog.Embedded())
	}
	if len(specs) < 200 || len(specs) > 600 {
		t.Fatalf("selected %d types, want a few hundred", len(specs))
	}
	c, err := NewCatalog(specs)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func allocOf(l corev1.ResourceList) map[corev1.ResourceName]int64 {
	out := map[corev1.ResourceName]int64{}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage} {
		q, ok := l[r]
		if !ok {
			continue
		}
		if r == corev1.ResourceCPU {
			out[r] = q.MilliValue()
		} else {
			out[r] = q.Value()
		}
	}
	return out
}

// flotillaView serves the ec2sim catalog file through a real ec2sim (EC2
// and Pricing APIs) and reads it with the launcher's instance-type provider.
func flotillaView(t *testing.T, csvPath string) map[string]view {
	t.Helper()
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := ec2catalog.Parse(f)
	_ = f.Close()
	if err != nil {
		t.Fatal(err)
	}
	sim := ec2sim.New(ec2sim.Options{Catalog: specs, Region: Region, Zones: Zones, SpotDiscount: SpotDiscount})
	sim.JSONHandlers["AWSPriceListService"] = pricingsim.New(specs, Region)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: Region, Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""), HTTPClient: ec2sim.HTTPClient()}
	p := instancetype.New(instancetype.Options{
		EC2:     ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(srv.URL) }),
		Pricing: pricing.NewFromConfig(cfg, func(o *pricing.Options) { o.BaseEndpoint = aws.String(srv.URL) }),
		Region:  Region,
	})
	its, err := p.List(context.Background(), Zones, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]view{}
	for _, it := range its {
		v := view{arch: it.GetLabels()[corev1.LabelArchStable], alloc: map[corev1.ResourceName]int64{}, prices: map[Offering]float64{}}
		l := corev1.ResourceList{}
		for k, s := range it.GetAllocatable() {
			l[corev1.ResourceName(k)] = resource.MustParse(s)
		}
		v.alloc = allocOf(l)
		for _, o := range it.GetOfferings() {
			if o.GetAvailable() {
				v.prices[Offering{it.GetName(), o.GetZone(), o.GetCapacityType()}] = o.GetPricePerHour()
			}
		}
		out[it.GetName()] = v
	}
	return out
}

// kwokFileView reads the KWOK file as the v1.15.0 provider does, by the
// JSON keys its InstanceTypeOptions and KWOKOffering carry, and subtracts
// its fixed overhead. It checks the keys by name, so a file in an older
// shape (which the provider silently drops) fails here.
func kwokFileView(t *testing.T, path string) map[string]view {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	out := map[string]view{}
	for _, entry := range raw {
		for _, key := range []string{"name", "offerings", "architecture", "operatingSystems", "resources"} {
			if _, ok := entry[key]; !ok {
				t.Fatalf("KWOK entry lacks %q: %v", key, entry)
			}
		}
		var name, arch string
		var res corev1.ResourceList
		var offs []map[string]json.RawMessage
		for key, dst := range map[string]any{"name": &name, "architecture": &arch, "resources": &res, "offerings": &offs} {
			if err := json.Unmarshal(entry[key], dst); err != nil {
				t.Fatalf("KWOK entry %s: %v", key, err)
			}
		}
		for k, v := range KWOKKubeReserved {
			q := res[k]
			q.Sub(v)
			res[k] = q
		}
		v := view{arch: arch, alloc: allocOf(res), prices: map[Offering]float64{}}
		for _, o := range offs {
			var price float64
			var reqs []corev1.NodeSelectorRequirement
			if err := json.Unmarshal(o["Price"], &price); err != nil {
				t.Fatalf("%s offering Price: %v", name, err)
			}
			if err := json.Unmarshal(o["Requirements"], &reqs); err != nil {
				t.Fatalf("%s offering Requirements: %v", name, err)
			}
			off := Offering{Type: name}
			for _, r := range reqs {
				switch r.Key {
				case corev1.LabelTopologyZone:
					off.Zone = strings.Join(r.Values, ",")
				case "karpenter.sh/capacity-type":
					off.CapacityType = strings.Join(r.Values, ",")
				}
			}
			v.prices[off] = price
		}
		out[name] = v
	}
	return out
}

// kwokProviderView runs Karpenter's own reader of the file (kwoktypes,
// built by hack/peerbench/build.sh with sigs.k8s.io/karpenter v1.15.0).
func kwokProviderView(t *testing.T, path string) map[string]view {
	t.Helper()
	root, err := cluster.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Building Karpenter takes minutes (about 20 on a loaded 2-core
	// machine), too long for every test run: the subtest uses the binary
	// make peer-bench built, and builds it only when asked.
	args := []string{filepath.Join(root, "hack", "peerbench", "build.sh"), "--types"}
	if os.Getenv("FLOTILLA_PEERBENCH_BUILD") != "1" {
		args = append(args, "--if-built")
	}
	bin, err := exec.Command("bash", args...).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 3 {
		t.Skip("Karpenter's KWOK provider is not built on this machine: make peer-bench builds it, or FLOTILLA_PEERBENCH_BUILD=1 lets this test build it")
	}
	if err != nil {
		t.Skipf("peer binary not buildable: hack/peerbench/build.sh: %v: %s", err, stderrOf(err))
	}
	data, err := exec.Command(strings.TrimSpace(string(bin)), path).Output()
	if err != nil {
		t.Fatalf("kwoktypes: %v: %s", err, stderrOf(err))
	}
	var its []struct {
		Name        string              `json:"name"`
		Arch        []string            `json:"arch"`
		Allocatable corev1.ResourceList `json:"allocatable"`
		Offerings   []struct {
			Zone, CapacityType string
			Price              float64
			Available          bool
		} `json:"offerings"`
	}
	if err := json.Unmarshal(data, &its); err != nil {
		t.Fatal(err)
	}
	out := map[string]view{}
	for _, it := range its {
		v := view{arch: strings.Join(it.Arch, ","), alloc: allocOf(it.Allocatable), prices: map[Offering]float64{}}
		for _, o := range it.Offerings {
			if o.Available {
				v.prices[Offering{it.Name, o.Zone, o.CapacityType}] = o.Price
			}
		}
		out[it.Name] = v
	}
	return out
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

func compareViews(t *testing.T, c *Catalog, flotilla, karpenter map[string]view) {
	t.Helper()
	if len(flotilla) != len(c.Specs) || len(karpenter) != len(c.Specs) {
		t.Fatalf("types: flotilla %d, karpenter %d, catalog %d", len(flotilla), len(karpenter), len(c.Specs))
	}
	names := make([]string, 0, len(flotilla))
	for n := range flotilla {
		names = append(names, n)
	}
	sort.Strings(names)
	bad := 0
	for _, n := range names {
		f, k := flotilla[n], karpenter[n]
		if k.alloc == nil {
			t.Errorf("%s: Karpenter does not see it", n)
			bad++
			continue
		}
		if f.arch != k.arch {
			t.Errorf("%s: arch flotilla %q, karpenter %q", n, f.arch, k.arch)
			bad++
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage} {
			if f.alloc[r] == 0 || f.alloc[r] != k.alloc[r] {
				t.Errorf("%s: allocatable %s flotilla %d, karpenter %d", n, r, f.alloc[r], k.alloc[r])
				bad++
			}
		}
		if len(f.prices) != len(Zones)*2 || len(k.prices) != len(f.prices) {
			t.Errorf("%s: offerings flotilla %v, karpenter %v", n, f.prices, k.prices)
			bad++
		}
		for o, p := range f.prices {
			kp, ok := k.prices[o]
			if !ok || math.Abs(kp-p) > 1e-9 || p <= 0 {
				t.Errorf("%s: %s/%s price flotilla %g, karpenter %g (offered %v)", n, o.Zone, o.CapacityType, p, kp, ok)
				bad++
			}
			if cp, _ := c.Price(o.Type, o.Zone, o.CapacityType); math.Abs(cp-p) > 1e-9 {
				t.Errorf("%s: %s/%s price %g, the observer charges %g", n, o.Zone, o.CapacityType, p, cp)
				bad++
			}
		}
		if bad > 20 {
			t.Fatal("too many differences")
		}
	}
}

// TestCatalogBothSidesSeeTheSame writes the one catalog in both formats and
// checks that Flotilla (its launcher reading a real ec2sim) and Karpenter's
// KWOK provider (its file format, and its own code when it builds) see the
// same types, architectures, allocatable, zones, capacity types and prices.
func TestCatalogBothSidesSeeTheSame(t *testing.T) {
	c := testCatalog(t)
	dir := t.TempDir()
	csvPath, kwokPath := filepath.Join(dir, "catalog.csv"), filepath.Join(dir, "instance-types.json")
	if err := c.WriteEC2SimFile(csvPath); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteKWOKFile(kwokPath); err != nil {
		t.Fatal(err)
	}
	flotilla := flotillaView(t, csvPath)
	t.Run("file", func(t *testing.T) { compareViews(t, c, flotilla, kwokFileView(t, kwokPath)) })
	t.Run("karpenter-code", func(t *testing.T) { compareViews(t, c, flotilla, kwokProviderView(t, kwokPath)) })
}
