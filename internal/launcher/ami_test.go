package launcher_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/eksami"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// resolvedImages resolves a class whose AMI terms are terms and returns
// the ids of its images, in the order the launcher prefers them.
func resolvedImages(t *testing.T, e *env, name string, terms ...awsv1.AMISelectorTerm) []string {
	t.Helper()
	class := e.classWith(t, name, func(nc *awsv1.EC2NodeClass) {
		nc.Spec.AMIFamily = ptr("AL2023")
		nc.Spec.AMISelectorTerms = terms
	})
	res, err := e.service(t).ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: class})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, im := range res.GetImages() {
		ids = append(ids, im.GetId())
	}
	return ids
}

const stranger = "999999999999"

// AMI terms are resolved with Karpenter's semantics, against ec2sim's
// DescribeImages (owners self/amazon, IncludeDeprecated, tag filters as
// the EC2 API reference documents them).
func TestAMISelectorTerms(t *testing.T) {
	e := newEnv(t)
	day := func(n int) time.Time { return time.Date(2026, 11, n, 0, 0, 0, 0, time.UTC) }
	for _, im := range []ec2sim.Image{
		{ID: "ami-000000000000000a1", Name: "team-node-1", OwnerID: ec2sim.AccountID, CreationDate: day(1), Tags: map[string]string{"team": "a"}},
		{ID: "ami-000000000000000a2", Name: "team-node-2", OwnerID: ec2sim.AccountID, CreationDate: day(2), Tags: map[string]string{"team": "b"}},
		{ID: "ami-000000000000000f1", Name: "team-node-9", OwnerID: stranger, CreationDate: day(9)},
		{ID: "ami-000000000000000d1", Name: "pinned-1", OwnerID: "amazon", CreationDate: day(3), Deprecated: true},
		{ID: "ami-000000000000000d2", Name: "pinned-0", OwnerID: "amazon", CreationDate: day(1)},
	} {
		im.Architecture = "x86_64"
		e.sim.AddImage(im)
	}
	e.ssm.Set("/team/ami", "ami-000000000000000a2")
	e.ssm.Set("/team/not-an-ami", "hello")
	for _, c := range []struct {
		name  string
		terms []awsv1.AMISelectorTerm
		want  string
	}{
		// A name without an owner never matches a stranger's public image,
		// though it is the newest match.
		{"name-without-owner", []awsv1.AMISelectorTerm{{Name: "team-node-*"}}, "ami-000000000000000a2,ami-000000000000000a1"},
		{"name-with-owner", []awsv1.AMISelectorTerm{{Name: "team-node-*", Owner: stranger}}, "ami-000000000000000f1"},
		// Name and tags in one term must both match.
		{"name-and-tags", []awsv1.AMISelectorTerm{{Name: "team-node-*", Tags: map[string]string{"team": "a"}}}, "ami-000000000000000a1"},
		// Terms are OR-ed.
		{"two-terms", []awsv1.AMISelectorTerm{{Tags: map[string]string{"team": "a"}}, {ID: "ami-000000000000000d2"}}, "ami-000000000000000a1,ami-000000000000000d2"},
		// A deprecated image still resolves (a pinned AMI keeps
		// launching), after every image that is not deprecated.
		{"deprecated-last", []awsv1.AMISelectorTerm{{Name: "pinned-*", Owner: "amazon"}}, "ami-000000000000000d2,ami-000000000000000d1"},
		{"deprecated-alone", []awsv1.AMISelectorTerm{{Name: "pinned-1"}}, "ami-000000000000000d1"},
		// An SSM parameter holding an AMI id selects it; one holding
		// anything else, or missing, selects nothing.
		{"ssm", []awsv1.AMISelectorTerm{{SSMParameter: "/team/ami"}, {SSMParameter: "/team/not-an-ami"}, {SSMParameter: "/missing"}}, "ami-000000000000000a2"},
	} {
		if got := strings.Join(resolvedImages(t, e, c.name, c.terms...), ","); got != c.want {
			t.Errorf("%s: images %s, want %s", c.name, got, c.want)
		}
	}
}

// Term shapes Karpenter's CRD refuses, or whose extra fields Karpenter
// would silently ignore, are InvalidArgument naming the field.
func TestAMISelectorTermShapes(t *testing.T) {
	e := newEnv(t)
	svc := e.service(t)
	for _, c := range []struct {
		term  awsv1.AMISelectorTerm
		field string
	}{
		{awsv1.AMISelectorTerm{ID: "ami-0123", Name: "x"}, "ami_selector_terms[0].id"},
		{awsv1.AMISelectorTerm{SSMParameter: "/x", Tags: map[string]string{"a": "b"}}, "ami_selector_terms[0].ssm_parameter"},
		{awsv1.AMISelectorTerm{Owner: "self"}, "ami_selector_terms[0]"},
	} {
		class := e.classWith(t, "bad", func(nc *awsv1.EC2NodeClass) { nc.Spec.AMISelectorTerms = []awsv1.AMISelectorTerm{c.term} })
		_, err := svc.ResolveNodeClass(ctx, &launcherv1.ResolveNodeClassRequest{NodeClassName: class})
		if !errors.Is(err, apierr.ErrInvalidArgument) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: %v, want InvalidArgument naming %s", c.term, err, c.field)
		}
	}
}

// Each family's alias gives every kind of instance type the image
// Karpenter would boot it with: AL2023 its neuron image for Inferentia
// (and its nvidia image for NVIDIA GPUs); AL2 its gpu image for both;
// Bottlerocket its standard image for Inferentia and nvidia for GPUs.
func TestAliasImagePerAcceleratorVariant(t *testing.T) {
	for _, c := range []struct {
		family                   string
		inf1Variant, g4dnVariant string
	}{
		{family: eksami.FamilyAL2023, inf1Variant: eksami.VariantNeuron, g4dnVariant: eksami.VariantNvidia},
		{family: eksami.FamilyAL2, inf1Variant: eksami.VariantNvidia, g4dnVariant: eksami.VariantNvidia},
		{family: eksami.FamilyBottlerocket, inf1Variant: eksami.VariantStandard, g4dnVariant: eksami.VariantNvidia},
	} {
		t.Run(c.family, func(t *testing.T) {
			e := newEnv(t)
			class := e.classWith(t, c.family, func(nc *awsv1.EC2NodeClass) {
				nc.Spec.AMISelectorTerms = []awsv1.AMISelectorTerm{{Alias: c.family + "@latest"}}
			})
			svc := e.service(t)
			for typ, variant := range map[string]string{"inf1.2xlarge": c.inf1Variant, "g4dn.xlarge": c.g4dnVariant, "m5.large": eksami.VariantStandard} {
				want, ok := eksami.Find(c.family, "1.31", eksami.LatestVersion, eksami.ArchX86_64, variant)
				if !ok {
					t.Fatalf("no %s %s image published", c.family, variant)
				}
				req := launchRequest("variant-"+strings.ReplaceAll(typ, ".", "-"), typ)
				req.NodeClassName = class
				resp, err := svc.Launch(ctx, req)
				if err != nil {
					t.Fatalf("%s: %v", typ, err)
				}
				got := ""
				for _, i := range e.sim.Instances() {
					if i.ID == resp.GetInstance().GetId() {
						got = i.ImageID
					}
				}
				if got != want.ID {
					t.Errorf("%s boots %s, want the %s image %s", typ, got, variant, want.ID)
				}
			}
		})
	}
}
