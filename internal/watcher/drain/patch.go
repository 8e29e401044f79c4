package drain

import (
	"encoding/json"

	corev1 "k8s.io/api/core/v1"
)

type taintPatchBody struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion,omitempty"`
	} `json:"metadata"`
	Spec struct {
		Taints []corev1.Taint `json:"taints"`
	} `json:"spec"`
}

// taintPatch is a JSON merge patch replacing the node's taints, with the
// resourceVersion as an optimistic-concurrency precondition.
func taintPatch(resourceVersion string, taints []corev1.Taint) ([]byte, error) {
	var b taintPatchBody
	b.Metadata.ResourceVersion = resourceVersion
	b.Spec.Taints = taints
	return json.Marshal(b)
}
