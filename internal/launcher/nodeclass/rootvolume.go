package nodeclass

import launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"

// RootVolumeGi is the size in GiB of the volume that holds the node's
// ephemeral storage (kubelet and container images), as Karpenter reckons
// it: the mapping marked rootVolume, else the family's storage device
// (/dev/xvdb for Bottlerocket, /dev/xvda otherwise) among the mappings,
// else 0 — the family default of the launch template (20 GiB).
func RootVolumeGi(nc *launcherv1.NodeClass, family string) int64 {
	device := "/dev/xvda"
	if family == FamilyBottlerocket {
		device = "/dev/xvdb"
	}
	var byDevice int64
	for _, m := range nc.GetBlockDeviceMappings() {
		size := m.GetEbs().GetVolumeSizeGib()
		if m.GetRootVolume() {
			return size
		}
		if m.GetDeviceName() == device {
			byDevice = size
		}
	}
	return byDevice
}
