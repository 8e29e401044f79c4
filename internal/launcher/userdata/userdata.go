package userdata

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// Input is what a node's user data is built from.
type Input struct {
	Family Family
	// Cluster is the cluster's name; Endpoint its API server URL; CABundle
	// its certificate authority, base64-encoded PEM; CIDR its service
	// CIDR (nodeadm needs it).
	Cluster, Endpoint, CABundle, CIDR string
	// Labels and Taints are the NodeClaim's: the kubelet registers the
	// node with them.
	Labels map[string]string
	Taints []*typesv1.Taint
	// Kubelet holds the EC2NodeClass's kubelet settings (may be nil).
	Kubelet *launcherv1.KubeletConfiguration
	// RAID0 joins the instance store volumes into one array
	// (spec.instanceStorePolicy: RAID0).
	RAID0 bool
	// Custom is the EC2NodeClass's spec.userData.
	Custom string
}

// ErrMalformed marks user data that its family's format cannot read.
var ErrMalformed = errors.New("malformed user data")

// Build renders the user data of in.Family with in.Custom merged in.
func Build(in Input) (string, error) {
	switch {
	case in.Family == AL2023 || in.Family == "":
		return nodeadm(in)
	case in.Family == AL2:
		return eksBootstrap(in)
	case in.Family == Bottlerocket:
		return bottlerocket(in)
	case in.Family.Windows():
		return windows(in), nil
	case in.Family == Custom:
		return in.Custom, nil
	}
	return "", fmt.Errorf("user data for unknown AMI family %q", in.Family)
}

// Check reports whether custom user data can be merged for family, so an
// EC2NodeClass with user data its family cannot read is refused when it is
// resolved rather than when a node fails to boot.
func Check(family Family, custom string) error {
	if custom == "" {
		return nil
	}
	switch family {
	case AL2023, "":
		_, err := nodeadmParts(custom)
		return err
	case AL2:
		_, err := scriptParts(custom)
		return err
	case Bottlerocket:
		_, err := parseTOML(custom)
		return err
	}
	return nil
}

// kubeletFlags are the kubelet command-line flags of the labels, taints and
// kubelet settings, for the families configured by flags (AL2, Windows).
func kubeletFlags(in Input) []string {
	var out []string
	if len(in.Labels) > 0 {
		out = append(out, fmt.Sprintf("--node-labels=%q", labelList(in.Labels)))
	}
	if len(in.Taints) > 0 {
		out = append(out, fmt.Sprintf("--register-with-taints=%q", taintList(in.Taints)))
	}
	k := in.Kubelet
	if k == nil {
		return out
	}
	if k.GetMaxPods() > 0 {
		out = append(out, fmt.Sprintf("--max-pods=%d", k.GetMaxPods()))
	}
	if k.PodsPerCore != nil {
		out = append(out, fmt.Sprintf("--pods-per-core=%d", k.GetPodsPerCore()))
	}
	for _, m := range []struct {
		flag, sep string
		values    map[string]string
	}{
		{"--system-reserved", "=", k.GetSystemReserved()},
		{"--kube-reserved", "=", k.GetKubeReserved()},
		{"--eviction-hard", "<", k.GetEvictionHard()},
		{"--eviction-soft", "<", k.GetEvictionSoft()},
		{"--eviction-soft-grace-period", "=", k.GetEvictionSoftGracePeriod()},
	} {
		if len(m.values) > 0 {
			out = append(out, fmt.Sprintf("%s=%q", m.flag, joinMap(m.values, m.sep)))
		}
	}
	if k.EvictionMaxPodGracePeriod != nil {
		out = append(out, fmt.Sprintf("--eviction-max-pod-grace-period=%d", k.GetEvictionMaxPodGracePeriod()))
	}
	if k.ImageGcHighThresholdPercent != nil {
		out = append(out, fmt.Sprintf("--image-gc-high-threshold=%d", k.GetImageGcHighThresholdPercent()))
	}
	if k.ImageGcLowThresholdPercent != nil {
		out = append(out, fmt.Sprintf("--image-gc-low-threshold=%d", k.GetImageGcLowThresholdPercent()))
	}
	if k.CpuCfsQuota != nil {
		out = append(out, fmt.Sprintf("--cpu-cfs-quota=%t", k.GetCpuCfsQuota()))
	}
	return out
}

// clusterDNS is the first cluster DNS address, which every format takes
// as a single value, or "".
func clusterDNS(k *launcherv1.KubeletConfiguration) string {
	if len(k.GetClusterDns()) == 0 {
		return ""
	}
	return k.GetClusterDns()[0]
}

func labelList(m map[string]string) string { return joinMap(m, "=") }

// joinMap joins a map's entries as key<sep>value, comma-separated, in key
// order.
func joinMap(m map[string]string, sep string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+sep+m[k])
	}
	return strings.Join(out, ",")
}

// taintList is the taints in the kubelet's key=value:Effect form (key:Effect
// without a value).
func taintList(ts []*typesv1.Taint) string {
	out := make([]string, 0, len(ts))
	for _, t := range ts {
		if t.GetValue() == "" {
			out = append(out, t.GetKey()+":"+t.GetEffect())
			continue
		}
		out = append(out, t.GetKey()+"="+t.GetValue()+":"+t.GetEffect())
	}
	return strings.Join(out, ",")
}
