package cluster

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestChildEnvDropsMachineAWSSettings(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "/etc/ssl/corp.pem")
	t.Setenv("AWS_PROFILE", "prod")
	t.Setenv("FLOTILLA_GRPC_ADDR", ":1")
	env := childEnv()
	for _, kv := range env {
		for _, bad := range []string{"AWS_CA_BUNDLE=", "AWS_PROFILE=", "FLOTILLA_GRPC_ADDR="} {
			if strings.HasPrefix(kv, bad) {
				t.Errorf("child environment keeps %s", kv)
			}
		}
	}
	for _, want := range []string{"AWS_ACCESS_KEY_ID=" + fakeAccessKeyID, "AWS_EC2_METADATA_DISABLED=true"} {
		if !slices.Contains(env, want) {
			t.Errorf("child environment lacks %s", want)
		}
	}
}

func TestReadObjectsFindsTheCRDs(t *testing.T) {
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "deploy", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Skipf("no CRDs in deploy/crds (%v)", err)
	}
	for _, f := range files {
		objs, err := readObjects(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != 1 || objs[0].GetKind() != "CustomResourceDefinition" || objs[0].GetName() == "" {
			t.Errorf("%s: %d objects, first %v", f, len(objs), objs)
		}
	}
}

func TestFreeAddrsAreDistinct(t *testing.T) {
	addrs, err := freeAddrs(4)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(addrs)
	if len(slices.Compact(addrs)) != 4 {
		t.Fatalf("addresses repeat: %v", addrs)
	}
}
