package catalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

const header = "instance_type,family,vcpu,memory_mib,gpu,arch,enis,ipv4_per_eni,max_pods,on_demand_usd_per_hour,gpu_manufacturer\n"

func loadCSVString(t *testing.T, data string, opts Options) []*typesv1.InstanceType {
	t.Helper()
	types, err := Load("c.csv", strings.NewReader(data), opts)
	if err != nil {
		t.Fatal(err)
	}
	return types
}

func TestCSVRow(t *testing.T) {
	types := loadCSVString(t, header+
		"m5.large,m5,2,8192,0,amd64,3,10,29,0.096,\n"+
		"p3.8xlarge,p3,32,249856,4,amd64,8,30,234,12.24,nvidia\n"+
		"g4ad.xlarge,g4ad,4,16384,1,amd64,2,4,8,0.37853,amd\n"+
		"dl1.24xlarge,dl1,96,786432,8,amd64,60,50,2942,13.10904,habana\n"+
		"g9.xlarge,g9,4,16384,1,arm64,2,4,,1.0,\n"+
		"inf2.xlarge,inf2,4,16384,0,amd64,4,15,58,0.7582,\n"+
		"m7i-flex.large,m7i-flex,2,8192,0,amd64,3,10,29,0.09576,\n",
		Options{SpotPriceFactor: 0.35})
	if len(types) != 7 {
		t.Fatalf("%d types", len(types))
	}
	m5 := types[0]
	wantLabels := map[string]string{
		LabelInstanceType: "m5.large", LabelArch: "amd64", LabelOS: "linux",
		LabelFamily: "m5", LabelSize: "large", LabelCategory: "m", LabelGeneration: "5",
		LabelCPU: "2", LabelMemory: "8192",
	}
	if len(m5.Labels) != len(wantLabels) {
		t.Errorf("labels = %v", m5.Labels)
	}
	for k, v := range wantLabels {
		if m5.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, m5.Labels[k], v)
		}
	}
	if m5.Capacity["cpu"] != "2" || m5.Capacity["memory"] != "8192Mi" || m5.Capacity["pods"] != "29" || len(m5.Capacity) != 3 {
		t.Errorf("capacity = %v", m5.Capacity)
	}
	if m5.Allocatable["memory"] != "8192Mi" {
		t.Errorf("allocatable = %v", m5.Allocatable)
	}
	if len(m5.Offerings) != 6 {
		t.Fatalf("offerings = %v", m5.Offerings)
	}
	for i, o := range m5.Offerings {
		wantZone := DefaultZones[i%3]
		wantCT, wantPrice := "on-demand", 0.096
		if i >= 3 {
			wantCT, wantPrice = "spot", 0.0336
		}
		if o.Zone != wantZone || o.CapacityType != wantCT || o.PricePerHour != wantPrice || !o.Available {
			t.Errorf("offering %d = %v", i, o)
		}
	}
	p3 := types[1]
	if p3.Capacity["nvidia.com/gpu"] != "4" || p3.Labels[LabelGPUCount] != "4" || p3.Labels[LabelGPUManufacturer] != "nvidia" || p3.Labels[LabelCategory] != "p" {
		t.Errorf("p3 = %v %v", p3.Capacity, p3.Labels)
	}
	if g := types[2]; g.Capacity["amd.com/gpu"] != "1" || g.Labels[LabelGPUManufacturer] != "amd" || g.Labels[LabelCategory] != "g" || g.Labels[LabelGeneration] != "4" {
		t.Errorf("g4ad = %v %v", g.Capacity, g.Labels)
	}
	if d := types[3]; d.Capacity["habana.ai/gaudi"] != "8" || d.Labels[LabelGPUManufacturer] != "habana" {
		t.Errorf("dl1 = %v %v", d.Capacity, d.Labels)
	}
	if g := types[4]; g.Capacity["nvidia.com/gpu"] != "1" || g.Capacity["pods"] != "110" || g.Labels[LabelGPUManufacturer] != "nvidia" || g.Labels[LabelArch] != "arm64" {
		t.Errorf("g9 = %v %v", g.Capacity, g.Labels)
	}
	if i := types[5]; i.Labels[LabelCategory] != "inf" || i.Labels[LabelGeneration] != "2" || i.Labels[LabelGPUCount] != "" {
		t.Errorf("inf2 = %v", i.Labels)
	}
	if f := types[6]; f.Labels[LabelFamily] != "m7i-flex" || f.Labels[LabelCategory] != "m" || f.Labels[LabelGeneration] != "7" {
		t.Errorf("m7i-flex = %v", f.Labels)
	}
}

