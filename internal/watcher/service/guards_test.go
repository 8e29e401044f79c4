package service

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
	"github.com/flotilla-io/flotilla/internal/watcher/termination"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// recordedDeadline waits for the claim to be deleting and returns the
// deadline recorded on it.
func recordedDeadline(t *testing.T, kube client.Client, name string) time.Time {
	t.Helper()
	c := deleting(t, kube, name)
	d, err := time.Parse(time.RFC3339, c.Annotations[termination.DeadlineAnnotationKey])
	if err != nil {
		t.Fatalf("recorded deadline %q: %v", c.Annotations[termination.DeadlineAnnotationKey], err)
	}
	return d
}

// A deadline in the past, or nearer than the minimum grace, is moved to now
// plus the minimum grace; a later one is kept.
func TestDisruptDeadlineFloor(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		grace    time.Duration
		deadline *timestamppb.Timestamp
		want     time.Time
		moved    bool
	}{
		{name: "past deadline", deadline: timestamppb.New(now.Add(-time.Hour)), want: now.Add(30 * time.Second), moved: true},
		{name: "epoch", deadline: timestamppb.New(time.Unix(0, 0)), want: now.Add(30 * time.Second), moved: true},
		{name: "too near", deadline: timestamppb.New(now.Add(5 * time.Second)), want: now.Add(30 * time.Second), moved: true},
		{name: "configured grace", grace: 45 * time.Second, deadline: timestamppb.New(now), want: now.Add(45 * time.Second), moved: true},
		{name: "far enough", deadline: timestamppb.New(now.Add(90 * time.Second)), want: now.Add(90 * time.Second)},
		{name: "none given", want: now.Add(DefaultDisruptDeadline)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claim, node := claimAndNode("a", "i-0a", nil)
			s, kube, _ := newService(t, claim, node)
			s.Now, s.MinGrace = func() time.Time { return now }, tc.grace
			resp, err := s.Disrupt(context.Background(), &watcherv1.DisruptRequest{InstanceId: "i-0a", Reason: "SpotInterrupted", Deadline: tc.deadline})
			if err != nil || !resp.GetAccepted() {
				t.Fatalf("Disrupt = %v, %v", resp, err)
			}
			if got := recordedDeadline(t, kube, "a"); !got.Equal(tc.want) {
				t.Errorf("recorded deadline %s, want %s", got, tc.want)
			}
			if moved := strings.Contains(resp.GetMessage(), "minimum grace"); moved != tc.moved {
				t.Errorf("message %q: moved %v, want %v", resp.GetMessage(), moved, tc.moved)
			}
		})
	}
}

// A disruption resumed after its deadline passed (or with an unreadable one)
// still leaves the minimum grace.
func TestResumeFloorsThePastDeadline(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	past, n1 := claimAndNode("past", "i-01", map[string]string{DisruptionAnnotationKey: "SpotInterrupted", termination.DeadlineAnnotationKey: "2000-01-01T00:00:00Z"})
	garbled, n2 := claimAndNode("garbled", "i-02", map[string]string{DisruptionAnnotationKey: "SpotInterrupted", termination.DeadlineAnnotationKey: "soon"})
	s, kube, _ := newService(t, past, n1, garbled, n2)
	s.Now = func() time.Time { return now }
	if err := s.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"past", "garbled"} {
		if got := recordedDeadline(t, kube, name); !got.Equal(now.Add(termination.DefaultMinGrace)) {
			t.Errorf("%s: deadline %s, want %s", name, got, now.Add(termination.DefaultMinGrace))
		}
	}
}

