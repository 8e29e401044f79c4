package catalog

import (
	"github.com/flotilla-io/flotilla/internal/ec2catalog"
)

// Well-known labels of instance types.
const (
	LabelInstanceType    = "node.kubernetes.io/instance-type"
	LabelArch            = "kubernetes.io/arch"
	LabelOS              = "kubernetes.io/os"
	LabelFamily          = "karpenter.k8s.aws/instance-family"
	LabelSize            = "karpenter.k8s.aws/instance-size"
	LabelCategory        = "karpenter.k8s.aws/instance-category"
	LabelGeneration      = "karpenter.k8s.aws/instance-generation"
	LabelCPU             = "karpenter.k8s.aws/instance-cpu"
	LabelMemory          = "karpenter.k8s.aws/instance-memory"
	LabelGPUCount        = "karpenter.k8s.aws/instance-gpu-count"
	LabelGPUManufacturer = "karpenter.k8s.aws/instance-gpu-manufacturer"
)

// nameLabels derives the labels an instance type's name implies: family and
// size (split at the first dot), category (the family's leading letters)
// and generation (the digits right after the category).
func nameLabels(name string) map[string]string {
	out := map[string]string{LabelInstanceType: name}
	addNameLabels(out, name)
	return out
}

// addNameLabels adds the family, size, category and generation labels the
// name implies, leaving out the parts it lacks.
func addNameLabels(out map[string]string, name string) {
	family, size, category, generation := ec2catalog.ParseName(name)
	for k, v := range map[string]string{LabelFamily: family, LabelSize: size, LabelCategory: category, LabelGeneration: generation} {
		if v != "" {
			out[k] = v
		}
	}
}
