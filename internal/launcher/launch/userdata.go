package launch

import (
	"fmt"
	"sort"
	"strings"

	"github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// userDataInput is what goes into a node's bootstrap configuration.
type userDataInput struct {
	cluster, endpoint, ca, cidr string
	labels                      map[string]string
	taints                      []*typesv1.Taint
	kubelet                     *launcherv1.KubeletConfiguration
	custom                      string
}

// userData renders the bootstrap configuration for an AMI family: a
// nodeadm NodeConfig in a MIME document (al2023, and images without an
// alias), a bootstrap.sh script (al2) or Bottlerocket TOML settings. The
// node class's own user data is included as given.
func userData(family string, in userDataInput) string {
	switch family {
	case nodeclass.FamilyAL2:
		return al2UserData(in)
	case nodeclass.FamilyBottlerocket:
		return bottlerocketUserData(in)
	default:
		return al2023UserData(in)
	}
}

func labelList(m map[string]string) string {
	var out []string
	for _, k := range sortedKeys(m) {
		out = append(out, k+"="+m[k])
	}
	return strings.Join(out, ",")
}

func taintList(ts []*typesv1.Taint) string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s=%s:%s", t.GetKey(), t.GetValue(), t.GetEffect()))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func al2023UserData(in userDataInput) string {
	var b strings.Builder
	b.WriteString("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"//\"\n\n")
	if in.custom != "" {
		b.WriteString("--//\nContent-Type: text/x-shellscript; charset=\"us-ascii\"\n\n" + in.custom + "\n")
	}
	b.WriteString("--//\nContent-Type: application/node.eks.aws\n\n")
	b.WriteString("apiVersion: node.eks.aws/v1alpha1\nkind: NodeConfig\nspec:\n  cluster:\n")
	fmt.Fprintf(&b, "    name: %q\n", in.cluster)
	for _, kv := range [][2]string{{"apiServerEndpoint", in.endpoint}, {"certificateAuthority", in.ca}, {"cidr", in.cidr}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "    %s: %q\n", kv[0], kv[1])
		}
	}
	b.WriteString("  kubelet:\n    config:\n")
	if mp := in.kubelet.GetMaxPods(); mp > 0 {
		fmt.Fprintf(&b, "      maxPods: %d\n", mp)
	}
	for _, name := range []string{"kubeReserved", "systemReserved", "evictionHard"} {
		m := map[string]map[string]string{"kubeReserved": in.kubelet.GetKubeReserved(), "systemReserved": in.kubelet.GetSystemReserved(), "evictionHard": in.kubelet.GetEvictionHard()}[name]
		if len(m) > 0 {
			fmt.Fprintf(&b, "      %s:\n", name)
			for _, k := range sortedKeys(m) {
				fmt.Fprintf(&b, "        %q: %q\n", k, m[k])
			}
		}
	}
	b.WriteString("    flags:\n")
	fmt.Fprintf(&b, "    - %q\n", "--node-labels="+labelList(in.labels))
	if len(in.taints) > 0 {
		fmt.Fprintf(&b, "    - %q\n", "--register-with-taints="+taintList(in.taints))
	}
	b.WriteString("--//--\n")
	return b.String()
}

func al2UserData(in userDataInput) string {
	args := []string{"--node-labels=" + labelList(in.labels)}
	if len(in.taints) > 0 {
		args = append(args, "--register-with-taints="+taintList(in.taints))
	}
	if mp := in.kubelet.GetMaxPods(); mp > 0 {
		args = append(args, fmt.Sprintf("--max-pods=%d", mp))
	}
	cmd := fmt.Sprintf("/etc/eks/bootstrap.sh '%s'", in.cluster)
	if in.endpoint != "" {
		cmd += fmt.Sprintf(" --apiserver-endpoint '%s'", in.endpoint)
	}
	if in.ca != "" {
		cmd += fmt.Sprintf(" --b64-cluster-ca '%s'", in.ca)
	}
	if mp := in.kubelet.GetMaxPods(); mp > 0 {
		cmd += " --use-max-pods false"
	}
	cmd += fmt.Sprintf(" --kubelet-extra-args '%s'", strings.Join(args, " "))
	return "#!/bin/bash -xe\n" + in.custom + "\n" + cmd + "\n"
}

func bottlerocketUserData(in userDataInput) string {
	var b strings.Builder
	if in.custom != "" {
		b.WriteString(in.custom + "\n")
	}
	fmt.Fprintf(&b, "[settings.kubernetes]\ncluster-name = %q\n", in.cluster)
	if in.endpoint != "" {
		fmt.Fprintf(&b, "api-server = %q\n", in.endpoint)
	}
	if in.ca != "" {
		fmt.Fprintf(&b, "cluster-certificate = %q\n", in.ca)
	}
	if mp := in.kubelet.GetMaxPods(); mp > 0 {
		fmt.Fprintf(&b, "max-pods = %d\n", mp)
	}
	b.WriteString("\n[settings.kubernetes.node-labels]\n")
	for _, k := range sortedKeys(in.labels) {
		fmt.Fprintf(&b, "%q = %q\n", k, in.labels[k])
	}
	if len(in.taints) > 0 {
		byKey := map[string][]string{}
		for _, t := range in.taints {
			byKey[t.GetKey()] = append(byKey[t.GetKey()], t.GetValue()+":"+t.GetEffect())
		}
		b.WriteString("\n[settings.kubernetes.node-taints]\n")
		for _, k := range sortedKeys(byKey) {
			fmt.Fprintf(&b, "%q = [%s]\n", k, quoteAll(byKey[k]))
		}
	}
	return b.String()
}

func quoteAll(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