// Every refusal answers with the sentinel of its gRPC code, names the field,
// and changes nothing: no taint, no annotation, no deletion, no journal entry.
func TestDisruptRefusals(t *testing.T) {
	ours, ourNode := claimAndNode("ours", "i-0a", nil)
	unlabelled, unlabelledNode := claimAndNode("unlabelled", "i-0b", nil)
	delete(unlabelled.Labels, karpv1.NodePoolLabelKey)
	orphan, orphanNode := claimAndNode("orphan", "i-0c", nil)
	orphan.Labels[karpv1.NodePoolLabelKey] = "deleted-pool"
	stray := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "stray"}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-east-1a/i-0d"}}
	deadline := timestamppb.New(time.Now().Add(time.Minute))
	for _, tc := range []struct {
		name string
		req  *watcherv1.DisruptRequest
		want error
		text string
	}{
		{"nothing named", &watcherv1.DisruptRequest{Reason: "SpotInterrupted"}, apierr.ErrInvalidArgument, "instance_id or node_name"},
		{"invalid deadline", &watcherv1.DisruptRequest{InstanceId: "i-0a", Deadline: &timestamppb.Timestamp{Seconds: 1 << 60}}, apierr.ErrInvalidArgument, "deadline"},
		{"reason with a flag", &watcherv1.DisruptRequest{InstanceId: "i-0a", Reason: "x;replace-first"}, apierr.ErrInvalidArgument, "reason"},
		{"unknown instance", &watcherv1.DisruptRequest{InstanceId: "i-0zzz", Deadline: deadline}, apierr.ErrNotFound, "instance_id"},
		{"unknown node", &watcherv1.DisruptRequest{NodeName: "node-nope", Deadline: deadline}, apierr.ErrNotFound, "node_name"},
		{"node without a NodeClaim", &watcherv1.DisruptRequest{NodeName: "stray"}, apierr.ErrNotFound, "node_name"},
		{"unknown node, known instance", &watcherv1.DisruptRequest{NodeName: "node-nope", InstanceId: "i-0a"}, apierr.ErrNotFound, "node_name"},
		{"node and instance disagree", &watcherv1.DisruptRequest{NodeName: ourNode.Name, InstanceId: "i-0b"}, apierr.ErrInvalidArgument, "instance_id"},
		{"no nodepool label", &watcherv1.DisruptRequest{InstanceId: "i-0b"}, apierr.ErrFailedPrecondition, karpv1.NodePoolLabelKey},
		{"nodepool gone", &watcherv1.DisruptRequest{NodeName: orphanNode.Name}, apierr.ErrFailedPrecondition, "deleted-pool"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := []client.Object{ours.DeepCopy(), ourNode.DeepCopy(), unlabelled.DeepCopy(), unlabelledNode.DeepCopy(),
				orphan.DeepCopy(), orphanNode.DeepCopy(), stray.DeepCopy()}
			s, kube, cs := newService(t, objs...)
			before := claims(t, kube)
			resp, err := s.Disrupt(context.Background(), tc.req)
			if !errors.Is(err, tc.want) || resp != nil {
				t.Fatalf("Disrupt = %v, %v; want %v", resp, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not name %s", err, tc.text)
			}
			if after := claims(t, kube); !reflect.DeepEqual(before, after) {
				t.Errorf("NodeClaims changed:\nbefore %v\nafter  %v", before, after)
			}
			nodes, err := cs.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range nodes.Items {
				if len(n.Spec.Taints) != 0 {
					t.Errorf("node %s tainted: %v", n.Name, n.Spec.Taints)
				}
			}
			if e := s.Journal.Recent(0); len(e) != 0 {
				t.Errorf("journal %v", e)
			}
			if len(s.inFlight) != 0 {
				t.Errorf("disruptions under way: %v", s.inFlight)
			}
		})
	}
}

// claims maps each NodeClaim to its resource version (any write changes it),
// annotations and whether it is deleting.
func claims(t *testing.T, kube client.Client) map[string]string {
	t.Helper()
	var list karpv1.NodeClaimList
	if err := kube.List(context.Background(), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range list.Items {
		out[c.Name] = fmt.Sprint(c.ResourceVersion, " ", c.Annotations, " deleting=", c.DeletionTimestamp != nil)
	}
	return out
}
