package service

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/termination"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

func TestParseDisruption(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  disruptionRecord
		bad   bool
	}{
		{value: "SpotInterrupted", want: disruptionRecord{Reason: "SpotInterrupted"}},
		{value: "Rebalance;replace-first", want: disruptionRecord{Reason: "Rebalance", ReplaceFirst: true}},
		{value: "", bad: true},
		{value: ";replace-first", bad: true},
		{value: "Spot;", bad: true},
		{value: "Spot;replace-last", bad: true},
		{value: "Spot;replace-first;again", bad: true},
		{value: "two words", bad: true},
		{value: strings.Repeat("a", 64), bad: true},
		{value: "{\"json\":true}", bad: true},
	} {
		got, err := parseDisruption(tc.value)
		if tc.bad {
			if !errors.Is(err, errMalformedAnnotation) {
				t.Errorf("parseDisruption(%q) = %+v, %v; want errMalformedAnnotation", tc.value, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseDisruption(%q) = %+v, %v; want %+v", tc.value, got, err, tc.want)
		}
	}
}

// Whatever a NodeClaim's annotation holds, parsing never panics, fails only
// with errMalformedAnnotation, and what it accepts writes back unchanged.
func FuzzParseDisruption(f *testing.F) {
	for _, seed := range []string{"SpotInterrupted", "Rebalance;replace-first", "", ";", "a;b;c", "x;replace-first\n", "\xff;replace-first"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		rec, err := parseDisruption(value)
		if err != nil {
			if !errors.Is(err, errMalformedAnnotation) {
				t.Fatalf("parseDisruption(%q): %v does not wrap errMalformedAnnotation", value, err)
			}
			return
		}
		if rec.String() != value {
			t.Fatalf("parseDisruption(%q) = %+v, which writes back as %q", value, rec, rec.String())
		}
		if !reasonPattern.MatchString(rec.Reason) {
			t.Fatalf("parseDisruption(%q) accepted reason %q", value, rec.Reason)
		}
	})
}

type event struct{ object, eventType, reason, note string }

// eventRecorder keeps the events recorded.
type eventRecorder struct {
	mu     sync.Mutex
	events []event
}

func (r *eventRecorder) Eventf(regarding, _ runtime.Object, eventType, reason, _, note string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := ""
	if o, ok := regarding.(client.Object); ok {
		name = o.GetName()
	}
	r.events = append(r.events, event{object: name, eventType: eventType, reason: reason, note: fmt.Sprintf(note, args...)})
}

func (r *eventRecorder) all() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

// A foreign or mangled record is reported with a Warning event and left
// alone; the well-formed one next to it is still resumed.
func TestResumeIgnoresMalformedRecord(t *testing.T) {
	deadline := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	good, n1 := claimAndNode("good", "i-01", map[string]string{DisruptionAnnotationKey: "SpotInterrupted", termination.DeadlineAnnotationKey: deadline})
	bad, n2 := claimAndNode("bad", "i-02", map[string]string{DisruptionAnnotationKey: "Spot;replace-everything", termination.DeadlineAnnotationKey: deadline})
	s, kube, _ := newService(t, good, n1, bad, n2)
	rec := &eventRecorder{}
	s.Recorder = rec
	if err := s.Resume(context.Background()); err != nil {
		t.Fatalf("Resume: %v; a malformed record must not fail it", err)
	}
	deleting(t, kube, "good")
	c := &karpv1.NodeClaim{}
	if err := kube.Get(context.Background(), client.ObjectKey{Name: "bad"}, c); err != nil || c.DeletionTimestamp != nil {
		t.Errorf("the NodeClaim with a malformed record was disrupted (err %v)", err)
	}
	var warned []event
	for _, e := range rec.all() {
		if e.reason == EventMalformedAnnotation {
			warned = append(warned, e)
		}
	}
	if len(warned) != 1 || warned[0].object != "bad" || warned[0].eventType != "Warning" || !strings.Contains(warned[0].note, "replace-everything") {
		t.Errorf("events %+v: want one Warning %s on bad naming the flag", rec.all(), EventMalformedAnnotation)
	}
	if entries := s.Journal.Recent(0); len(entries) != 1 || entries[0].Object != "nodeclaim/good" {
		t.Errorf("journal %v: want only the good record resumed", entries)
	}
}

// A disruption refused because it could not be recorded takes its taint
// off again: the node stays, and must take pods.
func TestDisruptUntaintsWhenRecordFails(t *testing.T) {
	claim, node := claimAndNode("a", "i-0a", nil)
	s, kube, cs := newService(t, claim, node)
	s.Client = interceptor.NewClient(kube.(client.WithWatch), interceptor.Funcs{
		Patch: func(context.Context, client.WithWatch, client.Object, client.Patch, ...client.PatchOption) error {
			return errors.New("etcd unavailable")
		},
	})
	if _, err := s.Disrupt(context.Background(), &watcherv1.DisruptRequest{InstanceId: "i-0a"}); err == nil {
		t.Fatal("Disrupt accepted a disruption it could not record")
	}
	n, err := cs.CoreV1().Nodes().Get(context.Background(), node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, taint := range n.Spec.Taints {
		if taint.Key == karpv1.DisruptedTaintKey {
			t.Errorf("node taints %v: the disrupted taint stayed after the refusal", n.Spec.Taints)
		}
	}
}

// A disruption whose node is already gone completes as a no-op: no taint,
// no replacement to plan, the NodeClaim deleted.
func TestDisruptOfVanishedNode(t *testing.T) {
	claim, _ := claimAndNode("gone", "i-0g", nil)
	s, kube, _ := newService(t, claim)
	resp, err := s.Disrupt(context.Background(), &watcherv1.DisruptRequest{InstanceId: "i-0g", ReplaceFirst: true})
	if err != nil || !resp.GetAccepted() {
		t.Fatalf("Disrupt = %v, %v", resp, err)
	}
	deleting(t, kube, "gone")
}
