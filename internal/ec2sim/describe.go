package ec2sim

import (
	"hash/fnv"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
)

// amazonOwners are the accounts whose images Owners=amazon selects.
var amazonOwners = []string{"137112412989", "602401143452", "801119661308", "amazon"}

// gpuModel is a plausible GPU name and memory for a family.
type gpuModel struct {
	name   string
	memMiB int64
}

var gpuModels = map[string]gpuModel{
	"p3": {"V100", 16384}, "p3dn": {"V100", 32768},
	"g4dn": {"T4", 16384}, "g5g": {"T4g", 16384},
	"g5": {"A10G", 24576}, "g6": {"L4", 23034}, "gr6": {"L4", 23034}, "g6e": {"L40S", 46068},
	"g7e": {"RTX PRO Server 6000", 98304},
	"p4d": {"A100", 40960}, "p4de": {"A100", 81920},
	"p5": {"H100", 81920}, "p5e": {"H200", 144384}, "p5en": {"H200", 144384},
	"p6-b200": {"B200", 183359},
	"g4ad":    {"Radeon Pro V520", 8192},
	"dl1":     {"Gaudi HL-205", 32768},
}

func gpuFor(spec ec2catalog.Spec) (name, manufacturer string, memMiB int64) {
	m, ok := gpuModels[spec.Family]
	if !ok {
		m = gpuModel{"GPU", 16384}
	}
	switch strings.ToLower(spec.GPUManufacturer) {
	case "amd":
		manufacturer = "AMD"
	case "habana":
		manufacturer = "Habana"
	default:
		manufacturer = "NVIDIA"
	}
	return m.name, manufacturer, m.memMiB
}

// instanceTypeField answers DescribeInstanceTypes filters.
func instanceTypeField(sp ec2catalog.Spec, name string) ([]string, bool) {
	switch name {
	case "instance-type":
		return []string{sp.Name}, true
	case "current-generation":
		return []string{"true"}, true
	case "processor-info.supported-architecture":
		return []string{archName(sp.Arch)}, true
	case "vcpu-info.default-vcpus":
		return []string{strconv.Itoa(sp.VCPU)}, true
	case "memory-info.size-in-mib":
		return []string{strconv.FormatInt(sp.MemoryMiB, 10)}, true
	case "supported-usage-class":
		return []string{"on-demand", "spot"}, true
	case "hypervisor":
		return []string{hypervisor(sp)}, true
	case "instance-storage-supported":
		return []string{strconv.FormatBool(sp.LocalNVMeGB > 0)}, true
	case "bare-metal":
		return []string{strconv.FormatBool(strings.HasSuffix(sp.Name, ".metal") || strings.Contains(sp.Name, ".metal-"))}, true
	case "network-info.maximum-network-interfaces":
		return []string{strconv.Itoa(sp.ENIs)}, true
	case "network-info.ipv4-addresses-per-interface":
		return []string{strconv.Itoa(sp.IPv4PerENI)}, true
	case "gpu-info.gpus.count", "gpu-info.gpus.manufacturer", "gpu-info.gpus.name":
		if sp.GPUs == 0 && sp.GPUName == "" {
			return nil, true
		}
		n, m, _ := gpuFor(sp)
		switch name {
		case "gpu-info.gpus.count":
			return []string{strconv.Itoa(sp.GPUs)}, true
		case "gpu-info.gpus.manufacturer":
			return []string{m}, true
		}
		return []string{n}, true
	}
	return nil, false
}

