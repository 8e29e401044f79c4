package disruption

import (
	"encoding/json"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	corev1 "k8s.io/api/core/v1"
)

// NodePoolHashVersion is the version of NodePoolHash's scheme, stamped as
// karpenter.sh/nodepool-hash-version next to the hash. It differs from
// Karpenter's ("v3"), whose hash function is not ours: a NodeClaim stamped
// with another version is not compared but re-stamped (lifecycle's
// restamp), so NodeClaims Karpenter launched do not all look drifted
// after a move to Flotilla.
const NodePoolHashVersion = "flotilla-v1"

// nodePoolHashInput is what NodePoolHash covers: the template fields whose
// change makes existing nodes out of date. Requirements, disruption settings,
// limits and weight are not hashed: a change to them does not by itself
// replace nodes (requirements drift is checked against labels instead).
type nodePoolHashInput struct {
	Labels                 map[string]string          `json:"labels,omitempty"`
	Annotations            map[string]string          `json:"annotations,omitempty"`
	Taints                 []corev1.Taint             `json:"taints,omitempty"`
	StartupTaints          []corev1.Taint             `json:"startupTaints,omitempty"`
	ExpireAfter            string                     `json:"expireAfter,omitempty"`
	TerminationGracePeriod string                     `json:"terminationGracePeriod,omitempty"`
	NodeClassRef           *karpv1.NodeClassReference `json:"nodeClassRef,omitempty"`
}

// NodePoolHash hashes the NodePool template fields that Karpenter hashes for
// drift: template labels and annotations, taints, startup taints,
// expireAfter, terminationGracePeriod and nodeClassRef. Taints are hashed as
// sets (order does not matter), empty and missing maps hash alike, and the
// result is a decimal string, as in the karpenter.sh/nodepool-hash annotation.
func NodePoolHash(np *karpv1.NodePool) string {
	if np == nil {
		return ""
	}
	t := &np.Spec.Template
	in := nodePoolHashInput{
		Labels:        nonEmpty(t.ObjectMeta.Labels),
		Annotations:   nonEmpty(t.ObjectMeta.Annotations),
		Taints:        sortedTaints(t.Spec.Taints),
		StartupTaints: sortedTaints(t.Spec.StartupTaints),
		NodeClassRef:  t.Spec.NodeClassRef,
	}
	if d := t.Spec.ExpireAfter.Duration; d != nil {
		in.ExpireAfter = d.String()
	}
	if g := t.Spec.TerminationGracePeriod; g != nil {
		in.TerminationGracePeriod = g.Duration.String()
	}
	return hashJSON(in)
}

// hashJSON hashes v's JSON form (maps have sorted keys) with FNV-64a.
func hashJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// The inputs are plain strings, maps and slices; Marshal cannot fail.
		b = []byte(err.Error())
	}
	h := fnv.New64a()
	_, _ = h.Write(b)
	return strconv.FormatUint(h.Sum64(), 10)
}

func nonEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func sortedTaints(ts []corev1.Taint) []corev1.Taint {
	if len(ts) == 0 {
		return nil
	}
	out := make([]corev1.Taint, len(ts))
	for i, t := range ts {
		out[i] = corev1.Taint{Key: t.Key, Value: t.Value, Effect: t.Effect}
	}
	slices.SortFunc(out, func(a, b corev1.Taint) int {
		return strings.Compare(a.Key+"\x00"+a.Value+"\x00"+string(a.Effect), b.Key+"\x00"+b.Value+"\x00"+string(b.Effect))
	})
	return slices.Compact(out)
}
