package catalog

import (
	"strconv"
	"strings"
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
	family, size, ok := strings.Cut(name, ".")
	if !ok || family == "" || size == "" {
		return out
	}
	out[LabelFamily] = family
	out[LabelSize] = size
	i := 0
	for i < len(family) && family[i] >= 'a' && family[i] <= 'z' {
		i++
	}
	if i == 0 {
		return out
	}
	out[LabelCategory] = family[:i]
	j := i
	for j < len(family) && family[j] >= '0' && family[j] <= '9' {
		j++
	}
	if j > i {
		if g, err := strconv.Atoi(family[i:j]); err == nil {
			out[LabelGeneration] = strconv.Itoa(g)
		}
	}
	return out
}
