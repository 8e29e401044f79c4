package ec2catalog

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

func TestParsePriceListOfferFile(t *testing.T) {
	data, err := os.ReadFile("testdata/pricelist-offer.json")
	if err != nil {
		t.Fatal(err)
	}
	products, err := ParsePriceList(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(products) != 8 {
		t.Fatalf("got %d products, want 8", len(products))
	}
	prices := OnDemandPrices(products, "us-east-1")
	want := map[string]float64{"m5.large": 0.091, "t3.nano": 0.0052, "m6g.large": 0.07, "x1.32xlarge": 13.338}
	if len(prices) != len(want) {
		t.Errorf("prices = %v, want %v", prices, want)
	}
	for k, v := range want {
		if prices[k] != v {
			t.Errorf("price of %s = %v, want %v (Windows, reservation and us-east-2 rows must be ignored)", k, prices[k], v)
		}
	}
	if p := OnDemandPrices(products, "us-east-2"); len(p) != 1 || p["m5.xlarge"] != 0.192 {
		t.Errorf("us-east-2 prices = %v", p)
	}

	specs := map[string]Spec{}
	for _, p := range products {
		if s, ok := p.Spec(); ok && p.IsLinuxOnDemand() {
			specs[s.Name] = s
		}
	}
	checks := []Spec{
		{Name: "m5.large", Family: "m5", VCPU: 2, MemoryMiB: 8192, Arch: "amd64", OnDemandPrice: 0.091},
		{Name: "t3.nano", Family: "t3", VCPU: 2, MemoryMiB: 512, Arch: "amd64", OnDemandPrice: 0.0052},
		{Name: "m6g.large", Family: "m6g", VCPU: 2, MemoryMiB: 8192, Arch: "arm64", OnDemandPrice: 0.07},
		{Name: "x1.32xlarge", Family: "x1", VCPU: 128, MemoryMiB: 1952 * 1024, Arch: "amd64", OnDemandPrice: 13.338},
	}
	for _, c := range checks {
		if got := specs[c.Name]; got != c {
			t.Errorf("Spec() = %+v, want %+v", got, c)
		}
	}
}

func TestParsePriceListGetProductsResponse(t *testing.T) {
	doc := `{"product":{"productFamily":"Compute Instance","attributes":{"instanceType":"c5.large","vcpu":"2","memory":"4 GiB","gpu":"NA",` +
		`"operatingSystem":"Linux","tenancy":"Shared","preInstalledSw":"NA","capacitystatus":"Used","location":"US East (N. Virginia)"},"sku":"X1"},` +
		`"serviceCode":"AmazonEC2","terms":{"OnDemand":{"X1.JRTCKXETXF":{"offerTermCode":"JRTCKXETXF","sku":"X1","priceDimensions":` +
		`{"X1.JRTCKXETXF.6YS6EN2CT7":{"unit":"Hrs","pricePerUnit":{"USD":"0.0850000000"}}}}}},"version":"1","publicationDate":"2026-08-01T00:00:00Z"}`
	enc, _ := json.Marshal(doc)
	resp := `{"FormatVersion":"aws_v1","NextToken":null,"PriceList":[` + string(enc) + `]}`
	for name, input := range map[string]string{
		"response":      resp,
		"string array":  "[" + string(enc) + "]",
		"object array":  "[" + doc + "]",
		"json lines":    doc + "\n" + doc + "\n",
		"single object": doc,
	} {
		products, err := ParsePriceList([]byte(input))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(products) == 0 {
			t.Fatalf("%s: no products", name)
		}
		p := OnDemandPrices(products, "us-east-1")
		if p["c5.large"] != 0.085 {
			t.Errorf("%s: prices = %v", name, p)
		}
	}
	for _, bad := range []string{"", "{}", "[1]", `{"product":{}}`, "{"} {
		if _, err := ParsePriceList([]byte(bad)); err == nil {
			t.Errorf("ParsePriceList(%q): no error", bad)
		}
	}
}

func TestMergePrices(t *testing.T) {
	specs := []Spec{{Name: "m5.large", OnDemandPrice: 0.096}, {Name: "t3.nano", OnDemandPrice: 0.0052}, {Name: "c5.large", OnDemandPrice: 0.085}}
	merged, changed := MergePrices(specs, map[string]float64{"m5.large": 0.091, "t3.nano": 0.0052, "zz.large": 1})
	if merged[0].OnDemandPrice != 0.091 || merged[1].OnDemandPrice != 0.0052 || merged[2].OnDemandPrice != 0.085 {
		t.Errorf("merged = %+v", merged)
	}
	if strings.Join(changed, ",") != "m5.large" {
		t.Errorf("changed = %v", changed)
	}
	if specs[0].OnDemandPrice != 0.096 {
		t.Error("MergePrices modified its input")
	}
}

func TestMemoryFormat(t *testing.T) {
	for mib, want := range map[int64]string{8192: "8 GiB", 512: "0.5 GiB", 1740: "1.69921875 GiB", 1998848: "1,952 GiB", 25165824: "24,576 GiB"} {
		if got := FormatMemory(mib); got != want {
			t.Errorf("FormatMemory(%d) = %q, want %q", mib, got, want)
		}
		if back, err := ParseMemoryMiB(want); err != nil || back != mib {
			t.Errorf("ParseMemoryMiB(%q) = %d, %v", want, back, err)
		}
	}
	for _, bad := range []string{"", "NA", "8 PiB", "x GiB"} {
		if _, err := ParseMemoryMiB(bad); err == nil {
			t.Errorf("ParseMemoryMiB(%q): no error", bad)
		}
	}
}

func TestProductDocumentRoundTrip(t *testing.T) {
	for _, s := range Embedded() {
		doc := ProductDocument(s, "us-east-1", "2026-07-20T13:44:30Z")
		raw, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		ps, err := ParsePriceList(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !ps[0].IsLinuxOnDemand() || !ps[0].InRegion("us-east-1") {
			t.Fatalf("%s: not a Linux on-demand us-east-1 product", s.Name)
		}
		got, ok := ps[0].Spec()
		if !ok {
			t.Fatalf("%s: Spec() failed", s.Name)
		}
		want := s
		want.ENIs, want.IPv4PerENI = 0, 0
		want.Facts = Facts{} // a product document carries none of Karpenter's reference facts
		if want.GPUs == 0 {
			want.GPUManufacturer = "" // nor the model of fractional GPUs
		}
		if got != want {
			t.Fatalf("round trip of %s: got %+v, want %+v", s.Name, got, want)
		}
	}
}

// A type's on-demand price is its shared-tenancy product, or for bare
// metal its dedicated one in the bare-metal family; dedicated instances
// of other types are another, dearer offering.
func TestOnDemandTenancyPerFamily(t *testing.T) {
	product := func(family, tenancy string) PriceListProduct {
		return PriceListProduct{Product: PriceListProductInfo{ProductFamily: family, Attributes: map[string]string{
			"instanceType": "m5.large", "operatingSystem": "Linux", "tenancy": tenancy,
		}}}
	}
	for _, c := range []struct {
		family, tenancy string
		want            bool
	}{
		{ProductFamilyInstance, "Shared", true},
		{ProductFamilyInstance, "Dedicated", false},
		{ProductFamilyBareMetal, "Dedicated", true},
		{ProductFamilyBareMetal, "Shared", false},
	} {
		if got := product(c.family, c.tenancy).IsLinuxOnDemand(); got != c.want {
			t.Errorf("%s/%s: IsLinuxOnDemand = %v", c.family, c.tenancy, got)
		}
	}
	for name, want := range map[string]bool{"m5.metal": true, "m7i.metal-24xl": true, "m5.large": false, "metal.large": false} {
		if IsBareMetal(name) != want {
			t.Errorf("IsBareMetal(%s) = %v", name, !want)
		}
	}
}