func TestCSVOptions(t *testing.T) {
	types := loadCSVString(t, "instance_type,vcpu,memory_mib,arch,on_demand_usd_per_hour,ephemeral_storage_gib\nm5.large,2,8192,amd64,0.096,20\n",
		Options{Zones: []string{"eu-west-1a"}, Overhead: OverheadEKS})
	it := types[0]
	if len(it.Offerings) != 1 || it.Offerings[0].Zone != "eu-west-1a" || it.Offerings[0].CapacityType != "on-demand" {
		t.Errorf("offerings = %v", it.Offerings)
	}
	if it.Capacity["ephemeral-storage"] != "20Gi" || it.Capacity["pods"] != "110" {
		t.Errorf("capacity = %v", it.Capacity)
	}
	// EKS: cpu 2000m - (60 + 10) = 1930m; memory 8192Mi - (11*110+255)Mi - 100Mi = 6627Mi;
	// ephemeral 20Gi - 1Gi - 2Gi = 17Gi.
	want := map[string]string{"cpu": "1930m", "memory": "6627Mi", "pods": "110", "ephemeral-storage": "17Gi"}
	for k, v := range want {
		if it.Allocatable[k] != v {
			t.Errorf("allocatable %s = %s, want %s", k, it.Allocatable[k], v)
		}
	}
}

func TestEKSKubeReservedCPU(t *testing.T) {
	for _, tc := range []struct{ cores, want int64 }{
		{1, 60}, {2, 70}, {4, 80}, {8, 90}, {16, 110}, {96, 310},
	} {
		if got := eksKubeReservedCPU(tc.cores * 1000); got != tc.want {
			t.Errorf("%d cores: %dm, want %dm", tc.cores, got, tc.want)
		}
	}
}

func TestCSVErrors(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"empty", "", "c.csv: the catalog is empty"},
		{"header only", header, "c.csv: the catalog has no instance types"},
		{"missing column", "instance_type,vcpu,arch,on_demand_usd_per_hour\nm5.large,2,amd64,0.1\n", `c.csv: line 1: missing column "memory_mib"`},
		{"bad vcpu", header + "m5.large,m5,two,8192,0,amd64,3,10,29,0.096,\n", `c.csv: line 2, column vcpu: "two" is not a whole number`},
		{"zero memory", header + "m5.large,m5,2,0,0,amd64,3,10,29,0.096,\n", "c.csv: line 2, column memory_mib: must be above 0"},
		{"bad price", header + "m5.large,m5,2,8192,0,amd64,3,10,29,cheap,\n", `c.csv: line 2, column on_demand_usd_per_hour: "cheap" is not a price`},
		{"negative price", header + "m5.large,m5,2,8192,0,amd64,3,10,29,-1,\n", `column on_demand_usd_per_hour: "-1" is not a price`},
		{"missing price", header + "m5.large,m5,2,8192,0,amd64,3,10,29,,\n", "column on_demand_usd_per_hour: missing value"},
		{"bad gpu", header + "m5.large,m5,2,8192,-1,amd64,3,10,29,0.1,\n", `line 2, column gpu: "-1" is not a whole number`},
		{"bad max pods", header + "m5.large,m5,2,8192,0,amd64,3,10,1.5,0.1,\n", `line 2, column max_pods: "1.5" is not a whole number`},
		{"bad manufacturer", header + "x.large,x,2,8192,1,amd64,3,10,29,0.1,intel\n", `line 2, column gpu_manufacturer: unknown manufacturer "intel"`},
		{"missing name", header + ",m5,2,8192,0,amd64,3,10,29,0.096,\n", "line 2, column instance_type: missing value"},
		{"duplicate", header + "m5.large,m5,2,8192,0,amd64,3,10,29,0.096,\nm5.large,m5,2,8192,0,amd64,3,10,29,0.096,\n", `c.csv: line 3: instance type "m5.large" is listed twice (also on line 2)`},
		{"quote", header + "\"m5.large,m5\n", "c.csv: line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("c.csv", strings.NewReader(tc.data), Options{})
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error = %q, want %q", err, tc.want)
			}
		})
	}
	if _, err := Load("c.csv", strings.NewReader(header), Options{SpotPriceFactor: -1}); err == nil {
		t.Error("negative spot factor accepted")
	}
	if _, err := Load("c.csv", strings.NewReader(header), Options{Overhead: "gke"}); err == nil {
		t.Error("unknown overhead accepted")
	}
}

func TestSharedCatalog(t *testing.T) {
	path := filepath.Join("..", "..", "..", "shared", "data", "ec2-us-east-1.csv")
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("%s: %v", path, err)
	}
	defer f.Close()
	types, err := Load(path, f, Options{SpotPriceFactor: 0.3, Overhead: OverheadEKS})
	if err != nil {
		t.Fatal(err)
	}
	if len(types) != 1101 {
		t.Errorf("%d instance types, want 1101", len(types))
	}
	for _, it := range types {
		if len(it.Offerings) != 6 || it.Labels[LabelFamily] == "" || it.Labels[LabelCategory] == "" {
			t.Errorf("%s: %v %v", it.Name, it.Labels, it.Offerings)
		}
	}
}

