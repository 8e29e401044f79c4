package launch

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestPackClaims(t *testing.T) {
	chunks, ok := packClaims([]string{"a", "bb", "c"}, 1)
	if !ok || len(chunks) != 1 || chunks[0] != ",a,bb,c," {
		t.Fatalf("%q %v", chunks, ok)
	}
	long := strings.Repeat("x", 100)
	chunks, ok = packClaims([]string{long, long, long}, 4)
	if !ok || len(chunks) != 2 {
		t.Fatalf("%d chunks %v", len(chunks), ok)
	}
	for _, c := range chunks {
		if len(c) > maxTagValue {
			t.Fatalf("chunk of %d characters", len(c))
		}
	}
	if _, ok := packClaims([]string{long, long, long}, 1); ok {
		t.Fatal("three 100-character claims fit one tag value")
	}
	if _, ok := packClaims([]string{strings.Repeat("y", 255)}, 4); ok {
		t.Fatal("a 255-character claim fits a tag value with its commas")
	}
}

func TestClaimsOfAssignsBatchMembersBySortedID(t *testing.T) {
	tags := func(extra ...string) []ec2types.Tag {
		out := []ec2types.Tag{
			{Key: aws.String(TagLaunchBatch), Value: aws.String("b1")},
			{Key: aws.String(TagLaunchBatchClaims + "0"), Value: aws.String(",a,b,")},
			{Key: aws.String(TagLaunchBatchClaims + "1"), Value: aws.String(",c,")},
		}
		if len(extra) == 2 {
			out = append(out, ec2types.Tag{Key: aws.String(extra[0]), Value: aws.String(extra[1])})
		}
		return out
	}
	got := claimsOf([]ec2types.Instance{
		{InstanceId: aws.String("i-3"), Tags: tags()},
		{InstanceId: aws.String("i-1"), Tags: tags(TagNodeClaim, "a")},
		{InstanceId: aws.String("i-2"), Tags: tags()},
		{InstanceId: aws.String("i-9"), Tags: []ec2types.Tag{{Key: aws.String(TagNodeClaim), Value: aws.String("solo")}}},
		{InstanceId: aws.String("i-0"), Tags: nil},
	})
	want := map[string]string{"i-1": "a", "i-2": "b", "i-3": "c", "i-9": "solo"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for id, c := range want {
		if got[id] != c {
			t.Errorf("%s: %q, want %q", id, got[id], c)
		}
	}
}
