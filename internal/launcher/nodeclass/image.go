package nodeclass

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/flotilla-io/flotilla/internal/launcher/awsclient"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

const labelGPUCount = "karpenter.k8s.aws/instance-gpu-count"

func (r *Resolver) images(ctx context.Context, terms []*launcherv1.SelectorTerm) ([]Image, error) {
	if len(terms) == 1 && terms[0].GetAlias() != "" {
		a, err := ParseAlias(terms[0].GetAlias(), "node_class.ami_selector_terms[0].alias")
		if err != nil {
			return nil, err
		}
		return r.aliasImages(ctx, a)
	}
	seen := map[string]Image{}
	for _, t := range terms {
		in := &ec2.DescribeImagesInput{Filters: filters(t, "image-id", "name")}
		if t.GetOwner() != "" {
			in.Owners = []string{t.GetOwner()}
		}
		found, err := r.describeImages(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, im := range found {
			seen[aws.ToString(im.ImageId)] = Image{
				ID: aws.ToString(im.ImageId), Name: aws.ToString(im.Name), created: aws.ToString(im.CreationDate),
				Requirements: []*typesv1.Requirement{archRequirement(string(im.Architecture))},
			}
		}
	}
	out := make([]Image, 0, len(seen))
	for _, im := range seen {
		out = append(out, im)
	}
	// Newest first, so the newest image of an architecture is picked.
	sort.Slice(out, func(i, j int) bool {
		if out[i].created != out[j].created {
			return out[i].created > out[j].created
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
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
	var out []Image
	for _, f := range flavours[a.Family] {
		name := a.parameter(r.o.KubernetesVersion, f)
		got, err := r.o.SSM.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		if awsclient.HasCode(err, "ParameterNotFound") {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get parameter %s: %w", name, err)
		}
		gpu := &typesv1.Requirement{Key: labelGPUCount, Operator: "DoesNotExist"}
		if f.variant == "nvidia" {
			gpu.Operator = "Exists"
		}
		out = append(out, Image{
			ID: aws.ToString(got.Parameter.Value), Family: a.Family,
			Requirements: []*typesv1.Requirement{archRequirement(f.arch), gpu},
		})
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