func (s *Sim) describeInstanceTypes(q query, b *xb) *apiError {
	fs := q.filters()
	if err := checkFilters(fs, instanceTypeField); err != nil {
		return err
	}
	names := s.typeNames
	if want := q.list("InstanceType"); len(want) > 0 {
		var missing []string
		for _, n := range want {
			if _, ok := s.types[n]; !ok {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			return errNotFound("InvalidInstanceType", "The following supplied instance types do not exist: [%s]", strings.Join(missing, ", "))
		}
		names = nil
		for _, n := range s.typeNames {
			if slices.Contains(want, n) {
				names = append(names, n)
			}
		}
	}
	var specs []ec2catalog.Spec
	for _, n := range names {
		sp := s.types[n]
		if matchFilters(sp, nil, fs, instanceTypeField) {
			specs = append(specs, sp)
		}
	}
	pg, next, err := page(q, specs, 100, 5, 100)
	if err != nil {
		return err
	}
	b.open("instanceTypeSet")
	for _, sp := range pg {
		writeInstanceType(b, sp)
	}
	b.close("instanceTypeSet")
	b.opt("nextToken", next)
	return nil
}

func writeInstanceType(b *xb, sp ec2catalog.Spec) {
	b.open("item")
	b.el("instanceType", sp.Name)
	b.boolean("currentGeneration", true)
	b.boolean("freeTierEligible", false)
	b.items("supportedUsageClasses", []string{"on-demand", "spot"})
	b.items("supportedRootDeviceTypes", []string{"ebs"})
	b.items("supportedVirtualizationTypes", []string{"hvm"})
	metal := strings.Contains(sp.Name, ".metal")
	b.boolean("bareMetal", metal)
	if hv := hypervisor(sp); hv != "" {
		b.el("hypervisor", hv)
	}
	writeProcessor(b, sp)
	b.open("vCpuInfo")
	b.num("defaultVCpus", int64(sp.VCPU))
	cores, threads := sp.VCPU, 1
	if archName(sp.Arch) == "x86_64" && sp.VCPU > 1 && sp.VCPU%2 == 0 {
		cores, threads = sp.VCPU/2, 2
	}
	b.num("defaultCores", int64(cores))
	b.num("defaultThreadsPerCore", int64(threads))
	b.close("vCpuInfo")
	b.open("memoryInfo")
	b.num("sizeInMiB", sp.MemoryMiB)
	b.close("memoryInfo")
	b.boolean("instanceStorageSupported", sp.LocalNVMeGB > 0)
	if sp.LocalNVMeGB > 0 {
		b.open("instanceStorageInfo")
		b.num("totalSizeInGB", int64(sp.LocalNVMeGB))
		b.el("nvmeSupport", "required")
		b.el("encryptionSupport", "required")
		b.close("instanceStorageInfo")
	}
	writeEBS(b, sp)
	writeNetwork(b, sp)
	writeGPUs(b, sp)
	writeAccelerators(b, sp)
	b.boolean("hibernationSupported", false)
	b.boolean("burstablePerformanceSupported", strings.HasPrefix(sp.Family, "t"))
	b.boolean("dedicatedHostsSupported", false)
	b.boolean("autoRecoverySupported", true)
	b.items("supportedBootModes", []string{"uefi"})
	b.el("nitroEnclavesSupport", "unsupported")
	b.el("nitroTpmSupport", "unsupported")
	b.close("item")
}

// hypervisor is the catalog's hypervisor, or nitro (none for bare metal)
// for a type without facts.
func hypervisor(sp ec2catalog.Spec) string {
	if sp.Known {
		return sp.Hypervisor
	}
	if strings.Contains(sp.Name, ".metal") {
		return ""
	}
	return "nitro"
}

var cpuManufacturers = map[string]string{"intel": "Intel", "amd": "AMD", "aws": "AWS"}

func writeProcessor(b *xb, sp ec2catalog.Spec) {
	b.open("processorInfo")
	b.items("supportedArchitectures", []string{archName(sp.Arch)})
	switch m, ok := cpuManufacturers[sp.CPUManufacturer]; {
	case ok:
		b.el("manufacturer", m)
	case archName(sp.Arch) == "arm64":
		b.el("manufacturer", "AWS")
	default:
		b.el("manufacturer", "Intel")
	}
	if sp.SustainedClockMHz > 0 {
		b.el("sustainedClockSpeedInGhz", strconv.FormatFloat(float64(sp.SustainedClockMHz)/1000, 'f', -1, 64))
	}
	b.close("processorInfo")
}

func writeEBS(b *xb, sp ec2catalog.Spec) {
	b.open("ebsInfo")
	switch {
	case sp.EBSBandwidthMbps > 0:
		b.el("ebsOptimizedSupport", "default")
		b.open("ebsOptimizedInfo")
		b.num("maximumBandwidthInMbps", int64(sp.EBSBandwidthMbps))
		b.close("ebsOptimizedInfo")
	case sp.Known:
		b.el("ebsOptimizedSupport", "unsupported")
	default:
		b.el("ebsOptimizedSupport", "default")
	}
	b.el("encryptionSupport", "supported")
	b.el("nvmeSupport", "required")
	b.close("ebsInfo")
}

// writeNetwork serves the type's interfaces as network cards: the default
// card (index 0) with the catalog's default-card interfaces, the rest on
// further cards of at most as many each.
func writeNetwork(b *xb, sp ec2catalog.Spec) {
	b.open("networkInfo")
	perf := "Up to 10 Gigabit"
	if sp.NetworkBandwidthMbps > 0 {
		perf = strconv.FormatFloat(float64(sp.NetworkBandwidthMbps)/1000, 'f', -1, 64) + " Gigabit"
	}
	b.el("networkPerformance", perf)
	enis, ips := sp.ENIs, sp.IPv4PerENI
	if enis == 0 {
		enis = 2
	}
	if ips == 0 {
		ips = 4
	}
	perCard := min(sp.DefaultENIs(), enis)
	if perCard <= 0 {
		perCard = enis
	}
	var cards []int
	for left := enis; left > 0; left -= perCard {
		cards = append(cards, min(left, perCard))
	}
	b.num("maximumNetworkInterfaces", int64(enis))
	b.num("maximumNetworkCards", int64(len(cards)))
	b.num("defaultNetworkCardIndex", 0)
	b.open("networkCards")
	for i, n := range cards {
		b.open("item")
		b.num("networkCardIndex", int64(i))
		b.el("networkPerformance", perf)
		b.num("maximumNetworkInterfaces", int64(n))
		b.close("item")
	}
	b.close("networkCards")
	b.num("ipv4AddressesPerInterface", int64(ips))
	b.num("ipv6AddressesPerInterface", int64(ips))
	b.boolean("ipv6Supported", true)
	b.el("enaSupport", "required")
	b.boolean("efaSupported", sp.EFAs > 0)
	if sp.EFAs > 0 {
		b.open("efaInfo")
		b.num("maximumEfaInterfaces", int64(sp.EFAs))
		b.close("efaInfo")
	}
	b.boolean("encryptionInTransitSupported", sp.EncryptionInTransit || !sp.Known)
	b.close("networkInfo")
}

func writeGPUs(b *xb, sp ec2catalog.Spec) {
	if sp.GPUs == 0 && sp.GPUName == "" {
		return
	}
	name, manu, mem := gpuFor(sp)
	if sp.GPUName != "" && labelValue(name) != sp.GPUName {
		name = sp.GPUName
	}
	if sp.GPUMemoryMiB > 0 {
		mem = sp.GPUMemoryMiB
	}
	b.open("gpuInfo")
	b.open("gpus")
	b.open("item")
	b.el("name", name)
	b.el("manufacturer", manu)
	b.num("count", int64(sp.GPUs))
	b.open("memoryInfo")
	b.num("sizeInMiB", mem)
	b.close("memoryInfo")
	b.close("item")
	b.close("gpus")
	b.num("totalGpuMemoryInMiB", mem*int64(sp.GPUs))
	b.close("gpuInfo")
}

// labelValue is a name as Karpenter labels it: lower case, dashes for spaces.
func labelValue(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "-")) }

