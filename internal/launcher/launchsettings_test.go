package launcher_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// exampleNodeClass is examples/karpenter/ec2nodeclass.yaml, called
// "example" and pointed at the simulator's subnets, groups and role.
func exampleNodeClass(t *testing.T) *awsv1.EC2NodeClass {
	t.Helper()
	b, err := os.ReadFile("../../examples/karpenter/ec2nodeclass.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var nc awsv1.EC2NodeClass
	if err := yaml.UnmarshalStrict(b, &nc); err != nil {
		t.Fatal(err)
	}
	sim := ec2NodeClass("example", "al2023@latest")
	nc.ObjectMeta = sim.ObjectMeta
	nc.Spec.SubnetSelectorTerms, nc.Spec.SecurityGroupSelectorTerms, nc.Spec.AMISelectorTerms, nc.Spec.Role =
		sim.Spec.SubnetSelectorTerms, sim.Spec.SecurityGroupSelectorTerms, sim.Spec.AMISelectorTerms, sim.Spec.Role
	return &nc
}

// TestExampleNodeClassReachesLaunchTemplate launches with the example
// EC2NodeClass through the SDK and checks the template EC2 got carries its
// 100Gi encrypted gp3 volume and IMDS options instead of the defaults.
func TestExampleNodeClassReachesLaunchTemplate(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	req := launchRequest("example-1", "m5.large")
	req.NodeClassName = e.putClass(t, exampleNodeClass(t))
	if _, err := svc.Launch(ctx, req); err != nil {
		t.Fatal(err)
	}
	lts := e.sim.LaunchTemplates()
	if len(lts) != 1 {
		t.Fatalf("%d launch templates, want 1", len(lts))
	}
	d := lts[0].Data
	want := map[string]string{
		"BlockDeviceMapping.1.DeviceName":              "/dev/xvda",
		"BlockDeviceMapping.1.Ebs.VolumeSize":          "100",
		"BlockDeviceMapping.1.Ebs.VolumeType":          "gp3",
		"BlockDeviceMapping.1.Ebs.Iops":                "3000",
		"BlockDeviceMapping.1.Ebs.Throughput":          "125",
		"BlockDeviceMapping.1.Ebs.Encrypted":           "true",
		"BlockDeviceMapping.1.Ebs.DeleteOnTermination": "true",
		"MetadataOptions.HttpEndpoint":                 "enabled",
		"MetadataOptions.HttpProtocolIpv6":             "disabled",
		"MetadataOptions.HttpPutResponseHopLimit":      "1",
		"MetadataOptions.HttpTokens":                   "required",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %q, want %q", k, d[k], v)
		}
	}
	if _, ok := d["BlockDeviceMapping.2.DeviceName"]; ok {
		t.Errorf("extra block device mapping: %v", d)
	}
	if d["SecurityGroupId.1"] == "" || d["Monitoring.Enabled"] != "" {
		t.Errorf("security groups or monitoring: %v", d)
	}
}

// TestPublicIPAndMonitoringReachLaunchTemplate checks that choosing a
// public IP moves the security groups onto the primary interface and that
// detailed monitoring and a raised hop limit are kept.
func TestPublicIPAndMonitoringReachLaunchTemplate(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	req := launchRequest("public-1", "m5.large")
	req.NodeClassName = e.classWith(t, "public", func(nc *awsv1.EC2NodeClass) {
		public, hops := true, int64(2)
		nc.Spec.AssociatePublicIPAddress = &public
		nc.Spec.DetailedMonitoring = &public
		nc.Spec.MetadataOptions = &awsv1.MetadataOptions{HTTPPutResponseHopLimit: &hops}
	})
	if _, err := svc.Launch(ctx, req); err != nil {
		t.Fatal(err)
	}
	lts := e.sim.LaunchTemplates()
	if len(lts) != 1 {
		t.Fatalf("%d launch templates, want 1", len(lts))
	}
	d := lts[0].Data
	if d["NetworkInterface.1.AssociatePublicIpAddress"] != "true" || d["NetworkInterface.1.DeviceIndex"] != "0" ||
		!strings.HasPrefix(d["NetworkInterface.1.SecurityGroupId.1"], "sg-") || d["SecurityGroupId.1"] != "" {
		t.Errorf("network interface: %v", d)
	}
	if d["Monitoring.Enabled"] != "true" || d["MetadataOptions.HttpPutResponseHopLimit"] != "2" || d["MetadataOptions.HttpTokens"] != "required" {
		t.Errorf("monitoring or metadata options: %v", d)
	}
	if d["BlockDeviceMapping.1.Ebs.VolumeSize"] != "20" {
		t.Errorf("default root volume: %v", d)
	}
}

// TestBadLaunchSettingsAreInvalidArgument checks the launcher rejects bad
// volume and metadata settings before calling EC2, naming the field.
func TestBadLaunchSettingsAreInvalidArgument(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	req := launchRequest("bad-1", "m5.large")
	bad := exampleNodeClass(t)
	gp2 := "gp2"
	bad.Spec.BlockDeviceMappings[0].EBS.VolumeType = &gp2
	req.NodeClassName = e.putClass(t, bad)
	_, err := svc.Launch(ctx, req)
	if !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), "node_class.block_device_mappings[0].ebs.iops") {
		t.Fatalf("Launch: %v", err)
	}
	_, err = svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: req.NodeClassName})
	if !errors.Is(err, apierr.ErrInvalidArgument) {
		t.Fatalf("ResolveNodeClass: %v", err)
	}
	if n := e.sim.Calls()["CreateLaunchTemplate"] + e.sim.Calls()["CreateFleet"]; n != 0 {
		t.Errorf("%d EC2 launch calls for an invalid class", n)
	}
}

// TestExampleNodeClassEphemeralStorage: the instance types of the example
// EC2NodeClass report its 100Gi root volume as ephemeral storage, the
// default node class the default 20Gi.
func TestExampleNodeClassEphemeralStorage(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	for _, tc := range []struct {
		nc   *launcherv1.NodeClass
		want string
	}{{nodeclass.FromEC2NodeClass(exampleNodeClass(t)), "100Gi"}, {nodeClass("al2023@latest"), "20Gi"}} {
		resp, err := svc.ListInstanceTypes(ctx, &launcherv1.ListInstanceTypesRequest{NodeClass: tc.nc})
		if err != nil || len(resp.GetInstanceTypes()) == 0 {
			t.Fatalf("ListInstanceTypes: %v", err)
		}
		for _, it := range resp.GetInstanceTypes()[:3] {
			if got := it.GetCapacity()["ephemeral-storage"]; got != tc.want {
				t.Errorf("%s ephemeral-storage capacity %q, want %q", it.GetName(), got, tc.want)
			}
		}
	}
}
