package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

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
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
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