// writeAccelerators serves Neuron devices, or inference accelerators on
// types without them.
func writeAccelerators(b *xb, sp ec2catalog.Spec) {
	switch {
	case sp.NeuronDevices > 0:
		b.open("neuronInfo")
		b.open("neuronDevices")
		b.open("item")
		b.num("count", int64(sp.NeuronDevices))
		b.el("name", sp.AcceleratorName)
		b.open("coreInfo")
		b.num("count", int64(sp.NeuronCores/sp.NeuronDevices))
		b.close("coreInfo")
		b.close("item")
		b.close("neuronDevices")
		b.close("neuronInfo")
	case sp.AcceleratorName != "":
		b.open("inferenceAcceleratorInfo")
		b.open("accelerators")
		b.open("member")
		b.num("count", int64(sp.Accelerators))
		b.el("name", sp.AcceleratorName)
		b.el("manufacturer", sp.AcceleratorManufacturer)
		b.close("member")
		b.close("accelerators")
		b.close("inferenceAcceleratorInfo")
	}
}

// offering is one instance type in one location.
type offering struct {
	instanceType, location, locationType string
}

func offeringField(o offering, name string) ([]string, bool) {
	switch name {
	case "instance-type":
		return []string{o.instanceType}, true
	case "location":
		return []string{o.location}, true
	}
	return nil, false
}

