package nodeclass

import (
	"errors"
	"strings"
	"testing"

	"github.com/flotilla-io/flotilla/internal/ec2sim/eksami"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

func TestAliasParametersMatchPublicPaths(t *testing.T) {
	for _, alias := range []string{"al2023@latest", "al2023@v20240807", "al2@latest", "al2@v20240903", "bottlerocket@latest", "bottlerocket@1.20.5", "bottlerocket@v1.21.1"} {
		a, err := ParseAlias(alias, "alias")
		if err != nil {
			t.Fatalf("%s: %v", alias, err)
		}
		for _, f := range flavours[a.Family] {
			want, err := eksami.Path(a.Family, "1.31", f.arch, f.variant, a.Version)
			if err != nil {
				continue // a flavour AWS does not publish
			}
			if got := a.parameter("1.31", f); got != want {
				t.Errorf("%s %v: %s, want %s", alias, f, got, want)
			}
		}
	}
}

func TestMalformedAliasNamesField(t *testing.T) {
	for _, alias := range []string{"al2023", "al2023@", "windows@latest", "al2023@2024", "bottlerocket@v20240807", "al2@1.2.3"} {
		nc := validClass()
		nc.AmiSelectorTerms = []*launcherv1.SelectorTerm{{Alias: alias}}
		err := Validate(nc)
		if !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), "node_class.ami_selector_terms[0].alias") {
			t.Errorf("%q: %v", alias, err)
		}
	}
}

func TestSelectorValidation(t *testing.T) {
	nc := validClass()
	nc.SubnetSelectorTerms = []*launcherv1.SelectorTerm{{Name: "x"}}
	if err := Validate(nc); !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), "subnet_selector_terms[0].name") {
		t.Errorf("subnet by name: %v", err)
	}
	nc = validClass()
	nc.SecurityGroupSelectorTerms = []*launcherv1.SelectorTerm{{}}
	if err := Validate(nc); !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), "security_group_selector_terms[0]") {
		t.Errorf("empty term: %v", err)
	}
	nc = validClass()
	nc.AmiSelectorTerms = append(nc.AmiSelectorTerms, &launcherv1.SelectorTerm{Id: "ami-1"})
	if err := Validate(nc); !errors.Is(err, apierr.ErrInvalidArgument) {
		t.Errorf("alias with another term: %v", err)
	}
	if err := Validate(validClass()); err != nil {
		t.Errorf("valid class: %v", err)
	}
}

func validClass() *launcherv1.NodeClass {
	return &launcherv1.NodeClass{
		Name:                       "default",
		SubnetSelectorTerms:        []*launcherv1.SelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": "c"}}},
		SecurityGroupSelectorTerms: []*launcherv1.SelectorTerm{{Tags: map[string]string{"karpenter.sh/discovery": "*"}}},
		AmiSelectorTerms:           []*launcherv1.SelectorTerm{{Alias: "al2023@latest"}},
		Role:                       "node-role",
	}
}
