package nodeclass

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/flotilla-io/flotilla/internal/launcher/userdata"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// AMI families an alias may name (userdata.Family is their one home).
const (
	FamilyAL2023       = string(userdata.AL2023)
	FamilyAL2          = string(userdata.AL2)
	FamilyBottlerocket = string(userdata.Bottlerocket)
)

// FamilyOf is the AMI family of a node class's images: Custom when
// spec.amiFamily says so, else the alias's family when its AMI term is an
// alias, else spec.amiFamily (AL2023 when unset, Karpenter's default).
// Validate has checked that the family is known.
func FamilyOf(nc *launcherv1.NodeClass) userdata.Family {
	// amiFamily Custom may go with any alias (Karpenter's CRD allows it):
	// the alias picks the image, the class's user data is passed through.
	if f, err := userdata.ParseFamily(nc.GetAmiFamily()); err == nil && f == userdata.Custom {
		return f
	}
	for _, t := range nc.GetAmiSelectorTerms() {
		if family, _, ok := strings.Cut(t.GetAlias(), "@"); ok {
			return userdata.Family(family)
		}
	}
	f, err := userdata.ParseFamily(nc.GetAmiFamily())
	if err != nil {
		return userdata.AL2023
	}
	return f
}

// Alias is a parsed amiSelectorTerms alias, family@version.
type Alias struct {
	Family string
	// Version is "latest" or a pinned release: v20240807 (Amazon Linux) or
	// v1.20.5 (Bottlerocket, always with the v).
	Version string
}

var (
	alVersion = regexp.MustCompile(`^v\d{8}$`)
	brVersion = regexp.MustCompile(`^v?\d+\.\d+\.\d+$`)
)

// ParseAlias parses family@version; field names the term in errors.
func ParseAlias(s, field string) (Alias, error) {
	family, version, ok := strings.Cut(s, "@")
	if !ok || family == "" || version == "" {
		return Alias{}, fmt.Errorf("%w: %s: %q is not family@version", apierr.ErrInvalidArgument, field, s)
	}
	a := Alias{Family: family, Version: version}
	if version == "latest" {
		if family != FamilyAL2023 && family != FamilyAL2 && family != FamilyBottlerocket {
			return Alias{}, fmt.Errorf("%w: %s: unknown family %q (want al2023, al2 or bottlerocket)", apierr.ErrInvalidArgument, field, family)
		}
		return a, nil
	}
	switch family {
	case FamilyAL2023, FamilyAL2:
		if !alVersion.MatchString(version) {
			return Alias{}, fmt.Errorf("%w: %s: version %q is neither latest nor vYYYYMMDD", apierr.ErrInvalidArgument, field, version)
		}
	case FamilyBottlerocket:
		if !brVersion.MatchString(version) {
			return Alias{}, fmt.Errorf("%w: %s: version %q is neither latest nor X.Y.Z", apierr.ErrInvalidArgument, field, version)
		}
		a.Version = "v" + strings.TrimPrefix(version, "v")
	default:
		return Alias{}, fmt.Errorf("%w: %s: unknown family %q (want al2023, al2 or bottlerocket)", apierr.ErrInvalidArgument, field, family)
	}
	return a, nil
}

// flavour is one published image of a family: an architecture (EC2
// spelling), the variant in its SSM path, and the variants of instance
// type it serves.
type flavour struct {
	arch, variant string
	serves        []string
}

// Variants of instance type: standard (no GPU, no accelerator), NVIDIA
// GPU, or AWS Neuron accelerator (Inferentia, Trainium).
const (
	variantStandard = "standard"
	variantNvidia   = "nvidia"
	variantNeuron   = "neuron"
)

// flavours are the images each family publishes and what they serve, as
// Karpenter's AMI families list them (pkg/providers/amifamily/al2023.go,
// al2.go, bottlerocket.go): AL2023 has a neuron image for x86_64; AL2's
// gpu image serves both NVIDIA and Neuron types; Bottlerocket's standard
// x86_64 image serves Neuron types too.
var flavours = map[string][]flavour{
	FamilyAL2023: {
		{"x86_64", variantStandard, []string{variantStandard}}, {"arm64", variantStandard, []string{variantStandard}},
		{"x86_64", variantNvidia, []string{variantNvidia}}, {"arm64", variantNvidia, []string{variantNvidia}},
		{"x86_64", variantNeuron, []string{variantNeuron}},
	},
	FamilyAL2: {
		{"x86_64", variantStandard, []string{variantStandard}}, {"arm64", variantStandard, []string{variantStandard}},
		{"x86_64", variantNvidia, []string{variantNvidia, variantNeuron}},
	},
	FamilyBottlerocket: {
		{"x86_64", variantStandard, []string{variantStandard, variantNeuron}}, {"arm64", variantStandard, []string{variantStandard}},
		{"x86_64", variantNvidia, []string{variantNvidia}}, {"arm64", variantNvidia, []string{variantNvidia}},
	},
}

// variantRequirements are the instance-type requirements of a variant.
func variantRequirements(variant string) []*typesv1.Requirement {
	switch variant {
	case variantNvidia:
		return []*typesv1.Requirement{{Key: labelGPUCount, Operator: "Exists"}}
	case variantNeuron:
		return []*typesv1.Requirement{{Key: labelAcceleratorCount, Operator: "Exists"}}
	}
	return []*typesv1.Requirement{{Key: labelGPUCount, Operator: "DoesNotExist"}, {Key: labelAcceleratorCount, Operator: "DoesNotExist"}}
}

// parameter is the public SSM parameter holding the image id of one
// flavour of the alias for a Kubernetes version.
func (a Alias) parameter(k8s string, f flavour) string {
	latest := a.Version == "latest"
	switch a.Family {
	case FamilyAL2023:
		name := "recommended"
		if !latest {
			name = fmt.Sprintf("amazon-eks-node-al2023-%s-%s-%s-%s", f.arch, f.variant, k8s, a.Version)
		}
		return fmt.Sprintf("/aws/service/eks/optimized-ami/%s/amazon-linux-2023/%s/%s/%s/image_id", k8s, f.arch, f.variant, name)
	case FamilyAL2:
		dir, node := "amazon-linux-2", "amazon-eks-node"
		switch {
		case f.arch == "arm64":
			dir, node = "amazon-linux-2-arm64", "amazon-eks-arm64-node"
		case f.variant == "nvidia":
			dir, node = "amazon-linux-2-gpu", "amazon-eks-gpu-node"
		}
		name := "recommended"
		if !latest {
			name = fmt.Sprintf("%s-%s-%s", node, k8s, a.Version)
		}
		return fmt.Sprintf("/aws/service/eks/optimized-ami/%s/%s/%s/image_id", k8s, dir, name)
	default: // bottlerocket
		flav := "aws-k8s-" + k8s
		if f.variant == "nvidia" {
			flav += "-nvidia"
		}
		v := "latest"
		if !latest {
			v = strings.TrimPrefix(a.Version, "v")
		}
		return fmt.Sprintf("/aws/service/bottlerocket/%s/%s/%s/image_id", flav, f.arch, v)
	}
}
