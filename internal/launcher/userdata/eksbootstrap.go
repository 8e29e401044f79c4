package userdata

import (
	"fmt"
	"strings"
)

// eksBootstrap builds AL2 user data: the class's script or parts first,
// then a shell script that runs the AMI's /etc/eks/bootstrap.sh
// (https://github.com/awslabs/amazon-eks-ami, templates/al2), in one MIME
// archive.
func eksBootstrap(in Input) (string, error) {
	parts, err := scriptParts(in.Custom)
	if err != nil {
		return "", err
	}
	return writeMIME(append(parts, part{contentType: ContentTypeShellScript, content: bootstrapScript(in)})), nil
}

// scriptParts splits the class's user data into MIME parts: a MIME
// document's own parts, else one shell-script part.
func scriptParts(custom string) ([]part, error) {
	switch {
	case custom == "":
		return nil, nil
	case isMIME(custom):
		return parseMIME(custom)
	}
	return []part{{contentType: ContentTypeShellScript, content: custom}}, nil
}

// bootstrapScript calls bootstrap.sh. Its arguments are passed as
// separate words, never --flag=value (bootstrap.sh does not read that
// form); the kubelet's own flags go through --kubelet-extra-args.
func bootstrapScript(in Input) string {
	var b strings.Builder
	b.WriteString("#!/bin/bash -xe\n")
	b.WriteString("exec > >(tee /var/log/user-data.log | logger -t user-data -s 2>/dev/console) 2>&1\n")
	fmt.Fprintf(&b, "/etc/eks/bootstrap.sh %s", shellQuote(in.Cluster))
	if in.Endpoint != "" {
		fmt.Fprintf(&b, " \\\n  --apiserver-endpoint %s", shellQuote(in.Endpoint))
	}
	if in.CABundle != "" {
		fmt.Fprintf(&b, " \\\n  --b64-cluster-ca %s", shellQuote(in.CABundle))
	}
	if dns := clusterDNS(in.Kubelet); dns != "" {
		if strings.Contains(dns, ":") {
			b.WriteString(" \\\n  --ip-family ipv6")
		}
		fmt.Fprintf(&b, " \\\n  --dns-cluster-ip %s", shellQuote(dns))
	}
	if in.Kubelet.GetMaxPods() > 0 {
		// bootstrap.sh would otherwise add its own --max-pods from the
		// ENI table.
		b.WriteString(" \\\n  --use-max-pods false")
	}
	if flags := kubeletFlags(in); len(flags) > 0 {
		fmt.Fprintf(&b, " \\\n  --kubelet-extra-args %s", shellQuote(strings.Join(flags, " ")))
	}
	if in.RAID0 {
		b.WriteString(" \\\n  --local-disks raid0")
	}
	b.WriteString("\n")
	return b.String()
}

// shellQuote quotes s for a POSIX shell: in single quotes, with each
// single quote closed, backslash-escaped and reopened.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
