package ec2catalog

// AWS Price List documents: the product documents the Pricing API's
// GetProducts returns (each PriceList entry is one such document, encoded
// as a JSON string) and the bulk offer file (…/offers/v1.0/aws/AmazonEC2/
// current/<region>/index.json), which holds the same data split into a
// "products" map and a "terms" map keyed by SKU. The generator reads both to
// refresh prices; the pricing simulator writes product documents.

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// PriceListProduct is one Price List product document.
type PriceListProduct struct {
	Product         PriceListProductInfo `json:"product"`
	ServiceCode     string               `json:"serviceCode"`
	Terms           PriceListTerms       `json:"terms"`
	Version         string               `json:"version,omitempty"`
	PublicationDate string               `json:"publicationDate,omitempty"`
}

// PriceListProductInfo is the "product" object of a product document (and an
// entry of an offer file's "products" map).
type PriceListProductInfo struct {
	ProductFamily string            `json:"productFamily"`
	Attributes    map[string]string `json:"attributes"`
	SKU           string            `json:"sku"`
}

// PriceListTerms holds the terms by kind, then by SKU-level key
// ("<sku>.<offerTermCode>" inside a product document, the SKU in an offer
// file), then by offer term key.
type PriceListTerms struct {
	OnDemand map[string]PriceListTerm `json:"OnDemand,omitempty"`
	// Reserved is kept opaque: only on-demand prices are used.
	Reserved json.RawMessage `json:"Reserved,omitempty"`
}

// PriceListTerm is one offer term.
type PriceListTerm struct {
	OfferTermCode   string                    `json:"offerTermCode"`
	SKU             string                    `json:"sku"`
	EffectiveDate   string                    `json:"effectiveDate"`
	PriceDimensions map[string]PriceDimension `json:"priceDimensions"`
	TermAttributes  map[string]string         `json:"termAttributes"`
}

// PriceDimension is one rate of a term.
type PriceDimension struct {
	RateCode     string            `json:"rateCode"`
	Description  string            `json:"description"`
	BeginRange   string            `json:"beginRange"`
	EndRange     string            `json:"endRange"`
	Unit         string            `json:"unit"`
	AppliesTo    []string          `json:"appliesTo"`
	PricePerUnit map[string]string `json:"pricePerUnit"`
}

// Attr returns a product attribute ("" when absent).
func (p PriceListProduct) Attr(name string) string { return p.Product.Attributes[name] }

// InstanceType is the instanceType attribute.
func (p PriceListProduct) InstanceType() string { return p.Attr("instanceType") }

// OnDemandUSD is the hourly on-demand price in US dollars: the first priced
// dimension (in key order) with unit Hrs of the product's on-demand terms.
// ok is false when the product has no such price.
func (p PriceListProduct) OnDemandUSD() (price float64, ok bool) {
	for _, tk := range sortedKeys(p.Terms.OnDemand) {
		term := p.Terms.OnDemand[tk]
		for _, dk := range sortedKeys(term.PriceDimensions) {
			d := term.PriceDimensions[dk]
			if d.Unit != "" && !strings.EqualFold(d.Unit, "Hrs") {
				continue
			}
			v, has := d.PricePerUnit["USD"]
			if !has {
				continue
			}
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				continue
			}
			return f, true
		}
	}
	return 0, false
}

// IsLinuxOnDemand reports whether the product is the plain Linux, shared
// tenancy, no pre-installed software, capacity-status Used compute instance
// row: the one whose on-demand price is a type's list price.
func (p PriceListProduct) IsLinuxOnDemand() bool {
	a := p.Product.Attributes
	match := func(k, want string) bool { v, ok := a[k]; return !ok || strings.EqualFold(v, want) }
	return a["instanceType"] != "" &&
		strings.EqualFold(a["operatingSystem"], "Linux") &&
		strings.EqualFold(a["tenancy"], OnDemandTenancy(p.Product.ProductFamily)) &&
		match("preInstalledSw", "NA") &&
		match("capacitystatus", "Used") &&
		match("licenseModel", "No License required")
}

// The Price List's product families of EC2 instances: bare-metal types
// (m5.metal, m7i.metal-24xl) are listed apart from the others.
const (
	ProductFamilyInstance  = "Compute Instance"
	ProductFamilyBareMetal = "Compute Instance (bare metal)"
)

// OnDemandTenancy is the tenancy of the ordinary on-demand price in a
// product family: "Shared" for instances, "Dedicated" for bare metal,
// which the Price List only lists with dedicated tenancy (Karpenter's
// pricing provider queries the two the same way). An instance type's
// Dedicated products are the price of dedicated instances, not of the
// on-demand offering.
func OnDemandTenancy(productFamily string) string {
	if productFamily == ProductFamilyBareMetal {
		return "Dedicated"
	}
	return "Shared"
}