func TestExampleCatalog(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "examples", "catalog.csv"))
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	types, err := Load("catalog.csv", f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(types) < 30 || len(types) > 60 {
		t.Errorf("%d types", len(types))
	}
}

func TestStructured(t *testing.T) {
	const doc = `
- name: m5.large
  capacity: {cpu: "2", memory: 8Gi, pods: "29"}
  labels: {kubernetes.io/arch: amd64, custom: x}
  offerings:
    - {zone: us-east-1a, capacityType: spot, pricePerHour: 0.04}
    - {zone: us-east-1b, capacityType: on-demand, pricePerHour: 0.096, available: false}
- name: c5.large
  capacity: {cpu: "2", memory: 4Gi}
  allocatable: {cpu: 1900m, memory: 3Gi}
  offerings: [{zone: us-east-1a, capacityType: on-demand, pricePerHour: 0.085}]
`
	types, err := Load("cat.yaml", strings.NewReader(doc), Options{Overhead: OverheadEKS})
	if err != nil {
		t.Fatal(err)
	}
	m5 := types[0]
	if !m5.Offerings[0].Available || m5.Offerings[1].Available {
		t.Errorf("available = %v", m5.Offerings)
	}
	if m5.Labels["custom"] != "x" || m5.Labels[LabelFamily] != "m5" || m5.Labels[LabelMemory] != "8192" || m5.Labels[LabelOS] != "linux" {
		t.Errorf("labels = %v", m5.Labels)
	}
	if m5.Allocatable["cpu"] != "1930m" {
		t.Errorf("allocatable from overhead = %v", m5.Allocatable)
	}
	if types[1].Allocatable["memory"] != "3Gi" {
		t.Errorf("explicit allocatable = %v", types[1].Allocatable)
	}
	// The same in JSON, wrapped.
	if _, err := Load("cat.json", strings.NewReader(`{"instanceTypes":[{"name":"a.large","capacity":{"cpu":"1"},"offerings":[{"zone":"z","capacityType":"spot","pricePerHour":1}]}]}`), Options{}); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"no offerings", "- {name: a.large, capacity: {cpu: 1}}\n", "cat.yaml: item 1 (a.large): offerings: at least one offering is required"},
		{"bad capacity type", "- {name: a.large, capacity: {cpu: 1}, offerings: [{zone: z, capacityType: cheap}]}\n", `offerings[0].capacityType: "cheap"`},
		{"bad quantity", "- {name: a.large, capacity: {cpu: lots}, offerings: [{zone: z, capacityType: spot}]}\n", `capacity.cpu: invalid quantity "lots"`},
		{"unknown field", "- {name: a.large, vcpu: 2}\n", "cat.yaml: item 1"},
		{"duplicate", "- {name: a.large, capacity: {cpu: 1}, offerings: [{zone: z, capacityType: spot}]}\n- {name: a.large, capacity: {cpu: 1}, offerings: [{zone: z, capacityType: spot}]}\n", `instance type "a.large" is listed twice`},
		{"empty list", "[]\n", "cat.yaml: the catalog has no instance types"},
		{"not a list", "name: x\n", "cat.yaml:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("cat.yaml", strings.NewReader(tc.data), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestFormatDetection(t *testing.T) {
	csv := "instance_type,vcpu,memory_mib,arch,on_demand_usd_per_hour\nm5.large,2,8192,amd64,0.096\n"
	if _, err := Load("catalog", strings.NewReader(csv), Options{}); err != nil {
		t.Errorf("CSV without extension: %v", err)
	}
	yml := "- {name: a.large, capacity: {cpu: 1}, offerings: [{zone: z, capacityType: spot}]}\n"
	if _, err := Load("catalog", strings.NewReader(yml), Options{}); err != nil {
		t.Errorf("YAML without extension: %v", err)
	}
}

func FuzzLoadCSV(f *testing.F) {
	f.Add(header + "m5.large,m5,2,8192,0,amd64,3,10,29,0.096,\n")
	f.Add(header + "p3.8xlarge,p3,32,249856,4,amd64,8,30,234,12.24,nvidia\n")
	f.Add("instance_type,vcpu,memory_mib,arch,on_demand_usd_per_hour\n\"a\"\"b\",1,1,x,0\n")
	if b, err := os.ReadFile(filepath.Join("..", "..", "examples", "catalog.csv")); err == nil {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, data string) {
		for _, opts := range []Options{{}, {SpotPriceFactor: 0.5, Overhead: OverheadEKS}} {
			types, err := Load("f.csv", strings.NewReader(data), opts)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "f.csv") {
					t.Fatalf("error does not name the file: %v", err)
				}
				continue
			}
			seen := map[string]bool{}
			for _, it := range types {
				if it.Name == "" || seen[it.Name] || len(it.Offerings) == 0 {
					t.Fatalf("bad type %v", it)
				}
				seen[it.Name] = true
			}
		}
	})
}
