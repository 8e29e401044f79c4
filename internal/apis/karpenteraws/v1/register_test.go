package v1

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestSchemeRegistersKinds(t *testing.T) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for kind, want := range map[string]runtime.Object{KindEC2NodeClass: &EC2NodeClass{}, KindEC2NodeClass + "List": &EC2NodeClassList{}} {
		got, err := s.New(GroupVersion.WithKind(kind))
		if err != nil || reflect.TypeOf(got) != reflect.TypeOf(want) {
			t.Errorf("%s: %T, %v", kind, got, err)
		}
	}
	if got := EC2NodeClassesResource.GroupResource().String(); got != "ec2nodeclasses.karpenter.k8s.aws" {
		t.Errorf("resource = %s", got)
	}
}

func TestDeepCopyIsIndependent(t *testing.T) {
	size := resource.MustParse("100Gi")
	profile, tokens := "profile", "required"
	hop := int64(1)
	nc := &EC2NodeClass{Spec: EC2NodeClassSpec{
		InstanceProfile:     &profile,
		AMISelectorTerms:    []AMISelectorTerm{{Tags: map[string]string{"a": "b"}}},
		Tags:                map[string]string{"team": "a"},
		BlockDeviceMappings: []*BlockDeviceMapping{{EBS: &BlockDevice{VolumeSize: &size}}},
		MetadataOptions:     &MetadataOptions{HTTPTokens: &tokens, HTTPPutResponseHopLimit: &hop},
	}}
	cp := nc.DeepCopyObject().(*EC2NodeClass)
	if !reflect.DeepEqual(cp, nc) {
		t.Fatal("copy differs")
	}
	*cp.Spec.InstanceProfile = "other"
	cp.Spec.AMISelectorTerms[0].Tags["a"] = "z"
	cp.Spec.Tags["team"] = "b"
	*cp.Spec.BlockDeviceMappings[0].EBS.VolumeSize = resource.MustParse("1Gi")
	*cp.Spec.MetadataOptions.HTTPPutResponseHopLimit = 2
	if *nc.Spec.InstanceProfile != "profile" || nc.Spec.AMISelectorTerms[0].Tags["a"] != "b" || nc.Spec.Tags["team"] != "a" ||
		nc.Spec.BlockDeviceMappings[0].EBS.VolumeSize.String() != "100Gi" || *nc.Spec.MetadataOptions.HTTPPutResponseHopLimit != 1 {
		t.Errorf("changing the copy changed the original: %+v", nc.Spec)
	}
}
