package pricingsim_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	"github.com/aws/aws-sdk-go-v2/service/pricing/types"
	smithy "github.com/aws/smithy-go"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/pricingsim"
)

func setup(t *testing.T) (*pricingsim.Handler, *pricing.Client) {
	t.Helper()
	h := pricingsim.New(ec2catalog.Embedded(), "us-east-1")
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := pricing.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
		// The loopback client that avoids net/http's body-probe race
		// (see ec2sim.HTTPClient): with one attempt, the default client
		// fails now and then under load.
		HTTPClient: ec2sim.HTTPClient(),
	}, func(o *pricing.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	return h, c
}

func tm(field, value string) types.Filter {
	return types.Filter{Type: types.FilterTypeTermMatch, Field: aws.String(field), Value: aws.String(value)}
}

func linuxFilters(extra ...types.Filter) []types.Filter {
	return append([]types.Filter{
		tm("location", "US East (N. Virginia)"),
		tm("operatingSystem", "Linux"),
		tm("tenancy", "Shared"),
		tm("preInstalledSw", "NA"),
		tm("capacitystatus", "Used"),
	}, extra...)
}

func TestGetProductsSingleType(t *testing.T) {
	h, c := setup(t)
	out, err := c.GetProducts(context.Background(), &pricing.GetProductsInput{
		ServiceCode:   aws.String("AmazonEC2"),
		FormatVersion: aws.String("aws_v1"),
		Filters:       linuxFilters(tm("instanceType", "m5.large")),
		MaxResults:    aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.PriceList) != 1 || aws.ToString(out.FormatVersion) != "aws_v1" || out.NextToken != nil {
		t.Fatalf("out = %+v", out)
	}
	doc := out.PriceList[0]
	for _, want := range []string{`"instanceType":"m5.large"`, `"memory":"8 GiB"`, `"vcpu":"2"`, `"USD":"0.0960000000"`, `"unit":"Hrs"`, `"productFamily":"Compute Instance"`} {
		if !strings.Contains(doc, want) {
			t.Errorf("document lacks %s: %s", want, doc)
		}
	}
	// The generator's parser reads it back.
	ps, err := ec2catalog.ParsePriceList([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if p := ec2catalog.OnDemandPrices(ps, "us-east-1"); p["m5.large"] != 0.096 {
		t.Errorf("prices = %v", p)
	}
	if s, ok := ps[0].Spec(); !ok || s.VCPU != 2 || s.MemoryMiB != 8192 || s.Arch != "amd64" {
		t.Errorf("spec = %+v", s)
	}
	if h.Calls("GetProducts") != 1 {
		t.Errorf("calls = %d", h.Calls("GetProducts"))
	}

	// Lower-case values and capitalised fields match too, as on AWS.
	out, err = c.GetProducts(context.Background(), &pricing.GetProductsInput{
		ServiceCode: aws.String("AmazonEC2"),
		Filters:     []types.Filter{tm("InstanceType", "m6g.large"), tm("OperatingSystem", "linux"), tm("regionCode", "us-east-1")},
	})
	if err != nil || len(out.PriceList) != 1 || !strings.Contains(out.PriceList[0], "Graviton") {
		t.Errorf("m6g.large: %v %v", out, err)
	}
	// Windows: nothing.
	out, err = c.GetProducts(context.Background(), &pricing.GetProductsInput{
		ServiceCode: aws.String("AmazonEC2"),
		Filters:     []types.Filter{tm("instanceType", "m5.large"), tm("operatingSystem", "Windows")},
	})
	if err != nil || len(out.PriceList) != 0 {
		t.Errorf("windows: %v %v", out, err)
	}
}

// Bare-metal types are served as the Price List lists them: product
// family "Compute Instance (bare metal)" with dedicated tenancy, so the
// shared-tenancy query misses them and a second query finds them.
func TestGetProductsPaginatedAllTypes(t *testing.T) {
	h, c := setup(t)
	var docs []string
	for _, family := range []string{ec2catalog.ProductFamilyInstance, ec2catalog.ProductFamilyBareMetal} {
		filters := linuxFilters(tm("productFamily", family))
		filters[2] = tm("tenancy", ec2catalog.OnDemandTenancy(family))
		pg := pricing.NewGetProductsPaginator(c, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: filters})
		before := len(docs)
		for pg.HasMorePages() {
			out, err := pg.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(out.PriceList) > 100 {
				t.Fatalf("page of %d", len(out.PriceList))
			}
			docs = append(docs, out.PriceList...)
		}
		t.Logf("%s: %d documents", family, len(docs)-before)
	}
	if len(docs) != 1101 || h.Calls("GetProducts") != 12 {
		t.Fatalf("%d documents in %d calls", len(docs), h.Calls("GetProducts"))
	}
	var products []ec2catalog.PriceListProduct
	for _, d := range docs {
		ps, err := ec2catalog.ParsePriceList([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		products = append(products, ps...)
	}
	prices := ec2catalog.OnDemandPrices(products, "us-east-1")
	for _, s := range ec2catalog.Embedded() {
		if prices[s.Name] != s.OnDemandPrice {
			t.Errorf("%s: %v, want %v", s.Name, prices[s.Name], s.OnDemandPrice)
		}
	}
	merged, changed := ec2catalog.MergePrices(ec2catalog.Embedded(), prices)
	if len(changed) != 0 || len(merged) != 1101 {
		t.Errorf("changed = %v", changed)
	}
}

func TestSetPriceAndErrors(t *testing.T) {
	h, c := setup(t)
	ctx := context.Background()
	if !h.SetPrice("m5.large", 0.1) || h.SetPrice("zz.large", 1) {
		t.Fatal("SetPrice")
	}
	out, err := c.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), Filters: linuxFilters(tm("instanceType", "m5.large"))})
	if err != nil || len(out.PriceList) != 1 || !strings.Contains(out.PriceList[0], `"USD":"0.1000000000"`) {
		t.Errorf("after SetPrice: %v %v", out, err)
	}

	_, err = c.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), NextToken: aws.String("garbage!")})
	var bad *types.InvalidNextTokenException
	if !errors.As(err, &bad) {
		t.Errorf("bad token: %T %v", err, err)
	}
	_, err = c.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2"), MaxResults: aws.Int32(500)})
	var inv *types.InvalidParameterException
	if !errors.As(err, &inv) {
		t.Errorf("MaxResults 500: %v", err)
	}
	h.Fail("GetProducts", 400, "ThrottlingException", "Rate exceeded", 1)
	_, err = c.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonEC2")})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ThrottlingException" {
		t.Errorf("injected: %v", err)
	}
	out, err = c.GetProducts(ctx, &pricing.GetProductsInput{ServiceCode: aws.String("AmazonRDS")})
	if err != nil || len(out.PriceList) != 0 {
		t.Errorf("other service: %v %v", out, err)
	}
}

func TestDescribeServicesAndAttributeValues(t *testing.T) {
	_, c := setup(t)
	ctx := context.Background()
	ds, err := c.DescribeServices(ctx, &pricing.DescribeServicesInput{ServiceCode: aws.String("AmazonEC2")})
	if err != nil || len(ds.Services) != 1 || aws.ToString(ds.Services[0].ServiceCode) != "AmazonEC2" || len(ds.Services[0].AttributeNames) == 0 {
		t.Fatalf("DescribeServices: %+v %v", ds, err)
	}
	av, err := c.GetAttributeValues(ctx, &pricing.GetAttributeValuesInput{ServiceCode: aws.String("AmazonEC2"), AttributeName: aws.String("operatingSystem")})
	if err != nil || len(av.AttributeValues) != 1 || aws.ToString(av.AttributeValues[0].Value) != "Linux" {
		t.Fatalf("GetAttributeValues: %+v %v", av, err)
	}
	n := 0
	pg := pricing.NewGetAttributeValuesPaginator(c, &pricing.GetAttributeValuesInput{ServiceCode: aws.String("AmazonEC2"), AttributeName: aws.String("instanceType")})
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(out.AttributeValues)
	}
	if n != 1101 {
		t.Errorf("%d instance types", n)
	}
}
