package eksami

import (
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestParametersPinAndLatest(t *testing.T) {
	params := Parameters("1.30", "1.31")
	byID := map[string]AMI{}
	for _, a := range CatalogFor("1.30", "1.31") {
		if _, dup := byID[a.ID]; dup {
			t.Fatalf("duplicate image id %s", a.ID)
		}
		byID[a.ID] = a
	}
	cases := []struct {
		path    string
		name    string
		version string
	}{
		{"/aws/service/eks/optimized-ami/1.30/amazon-linux-2023/x86_64/standard/amazon-eks-node-al2023-x86_64-standard-1.30-v20240807/image_id", "amazon-eks-node-al2023-x86_64-standard-1.30-v20240807", "v20240807"},
		{"/aws/service/eks/optimized-ami/1.30/amazon-linux-2023/x86_64/standard/recommended/image_id", "amazon-eks-node-al2023-x86_64-standard-1.30-v20241011", "v20241011"},
		{"/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/arm64/standard/recommended/image_id", "amazon-eks-node-al2023-arm64-standard-1.31-v20241011", "v20241011"},
		{"/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/nvidia/amazon-eks-node-al2023-x86_64-nvidia-1.31-v20240903/image_id", "amazon-eks-node-al2023-x86_64-nvidia-1.31-v20240903", "v20240903"},
		{"/aws/service/eks/optimized-ami/1.30/amazon-linux-2/recommended/image_id", "amazon-eks-node-1.30-v20241011", "v20241011"},
		{"/aws/service/eks/optimized-ami/1.30/amazon-linux-2/amazon-eks-node-1.30-v20240807/image_id", "amazon-eks-node-1.30-v20240807", "v20240807"},
		{"/aws/service/eks/optimized-ami/1.30/amazon-linux-2-arm64/amazon-eks-arm64-node-1.30-v20240903/image_id", "amazon-eks-arm64-node-1.30-v20240903", "v20240903"},
		{"/aws/service/eks/optimized-ami/1.31/amazon-linux-2-gpu/recommended/image_id", "amazon-eks-gpu-node-1.31-v20241011", "v20241011"},
		{"/aws/service/bottlerocket/aws-k8s-1.30/x86_64/latest/image_id", "", "v1.25.0"},
		{"/aws/service/bottlerocket/aws-k8s-1.30/x86_64/1.20.5/image_id", "", "v1.20.5"},
		{"/aws/service/bottlerocket/aws-k8s-1.31/arm64/1.21.1/image_id", "", "v1.21.1"},
		{"/aws/service/bottlerocket/aws-k8s-1.31-nvidia/x86_64/latest/image_id", "", "v1.25.0"},
		{"/aws/service/bottlerocket/aws-k8s-1.31-nvidia/arm64/1.20.5/image_id", "", "v1.20.5"},
	}
	for _, c := range cases {
		id, ok := params[c.path]
		if !ok {
			t.Errorf("no parameter %s", c.path)
			continue
		}
		a := byID[id]
		if c.name != "" && a.Name != c.name {
			t.Errorf("%s -> %s (%s), want %s", c.path, id, a.Name, c.name)
		}
		if a.Version != c.version {
			t.Errorf("%s -> version %s, want %s", c.path, a.Version, c.version)
		}
	}
	br := byID[params["/aws/service/bottlerocket/aws-k8s-1.31/arm64/1.21.1/image_id"]]
	if !regexp.MustCompile(`^bottlerocket-aws-k8s-1\.31-aarch64-v1\.21\.1-[0-9a-f]{8}$`).MatchString(br.Name) || br.OwnerID != OwnerBottlerocket {
		t.Errorf("bottlerocket image = %+v", br)
	}
	for p := range params {
		if strings.Contains(p, "1.29") || strings.Contains(p, "1.32") {
			t.Errorf("unexpected version in %s", p)
		}
	}
	// 3 families x 3 releases x flavours (al2023 4, al2 3, bottlerocket 4)
	// per k8s version + latest per flavour.
	want := 2 * (3*4 + 3*3 + 3*4 + 4 + 3 + 4)
	if len(params) != want {
		t.Errorf("%d parameters, want %d", len(params), want)
	}
}

func TestDeterministicAndWellFormed(t *testing.T) {
	a, b := Catalog(), Catalog()
	if len(a) == 0 || len(a) != len(b) {
		t.Fatal("catalog size")
	}
	idRE := regexp.MustCompile(`^ami-[0-9a-f]{17}$`)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("not deterministic: %+v vs %+v", a[i], b[i])
		}
		if !idRE.MatchString(a[i].ID) {
			t.Errorf("bad id %q", a[i].ID)
		}
		if a[i].Family != FamilyBottlerocket && a[i].OwnerID != OwnerEKS {
			t.Errorf("owner of %s = %s", a[i].Name, a[i].OwnerID)
		}
	}
}

