// Package userdata builds the user data an EC2 node boots with, in the
// format of its AMI family, and merges the EC2NodeClass's own user data
// into it the way Karpenter documents
// (https://karpenter.sh/docs/concepts/nodeclasses/#specuserdata):
//
//   - AL2023: a MIME multi-part archive for nodeadm. The class's parts are
//     kept as parts (a class that is not MIME becomes one part: a NodeConfig
//     when it is YAML, else a shell script), and Flotilla's NodeConfig comes
//     last, so nodeadm merges it over the user's.
//   - AL2: a MIME multi-part archive whose last part runs
//     /etc/eks/bootstrap.sh; the class's script or parts run first.
//   - Bottlerocket: one TOML document. The class's settings are kept and
//     Flotilla's win where both set the same key (cluster, labels, taints,
//     kubelet settings).
//   - Windows2019/2022/2025: a PowerShell script; the class's commands run
//     before Start-EKSBootstrap.ps1.
//   - Custom: the class's user data, untouched.
//
// The output is plain text; the launch template base64-encodes it.
package userdata

import (
	"fmt"
	"strings"
)

// Family is an AMI family, as the launcher names it: the lower-case form
// of spec.amiFamily, which is also an alias's prefix (al2023@latest).
type Family string

// The AMI families of karpenter.k8s.aws/v1.
const (
	AL2023       Family = "al2023"
	AL2          Family = "al2"
	Bottlerocket Family = "bottlerocket"
	Windows2019  Family = "windows2019"
	Windows2022  Family = "windows2022"
	Windows2025  Family = "windows2025"
	Custom       Family = "custom"
)

// Families lists every family, in the order the CRD's enum does.
var Families = []Family{AL2, AL2023, Bottlerocket, Custom, Windows2019, Windows2022, Windows2025}

// ParseFamily reads spec.amiFamily ("AL2023", "Bottlerocket", ...; case does
// not matter). An empty value is AL2023, the family Karpenter documents as
// the default.
func ParseFamily(s string) (Family, error) {
	if s == "" {
		return AL2023, nil
	}
	f := Family(strings.ToLower(s))
	for _, known := range Families {
		if f == known {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown AMI family %q (want one of AL2, AL2023, Bottlerocket, Custom, Windows2019, Windows2022, Windows2025)", s)
}

// Windows reports whether the family boots Windows nodes.
func (f Family) Windows() bool {
	return f == Windows2019 || f == Windows2022 || f == Windows2025
}
