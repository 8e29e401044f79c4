package kubeyaml

import (
	"fmt"

	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// Annotations that mark a StorageClass as the cluster default.
const (
	AnnotationDefaultStorageClass     = "storageclass.kubernetes.io/is-default-class"
	AnnotationBetaDefaultStorageClass = "storageclass.beta.kubernetes.io/is-default-class"
)

// podClaims lists the claims behind a pod's volumes. For a StatefulSet pod,
// templates are its volumeClaimTemplates and suffix is "-<set>-<ordinal>":
// the controller names each claim "<template>-<set>-<ordinal>" and it
// replaces any pod volume of the template's name.
func podClaims(spec *corev1.PodSpec, podName string, templates []corev1.PersistentVolumeClaim, suffix string) []claimRef {
	var out []claimRef
	fromTemplate := map[string]bool{}
	for i := range templates {
		t := &templates[i]
		fromTemplate[t.Name] = true
		out = append(out, claimRef{volume: t.Name, claimName: t.Name + suffix, template: &t.Spec})
	}
	for _, v := range spec.Volumes {
		if fromTemplate[v.Name] {
			continue
		}
		switch {
		case v.PersistentVolumeClaim != nil:
			out = append(out, claimRef{volume: v.Name, claimName: v.PersistentVolumeClaim.ClaimName})
		case v.Ephemeral != nil && v.Ephemeral.VolumeClaimTemplate != nil:
			out = append(out, claimRef{volume: v.Name, claimName: podName + "-" + v.Name, template: &v.Ephemeral.VolumeClaimTemplate.Spec})
		}
	}
	return out
}

// volumeTopology returns the node topology a claim allows, or nil when it
// allows every node or cannot be known: the node affinity of the
// PersistentVolume a claim is bound to, or else the allowed topologies of
// the StorageClass an unbound claim (or a claim still to be created from a
// template) provisions from.
func (l *Loader) volumeTopology(ns string, c claimRef) (*typesv1.VolumeTopology, error) {
	spec := c.template
	if pvc, ok := l.pvcs[ns+"/"+c.claimName]; ok {
		spec = &pvc.Spec
	}
	if spec == nil {
		return nil, nil
	}
	if spec.VolumeName != "" {
		pv, ok := l.pvs[spec.VolumeName]
		if !ok || pv.Spec.NodeAffinity == nil || pv.Spec.NodeAffinity.Required == nil {
			return nil, nil
		}
		terms, err := nodeSelectorTerms(pv.Spec.NodeAffinity.Required.NodeSelectorTerms, "spec.nodeAffinity.required.nodeSelectorTerms")
		if err != nil {
			// Not wrapped: err is a field error inside the PersistentVolume,
			// and wrapping it would let withSource report that field as if
			// it were in the pod's own document.
			return nil, fmt.Errorf("persistent volume %s: %s", pv.Name, err.Error())
		}
		if len(terms) == 0 {
			return nil, nil
		}
		return &typesv1.VolumeTopology{Name: c.claimName, Terms: terms}, nil
	}
	var sc *storagev1.StorageClass
	if spec.StorageClassName == nil {
		sc = l.defaultStorageClass()
	} else if *spec.StorageClassName != "" {
		sc = l.storageClasses[*spec.StorageClassName]
	}
	if sc == nil {
		return nil, nil
	}
	terms, err := allowedTopologies(sc)
	if err != nil || len(terms) == 0 {
		return nil, err
	}
	return &typesv1.VolumeTopology{Name: c.claimName, Terms: terms}, nil
}

func (l *Loader) defaultStorageClass() *storagev1.StorageClass {
	var found *storagev1.StorageClass
	for _, name := range sortedKeys(l.storageClasses) {
		sc := l.storageClasses[name]
		if sc.Annotations[AnnotationDefaultStorageClass] == "true" || sc.Annotations[AnnotationBetaDefaultStorageClass] == "true" {
			found = sc // the last by name wins, deterministically
		}
	}
	return found
}

// allowedTopologies converts a StorageClass's allowed topologies to ORed
// node selector terms.
func allowedTopologies(sc *storagev1.StorageClass) ([]*typesv1.NodeSelectorTerm, error) {
	var out []*typesv1.NodeSelectorTerm
	for i, t := range sc.AllowedTopologies {
		term := &typesv1.NodeSelectorTerm{}
		for j, e := range t.MatchLabelExpressions {
			p := fmt.Sprintf("allowedTopologies[%d].matchLabelExpressions[%d]", i, j)
			if e.Key == "" {
				return nil, ferr(p+".key", "required")
			}
			if len(e.Values) == 0 {
				return nil, ferr(p+".values", "at least one value is required")
			}
			term.MatchExpressions = append(term.MatchExpressions, &typesv1.Requirement{Key: e.Key, Operator: "In", Values: copyStrings(e.Values)})
		}
		out = append(out, term)
	}
	return out, nil
}
