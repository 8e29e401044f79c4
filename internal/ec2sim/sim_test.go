package ec2sim_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
)

// smallCatalog is an inline catalog of a few types.
const smallCatalog = `instance_type,family,vcpu,memory_mib,gpu,arch,enis,ipv4_per_eni,on_demand_usd_per_hour,gpu_manufacturer
m5.large,m5,2,8192,0,amd64,3,10,0.096,
m5.xlarge,m5,4,16384,0,amd64,4,15,0.192,
c6g.large,c6g,2,4096,0,arm64,3,10,0.068,
g4dn.xlarge,g4dn,4,16384,1,amd64,3,10,0.526,nvidia
g4ad.xlarge,g4ad,4,16384,1,amd64,2,4,0.379,amd
dl1.24xlarge,dl1,96,786432,8,amd64,60,50,13.10904,habana
t3.micro,t3,2,1024,0,amd64,2,2,0.0104,
`

func mustCatalog(t testing.TB, csv string) []ec2catalog.Spec {
	t.Helper()
	specs, err := ec2catalog.Parse(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	return specs
}

// fullCatalog reads shared/data/ec2-us-east-1.csv from a sibling shared/
// directory of some ancestor, or skips.
func fullCatalog(t testing.TB) []ec2catalog.Spec {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "data", "ec2-us-east-1.csv")
		if f, err := os.Open(p); err == nil {
			defer f.Close()
			specs, err := ec2catalog.Parse(f)
			if err != nil {
				t.Fatal(err)
			}
			return specs
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("shared/data/ec2-us-east-1.csv not found")
		}
		dir = parent
	}
}

type fixture struct {
	sim *ec2sim.Sim
	url string
	ec2 *ec2.Client
	now time.Time
}

func newFixture(t *testing.T, opts ec2sim.Options) *fixture {
	t.Helper()
	if opts.Catalog == nil {
		opts.Catalog = mustCatalog(t, smallCatalog)
	}
	f := &fixture{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	if opts.Now == nil {
		opts.Now = func() time.Time { return f.now }
	}
	f.sim = ec2sim.New(opts)
	srv := httptest.NewServer(f.sim)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	f.ec2 = newClient(t, srv.URL, opts.Region)
	return f
}

func newClient(t testing.TB, url, region string) *ec2.Client {
	t.Helper()
	if region == "" {
		region = "us-east-1"
	}
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")),
		config.WithSharedConfigFiles(nil),
		config.WithSharedCredentialsFiles(nil),
	)
	if err != nil {
		t.Fatal(err)
	}
	return ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		o.BaseEndpoint = aws.String(url)
		o.RetryMaxAttempts = 5
		o.HTTPClient = ec2sim.HTTPClient()
	})
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestDescribeInstanceTypesSmall(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	var all []types.InstanceTypeInfo
	pages := 0
	p := ec2.NewDescribeInstanceTypesPaginator(f.ec2, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(5)})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		all = append(all, out.InstanceTypes...)
	}
	if len(all) != 7 || pages != 2 {
		t.Fatalf("got %d types in %d pages, want 7 in 2", len(all), pages)
	}
	byName := map[types.InstanceType]types.InstanceTypeInfo{}
	for _, it := range all {
		byName[it.InstanceType] = it
	}
	m5 := byName["m5.large"]
	if *m5.VCpuInfo.DefaultVCpus != 2 || *m5.MemoryInfo.SizeInMiB != 8192 || m5.ProcessorInfo.SupportedArchitectures[0] != types.ArchitectureTypeX8664 ||
		*m5.NetworkInfo.MaximumNetworkInterfaces != 3 || *m5.NetworkInfo.Ipv4AddressesPerInterface != 10 || m5.Hypervisor != types.InstanceTypeHypervisorNitro ||
		!*m5.CurrentGeneration || *m5.InstanceStorageSupported || m5.GpuInfo != nil || len(m5.SupportedUsageClasses) != 2 {
		t.Errorf("m5.large: %+v", m5)
	}
	if byName["c6g.large"].ProcessorInfo.SupportedArchitectures[0] != types.ArchitectureTypeArm64 {
		t.Error("c6g.large is not arm64")
	}
	for name, want := range map[types.InstanceType][2]string{
		"g4dn.xlarge": {"T4", "NVIDIA"}, "g4ad.xlarge": {"Radeon Pro V520", "AMD"}, "dl1.24xlarge": {"Gaudi HL-205", "Habana"},
	} {
		g := byName[name].GpuInfo
		if g == nil || len(g.Gpus) != 1 || *g.Gpus[0].Name != want[0] || *g.Gpus[0].Manufacturer != want[1] {
			t.Errorf("%s gpu: %+v", name, g)
		}
	}
	if *byName["dl1.24xlarge"].GpuInfo.Gpus[0].Count != 8 {
		t.Error("dl1 gpu count")
	}

	// By name, and filters.
	out, err := f.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m5.xlarge", "t3.micro"}})
	if err != nil || len(out.InstanceTypes) != 2 {
		t.Fatalf("by name: %v %v", out, err)
	}
	out, err = f.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{Filters: []types.Filter{
		{Name: aws.String("processor-info.supported-architecture"), Values: []string{"x86_64"}},
		{Name: aws.String("instance-type"), Values: []string{"m5.*", "t3.*"}},
	}})
	if err != nil || len(out.InstanceTypes) != 3 {
		t.Fatalf("filters: %d %v", len(out.InstanceTypes), err)
	}
	_, err = f.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"x9.huge"}})
	if apiCode(err) != "InvalidInstanceType" {
		t.Errorf("unknown type: %v", err)
	}
	_, err = f.ec2.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{Filters: []types.Filter{{Name: aws.String("bogus"), Values: []string{"x"}}}})
	if apiCode(err) != "InvalidParameterValue" {
		t.Errorf("bogus filter: %v", err)
	}
}

