package interruption

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flotilla-io/flotilla/internal/interruption/sqstest"
)

// queueHarness is a queue on the SQS emulator, a consumer on it and the fakes behind it.
type queueHarness struct {
	sqs      *sqstest.Server
	url      string
	fakes    *fakes
	consumer *Consumer
	journal  *Journal
	metrics  *Metrics
}

func newQueueHarness(tb testing.TB, srv *sqstest.Server, instances int, visibility time.Duration) *queueHarness {
	tb.Helper()
	name := queueName(tb.Name())
	h := &queueHarness{sqs: srv, fakes: startFakes(tb, instances), journal: NewJournal(JournalSize), metrics: NewMetrics()}
	h.url = srv.CreateQueue(tb, name, visibility)
	actor := h.fakes.actor()
	actor.Metrics = h.metrics
	actor.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h.consumer = &Consumer{
		SQS: srv.Client, Queue: name, WaitTime: -1, Region: testRegion, Account: testAccount, Actor: actor, Journal: h.journal,
		Metrics: h.metrics, Log: actor.Log,
	}
	return h
}

var queueSeq atomic.Int64

// queueName makes a valid, unique queue name from a test's name.
func queueName(testName string) string {
	name := []byte(testName)
	for i, c := range name {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			name[i] = '-'
		}
	}
	suffix := fmt.Sprintf("-%d", queueSeq.Add(1))
	if len(name) > 80-len(suffix) {
		name = name[:80-len(suffix)]
	}
	return string(name) + suffix
}

func (h *queueHarness) send(tb testing.TB, bodies ...string) {
	tb.Helper()
	for len(bodies) > 0 {
		n := min(10, len(bodies))
		var entries []sqstypes.SendMessageBatchRequestEntry
		for i, b := range bodies[:n] {
			entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(b)})
		}
		out, err := h.sqs.Client.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(h.url), Entries: entries})
		if err != nil || len(out.Failed) > 0 {
			tb.Fatalf("SendMessageBatch: %v %+v", err, out)
		}
		bodies = bodies[n:]
	}
}

// pollAll polls until a receive returns nothing.
func (h *queueHarness) pollAll(tb testing.TB) {
	tb.Helper()
	for {
		n, err := h.consumer.Poll(context.Background())
		if err != nil {
			tb.Fatalf("Poll: %v", err)
		}
		if n == 0 {
			return
		}
	}
}

// left is the number of messages on the queue, visible or in flight: the
// emulator's ApproximateNumberOfMessages counts both (on AWS it counts the
// visible ones only).
func (h *queueHarness) left(tb testing.TB) int {
	tb.Helper()
	out, err := h.sqs.Client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl:       aws.String(h.url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages},
	})
	if err != nil {
		tb.Fatalf("GetQueueAttributes: %v", err)
	}
	n, err := strconv.Atoi(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)])
	if err != nil {
		tb.Fatalf("ApproximateNumberOfMessages: %v", err)
	}
	return n
}

func (h *queueHarness) actions() []string {
	var out []string
	for _, r := range h.journal.Recent(0, nil) {
		out = append(out, r.Kind+"/"+r.Action)
	}
	return out
}

