package instancetype

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/pricing"
	pricingtypes "github.com/aws/aws-sdk-go-v2/service/pricing/types"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
)

// EC2API is the part of the EC2 client the provider uses.
type EC2API interface {
	ec2.DescribeInstanceTypesAPIClient
	ec2.DescribeInstanceTypeOfferingsAPIClient
	ec2.DescribeSpotPriceHistoryAPIClient
}

// PricingAPI is the part of the Pricing client the provider uses.
type PricingAPI interface {
	pricing.GetProductsAPIClient
}

// fetchTypes pages through DescribeInstanceTypes.
func fetchTypes(ctx context.Context, api EC2API) (map[string]Info, error) {
	out := map[string]Info{}
	p := ec2.NewDescribeInstanceTypesPaginator(api, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(100)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instance types: %w", err)
		}
		for _, t := range page.InstanceTypes {
			if info, ok := InfoFromEC2(t); ok {
				out[info.Name] = info
			}
		}
	}
	return out, nil
}

// fetchOfferings pages through DescribeInstanceTypeOfferings by zone and
// returns the zones of each type.
func fetchOfferings(ctx context.Context, api EC2API) (map[string][]string, error) {
	out := map[string][]string{}
	p := ec2.NewDescribeInstanceTypeOfferingsPaginator(api, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		MaxResults:   aws.Int32(1000),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instance type offerings: %w", err)
		}
		for _, o := range page.InstanceTypeOfferings {
			name := string(o.InstanceType)
			out[name] = append(out[name], aws.ToString(o.Location))
		}
	}
	return out, nil
}

// fetchSpot reads the current Linux spot price of every (type, zone).
func fetchSpot(ctx context.Context, api EC2API, now time.Time) (map[zoneKey]float64, error) {
	out := map[zoneKey]float64{}
	seen := map[zoneKey]time.Time{}
	p := ec2.NewDescribeSpotPriceHistoryPaginator(api, &ec2.DescribeSpotPriceHistoryInput{
		ProductDescriptions: []string{"Linux/UNIX"},
		StartTime:           aws.Time(now),
		MaxResults:          aws.Int32(1000),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe spot price history: %w", err)
		}
		for _, sp := range page.SpotPriceHistory {
			price, err := strconv.ParseFloat(aws.ToString(sp.SpotPrice), 64)
			if err != nil {
				continue
			}
			k := zoneKey{string(sp.InstanceType), aws.ToString(sp.AvailabilityZone)}
			ts := aws.ToTime(sp.Timestamp)
			if prev, ok := seen[k]; ok && prev.After(ts) {
				continue
			}
			seen[k], out[k] = ts, price
		}
	}
	return out, nil
}

// fetchOnDemand reads Linux on-demand prices from the Pricing API, as
// Karpenter's pricing provider does: instances with shared tenancy, and
// bare-metal types, which the Price List lists in their own product family
// with dedicated tenancy.
func fetchOnDemand(ctx context.Context, api PricingAPI, region string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, family := range []string{ec2catalog.ProductFamilyInstance, ec2catalog.ProductFamilyBareMetal} {
		products, err := getProducts(ctx, api, region, family)
		if err != nil {
			return nil, err
		}
		for name, price := range ec2catalog.OnDemandPrices(products, region) {
			out[name] = price
		}
	}
	return out, nil
}

func getProducts(ctx context.Context, api PricingAPI, region, family string) ([]ec2catalog.PriceListProduct, error) {
	filter := func(field, value string) pricingtypes.Filter {
		return pricingtypes.Filter{Field: aws.String(field), Type: pricingtypes.FilterTypeTermMatch, Value: aws.String(value)}
	}
	p := pricing.NewGetProductsPaginator(api, &pricing.GetProductsInput{
		ServiceCode: aws.String("AmazonEC2"),
		Filters: []pricingtypes.Filter{
			filter("regionCode", region),
			filter("operatingSystem", "Linux"),
			filter("productFamily", family),
			filter("tenancy", ec2catalog.OnDemandTenancy(family)),
			filter("preInstalledSw", "NA"),
			filter("capacitystatus", "Used"),
		},
		MaxResults: aws.Int32(100),
	})
	var products []ec2catalog.PriceListProduct
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("get products (%s): %w", family, err)
		}
		if len(page.PriceList) == 0 {
			continue
		}
		raw, err := json.Marshal(page.PriceList)
		if err != nil {
			return nil, fmt.Errorf("get products: %w", err)
		}
		ps, err := ec2catalog.ParsePriceList(raw)
		if err != nil {
			return nil, fmt.Errorf("get products: %w", err)
		}
		products = append(products, ps...)
	}
	return products, nil
}

// embeddedPrices are the on-demand prices compiled into the binary.
func embeddedPrices(specs []ec2catalog.Spec) map[string]float64 {
	out := make(map[string]float64, len(specs))
	for _, s := range specs {
		out[s.Name] = s.OnDemandPrice
	}
	return out
}
