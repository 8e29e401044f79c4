package ec2catalog

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestEmbedded(t *testing.T) {
	all := Embedded()
	if len(all) != 1101 {
		t.Fatalf("Embedded has %d types, want 1101", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].Name >= all[i].Name {
			t.Fatalf("not sorted at %s", all[i].Name)
		}
	}
	m5, ok := Lookup("m5.large")
	if !ok || m5.VCPU != 2 || m5.MemoryMiB != 8192 || m5.OnDemandPrice != 0.096 || m5.Arch != "amd64" || m5.MaxPodsENI() != 29 {
		t.Errorf("m5.large = %+v, %v", m5, ok)
	}
	if g, _ := Lookup("g4ad.xlarge"); g.GPUs != 1 || g.GPUManufacturer != "amd" {
		t.Errorf("g4ad.xlarge = %+v", g)
	}
	if p, _ := Lookup("p4d.24xlarge"); p.MaxPodsENI() != 737 || p.ENIs != 60 || p.EFAs != 4 || p.GPUName != "a100" || p.GPUMemoryMiB != 40960 {
		t.Errorf("p4d.24xlarge = %+v, want 737 pods from the default card's 15 of 60 ENIs", p)
	}
	if _, ok := Lookup("nope.large"); ok {
		t.Error("Lookup found nope.large")
	}
	all[0].Name = "changed"
	if Embedded()[0].Name == "changed" {
		t.Error("Embedded does not return a copy")
	}
}

// TestEmbeddedMatchesCSV checks that regenerating from the shared CSV gives
// the committed file byte for byte, and that it parses to the same specs.
func TestEmbeddedMatchesCSV(t *testing.T) {
	csvPath := filepath.Join("..", "..", "..", "shared", "data", "ec2-us-east-1.csv")
	f, err := os.Open(csvPath)
	if err != nil {
		t.Skipf("shared catalog not present: %v", err)
	}
	specs, err := Parse(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	refPath := filepath.Join("..", "..", "..", "shared", "data", "karpenter-reference-instance-types.json")
	rf, err := os.Open(refPath)
	if err != nil {
		t.Skipf("shared reference not present: %v", err)
	}
	ref, err := ParseReference(rf)
	rf.Close()
	if err != nil {
		t.Fatal(err)
	}
	if specs, err = ApplyReference(specs, ref); err != nil {
		t.Fatal(err)
	}
	emb := Embedded()
	if len(specs) != len(emb) {
		t.Fatalf("CSV has %d types, embedded %d", len(specs), len(emb))
	}
	for i := range specs {
		if specs[i] != emb[i] {
			t.Fatalf("CSV %+v != embedded %+v", specs[i], emb[i])
		}
	}
	if testing.Short() {
		t.Skip("-short: not running the generator")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out := filepath.Join(t.TempDir(), "zz.go")
	cmd := exec.Command("go", "run", "./gen", "-csv", csvPath, "-reference", refPath, "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("zz_generated_catalog.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("zz_generated_catalog.go is stale: run go generate ./internal/ec2catalog")
	}
}

func TestGeneratorPriceList(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: not running the generator")
	}
	dir := t.TempDir()
	csv := filepath.Join(dir, "mini.csv")
	if err := os.WriteFile(csv, []byte("instance_type,family,vcpu,memory_mib,gpu,arch,enis,ipv4_per_eni,max_pods,on_demand_usd_per_hour,gpu_manufacturer\n"+
		"m5.large,m5,2,8192,0,amd64,3,10,29,0.096,\nc5.large,c5,2,4096,0,amd64,3,10,29,0.085,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "zz.go")
	cmd := exec.Command("go", "run", "./gen", "-csv", csv, "-pricelist", "testdata/pricelist-offer.json", "-out", out, "-package", "mini")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, b)
	}
	got, _ := os.ReadFile(out)
	for _, want := range []string{"DO NOT EDIT", "package mini", `Name: "m5.large"`, "OnDemandPrice: 0.091}", "OnDemandPrice: 0.085}", "pricelist-offer.json"} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("generated file lacks %q:\n%s", want, got)
		}
	}
}
