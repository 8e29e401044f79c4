// Command kwoktypes prints the instance types Karpenter's KWOK provider
// makes of an --instance-types-file-path file, read with its own code
// (sigs.k8s.io/karpenter/kwok/cloudprovider.ConstructInstanceTypes): per
// type its allocatable (capacity less KWOK's overhead) and every offering's
// zone, capacity type, price and availability, as JSON on stdout.
// integration/peerbench's catalog test compares it with what Flotilla's
// launcher reads from ec2sim.
//
//	kwoktypes FILE.json
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	kwok "sigs.k8s.io/karpenter/kwok/cloudprovider"
	"sigs.k8s.io/karpenter/kwok/options"
	v1 "sigs.k8s.io/karpenter/pkg/apis/v1"
)

// offering is one offering as Karpenter sees it.
type offering struct {
	Zone         string  `json:"zone"`
	CapacityType string  `json:"capacityType"`
	Price        float64 `json:"price"`
	Available    bool    `json:"available"`
}

// instanceType is one type as Karpenter sees it.
type instanceType struct {
	Name        string              `json:"name"`
	Arch        []string            `json:"arch"`
	Allocatable corev1.ResourceList `json:"allocatable"`
	Offerings   []offering          `json:"offerings"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: kwoktypes FILE.json")
		os.Exit(2)
	}
	ctx := options.ToContext(context.Background(), &options.Options{InstanceTypesFilePath: os.Args[1]})
	its, err := kwok.ConstructInstanceTypes(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kwoktypes:", err)
		os.Exit(1)
	}
	out := make([]instanceType, 0, len(its))
	for _, it := range its {
		t := instanceType{Name: it.Name, Allocatable: it.Allocatable(), Arch: it.Requirements.Get(corev1.LabelArchStable).Values()}
		for _, o := range it.Offerings {
			t.Offerings = append(t.Offerings, offering{
				Zone:         o.Requirements.Get(corev1.LabelTopologyZone).Any(),
				CapacityType: o.Requirements.Get(v1.CapacityTypeLabelKey).Any(),
				Price:        o.Price,
				Available:    o.Available,
			})
		}
		out = append(out, t)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "kwoktypes:", err)
		os.Exit(1)
	}
}
