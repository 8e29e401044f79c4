package instancetype

import (
	"context"
	"maps"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/pricing"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/pricingsim"
)

// TestDescribeInstanceTypesCarriesTheCatalog checks the launcher's real
// path: ec2sim answers DescribeInstanceTypes from the embedded catalog, the
// launcher reads it, and the instance type built from that answer equals
// the one built from the catalog row (which the golden test compares with
// Karpenter's reference).
func TestDescribeInstanceTypesCarriesTheCatalog(t *testing.T) {
	specs := ec2catalog.Embedded()
	srv := httptest.NewServer(ec2sim.New(ec2sim.Options{Catalog: specs}))
	t.Cleanup(srv.Close)
	client := ec2.New(ec2.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient:   ec2sim.HTTPClient(),
	})
	types, err := fetchTypes(context.Background(), client)
	if err != nil {
		t.Fatal(err)
	}
	if len(types) != len(specs) {
		t.Fatalf("DescribeInstanceTypes gave %d types, the catalog has %d", len(types), len(specs))
	}
	unknown := 0
	for _, s := range specs {
		if !s.Known {
			// ec2sim invents plausible facts (GPU models, Intel, encryption in
			// transit) for the few types Karpenter's reference lacks.
			unknown++
			continue
		}
		got, err := Convert(types[s.Name], nil, nil, 0)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		want, err := Convert(InfoFromSpec(s), nil, nil, 0)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if !maps.Equal(got.Labels, want.Labels) {
			t.Errorf("%s: labels from DescribeInstanceTypes\n%v\nfrom the catalog\n%v", s.Name, got.Labels, want.Labels)
		}
		if !maps.Equal(got.Allocatable, want.Allocatable) || !maps.Equal(got.Capacity, want.Capacity) {
			t.Errorf("%s: allocatable %v capacity %v from DescribeInstanceTypes, %v and %v from the catalog",
				s.Name, got.Allocatable, got.Capacity, want.Allocatable, want.Capacity)
		}
	}
	if unknown > 10 {
		t.Errorf("%d catalog types lack Karpenter's facts; regenerate the catalog with -reference", unknown)
	}
}

// TestOnDemandPricesIncludeBareMetal reads on-demand prices through the
// SDK from pricingsim, which lists bare-metal types as the Price List
// does (their own product family, dedicated tenancy): every catalog type,
// metal ones included, gets its price, and none takes a dedicated
// instance's price.
func TestOnDemandPricesIncludeBareMetal(t *testing.T) {
	specs := ec2catalog.Embedded()
	srv := httptest.NewServer(pricingsim.New(specs, "us-east-1"))
	t.Cleanup(srv.Close)
	client := pricing.New(pricing.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient:   ec2sim.HTTPClient(),
	})
	prices, err := fetchOnDemand(context.Background(), client, "us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	metal := 0
	for _, s := range specs {
		if prices[s.Name] != s.OnDemandPrice {
			t.Errorf("%s: %v, want %v", s.Name, prices[s.Name], s.OnDemandPrice)
		}
		if ec2catalog.IsBareMetal(s.Name) {
			metal++
		}
	}
	if metal == 0 {
		t.Fatal("no bare-metal type in the catalog")
	}
}
