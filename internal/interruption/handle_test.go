package interruption

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// handleNow is the consumer's clock in the in-process tests: events are
// built relative to it, so the seeds of FuzzHandle stay valid forever.
var handleNow = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// unmanaged is an instance the in-process watcher refuses as not managed by it.
const unmanaged = "i-0eeeeeeeeeeeeeee0"

// watcherClient is an in-process watcher: it knows instances 0 to 2 (and
// inst), refuses others with NotFound (unmanaged with FailedPrecondition) as
// the real one does, and records every call. With hold set, a call waits until hold is closed.
type watcherClient struct {
	watcherv1.WatcherServiceClient
	hold chan struct{}

	mu    sync.Mutex
	calls []*watcherv1.DisruptRequest
}

func knownInstance(id string) bool {
	return id == inst || id == instanceID(0) || id == instanceID(1) || id == instanceID(2)
}

func (w *watcherClient) Disrupt(ctx context.Context, in *watcherv1.DisruptRequest, _ ...grpc.CallOption) (*watcherv1.DisruptResponse, error) {
	w.mu.Lock()
	w.calls = append(w.calls, in)
	w.mu.Unlock()
	if w.hold != nil {
		select {
		case <-w.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if in.GetInstanceId() == unmanaged {
		return nil, status.Errorf(codes.FailedPrecondition, "instance_id %q: NodeClaim x has no karpenter.sh/nodepool label", in.GetInstanceId())
	}
	if !knownInstance(in.GetInstanceId()) {
		return nil, status.Errorf(codes.NotFound, "instance_id %q: no NodeClaim of this cluster has that instance id", in.GetInstanceId())
	}
	return &watcherv1.DisruptResponse{Accepted: true, NodeName: "node-" + in.GetInstanceId(), Message: "disruption started"}, nil
}

func (w *watcherClient) disrupts() []*watcherv1.DisruptRequest {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

// launcherClient is an in-process launcher listing the known instances as
// spot m5.large and recording MarkUnavailable.
type launcherClient struct {
	launcherv1.LauncherServiceClient

	mu    sync.Mutex
	marks []*launcherv1.MarkUnavailableRequest
}

func (l *launcherClient) ListInstances(context.Context, *launcherv1.ListInstancesRequest, ...grpc.CallOption) (*launcherv1.ListInstancesResponse, error) {
	var out []*launcherv1.Instance
	for _, id := range []string{inst, instanceID(0), instanceID(1), instanceID(2)} {
		out = append(out, &launcherv1.Instance{Id: id, InstanceType: "m5.large", Zone: "us-east-1a", CapacityType: "spot", State: "running"})
	}
	return &launcherv1.ListInstancesResponse{Instances: out}, nil
}

func (l *launcherClient) MarkUnavailable(_ context.Context, in *launcherv1.MarkUnavailableRequest, _ ...grpc.CallOption) (*launcherv1.MarkUnavailableResponse, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.marks = append(l.marks, in)
	return &launcherv1.MarkUnavailableResponse{}, nil
}

func (l *launcherClient) marked() []*launcherv1.MarkUnavailableRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.marks)
}

// handler is a consumer on the in-process fakes, with no queue: tests call
// Handle directly.
type handler struct {
	consumer *Consumer
	watcher  *watcherClient
	launcher *launcherClient
	journal  *Journal
	metrics  *Metrics
}

func newHandler() *handler {
	h := &handler{watcher: &watcherClient{}, launcher: &launcherClient{}, journal: NewJournal(JournalSize), metrics: NewMetrics()}
	now := func() time.Time { return handleNow }
	log := slog.New(slog.DiscardHandler)
	h.consumer = &Consumer{
		Region: testRegion, Account: testAccount, Journal: h.journal, Metrics: h.metrics, Log: log, Now: now,
		Actor: &Actor{Watcher: h.watcher, Launcher: h.launcher, ClusterName: "test", ActOnRebalance: true, Now: now, Metrics: h.metrics, Log: log},
	}
	return h
}

func (h *handler) calls() int { return len(h.watcher.disrupts()) + len(h.launcher.marked()) }

func message(body string) *sqstypes.Message {
	return &sqstypes.Message{MessageId: aws.String("m-1"), Body: aws.String(body)}
}

// setField replaces the envelope's "name":"value" of a body built by
// eventJSON; an empty value removes the field's value ("" in JSON).
func setField(body, name, value string) string {
	start := strings.Index(body, `"`+name+`":"`)
	if start < 0 {
		panic("no field " + name)
	}
	valueStart := start + len(name) + 4
	end := valueStart + strings.Index(body[valueStart:], `"`)
	return body[:valueStart] + value + body[end:]
}

func TestHandleDrops(t *testing.T) {
	fresh := spotEvent("ev-1", inst, handleNow.Add(-time.Minute))
	for _, tc := range []struct {
		name, body, reason string
	}{
		{"older than 10 minutes", spotEvent("ev-1", inst, handleNow.Add(-10*time.Minute-time.Second)), DropStale},
		{"a day old", spotEvent("ev-1", inst, handleNow.Add(-24*time.Hour)), DropStale},
		{"too far ahead", spotEvent("ev-1", inst, handleNow.Add(6*time.Minute)), DropFuture},
		{"another account", setField(fresh, "account", "210987654321"), DropOtherAccount},
		{"another region", setField(fresh, "region", "eu-west-1"), DropOtherRegion},
		{"region differing in case", setField(fresh, "region", "US-EAST-1"), DropOtherRegion},
		{"no time", setField(fresh, "time", ""), DropMissingTime},
		{"no account", setField(fresh, "account", ""), DropMissingAccount},
		{"no region", setField(fresh, "region", ""), DropMissingRegion},
		{"no time, account or region", strings.NewReplacer(`"account":"123456789012",`, "", `"region":"us-east-1",`, "").
			Replace(setField(fresh, "time", "")), DropMissingTime},
		{"health event of another account", setField(eventJSON("ev-h", SourceHealth, DetailTypeHealth, handleNow,
			healthJSON("EC2", "scheduledChange", "", inst, instanceID(1))), "account", "000000000000"), DropOtherAccount},
		{"state change not acted on anyway", setField(eventJSON("ev-s", SourceEC2, DetailTypeStateChange, handleNow,
			`{"instance-id":"`+inst+`","state":"running"}`), "region", "ap-south-1"), DropOtherRegion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler()
			if !h.consumer.Handle(context.Background(), message(tc.body)) {
				t.Fatal("a dropped message is kept on the queue")
			}
			if h.calls() != 0 {
				t.Fatalf("a dropped event was acted on: Disrupt %v, MarkUnavailable %v", h.watcher.disrupts(), h.launcher.marked())
			}
			for _, r := range DropReasons {
				want := 0.0
				if r == tc.reason {
					want = 1
				}
				if got := testutil.ToFloat64(h.metrics.Dropped.WithLabelValues(r)); got != want {
					t.Errorf("dropped{reason=%q} = %v, want %v", r, got, want)
				}
			}
			recs := h.journal.Recent(0, nil)
			if len(recs) != 1 || recs[0].Action != ActionDropped || !strings.Contains(recs[0].Message, tc.reason) {
				t.Fatalf("journal %+v: want one Dropped record naming %s", recs, tc.reason)
			}
			// A dropped event reserves nothing: the same id from the
			// right place is acted on.
			if h.consumer.Dedupe.Seen(recs[0].ID) {
				t.Error("a dropped event's id was remembered as handled")
			}
		})
	}
}