func (s *Sim) describeInstanceTypeOfferings(q query, b *xb) *apiError {
	fs := q.filters()
	if err := checkFilters(fs, offeringField); err != nil {
		return err
	}
	lt := q.get("LocationType")
	var locations []string
	switch lt {
	case "", "region":
		lt = "region"
		locations = []string{s.region}
	case "availability-zone":
		locations = s.zones
	case "availability-zone-id":
		for _, z := range s.zones {
			locations = append(locations, s.zoneID(z))
		}
	default:
		return errInvalidParam("Value (%s) for parameter locationType is invalid. Valid values: region, availability-zone, availability-zone-id", lt)
	}
	var out []offering
	for _, n := range s.typeNames {
		for _, loc := range locations {
			o := offering{n, loc, lt}
			if matchFilters(o, nil, fs, offeringField) {
				out = append(out, o)
			}
		}
	}
	pg, next, err := page(q, out, 1000, 5, 1000)
	if err != nil {
		return err
	}
	b.open("instanceTypeOfferingSet")
	for _, o := range pg {
		b.open("item")
		b.el("instanceType", o.instanceType)
		b.el("locationType", o.locationType)
		b.el("location", o.location)
		b.close("item")
	}
	b.close("instanceTypeOfferingSet")
	b.opt("nextToken", next)
	return nil
}

// zoneID maps us-east-1a to use1-az1.
func (s *Sim) zoneID(zone string) string {
	idx := slices.Index(s.zones, zone)
	if idx < 0 {
		return ""
	}
	parts := strings.Split(s.region, "-")
	short := ""
	for i, p := range parts {
		if i == 0 || i == len(parts)-1 {
			short += p
		} else if p != "" {
			short += p[:1]
		}
	}
	return short + "-az" + strconv.Itoa(idx+1)
}

// zoneByName resolves a zone name or zone ID to the zone name.
func (s *Sim) zoneByName(z string) (string, bool) {
	for _, zz := range s.zones {
		if zz == z || s.zoneID(zz) == z {
			return zz, true
		}
	}
	return "", false
}

type zoneRow struct{ name, id, region string }

func zoneField(z zoneRow, name string) ([]string, bool) {
	switch name {
	case "zone-name":
		return []string{z.name}, true
	case "zone-id":
		return []string{z.id}, true
	case "region-name":
		return []string{z.region}, true
	case "state":
		return []string{"available"}, true
	case "zone-type":
		return []string{"availability-zone"}, true
	case "opt-in-status":
		return []string{"opt-in-not-required"}, true
	case "group-name", "network-border-group":
		return []string{z.region}, true
	}
	return nil, false
}

func (s *Sim) describeAvailabilityZones(q query, b *xb) *apiError {
	fs := q.filters()
	if err := checkFilters(fs, zoneField); err != nil {
		return err
	}
	names, ids := q.list("ZoneName"), q.list("ZoneId")
	for _, n := range names {
		if !slices.Contains(s.zones, n) {
			return errInvalidParam("Invalid availability zone: [%s]", n)
		}
	}
	b.open("availabilityZoneInfo")
	for _, z := range s.zones {
		row := zoneRow{z, s.zoneID(z), s.region}
		if (len(names) > 0 || len(ids) > 0) && !slices.Contains(names, z) && !slices.Contains(ids, row.id) {
			continue
		}
		if !matchFilters(row, nil, fs, zoneField) {
			continue
		}
		b.open("item")
		b.el("optInStatus", "opt-in-not-required")
		b.el("zoneName", z)
		b.el("zoneId", row.id)
		b.el("zoneState", "available")
		b.el("regionName", s.region)
		b.el("groupName", s.region)
		b.el("networkBorderGroup", s.region)
		b.el("zoneType", "availability-zone")
		b.open("messageSet")
		b.close("messageSet")
		b.close("item")
	}
	b.close("availabilityZoneInfo")
	return nil
}