// IsBareMetal reports whether an instance type is bare metal.
func IsBareMetal(instanceType string) bool {
	_, size, _ := strings.Cut(instanceType, ".")
	return size == "metal" || strings.HasPrefix(size, "metal-")
}

// InRegion reports whether the product is for region (a region code such as
// us-east-1). Products naming neither regionCode nor a known location match.
func (p PriceListProduct) InRegion(region string) bool {
	if rc := p.Attr("regionCode"); rc != "" {
		return rc == region
	}
	if loc := p.Attr("location"); loc != "" {
		if want, ok := RegionLocations[region]; ok {
			return loc == want
		}
	}
	return true
}

// Spec derives a Spec from the product's attributes (no ENI figures: the
// Price List does not carry them). ok is false when the product is not an
// instance type or its vcpu or memory cannot be read.
func (p PriceListProduct) Spec() (s Spec, ok bool) {
	a := p.Product.Attributes
	s.Name = a["instanceType"]
	if s.Name == "" {
		return s, false
	}
	s.Family, _, _ = strings.Cut(s.Name, ".")
	var err error
	if s.VCPU, err = strconv.Atoi(strings.ReplaceAll(a["vcpu"], ",", "")); err != nil {
		return s, false
	}
	if s.MemoryMiB, err = ParseMemoryMiB(a["memory"]); err != nil {
		return s, false
	}
	if g := strings.ReplaceAll(a["gpu"], ",", ""); g != "" && g != "NA" {
		s.GPUs, _ = strconv.Atoi(g)
	}
	s.Arch = "amd64"
	if proc := strings.ToLower(a["physicalProcessor"]); strings.Contains(proc, "graviton") || strings.Contains(a["processorArchitecture"], "arm") {
		s.Arch = "arm64"
	}
	if s.GPUs > 0 {
		s.GPUManufacturer = "nvidia"
		switch strings.ToLower(s.Family) {
		case "g4ad":
			s.GPUManufacturer = "amd"
		case "dl1":
			s.GPUManufacturer = "habana"
		}
	}
	s.OnDemandPrice, _ = p.OnDemandUSD()
	return s, true
}

// ParseMemoryMiB reads a Price List memory attribute such as "8 GiB",
// "0.5 GiB" or "1,952 GiB" as MiB.
func ParseMemoryMiB(v string) (int64, error) {
	f := strings.Fields(strings.ReplaceAll(v, ",", ""))
	if len(f) == 0 || len(f) > 2 {
		return 0, fmt.Errorf("memory %q: want \"<n> GiB\"", v)
	}
	n, err := strconv.ParseFloat(f[0], 64)
	if err != nil || n < 0 || math.IsInf(n, 0) {
		return 0, fmt.Errorf("memory %q: not a size", v)
	}
	mult := 1024.0
	if len(f) == 2 {
		switch strings.ToLower(f[1]) {
		case "gib", "gb":
		case "mib", "mb":
			mult = 1
		case "tib", "tb":
			mult = 1024 * 1024
		default:
			return 0, fmt.Errorf("memory %q: unknown unit %q", v, f[1])
		}
	}
	return int64(math.Round(n * mult)), nil
}

// FormatMemory writes MiB the way the Price List does: "8 GiB", "0.5 GiB",
// "1,952 GiB".
func FormatMemory(mib int64) string {
	gib := float64(mib) / 1024
	s := strconv.FormatFloat(gib, 'f', -1, 64)
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String() + " GiB"
}

// ParsePriceList reads Price List data in any of these shapes:
//   - a bulk offer file: {"offerCode": ..., "products": {sku: ...}, "terms": {"OnDemand": {sku: ...}}};
//   - a GetProducts response: {"PriceList": [...], "FormatVersion": ..., "NextToken": ...};
//   - a JSON array of product documents, each an object or a JSON string;
//   - a single product document, or a stream of them (one per line).
func ParsePriceList(data []byte) ([]PriceListProduct, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("price list: empty")
	}
	if trimmed[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, fmt.Errorf("price list: %w", err)
		}
		return parseItems(items)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var out []PriceListProduct
	for n := 0; dec.More(); n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("price list document %d: %w", n+1, err)
		}
		ps, err := parseObject(raw)
		if err != nil {
			return nil, fmt.Errorf("price list document %d: %w", n+1, err)
		}
		out = append(out, ps...)
	}
	return out, nil
}