// The same event on the edge of the rules, and from the right place: acted on.
func TestHandleAccepts(t *testing.T) {
	for name, body := range map[string]string{
		"just under 10 minutes old": spotEvent("ev-1", inst, handleNow.Add(-10*time.Minute+time.Second)),
		"slightly ahead":            spotEvent("ev-1", inst, handleNow.Add(time.Minute)),
	} {
		t.Run(name, func(t *testing.T) {
			h := newHandler()
			if !h.consumer.Handle(context.Background(), message(body)) {
				t.Fatal("message kept")
			}
			if d := h.watcher.disrupts(); len(d) != 1 || d[0].GetInstanceId() != inst {
				t.Fatalf("Disrupt calls %v", d)
			}
		})
	}
	t.Run("any account when none is configured", func(t *testing.T) {
		h := newHandler()
		h.consumer.Account = ""
		h.consumer.Handle(context.Background(), message(setField(spotEvent("ev-1", inst, handleNow), "account", "210987654321")))
		if len(h.watcher.disrupts()) != 1 {
			t.Fatal("not acted on")
		}
		h.consumer.Handle(context.Background(), message(setField(spotEvent("ev-2", inst, handleNow), "account", "")))
		if len(h.watcher.disrupts()) != 1 || testutil.ToFloat64(h.metrics.Dropped.WithLabelValues(DropMissingAccount)) != 1 {
			t.Fatal("an event without an account was not dropped")
		}
	})
	t.Run("no region configured drops everything", func(t *testing.T) {
		h := newHandler()
		h.consumer.Region = ""
		h.consumer.Handle(context.Background(), message(spotEvent("ev-1", inst, handleNow)))
		if h.calls() != 0 || testutil.ToFloat64(h.metrics.Dropped.WithLabelValues(DropOtherRegion)) != 1 {
			t.Fatal("an event was acted on without a configured region")
		}
		if err := h.consumer.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "region") {
			t.Fatalf("Run without a region = %v", err)
		}
	})
}