func subnetField(sn *Subnet, name string) ([]string, bool) {
	if sn == nil {
		sn = &Subnet{}
	}
	switch name {
	case "subnet-id":
		return []string{sn.ID}, true
	case "vpc-id":
		return []string{sn.VpcID}, true
	case "availability-zone":
		return []string{sn.Zone}, true
	case "cidr-block", "cidr":
		return []string{sn.CIDR}, true
	case "state":
		return []string{"available"}, true
	case "owner-id":
		return []string{AccountID}, true
	case "default-for-az":
		return []string{"false"}, true
	}
	return nil, false
}

func (s *Sim) describeSubnets(q query, b *xb) *apiError {
	fs := q.filters()
	if err := checkFilters(fs, subnetField); err != nil {
		return err
	}
	ids := q.list("SubnetId")
	for _, id := range ids {
		if s.subnet(id) == nil {
			return errNotFound("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", id)
		}
	}
	var out []*Subnet
	for _, sn := range s.subnets {
		if len(ids) > 0 && !slices.Contains(ids, sn.ID) {
			continue
		}
		if matchFilters(sn, sn.Tags, fs, subnetField) {
			out = append(out, sn)
		}
	}
	pg, next, err := page(q, out, 0, 5, 1000)
	if err != nil {
		return err
	}
	b.open("subnetSet")
	for _, sn := range pg {
		b.open("item")
		b.el("subnetId", sn.ID)
		b.el("subnetArn", "arn:aws:ec2:"+s.region+":"+AccountID+":subnet/"+sn.ID)
		b.el("state", "available")
		b.el("ownerId", AccountID)
		b.el("vpcId", sn.VpcID)
		b.el("cidrBlock", sn.CIDR)
		b.num("availableIpAddressCount", int64(sn.AvailableIPAddresses))
		b.el("availabilityZone", sn.Zone)
		b.el("availabilityZoneId", s.zoneID(sn.Zone))
		b.boolean("defaultForAz", false)
		b.boolean("mapPublicIpOnLaunch", false)
		b.boolean("assignIpv6AddressOnCreation", false)
		b.tagSet(sn.Tags)
		b.close("item")
	}
	b.close("subnetSet")
	b.opt("nextToken", next)
	return nil
}

func (s *Sim) subnet(id string) *Subnet {
	for _, sn := range s.subnets {
		if sn.ID == id {
			return sn
		}
	}
	return nil
}

func sgField(sg *SecurityGroup, name string) ([]string, bool) {
	if sg == nil {
		sg = &SecurityGroup{}
	}
	switch name {
	case "group-id":
		return []string{sg.ID}, true
	case "group-name":
		return []string{sg.Name}, true
	case "vpc-id":
		return []string{sg.VpcID}, true
	case "description":
		return []string{sg.Description}, true
	case "owner-id":
		return []string{AccountID}, true
	}
	return nil, false
}

