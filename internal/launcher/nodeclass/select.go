package nodeclass

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// filters turns a term into EC2 filters: idFilter for an id, nameFilter
// for a name, tag:K=V for each tag ("*" matches any value: tag-key=K).
func filters(t *launcherv1.SelectorTerm, idFilter, nameFilter string) []ec2types.Filter {
	f := func(name string, values ...string) ec2types.Filter {
		return ec2types.Filter{Name: aws.String(name), Values: values}
	}
	switch {
	case t.GetId() != "":
		return []ec2types.Filter{f(idFilter, t.GetId())}
	case t.GetName() != "":
		return []ec2types.Filter{f(nameFilter, t.GetName())}
	}
	var out []ec2types.Filter
	for _, k := range sortedKeys(t.GetTags()) {
		if v := t.GetTags()[k]; v == "*" {
			out = append(out, f("tag-key", k))
		} else {
			out = append(out, f("tag:"+k, v))
		}
	}
	return out
}

func (r *Resolver) subnets(ctx context.Context, terms []*launcherv1.SelectorTerm) ([]Subnet, error) {
	seen := map[string]Subnet{}
	for _, t := range terms {
		p := ec2.NewDescribeSubnetsPaginator(r.o.EC2, &ec2.DescribeSubnetsInput{Filters: filters(t, "subnet-id", "")})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describe subnets: %w", err)
			}
			for _, s := range page.Subnets {
				id := aws.ToString(s.SubnetId)
				seen[id] = Subnet{ID: id, Zone: aws.ToString(s.AvailabilityZone), AvailableIPs: aws.ToInt32(s.AvailableIpAddressCount)}
			}
		}
	}
	out := make([]Subnet, 0, len(seen))
	for _, s := range seen {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Zone != b.Zone {
			return a.Zone < b.Zone
		}
		if a.AvailableIPs != b.AvailableIPs {
			return a.AvailableIPs > b.AvailableIPs
		}
		return a.ID < b.ID
	})
	return out, nil
}

func (r *Resolver) securityGroups(ctx context.Context, terms []*launcherv1.SelectorTerm) ([]string, error) {
	seen := map[string]bool{}
	for _, t := range terms {
		p := ec2.NewDescribeSecurityGroupsPaginator(r.o.EC2, &ec2.DescribeSecurityGroupsInput{Filters: filters(t, "group-id", "group-name")})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("describe security groups: %w", err)
			}
			for _, g := range page.SecurityGroups {
				seen[aws.ToString(g.GroupId)] = true
			}
		}
	}
	return sortedKeys(seen), nil
}

func conditions(r *Resolved, nc *launcherv1.NodeClass) []*launcherv1.Condition {
	cond := func(typ string, ok bool, reason, msg string) *launcherv1.Condition {
		if ok {
			return &launcherv1.Condition{Type: typ, Status: "True", Reason: typ}
		}
		return &launcherv1.Condition{Type: typ, Status: "False", Reason: reason, Message: msg}
	}
	out := []*launcherv1.Condition{
		cond("SubnetsReady", len(r.Subnets) > 0, "SubnetsNotFound", "no subnet matches subnetSelectorTerms"),
		cond("SecurityGroupsReady", len(r.SecurityGroupIDs) > 0, "SecurityGroupsNotFound", "no security group matches securityGroupSelectorTerms"),
		cond("AMIsReady", len(r.Images) > 0, "AMINotFound", "no AMI matches amiSelectorTerms"),
		cond("InstanceProfileReady", r.InstanceProfile != "", "InstanceProfileNotFound", "neither role nor instanceProfile is set"),
	}
	if p := r.profileProblem; p != nil {
		out[3] = cond("InstanceProfileReady", p.pending, p.reason, p.message)
		if p.pending { // ready to launch: the launch makes the profile
			out[3].Reason, out[3].Message = p.reason, p.message
		}
	}
	var notReady []string
	for _, c := range out {
		if c.Status != "True" {
			notReady = append(notReady, c.Type)
		}
	}
	out = append(out, cond("Ready", len(notReady) == 0, "NotReady", fmt.Sprintf("%s not ready on %s", notReady, nc.GetName())))
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