func parseObject(raw json.RawMessage) ([]PriceListProduct, error) {
	var probe struct {
		PriceList []json.RawMessage          `json:"PriceList"`
		Products  map[string]json.RawMessage `json:"products"`
		Product   json.RawMessage            `json:"product"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, err
	}
	switch {
	case probe.PriceList != nil:
		return parseItems(probe.PriceList)
	case probe.Products != nil:
		return parseOffer(raw)
	case probe.Product != nil:
		p, err := parseProduct(raw)
		if err != nil {
			return nil, err
		}
		return []PriceListProduct{p}, nil
	}
	return nil, errors.New("not an offer file, GetProducts response or product document")
}

func parseItems(items []json.RawMessage) ([]PriceListProduct, error) {
	out := make([]PriceListProduct, 0, len(items))
	for i, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) > 0 && it[0] == '"' { // GetProducts: each document is a JSON string
			var s string
			if err := json.Unmarshal(it, &s); err != nil {
				return nil, fmt.Errorf("price list item %d: %w", i, err)
			}
			it = []byte(s)
		}
		p, err := parseProduct(it)
		if err != nil {
			return nil, fmt.Errorf("price list item %d: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseProduct(raw []byte) (PriceListProduct, error) {
	var p PriceListProduct
	if err := json.Unmarshal(raw, &p); err != nil {
		return p, err
	}
	if p.Product.Attributes == nil {
		return p, errors.New("product document without product.attributes")
	}
	return p, nil
}

// parseOffer splits a bulk offer file into product documents.
func parseOffer(raw []byte) ([]PriceListProduct, error) {
	var offer struct {
		OfferCode       string                          `json:"offerCode"`
		Version         string                          `json:"version"`
		PublicationDate string                          `json:"publicationDate"`
		Products        map[string]PriceListProductInfo `json:"products"`
		Terms           struct {
			OnDemand map[string]map[string]PriceListTerm `json:"OnDemand"`
		} `json:"terms"`
	}
	if err := json.Unmarshal(raw, &offer); err != nil {
		return nil, fmt.Errorf("offer file: %w", err)
	}
	out := make([]PriceListProduct, 0, len(offer.Products))
	for _, sku := range sortedKeys(offer.Products) {
		info := offer.Products[sku]
		if info.SKU == "" {
			info.SKU = sku
		}
		p := PriceListProduct{Product: info, ServiceCode: offer.OfferCode, Version: offer.Version, PublicationDate: offer.PublicationDate}
		if terms := offer.Terms.OnDemand[sku]; len(terms) > 0 {
			p.Terms.OnDemand = terms
		}
		out = append(out, p)
	}
	return out, nil
}

// OnDemandPrices collects the Linux on-demand list price of each instance
// type in region (see IsLinuxOnDemand). When a type has several matching
// products the lowest price wins, so the result does not depend on order.
func OnDemandPrices(products []PriceListProduct, region string) map[string]float64 {
	out := map[string]float64{}
	for _, p := range products {
		if !p.IsLinuxOnDemand() || !p.InRegion(region) {
			continue
		}
		price, ok := p.OnDemandUSD()
		if !ok {
			continue
		}
		it := p.InstanceType()
		if old, seen := out[it]; !seen || price < old {
			out[it] = price
		}
	}
	return out
}

// MergePrices returns a copy of specs with OnDemandPrice replaced by
// prices[Name] where present, and the names of the types it changed.
func MergePrices(specs []Spec, prices map[string]float64) (merged []Spec, changed []string) {
	merged = append([]Spec(nil), specs...)
	for i := range merged {
		if p, ok := prices[merged[i].Name]; ok && p != merged[i].OnDemandPrice {
			merged[i].OnDemandPrice = p
			changed = append(changed, merged[i].Name)
		}
	}
	return merged, changed
}

// RegionLocations maps region codes to the Price List "location" attribute.
var RegionLocations = map[string]string{
	"us-east-1":      "US East (N. Virginia)",
	"us-east-2":      "US East (Ohio)",
	"us-west-1":      "US West (N. California)",
	"us-west-2":      "US West (Oregon)",
	"ca-central-1":   "Canada (Central)",
	"eu-west-1":      "EU (Ireland)",
	"eu-west-2":      "EU (London)",
	"eu-west-3":      "EU (Paris)",
	"eu-central-1":   "EU (Frankfurt)",
	"eu-north-1":     "EU (Stockholm)",
	"ap-south-1":     "Asia Pacific (Mumbai)",
	"ap-northeast-1": "Asia Pacific (Tokyo)",
	"ap-northeast-2": "Asia Pacific (Seoul)",
	"ap-southeast-1": "Asia Pacific (Singapore)",
	"ap-southeast-2": "Asia Pacific (Sydney)",
	"sa-east-1":      "South America (Sao Paulo)",
}

// Offer term and rate codes AWS uses for the standard on-demand term.
const (
	OnDemandOfferTermCode = "JRTCKXETXF"
	OnDemandRateCode      = "6YS6EN2CT7"
)

// ProductDocument builds the Price List product document for a spec's Linux
// on-demand, shared-tenancy offer in region, shaped like the real one.
// publication is the document's publicationDate / effectiveDate
// (RFC 3339); the SKU is a stable hash of type and region.
func ProductDocument(s Spec, region, publication string) PriceListProduct {
	sku := skuFor(s.Name, region)
	location := RegionLocations[region]
	if location == "" {
		location = region
	}
	family := ProductFamilyInstance
	if IsBareMetal(s.Name) {
		family = ProductFamilyBareMetal
	}
	attrs := map[string]string{
		"servicecode":           "AmazonEC2",
		"servicename":           "Amazon Elastic Compute Cloud",
		"instanceType":          s.Name,
		"instanceFamily":        instanceFamilyName(s),
		"vcpu":                  strconv.Itoa(s.VCPU),
		"memory":                FormatMemory(s.MemoryMiB),
		"physicalProcessor":     processorName(s),
		"processorArchitecture": "64-bit",
		"currentGeneration":     "Yes",
		"location":              location,
		"locationType":          "AWS Region",
		"regionCode":            region,
		"operatingSystem":       "Linux",
		"tenancy":               OnDemandTenancy(family),
		"preInstalledSw":        "NA",
		"licenseModel":          "No License required",
		"capacitystatus":        "Used",
		"marketoption":          "OnDemand",
		"operation":             "RunInstances",
		"usagetype":             usageTypePrefix(region) + "BoxUsage:" + s.Name,
		"storage":               "EBS only",
		"vpcnetworkingsupport":  "true",
		"availabilityzone":      "NA",
		"gpuMemory":             "NA",
	}
	if s.GPUs > 0 {
		attrs["gpu"] = strconv.Itoa(s.GPUs)
	}
	price := strconv.FormatFloat(s.OnDemandPrice, 'f', 10, 64)
	termKey := sku + "." + OnDemandOfferTermCode
	rateKey := termKey + "." + OnDemandRateCode
	return PriceListProduct{
		Product:     PriceListProductInfo{ProductFamily: family, Attributes: attrs, SKU: sku},
		ServiceCode: "AmazonEC2",
		Terms: PriceListTerms{OnDemand: map[string]PriceListTerm{termKey: {
			OfferTermCode: OnDemandOfferTermCode,
			SKU:           sku,
			EffectiveDate: publication,
			PriceDimensions: map[string]PriceDimension{rateKey: {
				RateCode:     rateKey,
				Description:  fmt.Sprintf("$%s per On Demand Linux %s Instance Hour", strconv.FormatFloat(s.OnDemandPrice, 'f', -1, 64), s.Name),
				BeginRange:   "0",
				EndRange:     "Inf",
				Unit:         "Hrs",
				AppliesTo:    []string{},
				PricePerUnit: map[string]string{"USD": price},
			}},
			TermAttributes: map[string]string{},
		}}},
		Version:         strings.NewReplacer("-", "", ":", "", "T", "", "Z", "").Replace(publication),
		PublicationDate: publication,
	}
}

func skuFor(name, region string) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	sum := sha256.Sum256([]byte("sku|" + region + "|" + name))
	b := make([]byte, 16)
	for i := range b {
		b[i] = alphabet[int(sum[i])%len(alphabet)]
	}
	return string(b)
}

func usageTypePrefix(region string) string {
	if region == "us-east-1" {
		return ""
	}
	return strings.ToUpper(region) + "-"
}

func instanceFamilyName(s Spec) string {
	f := strings.ToLower(s.Family)
	switch {
	case s.GPUs > 0 || strings.HasPrefix(f, "inf") || strings.HasPrefix(f, "trn") || strings.HasPrefix(f, "dl") || strings.HasPrefix(f, "f") || strings.HasPrefix(f, "vt"):
		return "GPU instance"
	case strings.HasPrefix(f, "c"):
		return "Compute optimized"
	case strings.HasPrefix(f, "r"), strings.HasPrefix(f, "x"), strings.HasPrefix(f, "z"), strings.HasPrefix(f, "u"):
		return "Memory optimized"
	case strings.HasPrefix(f, "i"), strings.HasPrefix(f, "d"), strings.HasPrefix(f, "h"):
		return "Storage optimized"
	}
	return "General purpose"
}

func processorName(s Spec) string {
	if s.Arch == "arm64" {
		if s.Family == "a1" {
			return "AWS Graviton Processor"
		}
		return "AWS Graviton Processor Family"
	}
	// "m5a", "c6a", "r7a", "m6a-flex"...: the generation digit followed by a.
	f := s.Family
	for i := 1; i < len(f); i++ {
		if f[i-1] >= '0' && f[i-1] <= '9' && f[i] == 'a' {
			return "AMD EPYC Processor Family"
		}
	}
	return "Intel Xeon Family"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