func (s *Sim) describeSecurityGroups(q query, b *xb) *apiError {
	fs := q.filters()
	if err := checkFilters(fs, sgField); err != nil {
		return err
	}
	ids, names := q.list("GroupId"), q.list("GroupName")
	for _, id := range ids {
		if !slices.ContainsFunc(s.securityGroups, func(sg *SecurityGroup) bool { return sg.ID == id }) {
			return errNotFound("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(s.securityGroups, func(sg *SecurityGroup) bool { return sg.Name == n }) {
			return errNotFound("InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC '%s'", n, s.vpcID)
		}
	}
	var out []*SecurityGroup
	for _, sg := range s.securityGroups {
		if len(ids) > 0 && !slices.Contains(ids, sg.ID) {
			continue
		}
		if len(names) > 0 && !slices.Contains(names, sg.Name) {
			continue
		}
		if matchFilters(sg, sg.Tags, fs, sgField) {
			out = append(out, sg)
		}
	}
	pg, next, err := page(q, out, 0, 5, 1000)
	if err != nil {
		return err
	}
	b.open("securityGroupInfo")
	for _, sg := range pg {
		b.open("item")
		b.el("ownerId", AccountID)
		b.el("groupId", sg.ID)
		b.el("groupName", sg.Name)
		b.el("groupDescription", sg.Description)
		b.el("vpcId", sg.VpcID)
		b.el("securityGroupArn", "arn:aws:ec2:"+s.region+":"+AccountID+":security-group/"+sg.ID)
		b.open("ipPermissions")
		b.close("ipPermissions")
		b.open("ipPermissionsEgress")
		b.close("ipPermissionsEgress")
		b.tagSet(sg.Tags)
		b.close("item")
	}
	b.close("securityGroupInfo")
	b.opt("nextToken", next)
	return nil
}

func imageField(im *Image, name string) ([]string, bool) {
	if im == nil {
		im = &Image{}
	}
	switch name {
	case "name":
		return []string{im.Name}, true
	case "image-id":
		return []string{im.ID}, true
	case "owner-id":
		return []string{im.OwnerID}, true
	case "owner-alias":
		if slices.Contains(amazonOwners, im.OwnerID) {
			return []string{"amazon"}, true
		}
		return nil, true
	case "architecture":
		return []string{im.Architecture}, true
	case "state":
		return []string{"available"}, true
	case "image-type":
		return []string{"machine"}, true
	case "is-public":
		return []string{strconv.FormatBool(im.OwnerID != AccountID)}, true
	case "root-device-type":
		return []string{"ebs"}, true
	case "virtualization-type":
		return []string{"hvm"}, true
	case "platform-details":
		return []string{"Linux/UNIX"}, true
	case "creation-date":
		return []string{fmtTime(im.CreationDate)}, true
	}
	return nil, false
}

func (s *Sim) describeImages(q query, b *xb) *apiError {
	fs := q.filters()
	if err := checkFilters(fs, imageField); err != nil {
		return err
	}
	ids := q.list("ImageId")
	owners := q.list("Owner")
	includeDeprecated := q.boolean("IncludeDeprecated") || len(ids) > 0
	var out []*Image
	for _, im := range s.images {
		if len(ids) > 0 && !slices.Contains(ids, im.ID) {
			continue
		}
		if len(owners) > 0 && !ownerMatches(im.OwnerID, owners) {
			continue
		}
		if im.Deprecated && !includeDeprecated && im.OwnerID != AccountID {
			continue
		}
		if matchFilters(im, im.Tags, fs, imageField) {
			out = append(out, im)
		}
	}
	if len(ids) > 0 {
		for _, id := range ids {
			if !slices.ContainsFunc(s.images, func(im *Image) bool { return im.ID == id }) {
				return errNotFound("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
			}
		}
	}
	pg, next, err := page(q, out, 0, 1, 1000)
	if err != nil {
		return err
	}
	now := s.now()
	b.open("imagesSet")
	for _, im := range pg {
		b.open("item")
		b.el("imageId", im.ID)
		b.el("imageLocation", im.OwnerID+"/"+im.Name)
		b.el("imageState", "available")
		b.el("imageOwnerId", im.OwnerID)
		b.time("creationDate", im.CreationDate)
		b.boolean("isPublic", im.OwnerID != AccountID)
		b.el("architecture", im.Architecture)
		b.el("imageType", "machine")
		if slices.Contains(amazonOwners, im.OwnerID) {
			b.el("imageOwnerAlias", "amazon")
		}
		b.el("name", im.Name)
		b.el("rootDeviceType", "ebs")
		b.el("rootDeviceName", "/dev/xvda")
		b.el("virtualizationType", "hvm")
		b.el("hypervisor", "xen")
		b.boolean("enaSupport", true)
		b.el("platformDetails", "Linux/UNIX")
		b.el("usageOperation", "RunInstances")
		b.el("bootMode", "uefi-preferred")
		if im.Deprecated {
			dt := im.CreationDate
			if dt.IsZero() || dt.After(now) {
				dt = now
			}
			b.time("deprecationTime", dt)
		}
		b.tagSet(im.Tags)
		b.close("item")
	}
	b.close("imagesSet")
	b.opt("nextToken", next)
	return nil
}

func ownerMatches(owner string, owners []string) bool {
	for _, o := range owners {
		switch o {
		case owner:
			return true
		case "self":
			if owner == AccountID {
				return true
			}
		case "amazon":
			if slices.Contains(amazonOwners, owner) {
				return true
			}
		}
	}
	return false
}

// SpotPrice is the simulated spot price of an offering: on-demand price ×
// SpotDiscount × a zone factor between 0.9 and 1.1 fixed by a hash of the
// type and zone, rounded to 4 decimals. ok is false for unknown types.
func (s *Sim) SpotPrice(instanceType, zone string) (price float64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.spotPrice(instanceType, zone)
}

func (s *Sim) spotPrice(instanceType, zone string) (float64, bool) {
	sp, ok := s.types[instanceType]
	if !ok {
		return 0, false
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(instanceType + "/" + zone))
	factor := 0.9 + 0.2*float64(h.Sum64()%1001)/1000
	p := math.Round(sp.OnDemandPrice*s.spotDiscount*factor*10000) / 10000
	if p <= 0 && sp.OnDemandPrice > 0 {
		p = 0.0001
	}
	return p, true
}

// price is the hourly price of an offering.
func (s *Sim) price(instanceType, zone, capacityType string) float64 {
	if capacityType == CapacityTypeSpot {
		p, _ := s.spotPrice(instanceType, zone)
		return p
	}
	return s.types[instanceType].OnDemandPrice
}

type spotRow struct {
	instanceType, zone, product string
	price                       float64
	ts                          time.Time
}

func spotField(r spotRow, name string) ([]string, bool) {
	switch name {
	case "instance-type":
		return []string{r.instanceType}, true
	case "availability-zone":
		return []string{r.zone}, true
	case "product-description":
		return []string{r.product}, true
	case "spot-price":
		return []string{strconv.FormatFloat(r.price, 'f', 6, 64)}, true
	case "timestamp":
		return []string{fmtTime(r.ts)}, true
	}
	return nil, false
}

var spotProducts = []string{"Linux/UNIX", "Linux/UNIX (Amazon VPC)"}

func (s *Sim) describeSpotPriceHistory(q query, b *xb) *apiError {
	fs := q.filters()
	if err := checkFilters(fs, spotField); err != nil {
		return err
	}
	types := q.list("InstanceType")
	products := q.list("ProductDescription")
	if len(products) == 0 {
		products = spotProducts[:1]
	}
	zone := q.get("AvailabilityZone")
	if id := q.get("AvailabilityZoneId"); zone == "" && id != "" {
		zone, _ = s.zoneByName(id)
		if zone == "" {
			zone = "-"
		}
	}
	// One price per (type, zone), set at the top of the current hour.
	ts := s.now().UTC().Truncate(time.Hour)
	var rows []spotRow
	for _, n := range s.typeNames {
		if len(types) > 0 && !slices.Contains(types, n) {
			continue
		}
		for _, z := range s.zones {
			if zone != "" && z != zone {
				continue
			}
			for _, prod := range products {
				if !slices.Contains(spotProducts, prod) {
					continue
				}
				p, _ := s.spotPrice(n, z)
				r := spotRow{n, z, prod, p, ts}
				if matchFilters(r, nil, fs, spotField) {
					rows = append(rows, r)
				}
			}
		}
	}
	pg, next, err := page(q, rows, 1000, 0, 10000)
	if err != nil {
		return err
	}
	b.open("spotPriceHistorySet")
	for _, r := range pg {
		b.open("item")
		b.el("instanceType", r.instanceType)
		b.el("productDescription", r.product)
		b.el("spotPrice", strconv.FormatFloat(r.price, 'f', 6, 64))
		b.time("timestamp", r.ts)
		b.el("availabilityZone", r.zone)
		b.el("availabilityZoneId", s.zoneID(r.zone))
		b.close("item")
	}
	b.close("spotPriceHistorySet")
	b.opt("nextToken", next)
	return nil
}