func TestDescribeInstanceTypesFullCatalog(t *testing.T) {
	specs := fullCatalog(t)
	f := newFixture(t, ec2sim.Options{Catalog: specs})
	ctx := context.Background()
	n, pages := 0, 0
	p := ec2.NewDescribeInstanceTypesPaginator(f.ec2, &ec2.DescribeInstanceTypesInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.InstanceTypes) > 100 {
			t.Fatalf("page of %d", len(out.InstanceTypes))
		}
		pages++
		n += len(out.InstanceTypes)
	}
	if n != len(specs) || pages != (len(specs)+99)/100 {
		t.Fatalf("got %d types in %d pages, want %d", n, pages, len(specs))
	}
	if got := f.sim.Calls()["DescribeInstanceTypes"]; got != pages {
		t.Errorf("Calls = %d, want %d", got, pages)
	}

	offers := 0
	op := ec2.NewDescribeInstanceTypeOfferingsPaginator(f.ec2, &ec2.DescribeInstanceTypeOfferingsInput{LocationType: types.LocationTypeAvailabilityZone})
	for op.HasMorePages() {
		out, err := op.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		offers += len(out.InstanceTypeOfferings)
	}
	if offers != 3*len(specs) {
		t.Errorf("offerings = %d, want %d", offers, 3*len(specs))
	}
}

