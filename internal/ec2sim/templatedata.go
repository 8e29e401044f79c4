package ec2sim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// ebsVolumeTypes are the EBS volume types EC2 knows.
var ebsVolumeTypes = []string{"gp2", "gp3", "io1", "io2", "sc1", "st1", "standard"}

// checkTemplateData rejects launch template data EC2 would refuse to
// launch with: security groups both on the instance and on a network
// interface, unknown volume types, and out-of-range hop limits. (EC2
// reports the first at launch; the simulator reports it on creation, so a
// bad template never exists.) data's keys lack the LaunchTemplateData.
// prefix.
func checkTemplateData(data map[string]string) *apiError {
	instanceGroups, interfaceGroups := false, false
	for k := range data {
		switch {
		case strings.HasPrefix(k, "SecurityGroupId."), strings.HasPrefix(k, "SecurityGroup."):
			instanceGroups = true
		case strings.HasPrefix(k, "NetworkInterface.") && strings.Contains(k, ".SecurityGroupId."):
			interfaceGroups = true
		}
	}
	if instanceGroups && interfaceGroups {
		return &apiError{http.StatusBadRequest, "InvalidParameterCombination",
			"Network interfaces and an instance-level security groups may not be specified on the same request"}
	}
	for k, v := range data {
		if strings.HasPrefix(k, "BlockDeviceMapping.") && strings.HasSuffix(k, ".Ebs.VolumeType") && !slices.Contains(ebsVolumeTypes, v) {
			return errInvalidParam("Value (%s) for parameter volumeType is invalid. Valid values are %s.", v, strings.Join(ebsVolumeTypes, ", "))
		}
	}
	if v, ok := data["MetadataOptions.HttpPutResponseHopLimit"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 64 {
			return errInvalidParam("The HttpPutResponseHopLimit value %s is invalid. Specify a value from 1 to 64.", v)
		}
	}
	return nil
}
