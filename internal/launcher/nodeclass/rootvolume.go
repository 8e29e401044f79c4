package nodeclass

import (
	"github.com/flotilla-io/flotilla/internal/launcher/userdata"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// RootVolumeGi is the size in GiB of the volume that holds the node's
// ephemeral storage (kubelet and container images), as Karpenter reckons
// it: the mapping marked rootVolume, else the family's storage device
// (/dev/xvdb for Bottlerocket, /dev/sda1 for Windows, /dev/xvda
// otherwise) among the mappings, else the family default of the launch
// template: 0 meaning 20 GiB, or 50 GiB for Windows.
func RootVolumeGi(nc *launcherv1.NodeClass, family string) int64 {
	device := "/dev/xvda"
	switch {
	case family == FamilyBottlerocket:
		device = "/dev/xvdb"
	case userdata.Family(family).Windows():
		device = WindowsRootDevice
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
	if byDevice == 0 && userdata.Family(family).Windows() {
		return WindowsRootVolumeGi
	}
	return byDevice
}

// Windows AMIs boot from /dev/sda1, and Karpenter gives it 50 GiB by
// default (its Windows family's default block device mapping).
const (
	WindowsRootDevice   = "/dev/sda1"
	WindowsRootVolumeGi = 50
)