func TestOfferingsAndZones(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	ctx := context.Background()
	out, err := f.ec2.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: types.LocationTypeAvailabilityZone,
		Filters: []types.Filter{
			{Name: aws.String("location"), Values: []string{"us-east-1b"}},
			{Name: aws.String("instance-type"), Values: []string{"m5.large", "c6g.large"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.InstanceTypeOfferings) != 2 || *out.InstanceTypeOfferings[0].Location != "us-east-1b" || out.InstanceTypeOfferings[0].LocationType != types.LocationTypeAvailabilityZone {
		t.Errorf("offerings: %+v", out.InstanceTypeOfferings)
	}
	az, err := f.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(az.AvailabilityZones) != 3 || *az.AvailabilityZones[0].ZoneName != "us-east-1a" || *az.AvailabilityZones[0].ZoneId != "use1-az1" ||
		az.AvailabilityZones[2].State != types.AvailabilityZoneStateAvailable || *az.AvailabilityZones[1].RegionName != "us-east-1" {
		t.Errorf("zones: %+v", az.AvailabilityZones)
	}
	az, err = f.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1c"}})
	if err != nil || len(az.AvailabilityZones) != 1 || *az.AvailabilityZones[0].ZoneId != "use1-az3" {
		t.Errorf("zone by name: %+v %v", az, err)
	}
}

func TestSubnetsAndSecurityGroups(t *testing.T) {
	f := newFixture(t, ec2sim.Options{Zones: []string{"us-east-1a", "us-east-1d"}})
	f.sim.AddSubnet(ec2sim.Subnet{ID: "subnet-other", Zone: "us-east-1a", Tags: map[string]string{"karpenter.sh/discovery": "other"}})
	ctx := context.Background()
	disc := []types.Filter{{Name: aws.String("tag:karpenter.sh/discovery"), Values: []string{"test-cluster"}}}
	sn, err := f.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: disc})
	if err != nil {
		t.Fatal(err)
	}
	if len(sn.Subnets) != 2 || *sn.Subnets[1].AvailabilityZone != "us-east-1d" || *sn.Subnets[0].AvailableIpAddressCount == 0 || len(sn.Subnets[0].Tags) != 2 {
		t.Errorf("subnets: %+v", sn.Subnets)
	}
	sn, err = f.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-other"}})
	if err != nil || len(sn.Subnets) != 1 {
		t.Errorf("by id: %v %v", sn, err)
	}
	sn, err = f.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("tag-key"), Values: []string{"karpenter.sh/*"}}}})
	if err != nil || len(sn.Subnets) != 3 {
		t.Errorf("tag-key: %v %v", len(sn.Subnets), err)
	}
	_, err = f.ec2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-nope"}})
	if apiCode(err) != "InvalidSubnetID.NotFound" {
		t.Errorf("missing subnet: %v", err)
	}
	sg, err := f.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: disc})
	if err != nil {
		t.Fatal(err)
	}
	if len(sg.SecurityGroups) != 1 || *sg.SecurityGroups[0].GroupName != "test-cluster-node" || *sg.SecurityGroups[0].VpcId != *sn.Subnets[0].VpcId {
		t.Errorf("sgs: %+v", sg.SecurityGroups)
	}
	sg, err = f.ec2.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{"test-*"}}}})
	if err != nil || len(sg.SecurityGroups) != 1 {
		t.Errorf("sg by name: %v %v", sg, err)
	}
}

func TestDescribeImages(t *testing.T) {
	f := newFixture(t, ec2sim.Options{})
	eks := "602401143452"
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.sim.AddImage(ec2sim.Image{ID: "ami-0aaa", Name: "amazon-eks-node-al2023-x86_64-standard-1.32-v20260101", OwnerID: eks, Architecture: "x86_64", CreationDate: created})
	f.sim.AddImage(ec2sim.Image{ID: "ami-0bbb", Name: "amazon-eks-node-al2023-arm64-standard-1.32-v20260101", OwnerID: eks, Architecture: "arm64", CreationDate: created})
	f.sim.AddImage(ec2sim.Image{ID: "ami-0ccc", Name: "amazon-eks-node-al2023-x86_64-standard-1.32-v20250101", OwnerID: eks, Architecture: "x86_64", CreationDate: created.AddDate(-1, 0, 0), Deprecated: true})
	f.sim.AddImage(ec2sim.Image{ID: "ami-0ddd", Name: "my-custom", Tags: map[string]string{"team": "infra"}})
	ctx := context.Background()
	out, err := f.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{
		Owners:  []string{"amazon"},
		Filters: []types.Filter{{Name: aws.String("name"), Values: []string{"amazon-eks-node-al2023-*-standard-1.32-*"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Images) != 2 {
		t.Fatalf("images: %d", len(out.Images))
	}
	if *out.Images[0].ImageId != "ami-0aaa" || *out.Images[0].OwnerId != eks || *out.Images[0].CreationDate != "2026-01-02T03:04:05.000Z" || out.Images[0].State != types.ImageStateAvailable {
		t.Errorf("image: %+v", out.Images[0])
	}
	out, err = f.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{eks}, IncludeDeprecated: aws.Bool(true),
		Filters: []types.Filter{{Name: aws.String("architecture"), Values: []string{"x86_64"}}}})
	if err != nil || len(out.Images) != 2 {
		t.Fatalf("with deprecated: %v %v", out, err)
	}
	if out.Images[1].DeprecationTime == nil {
		t.Error("no DeprecationTime on a deprecated image")
	}
	out, err = f.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []types.Filter{{Name: aws.String("tag:team"), Values: []string{"infra"}}}})
	if err != nil || len(out.Images) != 1 || *out.Images[0].ImageId != "ami-0ddd" {
		t.Errorf("self+tag: %v %v", out, err)
	}
	out, err = f.ec2.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: []string{"ami-0bbb"}})
	if err != nil || len(out.Images) != 1 || out.Images[0].Architecture != types.ArchitectureValuesArm64 {
		t.Errorf("by id: %v %v", out, err)
	}
}