func TestConsumer(t *testing.T) {
	srv := sqstest.Start(t)
	now := time.Now().UTC().Truncate(time.Second)

	t.Run("spot interruption: offering marked, node disrupted, message deleted", func(t *testing.T) {
		h := newQueueHarness(t, srv, 3, 30*time.Second)
		h.send(t, spotEvent("ev-spot", instanceID(1), now))
		h.pollAll(t)
		marks := h.fakes.launcher.Marked()
		if len(marks) != 1 || marks[0].GetInstanceType() != "m5.large" || marks[0].GetZone() != "us-east-1a" ||
			marks[0].GetCapacityType() != "spot" || marks[0].GetTtl().AsDuration() != 3*time.Minute {
			t.Fatalf("MarkUnavailable calls: %v", marks)
		}
		d := h.fakes.watcher.Disrupts()
		if len(d) != 1 || d[0].GetInstanceId() != instanceID(1) || d[0].GetReason() != "SpotInterrupted" || !d[0].GetReplaceFirst() ||
			!d[0].GetDeadline().AsTime().Equal(now.Add(2*time.Minute)) {
			t.Fatalf("Disrupt calls: %v", d)
		}
		if n := h.left(t); n != 0 {
			t.Fatalf("%d messages left on the queue", n)
		}
		r := h.journal.Recent(1, nil)
		if len(r) != 1 || r[0].Action != ActionDisrupted || r[0].NodeName != "node-"+instanceID(1) {
			t.Fatalf("journal: %+v", r)
		}
		if got := testutil.ToFloat64(h.metrics.Actions.WithLabelValues(KindSpotInterruption, ActionDisrupted)); got != 1 {
			t.Fatalf("actions metric = %v", got)
		}
		if testutil.CollectAndCount(h.metrics.DisruptDelay) != 1 {
			t.Fatal("no disrupt delay observed")
		}
	})

	t.Run("failed call: not deleted, retried after the visibility timeout", func(t *testing.T) {
		h := newQueueHarness(t, srv, 3, time.Second)
		h.fakes.watcher.FailNext(1)
		h.send(t, spotEvent("ev-retry", instanceID(2), now))
		h.pollAll(t)
		if len(h.fakes.watcher.Disrupts()) != 0 || h.left(t) != 1 {
			t.Fatalf("after a failed Disrupt: %d accepted calls, %d messages left", len(h.fakes.watcher.Disrupts()), h.left(t))
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(h.fakes.watcher.Disrupts()) == 0 && time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			h.pollAll(t)
		}
		if len(h.fakes.watcher.Disrupts()) != 1 || h.left(t) != 0 {
			t.Fatalf("after redelivery: %d Disrupt calls, %d messages left; journal %v", len(h.fakes.watcher.Disrupts()), h.left(t), h.actions())
		}
		if got := h.actions(); got[0] != "SpotInterruption/Disrupted" || got[1] != "SpotInterruption/Failed" {
			t.Fatalf("journal: %v", got)
		}
	})

	t.Run("malformed messages deleted, never acted on", func(t *testing.T) {
		h := newQueueHarness(t, srv, 3, 30*time.Second)
		h.send(t, `not json`, `{"version":"0","id":"x","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2"}`,
			spotEvent("ev-bad", "i-nothex!", now), eventJSON("ev-other", "aws.s3", "Object Created", now, `{}`),
			eventJSON("ev-big", SourceEC2, DetailTypeRebalance, now, `{"instance-id":"`+instanceID(1)+`","pad":"`+strings.Repeat("x", MaxMessageBytes)+`"}`))
		h.pollAll(t)
		if len(h.fakes.watcher.Disrupts()) != 0 || len(h.fakes.launcher.Marked()) != 0 {
			t.Fatal("a malformed message was acted on")
		}
		if n := h.left(t); n != 0 {
			t.Fatalf("%d messages left", n)
		}
		if got := testutil.ToFloat64(h.metrics.Actions.WithLabelValues(KindUnknown, ActionMalformed)); got != 5 {
			t.Fatalf("malformed count = %v", got)
		}
	})

	t.Run("duplicates and other clusters' instances acknowledged and ignored", func(t *testing.T) {
		h := newQueueHarness(t, srv, 3, 30*time.Second)
		body := eventJSON("ev-dup", SourceEC2, DetailTypeStateChange, now, `{"instance-id":"`+instanceID(0)+`","state":"shutting-down"}`)
		h.send(t, body)
		h.pollAll(t)
		h.send(t, body, spotEvent("ev-foreign", "i-0fffffffffffffff0", now))
		h.pollAll(t)
		d := h.fakes.watcher.Disrupts()
		if len(d) != 2 || d[0].GetInstanceId() != instanceID(0) || d[0].GetReason() != "InstanceStateChange" {
			t.Fatalf("Disrupt calls: %v", d)
		}
		if len(h.fakes.launcher.Marked()) != 0 {
			t.Fatal("another cluster's offering was marked")
		}
		if h.left(t) != 0 {
			t.Fatal("messages left")
		}
		got := strings.Join(h.actions(), " ")
		for _, want := range []string{"StateChange/Duplicate", "SpotInterruption/Ignored", "StateChange/Disrupted"} {
			if !strings.Contains(got, want) {
				t.Fatalf("journal %q lacks %s", got, want)
			}
		}
	})

	t.Run("the same event twice in one batch acts once", func(t *testing.T) {
		h := newQueueHarness(t, srv, 3, 30*time.Second)
		body := spotEvent("ev-twice", instanceID(1), now)
		h.send(t, body, body, body)
		h.pollAll(t)
		if d := h.fakes.watcher.Disrupts(); len(d) != 1 {
			t.Fatalf("Disrupt calls %v: want one", d)
		}
		if m := h.fakes.launcher.Marked(); len(m) != 1 {
			t.Fatalf("MarkUnavailable calls %v: want one", m)
		}
		if h.left(t) != 0 {
			t.Fatal("messages left")
		}
		got := strings.Join(h.actions(), " ")
		if strings.Count(got, "SpotInterruption/Duplicate") != 2 || strings.Count(got, "SpotInterruption/Disrupted") != 1 {
			t.Fatalf("journal %q: want one Disrupted and two Duplicate", got)
		}
	})

	t.Run("events from elsewhere or too old are dropped and deleted", func(t *testing.T) {
		h := newQueueHarness(t, srv, 3, 30*time.Second)
		h.send(t, spotEvent("ev-old", instanceID(1), now.Add(-11*time.Minute)),
			strings.Replace(spotEvent("ev-acct", instanceID(1), now), testAccount, "210987654321", 1),
			strings.Replace(spotEvent("ev-region", instanceID(1), now), `"region":"us-east-1"`, `"region":"eu-west-1"`, 1))
		h.pollAll(t)
		if len(h.fakes.watcher.Disrupts()) != 0 || len(h.fakes.launcher.Marked()) != 0 {
			t.Fatal("a dropped event was acted on")
		}
		if h.left(t) != 0 {
			t.Fatal("messages left")
		}
		for _, reason := range []string{DropStale, DropOtherAccount, DropOtherRegion} {
			if got := testutil.ToFloat64(h.metrics.Dropped.WithLabelValues(reason)); got != 1 {
				t.Errorf("dropped{reason=%q} = %v, want 1", reason, got)
			}
		}
	})

	t.Run("rebalance: observed unless configured", func(t *testing.T) {
		h := newQueueHarness(t, srv, 3, 30*time.Second)
		h.send(t, eventJSON("ev-rb1", SourceEC2, DetailTypeRebalance, now, `{"instance-id":"`+instanceID(1)+`"}`))
		h.pollAll(t)
		if len(h.fakes.watcher.Disrupts()) != 0 || h.actions()[0] != "RebalanceRecommendation/Observed" {
			t.Fatalf("rebalance acted on without --act-on-rebalance: %v", h.actions())
		}
		h.consumer.Actor.ActOnRebalance = true
		h.send(t, eventJSON("ev-rb2", SourceEC2, DetailTypeRebalance, now, `{"instance-id":"`+instanceID(1)+`"}`))
		h.pollAll(t)
		if d := h.fakes.watcher.Disrupts(); len(d) != 1 || d[0].GetReason() != "RebalanceRecommended" {
			t.Fatalf("Disrupt calls: %v", d)
		}
	})

	t.Run("health scheduled change disrupts every affected instance", func(t *testing.T) {
		h := newQueueHarness(t, srv, 3, 30*time.Second)
		h.send(t, eventJSON("ev-health", SourceHealth, DetailTypeHealth, now,
			healthJSON("EC2", "scheduledChange", now.Add(time.Hour).Format(time.RFC1123), instanceID(0), instanceID(2))))
		h.pollAll(t)
		d := h.fakes.watcher.Disrupts()
		if len(d) != 2 || d[1].GetInstanceId() != instanceID(2) || !d[1].GetDeadline().AsTime().Equal(now.Add(time.Hour)) {
			t.Fatalf("Disrupt calls: %v", d)
		}
	})

	t.Run("queue given by URL, Run stops with its context", func(t *testing.T) {
		h := newQueueHarness(t, srv, 3, 30*time.Second)
		h.consumer.Queue = h.url
		h.consumer.WaitTime = time.Second
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.consumer.Run(ctx) }()
		h.send(t, spotEvent("ev-run", instanceID(0), now))
		deadline := time.Now().Add(10 * time.Second)
		for len(h.fakes.watcher.Disrupts()) == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if len(h.fakes.watcher.Disrupts()) != 1 {
			t.Fatal("Run did not handle the message")
		}
	})
}

