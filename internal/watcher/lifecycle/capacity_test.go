package lifecycle

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	"github.com/flotilla-io/flotilla/internal/watcher/nodeclass"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// refusingLauncher answers every Launch with err.
type refusingLauncher struct {
	launcherv1.LauncherServiceClient
	err error
}

func (l refusingLauncher) Launch(context.Context, *launcherv1.LaunchRequest, ...grpc.CallOption) (*launcherv1.LaunchResponse, error) {
	return nil, l.err
}

func exhausted(reason string) error {
	st, err := status.New(codes.ResourceExhausted, "refused").WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: apierr.ErrorDomain})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// A launch without capacity gives the NodeClaim up (the next plan avoids the
// offerings); a launcher too busy to take the call, or a message over its
// size limit, is retried and deletes nothing.
func TestOnlyInsufficientCapacityGivesTheClaimUp(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		deleted bool
	}{
		{"insufficient capacity", exhausted(apierr.ReasonInsufficientCapacity), true},
		{"launcher overloaded", exhausted(apierr.ReasonOverloaded), false},
		{"message too large", status.Error(codes.ResourceExhausted, "grpc: received message larger than max"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube, claim := launchFixture(t, "general")
			c := launchController(kube, refusingLauncher{err: tc.err}, nopRecorder{})
			_, _ = c.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Name: claim.Name}})
			got := &karpv1.NodeClaim{}
			err := kube.Get(context.Background(), client.ObjectKey{Name: claim.Name}, got)
			if gone := apierrors.IsNotFound(err) || got.DeletionTimestamp != nil; gone != tc.deleted {
				t.Errorf("claim deleted = %v (get: %v), want %v", gone, err, tc.deleted)
			}
		})
	}
}

// eventLog records the reasons and messages of events.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) Eventf(_ runtime.Object, _ runtime.Object, _, reason, _, note string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, reason+": "+fmt.Sprintf(note, args...))
}

// A launch an account quota stopped gives the claim up with a Launched
// condition and an event naming the quota; one that EC2's capacity
// stopped gives it up without either naming a quota.
func TestQuotaErrorIsRecordedOnTheClaim(t *testing.T) {
	withQuota := func(quota string) error {
		md := map[string]string{"offerings": "g5.xlarge/us-east-1a/on-demand"}
		if quota != "" {
			md[apierr.MetadataQuota] = quota
		}
		st, err := status.New(codes.ResourceExhausted, "launch gpu: insufficient capacity").WithDetails(&errdetails.ErrorInfo{
			Reason: apierr.ReasonInsufficientCapacity, Domain: apierr.ErrorDomain, Metadata: md})
		if err != nil {
			t.Fatal(err)
		}
		return st.Err()
	}
	for _, tc := range []struct {
		name, quota, reason string
	}{
		{"quota", "VcpuLimitExceeded", EventQuotaExceeded},
		{"capacity", "", EventInsufficientCap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kube, claim := launchFixture(t, "gpu", karpv1.TerminationFinalizer)
			events := &eventLog{}
			c := launchController(kube, refusingLauncher{err: withQuota(tc.quota)}, events)
			if _, err := c.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Name: claim.Name}}); err != nil {
				t.Fatal(err)
			}
			got := &karpv1.NodeClaim{}
			if err := kube.Get(context.Background(), client.ObjectKey{Name: claim.Name}, got); err != nil || got.DeletionTimestamp == nil {
				t.Fatalf("claim not being deleted: %v", err)
			}
			cond := meta.FindStatusCondition(got.Status.Conditions, karpv1.ConditionLaunched)
			named := cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == EventQuotaExceeded && strings.Contains(cond.Message, "VcpuLimitExceeded")
			if named != (tc.quota != "") {
				t.Errorf("Launched condition %+v, want one naming the quota: %v", cond, tc.quota != "")
			}
			events.mu.Lock()
			defer events.mu.Unlock()
			if len(events.events) != 1 || !strings.HasPrefix(events.events[0], tc.reason+": ") ||
				strings.Contains(events.events[0], "VcpuLimitExceeded") != (tc.quota != "") {
				t.Errorf("events %q, want one %s event naming the quota: %v", events.events, tc.reason, tc.quota != "")
			}
		})
	}
}

