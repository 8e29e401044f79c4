package nodeclass_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/nodeclass"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

type listing struct {
	launcherv1.LauncherServiceClient
	asks []*launcherv1.ListInstanceTypesRequest
}

func (l *listing) ListInstanceTypes(_ context.Context, req *launcherv1.ListInstanceTypesRequest, _ ...grpc.CallOption) (*launcherv1.ListInstanceTypesResponse, error) {
	l.asks = append(l.asks, req)
	return &launcherv1.ListInstanceTypesResponse{InstanceTypes: []*typesv1.InstanceType{{Name: "m5.large"}}}, nil
}

// The watcher asks by name (the launcher reads the class); without ByName
// (flotilla plan, classes from files) the class goes inline. A list is
// reused within the TTL for the same generation.
func TestTypesByNameOrInline(t *testing.T) {
	nc := &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 1}, Spec: awsv1.EC2NodeClassSpec{Role: "NodeRole"}}
	for _, byName := range []bool{true, false} {
		l := &listing{}
		types := &nodeclass.Types{Launcher: l, ByName: byName, TTL: time.Hour}
		for range 2 {
			got, err := types.InstanceTypes(context.Background(), nc)
			if err != nil || len(got) != 1 {
				t.Fatalf("byName %v: %v %v", byName, got, err)
			}
		}
		if len(l.asks) != 1 {
			t.Fatalf("byName %v: %d calls, want 1 (cached)", byName, len(l.asks))
		}
		ask := l.asks[0]
		if byName && (ask.GetNodeClassName() != "default" || ask.GetNodeClass() != nil) {
			t.Errorf("by name: %v", ask)
		}
		if !byName && (ask.GetNodeClassName() != "" || ask.GetNodeClass().GetRole() != "NodeRole") {
			t.Errorf("inline: %v", ask)
		}
	}
}

// A mark lasts UnavailableTTL, leaves the cached list itself untouched, and
// ParseOfferings refuses what is not a list of triples.
func TestMarkUnavailableExpires(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	l := &listing{}
	types := &nodeclass.Types{Launcher: l, ByName: true, TTL: time.Hour, Now: func() time.Time { return now }}
	nc := &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 1}}
	offs, err := nodeclass.ParseOfferings("m5.large/us-east-1a/spot")
	if err != nil {
		t.Fatal(err)
	}
	first, err := types.InstanceTypes(context.Background(), nc)
	if err != nil {
		t.Fatal(err)
	}
	first[0].Offerings = []*typesv1.Offering{{Zone: "us-east-1a", CapacityType: "spot", Available: true}, {Zone: "us-east-1a", CapacityType: "on-demand", Available: true}}
	types.MarkUnavailable(offs)
	avail := func() []bool {
		got, err := types.InstanceTypes(context.Background(), nc)
		if err != nil {
			t.Fatal(err)
		}
		var out []bool
		for _, o := range got[0].GetOfferings() {
			out = append(out, o.GetAvailable())
		}
		return out
	}
	if got := avail(); len(got) != 2 || got[0] || !got[1] {
		t.Errorf("marked: available %v, want [false true]", got)
	}
	if !first[0].Offerings[0].Available {
		t.Error("the cached list was changed in place")
	}
	now = now.Add(nodeclass.UnavailableTTL)
	if got := avail(); len(got) != 2 || !got[0] || !got[1] {
		t.Errorf("after the TTL: available %v, want [true true]", got)
	}
	for _, bad := range []string{"", "m5.large", "m5.large/us-east-1a", "m5.large/us-east-1a/spot,", "a/b/c/d"} {
		if _, err := nodeclass.ParseOfferings(bad); err == nil {
			t.Errorf("ParseOfferings(%q) accepted", bad)
		}
	}
}
