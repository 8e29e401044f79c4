package nodeclass

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
)

// emptyEC2 answers every Describe with nothing: the resolutions are not
// ready, which is enough to fill the cache.
type emptyEC2 struct{}

func (emptyEC2) DescribeSubnets(context.Context, *ec2.DescribeSubnetsInput, ...func(*ec2.Options)) (*ec2.DescribeSubnetsOutput, error) {
	return &ec2.DescribeSubnetsOutput{}, nil
}

func (emptyEC2) DescribeSecurityGroups(context.Context, *ec2.DescribeSecurityGroupsInput, ...func(*ec2.Options)) (*ec2.DescribeSecurityGroupsOutput, error) {
	return &ec2.DescribeSecurityGroupsOutput{}, nil
}

func (emptyEC2) DescribeImages(context.Context, *ec2.DescribeImagesInput, ...func(*ec2.Options)) (*ec2.DescribeImagesOutput, error) {
	return &ec2.DescribeImagesOutput{}, nil
}

// Inline classes from any caller of ListInstanceTypes cannot grow the
// resolution cache without bound.
func TestResolutionCacheIsBounded(t *testing.T) {
	now := time.Unix(0, 0)
	r := New(Options{EC2: emptyEC2{}, Now: func() time.Time { return now }})
	for i := range 3 * maxCached {
		nc := &launcherv1.NodeClass{
			SubnetSelectorTerms:        []*launcherv1.SelectorTerm{{Id: fmt.Sprintf("subnet-%08x", i)}},
			SecurityGroupSelectorTerms: []*launcherv1.SelectorTerm{{Id: "sg-1"}},
			AmiSelectorTerms:           []*launcherv1.SelectorTerm{{Id: "ami-1"}},
			InstanceProfile:            "profile",
		}
		if _, err := r.Resolve(context.Background(), nc); err != nil {
			t.Fatal(err)
		}
		if i%maxCached == 0 {
			now = now.Add(DefaultTTL) // some expire along the way
		}
	}
	if n := len(r.cache); n > maxCached {
		t.Fatalf("%d cached resolutions, bound %d", n, maxCached)
	}
}
