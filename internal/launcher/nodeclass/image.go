package nodeclass

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

const (
	labelGPUCount         = "karpenter.k8s.aws/instance-gpu-count"
	labelAcceleratorCount = "karpenter.k8s.aws/instance-accelerator-count"
)

// images resolves the AMI terms as Karpenter does
// (pkg/providers/amifamily/ami.go): an alias alone reads its family's SSM
// parameters; otherwise the terms are OR-ed and each term's name, owner
// and tags AND-ed, a name without an owner searches only the account's own
// and Amazon's images ("self", "amazon": never a stranger's public AMI of
// the same name), ids and SSM parameters (whose value is an AMI id) are
// looked up together, and deprecated images are included, so a pinned AMI
// keeps launching after its deprecation date, but ordered after every
// image that is not deprecated.
func (r *Resolver) images(ctx context.Context, terms []*launcherv1.SelectorTerm) ([]Image, error) {
	if len(terms) == 1 && terms[0].GetAlias() != "" {
		a, err := ParseAlias(terms[0].GetAlias(), "node_class.ami_selector_terms[0].alias")
		if err != nil {
			return nil, err
		}
		return r.aliasImages(ctx, a)
	}
	queries, err := r.imageQueries(ctx, terms)
	if err != nil {
		return nil, err
	}
	now := r.o.Now()
	seen := map[string]Image{}
	for _, in := range queries {
		in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String("state"), Values: []string{string(ec2types.ImageStateAvailable)}})
		in.IncludeDeprecated = aws.Bool(true)
		found, err := r.describeImages(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, im := range found {
			seen[aws.ToString(im.ImageId)] = Image{
				ID: aws.ToString(im.ImageId), Name: aws.ToString(im.Name), created: aws.ToString(im.CreationDate),
				Deprecated:   deprecated(aws.ToString(im.DeprecationTime), now),
				Requirements: []*typesv1.Requirement{archRequirement(string(im.Architecture))},
			}
		}
	}
	out := make([]Image, 0, len(seen))
	for _, im := range seen {
		out = append(out, im)
	}
	// Images that are not deprecated first, then newest first, so the
	// first image of an architecture is the one to launch.
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.Deprecated != b.Deprecated:
			return !a.Deprecated
		case a.created != b.created:
			return a.created > b.created
		case a.Name != b.Name:
			return a.Name > b.Name
		}
		return a.ID < b.ID
	})
	return out, nil
}

// imageQueries turns the AMI terms into DescribeImages requests: one per
// name/owner/tags term, and one for every id and SSM parameter together.
// An SSM parameter that does not exist, or does not hold an AMI id,
// selects nothing.
func (r *Resolver) imageQueries(ctx context.Context, terms []*launcherv1.SelectorTerm) ([]*ec2.DescribeImagesInput, error) {
	var ids []string
	var out []*ec2.DescribeImagesInput
	for _, t := range terms {
		switch {
		case t.GetId() != "":
			ids = append(ids, t.GetId())
		case t.GetSsmParameter() != "":
			got, err := r.o.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(t.GetSsmParameter())})
			if awsclient.HasCode(err, "ParameterNotFound") {
				r.o.Logger.Warn("AMI SSM parameter not found", "parameter", t.GetSsmParameter())
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("get parameter %s: %w", t.GetSsmParameter(), err)
			}
			id := aws.ToString(got.Parameter.Value)
			if !strings.HasPrefix(id, "ami-") {
				r.o.Logger.Warn("AMI SSM parameter does not hold an AMI id", "parameter", t.GetSsmParameter(), "value", id)
				continue
			}
			ids = append(ids, id)
		default:
			in := &ec2.DescribeImagesInput{}
			if t.GetName() != "" {
				in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String("name"), Values: []string{t.GetName()}})
				in.Owners = []string{"self", "amazon"}
			}
			if t.GetOwner() != "" {
				in.Owners = []string{t.GetOwner()}
			}
			for _, k := range sortedKeys(t.GetTags()) {
				if v := t.GetTags()[k]; v == "*" {
					in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String("tag-key"), Values: []string{k}})
				} else {
					in.Filters = append(in.Filters, ec2types.Filter{Name: aws.String("tag:" + k), Values: []string{v}})
				}
			}
			out = append(out, in)
		}
	}
	if len(ids) > 0 {
		out = append(out, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("image-id"), Values: ids}}})
	}
	return out, nil
}

// deprecated reports whether an image's DeprecationTime (RFC 3339, empty
// when it has none) has passed.
func deprecated(at string, now time.Time) bool {
	if at == "" {
		return false
	}
	t, err := time.Parse(time.RFC3339, at)
	return err == nil && !t.After(now)
}

func (r *Resolver) describeImages(ctx context.Context, in *ec2.DescribeImagesInput) ([]ec2types.Image, error) {
	var out []ec2types.Image
	p := ec2.NewDescribeImagesPaginator(r.o.EC2, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe images: %w", err)
		}
		out = append(out, page.Images...)
	}
	return out, nil
}

// aliasImages reads the alias's SSM parameter of every flavour of its
// family (missing parameters are skipped: not every flavour is published),
// then names the images with one DescribeImages.
func (r *Resolver) aliasImages(ctx context.Context, a Alias) ([]Image, error) {
	k8s, err := r.o.KubernetesVersion.Get(ctx)
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, f := range flavours[a.Family] {
		name := a.parameter(k8s, f)
		got, err := r.o.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		if awsclient.HasCode(err, "ParameterNotFound") {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get parameter %s: %w", name, err)
		}
		// One image per variant it serves (AL2's gpu image is chosen for
		// NVIDIA and for Neuron types).
		for _, v := range f.serves {
			out = append(out, Image{
				ID: aws.ToString(got.Parameter.Value), Family: a.Family,
				Requirements: append([]*typesv1.Requirement{archRequirement(f.arch)}, variantRequirements(v)...),
			})
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	ids := make([]string, len(out))
	for i, im := range out {
		ids[i] = im.ID
	}
	described, err := r.describeImages(ctx, &ec2.DescribeImagesInput{
		Filters: []ec2types.Filter{{Name: aws.String("image-id"), Values: ids}},
	})
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, im := range described {
		names[aws.ToString(im.ImageId)] = aws.ToString(im.Name)
	}
	for i := range out {
		out[i].Name = names[out[i].ID]
	}
	return out, nil
}

func archRequirement(ec2Arch string) *typesv1.Requirement {
	arch := ec2Arch
	if ec2Arch == "x86_64" {
		arch = "amd64"
	}
	return &typesv1.Requirement{Key: "kubernetes.io/arch", Operator: "In", Values: []string{arch}}
}