// iceLauncher lists m5.large in two zones, spot and on-demand, and answers
// every Launch with an insufficient-capacity error naming offerings.
type iceLauncher struct {
	launcherv1.LauncherServiceClient
	offerings string
	lists     int
}

func (l *iceLauncher) ListInstanceTypes(context.Context, *launcherv1.ListInstanceTypesRequest, ...grpc.CallOption) (*launcherv1.ListInstanceTypesResponse, error) {
	l.lists++
	it := &typesv1.InstanceType{Name: "m5.large"}
	for _, z := range []string{"us-east-1a", "us-east-1b"} {
		for _, ct := range []string{"spot", "on-demand"} {
			it.Offerings = append(it.Offerings, &typesv1.Offering{Zone: z, CapacityType: ct, PricePerHour: 0.1, Available: true})
		}
	}
	return &launcherv1.ListInstanceTypesResponse{InstanceTypes: []*typesv1.InstanceType{it}}, nil
}

func (l *iceLauncher) Launch(context.Context, *launcherv1.LaunchRequest, ...grpc.CallOption) (*launcherv1.LaunchResponse, error) {
	st, err := status.New(codes.ResourceExhausted, "insufficient capacity").WithDetails(&errdetails.ErrorInfo{
		Reason: apierr.ReasonInsufficientCapacity, Domain: apierr.ErrorDomain,
		Metadata: map[string]string{apierr.MetadataNodeClaim: "x", apierr.MetadataOfferings: l.offerings}})
	if err != nil {
		panic(err)
	}
	return nil, st.Err()
}

// unavailableAfterLaunch lists the types, fails one launch with offerings,
// and returns the offerings the next list holds unavailable.
func unavailableAfterLaunch(t *testing.T, l *iceLauncher) []string {
	t.Helper()
	kube, claim := launchFixture(t, "general", karpv1.TerminationFinalizer)
	types := &nodeclass.Types{Launcher: l, ByName: true, TTL: time.Hour}
	class := &awsv1.EC2NodeClass{ObjectMeta: metav1.ObjectMeta{Name: "default"}}
	if _, err := types.InstanceTypes(context.Background(), class); err != nil {
		t.Fatal(err)
	}
	c := launchController(kube, l, nopRecorder{})
	c.Types = types
	if _, err := c.Reconcile(context.Background(), reconcile.Request{NamespacedName: client.ObjectKey{Name: claim.Name}}); err != nil {
		t.Fatal(err)
	}
	got, err := types.InstanceTypes(context.Background(), class)
	if err != nil {
		t.Fatal(err)
	}
	var off []string
	for _, it := range got {
		for _, o := range it.GetOfferings() {
			if !o.GetAvailable() {
				off = append(off, it.GetName()+"/"+o.GetZone()+"/"+o.GetCapacityType())
			}
		}
	}
	return off
}

// The offerings the launcher's ErrorInfo names are unavailable in the next
// plan's instance types, exactly those, and the cached lists are kept.
func TestInsufficientCapacityMarksJustItsOfferings(t *testing.T) {
	l := &iceLauncher{offerings: "m5.large/us-east-1a/spot,m5.large/us-east-1b/spot"}
	got := unavailableAfterLaunch(t, l)
	if want := []string{"m5.large/us-east-1a/spot", "m5.large/us-east-1b/spot"}; !slices.Equal(got, want) {
		t.Errorf("unavailable offerings %v, want %v", got, want)
	}
	if l.lists != 1 {
		t.Errorf("%d ListInstanceTypes calls, want 1: the cache is kept", l.lists)
	}
}

// An error whose offerings cannot be read forgets every cached list, so
// the next plan asks the launcher again.
func TestInsufficientCapacityWithoutOfferingsRelists(t *testing.T) {
	l := &iceLauncher{offerings: "m5.large"}
	if got := unavailableAfterLaunch(t, l); len(got) != 0 {
		t.Errorf("unavailable offerings %v, want none marked", got)
	}
	if l.lists != 2 {
		t.Errorf("%d ListInstanceTypes calls, want 2: the cache is forgotten", l.lists)
	}
}
