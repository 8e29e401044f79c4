package ec2catalog

import (
	"strings"
	"testing"
)

func TestApplyReference(t *testing.T) {
	ref, err := ParseReference(strings.NewReader(`{"source": "test", "instanceTypes": {
		"p4d.24xlarge": {"labels": {"karpenter.k8s.aws/instance-hypervisor": "nitro", "karpenter.k8s.aws/instance-gpu-count": "8",
			"karpenter.k8s.aws/instance-gpu-name": "a100", "karpenter.k8s.aws/instance-local-nvme": "8000",
			"karpenter.k8s.aws/instance-encryption-in-transit-supported": "true"},
			"resources": {"pods": "737", "vpc.amazonaws.com/efa": "4"}},
		"bad.large": {"labels": {}, "resources": {"pods": "30"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	specs := []Spec{
		{Name: "p4d.24xlarge", VCPU: 96, ENIs: 60, IPv4PerENI: 50, Arch: "amd64"},
		{Name: "m5.metal", VCPU: 96, ENIs: 15, IPv4PerENI: 50, Arch: "amd64"},
		{Name: "m5.large", VCPU: 2, ENIs: 3, IPv4PerENI: 10, Arch: "amd64"},
	}
	got, err := ApplyReference(specs, ref)
	if err != nil {
		t.Fatal(err)
	}
	p := got[0]
	if !p.Known || p.DefaultCardENIs != 15 || p.MaxPodsENI() != 737 || p.GPUs != 8 || p.GPUName != "a100" || p.LocalNVMeGB != 8000 || !p.EncryptionInTransit || p.EFAs != 4 {
		t.Errorf("p4d.24xlarge = %+v", p)
	}
	if got[1].Known || got[1].Hypervisor != "" || got[2].Hypervisor != "nitro" {
		t.Errorf("unlisted types: %+v, %+v", got[1], got[2])
	}
	// 30 pods cannot come from 9 addresses per ENI.
	if _, err := ApplyReference([]Spec{{Name: "bad.large", ENIs: 3, IPv4PerENI: 10}}, ref); err == nil {
		t.Error("inconsistent pods accepted")
	}
}

func TestParseNameHighMemory(t *testing.T) {
	for name, want := range map[string][4]string{
		"u-3tb1.56xlarge":    {"u-3tb1", "56xlarge", "u", "1"},
		"u7i-12tb.224xlarge": {"u7i-12tb", "224xlarge", "u", "7"},
		"m7i-flex.large":     {"m7i-flex", "large", "m", "7"},
	} {
		f, s, c, g := ParseName(name)
		if [4]string{f, s, c, g} != want {
			t.Errorf("ParseName(%s) = %s %s %s %s, want %v", name, f, s, c, g, want)
		}
	}
}