func TestSpotPriceHistory(t *testing.T) {
	f := newFixture(t, ec2sim.Options{SpotDiscount: 0.3})
	ctx := context.Background()
	out, err := f.ec2.DescribeSpotPriceHistory(ctx, &ec2.DescribeSpotPriceHistoryInput{
		InstanceTypes:       []types.InstanceType{"m5.large", "c6g.large"},
		ProductDescriptions: []string{"Linux/UNIX"},
		StartTime:           aws.Time(f.now),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.SpotPriceHistory) != 6 {
		t.Fatalf("rows: %d", len(out.SpotPriceHistory))
	}
	prices := map[string]bool{}
	for _, r := range out.SpotPriceHistory {
		if r.InstanceType != "m5.large" {
			continue
		}
		p, err := strconv.ParseFloat(*r.SpotPrice, 64)
		if err != nil || p < 0.096*0.3*0.89 || p > 0.096*0.3*1.11 {
			t.Errorf("m5.large spot %s", *r.SpotPrice)
		}
		prices[*r.SpotPrice] = true
		if r.Timestamp == nil || r.ProductDescription != types.RIProductDescriptionLinuxUnix {
			t.Errorf("row: %+v", r)
		}
	}
	if len(prices) < 2 {
		t.Errorf("zone prices do not vary: %v", prices)
	}
	out, err = f.ec2.DescribeSpotPriceHistory(ctx, &ec2.DescribeSpotPriceHistoryInput{
		Filters: []types.Filter{{Name: aws.String("availability-zone"), Values: []string{"us-east-1a"}}},
	})
	if err != nil || len(out.SpotPriceHistory) != 7 {
		t.Errorf("az filter: %v %v", len(out.SpotPriceHistory), err)
	}
}

// TestDefaultSDKHTTPClient checks the SDK's own HTTP client works too: it
// may retry now and then (see ec2sim.HTTPClient), but every call succeeds.
func TestDefaultSDKHTTPClient(t *testing.T) {
	specs := fullCatalog(t)
	sim := ec2sim.New(ec2sim.Options{Catalog: specs})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKID", "secret", "")))
	if err != nil {
		t.Fatal(err)
	}
	// The default client hits net/http's body-probe race now and then
	// (see ec2sim.HTTPClient); on a loaded machine three attempts are not
	// always enough, ten are.
	c := ec2.NewFromConfig(cfg, func(o *ec2.Options) { o.BaseEndpoint = aws.String(srv.URL); o.RetryMaxAttempts = 10 })
	for i := 0; i < 3; i++ {
		n := 0
		p := ec2.NewDescribeInstanceTypesPaginator(c, &ec2.DescribeInstanceTypesInput{})
		for p.HasMorePages() {
			out, err := p.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			n += len(out.InstanceTypes)
		}
		if n != len(specs) {
			t.Fatalf("%d types, want %d", n, len(specs))
		}
	}
}