func TestFindAndPath(t *testing.T) {
	got, ok := Find(FamilyAL2023, "1.30", "v20240807", ArchX86_64, VariantStandard)
	if !ok || got.Name != "amazon-eks-node-al2023-x86_64-standard-1.30-v20240807" {
		t.Errorf("Find pinned = %+v", got)
	}
	latest, ok := Find(FamilyBottlerocket, "1.31", LatestVersion, ArchARM64, VariantNvidia)
	if !ok || latest.Version != "v1.25.0" {
		t.Errorf("Find latest = %+v", latest)
	}
	if br, ok := Find(FamilyBottlerocket, "1.31", "1.20.5", ArchX86_64, VariantStandard); !ok || br.Version != "v1.20.5" {
		t.Errorf("Find without v = %+v", br)
	}
	if _, ok := Find(FamilyAL2023, "1.30", "v20990101", ArchX86_64, VariantStandard); ok {
		t.Error("found a release that does not exist")
	}
	if _, err := Path(FamilyAL2, "1.30", ArchARM64, VariantNvidia, LatestVersion); err == nil {
		t.Error("al2 arm64 nvidia path: no error")
	}
	if _, err := Path("ubuntu", "1.30", ArchX86_64, VariantStandard, LatestVersion); err == nil {
		t.Error("unknown family: no error")
	}
	if p, _ := Path(FamilyBottlerocket, "1.30", ArchX86_64, VariantStandard, "v1.20.5"); p != "/aws/service/bottlerocket/aws-k8s-1.30/x86_64/1.20.5/image_id" {
		t.Errorf("bottlerocket path = %s", p)
	}
}

func TestSeedAndPublishNewer(t *testing.T) {
	params := map[string]string{}
	var images []AMI
	Seed(func(a AMI) { images = append(images, a) }, func(p, v string) { params[p] = v }, "1.30")
	if len(images) != len(CatalogFor("1.30")) {
		t.Fatalf("seeded %d images", len(images))
	}
	const rec = "/aws/service/eks/optimized-ami/1.30/amazon-linux-2023/x86_64/standard/recommended/image_id"
	old := params[rec]
	newer := Images(FamilyAL2023, "1.30", "v20241121", time.Date(2024, 11, 21, 0, 0, 0, 0, time.UTC))
	var order []string
	Publish(nil, func(p, v string) { params[p] = v; order = append(order, p) }, newer...)
	if params[rec] == old || params[rec] != newer[0].ID {
		t.Errorf("recommended not moved to the new release: %s", params[rec])
	}
	if !sort.StringsAreSorted(order) {
		t.Error("Publish does not set parameters in path order")
	}
	if params["/aws/service/eks/optimized-ami/1.30/amazon-linux-2023/x86_64/standard/amazon-eks-node-al2023-x86_64-standard-1.30-v20240807/image_id"] == "" {
		t.Error("old pinned release lost")
	}
}
