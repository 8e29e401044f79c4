package ec2catalog

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Karpenter's label keys read by ApplyReference.
const (
	refLabel = "karpenter.k8s.aws/instance-"
)

// Reference is Karpenter's published view of each instance type
// (shared/data/karpenter-reference-instance-types.json): well-known labels
// and allocatable resources.
type Reference struct {
	Source        string                   `json:"source"`
	InstanceTypes map[string]ReferenceType `json:"instanceTypes"`
}

// ReferenceType is one type of a Reference.
type ReferenceType struct {
	Labels    map[string]string `json:"labels"`
	Resources map[string]string `json:"resources"`
}

// ParseReference reads a Reference.
func ParseReference(r io.Reader) (*Reference, error) {
	var ref Reference
	if err := json.NewDecoder(r).Decode(&ref); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	if len(ref.InstanceTypes) == 0 {
		return nil, fmt.Errorf("reference: no instance types")
	}
	return &ref, nil
}

// ApplyReference fills the Facts of every spec the reference lists (its
// labels carry DescribeInstanceTypes' facts; its resources the EFA,
// Neuron and branch-interface counts), and the hypervisor of the others
// from the name (nitro, none for bare metal). The default network card's
// interfaces are recovered from the reference's pods, which Karpenter
// computes as default-card ENIs × (IPv4 per ENI − 1) + 2.
func ApplyReference(specs []Spec, ref *Reference) ([]Spec, error) {
	out := make([]Spec, len(specs))
	for i, s := range specs {
		rt, ok := ref.InstanceTypes[s.Name]
		if !ok {
			if !strings.Contains(s.Name, ".metal") {
				s.Hypervisor = "nitro"
			}
			out[i] = s
			continue
		}
		f, err := factsOf(s, rt)
		if err != nil {
			return nil, fmt.Errorf("reference %s: %w", s.Name, err)
		}
		s.Facts = f
		if m := rt.Labels[refLabel+"gpu-manufacturer"]; m != "" {
			s.GPUManufacturer = m
		}
		if n, ok := rt.Labels[refLabel+"gpu-count"]; ok {
			if s.GPUs, err = strconv.Atoi(n); err != nil {
				return nil, fmt.Errorf("reference %s: gpu-count %q: %w", s.Name, n, err)
			}
		}
		out[i] = s
	}
	return out, nil
}

func factsOf(s Spec, rt ReferenceType) (Facts, error) {
	f := Facts{Known: true}
	l := func(k string) string { return rt.Labels[refLabel+k] }
	var err error
	num := func(v string) int {
		if v == "" || err != nil {
			return 0
		}
		n, e := strconv.Atoi(v)
		if e != nil {
			err = fmt.Errorf("%q is not an integer", v)
		}
		return n
	}
	res := func(k string) int {
		v, ok := rt.Resources[k]
		if !ok || err != nil {
			return 0
		}
		q, e := resource.ParseQuantity(v)
		if e != nil {
			err = fmt.Errorf("resource %s: %w", k, e)
		}
		return int(q.Value())
	}
	f.Hypervisor = l("hypervisor")
	f.CPUManufacturer = l("cpu-manufacturer")
	f.SustainedClockMHz = num(l("cpu-sustained-clock-speed-mhz"))
	f.EBSBandwidthMbps = num(l("ebs-bandwidth"))
	f.NetworkBandwidthMbps = num(l("network-bandwidth"))
	f.EncryptionInTransit = l("encryption-in-transit-supported") == "true"
	f.LocalNVMeGB = num(l("local-nvme"))
	f.GPUName = l("gpu-name")
	f.GPUMemoryMiB = int64(num(l("gpu-memory")))
	f.AcceleratorName = l("accelerator-name")
	f.AcceleratorManufacturer = l("accelerator-manufacturer")
	f.Accelerators = num(l("accelerator-count"))
	f.NeuronDevices = res("aws.amazon.com/neuron")
	f.NeuronCores = res("aws.amazon.com/neuroncore")
	f.EFAs = res("vpc.amazonaws.com/efa")
	f.BranchENIs = res("vpc.amazonaws.com/pod-eni")
	pods := res("pods")
	if err != nil {
		return f, err
	}
	if pods != s.MaxPodsENI() && s.IPv4PerENI > 1 {
		if (pods-2)%(s.IPv4PerENI-1) != 0 || pods < 2 {
			return f, fmt.Errorf("pods %d is not default-card ENIs × %d + 2", pods, s.IPv4PerENI-1)
		}
		f.DefaultCardENIs = (pods - 2) / (s.IPv4PerENI - 1)
		if f.DefaultCardENIs > s.ENIs {
			return f, fmt.Errorf("pods %d need %d ENIs on the default card, more than the type's %d", pods, f.DefaultCardENIs, s.ENIs)
		}
	}
	return f, nil
}
