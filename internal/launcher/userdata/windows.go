package userdata

import (
	"fmt"
	"strings"
)

// windows builds Windows user data: one <powershell> block that runs the
// class's commands, then the AMI's Start-EKSBootstrap.ps1
// (https://docs.aws.amazon.com/eks/latest/userguide/eks-optimized-windows-ami.html).
// A class's own <powershell> tags are unwrapped, since EC2 runs only one
// such block.
func windows(in Input) string {
	var b strings.Builder
	b.WriteString("<powershell>\n")
	if custom := unwrapPowerShell(in.Custom); custom != "" {
		b.WriteString(custom + "\n")
	}
	b.WriteString(`[string]$EKSBootstrapScriptFile = "$env:ProgramFiles\Amazon\EKS\Start-EKSBootstrap.ps1"` + "\n")
	fmt.Fprintf(&b, "& $EKSBootstrapScriptFile -EKSClusterName %s", psQuote(in.Cluster))
	if in.Endpoint != "" {
		fmt.Fprintf(&b, " -APIServerEndpoint %s", psQuote(in.Endpoint))
	}
	if in.CABundle != "" {
		fmt.Fprintf(&b, " -Base64ClusterCA %s", psQuote(in.CABundle))
	}
	if flags := kubeletFlags(in); len(flags) > 0 {
		fmt.Fprintf(&b, " -KubeletExtraArgs %s", psQuote(strings.Join(flags, " ")))
	}
	if dns := clusterDNS(in.Kubelet); dns != "" {
		fmt.Fprintf(&b, " -DNSClusterIP %s", psQuote(dns))
	}
	b.WriteString("\n</powershell>\n")
	return b.String()
}

func unwrapPowerShell(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<powershell>")
	s = strings.TrimSuffix(s, "</powershell>")
	return strings.TrimSpace(s)
}

// psQuote quotes s as a PowerShell verbatim string: single quotes, each
// single quote doubled.
func psQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
