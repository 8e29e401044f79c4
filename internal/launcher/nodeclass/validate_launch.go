package nodeclass

import (
	"errors"
	"fmt"
	"slices"

	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// Limits of the launch settings of a node class.
const (
	// MaxBlockDeviceMappings is the most volumes a node class may map.
	MaxBlockDeviceMappings = 50
	// MaxVolumeSizeGiB is the largest EBS volume, 64 TiB.
	MaxVolumeSizeGiB = 64 << 10
	// MaxHopLimit is the largest IMDS PUT response hop limit.
	MaxHopLimit = 64
	// MaxIOPS is the most IOPS any EBS volume type provisions (io2 Block
	// Express); EC2 checks each type's own limit.
	MaxIOPS = 256000
	// MaxThroughput is the most throughput, in MiB/s, a gp3 volume takes.
	MaxThroughput = 2000
)

// VolumeTypes are the EBS volume types a block device mapping may name.
var VolumeTypes = []string{"gp2", "gp3", "io1", "io2", "sc1", "st1", "standard"}

// iopsTypes take provisioned IOPS; throughputTypes take a throughput.
var (
	iopsTypes       = []string{"gp3", "io1", "io2"}
	throughputTypes = []string{"gp3"}
)

// validateLaunchSettings checks the block device mappings and metadata
// options of a node class; errors wrap apierr.ErrInvalidArgument and name
// the field.
func validateLaunchSettings(nc *launcherv1.NodeClass) error {
	return errors.Join(checkBlockDevices(nc.GetBlockDeviceMappings()), checkMetadataOptions(nc.GetMetadataOptions()))
}

func checkBlockDevices(bdms []*launcherv1.BlockDeviceMapping) error {
	const list = "node_class.block_device_mappings"
	if len(bdms) > MaxBlockDeviceMappings {
		return invalid(list, "%d mappings, at most %d allowed", len(bdms), MaxBlockDeviceMappings)
	}
	var errs []error
	seen := map[string]int{}
	roots := 0
	for i, m := range bdms {
		field := fmt.Sprintf("%s[%d]", list, i)
		if m.GetRootVolume() {
			roots++
			if roots > 1 {
				errs = append(errs, invalid(field+".root_volume", "only one mapping may be the root volume"))
			}
		}
		name := m.GetDeviceName()
		if name == "" {
			errs = append(errs, invalid(field+".device_name", "empty"))
		} else if j, dup := seen[name]; dup {
			errs = append(errs, invalid(field+".device_name", "%q is also mapped by %s[%d]", name, list, j))
		} else {
			seen[name] = i
		}
		if m.GetEbs() == nil {
			errs = append(errs, invalid(field+".ebs", "missing"))
			continue
		}
		errs = append(errs, checkEbs(m.GetEbs(), field+".ebs"))
	}
	return errors.Join(errs...)
}

func checkEbs(e *launcherv1.Ebs, field string) error {
	var errs []error
	add := func(sub, format string, args ...any) {
		errs = append(errs, invalid(field+"."+sub, format, args...))
	}
	switch {
	case e.VolumeSizeGib == nil && e.GetSnapshotId() == "":
		add("volume_size_gib", "set it or snapshot_id")
	case e.VolumeSizeGib != nil && (e.GetVolumeSizeGib() < 1 || e.GetVolumeSizeGib() > MaxVolumeSizeGiB):
		add("volume_size_gib", "%d is outside 1..%d GiB", e.GetVolumeSizeGib(), MaxVolumeSizeGiB)
	}
	vt := e.GetVolumeType()
	if vt != "" && !slices.Contains(VolumeTypes, vt) {
		add("volume_type", "%q is not one of %v", vt, VolumeTypes)
	}
	effective := vt
	if effective == "" {
		effective = "gp2" // EC2's default volume type
	}
	if e.Iops != nil {
		switch {
		case !slices.Contains(iopsTypes, effective):
			add("iops", "%s volumes take no iops (only gp3, io1 and io2 do)", effective)
		case e.GetIops() < 1 || e.GetIops() > MaxIOPS:
			add("iops", "%d is outside 1..%d", e.GetIops(), MaxIOPS)
		}
	} else if effective == "io1" || effective == "io2" {
		add("iops", "%s volumes need iops", effective)
	}
	if e.Throughput != nil {
		switch {
		case !slices.Contains(throughputTypes, effective):
			add("throughput", "%s volumes take no throughput (only gp3 does)", effective)
		case e.GetThroughput() < 1 || e.GetThroughput() > MaxThroughput:
			add("throughput", "%d is outside 1..%d MiB/s", e.GetThroughput(), MaxThroughput)
		}
	}
	if e.GetKmsKeyId() != "" && e.Encrypted != nil && !e.GetEncrypted() {
		add("kms_key_id", "set on a volume with encrypted false")
	}
	return errors.Join(errs...)
}

func checkMetadataOptions(m *launcherv1.MetadataOptions) error {
	if m == nil {
		return nil
	}
	const field = "node_class.metadata_options"
	var errs []error
	oneOf := func(sub, v string, allowed ...string) {
		if v != "" && !slices.Contains(allowed, v) {
			errs = append(errs, invalid(field+"."+sub, "%q is not one of %v", v, allowed))
		}
	}
	oneOf("http_endpoint", m.GetHttpEndpoint(), "enabled", "disabled")
	oneOf("http_protocol_ipv6", m.GetHttpProtocolIpv6(), "enabled", "disabled")
	oneOf("http_tokens", m.GetHttpTokens(), "required", "optional")
	if m.HttpPutResponseHopLimit != nil && (m.GetHttpPutResponseHopLimit() < 1 || m.GetHttpPutResponseHopLimit() > MaxHopLimit) {
		errs = append(errs, invalid(field+".http_put_response_hop_limit", "%d is outside 1..%d", m.GetHttpPutResponseHopLimit(), MaxHopLimit))
	}
	return errors.Join(errs...)
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", apierr.ErrInvalidArgument, field, fmt.Sprintf(format, args...))
}
