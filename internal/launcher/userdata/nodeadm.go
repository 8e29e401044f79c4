package userdata

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// nodeadm builds AL2023 user data: the class's parts, then Flotilla's
// NodeConfig.
func nodeadm(in Input) (string, error) {
	parts, err := nodeadmParts(in.Custom)
	if err != nil {
		return "", err
	}
	config, err := nodeConfig(in)
	if err != nil {
		return "", err
	}
	return writeMIME(append(parts, part{contentType: ContentTypeNodeConfig, content: config})), nil
}

// nodeadmParts splits the class's user data into MIME parts: a MIME
// document's own parts, else one part, a NodeConfig when the text is a
// YAML mapping and a shell script otherwise.
func nodeadmParts(custom string) ([]part, error) {
	switch {
	case custom == "":
		return nil, nil
	case isMIME(custom):
		return parseMIME(custom)
	case isYAMLMapping(custom):
		return []part{{contentType: ContentTypeNodeConfig, content: custom}}, nil
	}
	return []part{{contentType: ContentTypeShellScript, content: custom}}, nil
}

func isYAMLMapping(s string) bool {
	if strings.HasPrefix(strings.TrimSpace(s), "#!") {
		return false
	}
	var m map[string]any
	return yaml.Unmarshal([]byte(s), &m) == nil && len(m) > 0
}

// nodeConfig is Flotilla's nodeadm NodeConfig
// (https://awslabs.github.io/amazon-eks-ami/nodeadm/doc/api/): the cluster,
// the kubelet's settings with the NodeClaim's taints as registerWithTaints,
// and its labels as the --node-labels flag.
func nodeConfig(in Input) (string, error) {
	cluster := map[string]any{"name": in.Cluster}
	for k, v := range map[string]string{"apiServerEndpoint": in.Endpoint, "certificateAuthority": in.CABundle, "cidr": in.CIDR} {
		if v != "" {
			cluster[k] = v
		}
	}
	kubelet := map[string]any{}
	if config := kubeletConfig(in); len(config) > 0 {
		kubelet["config"] = config
	}
	if len(in.Labels) > 0 {
		kubelet["flags"] = []string{"--node-labels=" + labelList(in.Labels)}
	}
	spec := map[string]any{"cluster": cluster}
	if len(kubelet) > 0 {
		spec["kubelet"] = kubelet
	}
	if in.RAID0 {
		spec["instance"] = map[string]any{"localStorage": map[string]any{"strategy": "RAID0"}}
	}
	out, err := yaml.Marshal(map[string]any{"apiVersion": "node.eks.aws/v1alpha1", "kind": "NodeConfig", "spec": spec})
	if err != nil {
		return "", fmt.Errorf("NodeConfig: %w", err)
	}
	return "# Flotilla's NodeConfig\n" + string(out), nil
}

// kubeletConfig is the KubeletConfiguration fields nodeadm merges into
// the kubelet's config file, named as kubelet.config.k8s.io/v1beta1 names
// them.
func kubeletConfig(in Input) map[string]any {
	out := map[string]any{}
	if len(in.Taints) > 0 {
		taints := make([]map[string]string, 0, len(in.Taints))
		for _, t := range in.Taints {
			taint := map[string]string{"key": t.GetKey(), "effect": t.GetEffect()}
			if t.GetValue() != "" {
				taint["value"] = t.GetValue()
			}
			taints = append(taints, taint)
		}
		out["registerWithTaints"] = taints
	}
	k := in.Kubelet
	if k == nil {
		return out
	}
	if k.GetMaxPods() > 0 {
		out["maxPods"] = k.GetMaxPods()
	}
	if k.PodsPerCore != nil {
		out["podsPerCore"] = k.GetPodsPerCore()
	}
	if len(k.GetClusterDns()) > 0 {
		out["clusterDNS"] = k.GetClusterDns()
	}
	for name, m := range map[string]map[string]string{
		"kubeReserved": k.GetKubeReserved(), "systemReserved": k.GetSystemReserved(),
		"evictionHard": k.GetEvictionHard(), "evictionSoft": k.GetEvictionSoft(), "evictionSoftGracePeriod": k.GetEvictionSoftGracePeriod(),
	} {
		if len(m) > 0 {
			out[name] = m
		}
	}
	if k.EvictionMaxPodGracePeriod != nil {
		out["evictionMaxPodGracePeriod"] = k.GetEvictionMaxPodGracePeriod()
	}
	if k.ImageGcHighThresholdPercent != nil {
		out["imageGCHighThresholdPercent"] = k.GetImageGcHighThresholdPercent()
	}
	if k.ImageGcLowThresholdPercent != nil {
		out["imageGCLowThresholdPercent"] = k.GetImageGcLowThresholdPercent()
	}
	if k.CpuCfsQuota != nil {
		out["cpuCFSQuota"] = k.GetCpuCfsQuota()
	}
	return out
}
