package userdata

import (
	"fmt"
	"maps"
	"strconv"

	"github.com/pelletier/go-toml/v2"
)

// bottlerocket builds Bottlerocket user data: the class's TOML settings
// (https://bottlerocket.dev/en/os/latest/api/settings/) with Flotilla's
// merged in. Flotilla's values win where both set a key: the cluster,
// the node's labels (the class's other labels kept), its taints (the
// NodeClaim's replace the class's) and the kubelet settings of the
// EC2NodeClass.
func bottlerocket(in Input) (string, error) {
	doc, err := parseTOML(in.Custom)
	if err != nil {
		return "", err
	}
	settings := table(doc, "settings")
	k8s := table(settings, "kubernetes")
	k8s["cluster-name"] = in.Cluster
	if in.Endpoint != "" {
		k8s["api-server"] = in.Endpoint
	}
	if in.CABundle != "" {
		k8s["cluster-certificate"] = in.CABundle
	}
	labels := table(k8s, "node-labels")
	for k, v := range in.Labels {
		labels[k] = v
	}
	if len(labels) == 0 {
		delete(k8s, "node-labels")
	}
	delete(k8s, "node-taints")
	if len(in.Taints) > 0 {
		taints := map[string]any{}
		for _, t := range in.Taints {
			list, _ := taints[t.GetKey()].([]any)
			taints[t.GetKey()] = append(list, t.GetValue()+":"+t.GetEffect())
		}
		k8s["node-taints"] = taints
	}
	bottlerocketKubelet(k8s, in)
	if in.RAID0 {
		commands := table(settings, "bootstrap-commands")
		commands["000-mount-instance-storage"] = map[string]any{
			"commands": []any{
				[]any{"apiclient", "ephemeral-storage", "init"},
				[]any{"apiclient", "ephemeral-storage", "bind", "--dirs", "/var/lib/containerd", "/var/lib/kubelet", "/var/log/pods"},
			},
			"mode":      "always",
			"essential": true,
		}
	}
	out, err := toml.Marshal(doc)
	if err != nil {
		return "", fmt.Errorf("bottlerocket settings: %w", err)
	}
	return string(out), nil
}

// bottlerocketKubelet writes the kubelet settings under their
// settings.kubernetes names.
func bottlerocketKubelet(k8s map[string]any, in Input) {
	k := in.Kubelet
	if k == nil {
		return
	}
	if k.GetMaxPods() > 0 {
		k8s["max-pods"] = int64(k.GetMaxPods())
	}
	if dns := clusterDNS(k); dns != "" {
		k8s["cluster-dns-ip"] = dns
	}
	for name, m := range map[string]map[string]string{
		"system-reserved": k.GetSystemReserved(), "kube-reserved": k.GetKubeReserved(),
		"eviction-hard": k.GetEvictionHard(), "eviction-soft": k.GetEvictionSoft(), "eviction-soft-grace-period": k.GetEvictionSoftGracePeriod(),
	} {
		if len(m) > 0 {
			k8s[name] = toAny(m)
		}
	}
	if k.EvictionMaxPodGracePeriod != nil {
		k8s["eviction-max-pod-grace-period"] = int64(k.GetEvictionMaxPodGracePeriod())
	}
	// Bottlerocket takes the image GC thresholds as strings.
	if k.ImageGcHighThresholdPercent != nil {
		k8s["image-gc-high-threshold-percent"] = strconv.Itoa(int(k.GetImageGcHighThresholdPercent()))
	}
	if k.ImageGcLowThresholdPercent != nil {
		k8s["image-gc-low-threshold-percent"] = strconv.Itoa(int(k.GetImageGcLowThresholdPercent()))
	}
	if k.CpuCfsQuota != nil {
		k8s["cpu-cfs-quota-enforced"] = k.GetCpuCfsQuota()
	}
}

// parseTOML reads the class's user data as a TOML document.
func parseTOML(s string) (map[string]any, error) {
	doc := map[string]any{}
	if s == "" {
		return doc, nil
	}
	if err := toml.Unmarshal([]byte(s), &doc); err != nil {
		return nil, fmt.Errorf("%w: Bottlerocket user data is not TOML: %w", ErrMalformed, err)
	}
	if v, ok := doc["settings"]; ok {
		s, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: Bottlerocket user data: settings is not a table", ErrMalformed)
		}
		if v, ok := s["kubernetes"]; ok {
			if _, ok := v.(map[string]any); !ok {
				return nil, fmt.Errorf("%w: Bottlerocket user data: settings.kubernetes is not a table", ErrMalformed)
			}
		}
	}
	return doc, nil
}

// table returns parent[key] as a table, creating it (or replacing a
// non-table value) when needed.
func table(parent map[string]any, key string) map[string]any {
	if t, ok := parent[key].(map[string]any); ok {
		return t
	}
	t := map[string]any{}
	parent[key] = t
	return t
}

func toAny(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range maps.All(m) {
		out[k] = v
	}
	return out
}