func TestConsumerUnknownQueue(t *testing.T) {
	srv := sqstest.Start(t)
	c := &Consumer{SQS: srv.Client, Queue: "no-such-queue", Region: testRegion, Actor: &Actor{}}
	if err := c.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "no-such-queue") {
		t.Fatalf("Run = %v, want an error naming the queue", err)
	}
}

// BenchmarkDrain measures messages handled per second (parse, MarkUnavailable
// and Disrupt over loopback gRPC, batch delete) with 100, 1,000 and 5,000
// Spot interruption messages queued on the SQS emulator.
func BenchmarkDrain(b *testing.B) {
	srv := sqstest.Start(b)
	for _, n := range []int{100, 1000, 5000} {
		for _, conc := range []int{10, 50} {
			b.Run(fmt.Sprintf("queued=%d/concurrency=%d", n, conc), func(b *testing.B) {
				h := newQueueHarness(b, srv, n, 30*time.Second)
				h.consumer.Concurrency = conc
				var total time.Duration
				for i := 0; b.Loop(); i++ {
					b.StopTimer()
					bodies := make([]string, n)
					for j := range bodies {
						bodies[j] = spotEvent(fmt.Sprintf("ev-%d-%d", i, j), instanceID(j), time.Now())
					}
					h.send(b, bodies...)
					b.StartTimer()
					start := time.Now()
					h.drain(b, conc)
					total += time.Since(start)
				}
				b.ReportMetric(float64(n*b.N)/total.Seconds(), "msgs/s")
				if h.left(b) != 0 {
					b.Fatal("messages left")
				}
			})
		}
	}
}

// drain runs the consumer's pollers (one per 10 of concurrency, as Run does)
// until a receive finds the queue empty. It does not cancel receives under
// way: the emulator keeps serving a cancelled receive's messages to it.
func (h *queueHarness) drain(tb testing.TB, conc int) {
	tb.Helper()
	var wg sync.WaitGroup
	for range (conc + 9) / 10 {
		wg.Go(func() {
			for {
				n, err := h.consumer.Poll(context.Background())
				if err != nil {
					tb.Errorf("Poll: %v", err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
}