// Workers handling the same event at once: one acts, the others answer
// Duplicate without waiting for it; a failure releases the id so the
// redelivery acts.
func TestHandleReservesTheEventID(t *testing.T) {
	h := newHandler()
	h.watcher.hold = make(chan struct{})
	body := spotEvent("ev-race", inst, handleNow)
	const workers = 8
	var wg sync.WaitGroup
	returned := make(chan bool, workers)
	for range workers {
		wg.Go(func() { returned <- h.consumer.Handle(context.Background(), message(body)) })
	}
	// Every worker but the one inside Disrupt returns while it is held.
	for i := range workers - 1 {
		select {
		case ok := <-returned:
			if !ok {
				t.Fatal("a duplicate was kept on the queue")
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d workers returned, want %d while the first is held: they did not see the reservation", i, workers-1)
		}
	}
	close(h.watcher.hold)
	wg.Wait()
	if d := h.watcher.disrupts(); len(d) != 1 {
		t.Fatalf("Disrupt calls %d, want 1", len(d))
	}
	if m := h.launcher.marked(); len(m) != 1 {
		t.Fatalf("MarkUnavailable calls %d, want 1", len(m))
	}

	// A failed action releases the id: the redelivered message acts.
	h2 := newHandler()
	h2.watcher.hold = make(chan struct{}) // never released: the call times out
	h2.consumer.Actor.CallTimeout = 50 * time.Millisecond
	if h2.consumer.Handle(context.Background(), message(body)) {
		t.Fatal("a failed action's message was deleted")
	}
	h2.watcher.hold = nil
	if !h2.consumer.Handle(context.Background(), message(body)) || len(h2.watcher.disrupts()) != 2 {
		t.Fatalf("redelivery after a failure: Disrupt calls %d, want 2", len(h2.watcher.disrupts()))
	}
	if h2.consumer.Handle(context.Background(), message(body)); len(h2.watcher.disrupts()) != 2 {
		t.Fatal("a handled event acted again")
	}
}

// The watcher's refusals (not ours, not managed) are final: the event is
// Ignored and deleted, not retried, not counted as an error.
func TestHandleWatcherRefusals(t *testing.T) {
	for _, id := range []string{"i-0fffffffffffffff0", unmanaged} {
		h := newHandler()
		if !h.consumer.Handle(context.Background(), message(spotEvent("ev-"+id, id, handleNow))) {
			t.Fatalf("%s: a refused event is kept on the queue", id)
		}
		recs := h.journal.Recent(0, nil)
		if len(h.watcher.disrupts()) != 1 || len(recs) != 1 || recs[0].Action != ActionIgnored || !strings.Contains(recs[0].Message, id) {
			t.Fatalf("%s: journal %+v", id, recs)
		}
		if got := testutil.ToFloat64(h.metrics.Errors.WithLabelValues("watcher")); got != 0 {
			t.Fatalf("%s: watcher errors = %v", id, got)
		}
	}
}

func TestDedupeReserve(t *testing.T) {
	now := handleNow
	d := NewDedupe(2, time.Minute, func() time.Time { return now })
	if !d.Reserve("a") || d.Reserve("a") {
		t.Fatal("a reserved id was reserved twice")
	}
	d.Release("a")
	if !d.Reserve("a") {
		t.Fatal("a released id could not be reserved")
	}
	d.Commit("a")
	if d.Reserve("a") || !d.Seen("a") {
		t.Fatal("a committed id was reserved again")
	}
	// Reserved ids are not subject to the size bound.
	for _, id := range []string{"b", "c", "d"} {
		if !d.Reserve(id) {
			t.Fatalf("Reserve(%s) = false", id)
		}
	}
	d.Commit("b")
	d.Commit("c")
	if d.Reserve("d") {
		t.Fatal("an id still being handled was evicted by the size bound")
	}
	now = now.Add(2 * time.Minute)
	if !d.Reserve("c") {
		t.Fatal("an id past its TTL could not be reserved")
	}
}

// FuzzHandle drives the whole handle path (body, parse, filter, dedupe,
// actor calls on in-process fakes) and checks that it never panics, never
// acts on an event it must drop, acts at most once per instance of an
// event, and never acts on the same event twice, in turn or at once.
func FuzzHandle(f *testing.F) {
	for _, body := range []string{
		spotEvent("e1", inst, handleNow.Add(-time.Minute)),
		spotEvent("e2", instanceID(1), handleNow.Add(-10*time.Minute)),
		spotEvent("e3", "i-0fffffffffffffff0", handleNow),
		eventJSON("e4", SourceEC2, DetailTypeRebalance, handleNow, `{"instance-id":"`+inst+`"}`),
		eventJSON("e5", SourceEC2, DetailTypeStateChange, handleNow, `{"instance-id":"`+instanceID(2)+`","state":"terminated"}`),
		eventJSON("e6", SourceEC2, DetailTypeCapacityReservation, handleNow, `{"instance-id":"`+inst+`","instance-termination-time":"2026-05-06T07:10:00Z"}`),
		eventJSON("e7", SourceHealth, DetailTypeHealth, handleNow, healthJSON("EC2", "scheduledChange", "", inst, instanceID(0), inst)),
		setField(spotEvent("e8", inst, handleNow), "account", "210987654321"),
		setField(spotEvent("e9", inst, handleNow), "region", "eu-west-1"),
		setField(spotEvent("e10", inst, handleNow), "time", ""),
		spotEvent("e11", inst, handleNow.Add(time.Hour)),
		`{"version":"0","id":"x","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","detail":{"instance-id":"` + inst + `","instance-action":"terminate"}}`,
		`not json`,
	} {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		ev, parseErr := Parse([]byte(body))
		mustDrop := parseErr != nil || !acceptable(ev)

		h := newHandler()
		if !h.consumer.Handle(context.Background(), message(body)) {
			t.Fatalf("Handle kept a message although the fakes never fail")
		}
		calls := h.watcher.disrupts()
		marks := h.launcher.marked()
		if mustDrop && len(calls)+len(marks) > 0 {
			t.Fatalf("acted on an event that must be dropped (parse error %v, event %+v): Disrupt %v, MarkUnavailable %v", parseErr, ev, calls, marks)
		}
		seen := map[string]bool{}
		for _, c := range calls {
			if !slices.Contains(ev.InstanceIDs, c.GetInstanceId()) || seen[c.GetInstanceId()] {
				t.Fatalf("Disrupt of %s: not an instance of the event %v, or twice", c.GetInstanceId(), ev.InstanceIDs)
			}
			seen[c.GetInstanceId()] = true
			if !c.GetDeadline().IsValid() {
				t.Fatalf("Disrupt with an invalid deadline %v", c.GetDeadline())
			}
		}
		if len(marks) > len(calls) {
			t.Fatalf("%d MarkUnavailable calls for %d Disrupt calls", len(marks), len(calls))
		}
		// The same message again changes nothing.
		h.consumer.Handle(context.Background(), message(body))
		if len(h.watcher.disrupts()) != len(calls) || len(h.launcher.marked()) != len(marks) {
			t.Fatal("a redelivered message acted again")
		}
		// Two workers at once act as one did.
		h2 := newHandler()
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { h2.consumer.Handle(context.Background(), message(body)) })
		}
		wg.Wait()
		if len(h2.watcher.disrupts()) != len(calls) || len(h2.launcher.marked()) != len(marks) {
			t.Fatalf("two concurrent workers: %d Disrupt and %d MarkUnavailable calls, one worker made %d and %d",
				len(h2.watcher.disrupts()), len(h2.launcher.marked()), len(calls), len(marks))
		}
	})
}

// acceptable is the rule a parsed event must meet to be acted on, written
// apart from origin.check: a time within 10 minutes before and 5 after
// handleNow, and the test account and region.
func acceptable(ev *Event) bool {
	if ev.Time.IsZero() || ev.Account != testAccount || ev.Region != testRegion {
		return false
	}
	earliest, latest := handleNow.Add(-10*time.Minute), handleNow.Add(5*time.Minute)
	return !ev.Time.Before(earliest) && !ev.Time.After(latest)
}
