package nodeclass

import (
	"testing"

	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

func TestRootVolumeGi(t *testing.T) {
	vol := func(dev string, gi int64, root bool) *launcherv1.BlockDeviceMapping {
		return &launcherv1.BlockDeviceMapping{DeviceName: dev, RootVolume: root, Ebs: &launcherv1.Ebs{VolumeSizeGib: &gi}}
	}
	for _, tc := range []struct {
		name     string
		mappings []*launcherv1.BlockDeviceMapping
		family   string
		want     int64
	}{
		{"none: the template default", nil, FamilyAL2023, 0},
		{"the example's /dev/xvda", []*launcherv1.BlockDeviceMapping{vol("/dev/xvda", 100, false)}, FamilyAL2023, 100},
		{"rootVolume wins", []*launcherv1.BlockDeviceMapping{vol("/dev/xvda", 100, false), vol("/dev/xvdc", 300, true)}, FamilyAL2, 300},
		{"bottlerocket's data volume", []*launcherv1.BlockDeviceMapping{vol("/dev/xvda", 4, false), vol("/dev/xvdb", 80, false)}, FamilyBottlerocket, 80},
		{"other devices only", []*launcherv1.BlockDeviceMapping{vol("/dev/xvdf", 500, false)}, FamilyAL2023, 0},
	} {
		if got := RootVolumeGi(&launcherv1.NodeClass{BlockDeviceMappings: tc.mappings}, tc.family); got != tc.want {
			t.Errorf("%s: %d GiB, want %d", tc.name, got, tc.want)
		}
	}
}
