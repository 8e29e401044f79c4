package interruption

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Defaults of Consumer fields.
const (
	DefaultMaxMessages = 10
	DefaultWaitTime    = 20 * time.Second
	DefaultConcurrency = 10
	// DefaultDedupeTTL is how long handled event ids are remembered: longer
	// than the queue's 300 s retention, so no redelivery outlives it.
	DefaultDedupeTTL  = 10 * time.Minute
	DefaultDedupeSize = 100_000
	maxBackoff        = 30 * time.Second
	maxLoggedError    = 300
)

// SQSAPI is the part of the SQS client the consumer uses.
type SQSAPI interface {
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

// Consumer long-polls the interruption queue and handles its messages.
type Consumer struct {
	// SQS is the queue client.
	SQS SQSAPI
	// Queue is the queue's name or URL.
	Queue string
	// MaxMessages is the most messages per receive (1 to 10); 0 means 10.
	MaxMessages int
	// WaitTime is the long-poll wait (0 to 20 s); negative means 0, zero means 20 s.
	WaitTime time.Duration
	// Concurrency is the most messages handled at once; 0 means 10. It
	// also sets the number of pollers: one per 10.
	Concurrency int
	// Region is the service's region (required): events of another region,
	// or naming none, are dropped.
	Region string
	// Account is the service's AWS account id: events of another account
	// are dropped. Empty accepts any account, but an event must still name
	// one.
	Account string
	// MaxEventAge is the oldest event acted on; 0 means DefaultMaxEventAge.
	// Later than MaxClockSkew ahead is dropped too.
	MaxEventAge time.Duration
	// Actor carries out validated events.
	Actor *Actor
	// Dedupe remembers handled event ids; nil means a new one with the defaults.
	Dedupe *Dedupe
	// Journal records events for ListRecentEvents; may be nil.
	Journal *Journal
	// Metrics may be nil.
	Metrics *Metrics
	// Log nil means slog.Default().
	Log *slog.Logger
	// Now nil means time.Now.
	Now func() time.Time

	once     sync.Once
	sem      chan struct{}
	urlMu    sync.Mutex
	queueURL string
	logged   *Dedupe // message ids already logged as malformed
}

func (c *Consumer) init() {
	c.once.Do(func() {
		if c.MaxMessages <= 0 || c.MaxMessages > 10 {
			c.MaxMessages = DefaultMaxMessages
		}
		switch {
		case c.WaitTime == 0:
			c.WaitTime = DefaultWaitTime
		case c.WaitTime < 0:
			c.WaitTime = 0
		case c.WaitTime > 20*time.Second:
			c.WaitTime = 20 * time.Second
		}
		if c.Concurrency <= 0 {
			c.Concurrency = DefaultConcurrency
		}
		if c.MaxEventAge <= 0 {
			c.MaxEventAge = DefaultMaxEventAge
		}
		if c.Now == nil {
			c.Now = time.Now
		}
		if c.Log == nil {
			c.Log = slog.Default()
		}
		if c.Dedupe == nil {
			c.Dedupe = NewDedupe(DefaultDedupeSize, DefaultDedupeTTL, c.Now)
		}
		c.logged = NewDedupe(10_000, time.Hour, c.Now)
		c.sem = make(chan struct{}, c.Concurrency)
	})
}

// QueueURL resolves Queue: a URL is used as is, a name is looked up with
// GetQueueUrl (once).
func (c *Consumer) QueueURL(ctx context.Context) (string, error) {
	c.urlMu.Lock()
	defer c.urlMu.Unlock()
	if c.queueURL != "" {
		return c.queueURL, nil
	}
	if c.Queue == "" {
		return "", errors.New("interruption queue: no name or URL")
	}
	if strings.HasPrefix(c.Queue, "https://") || strings.HasPrefix(c.Queue, "http://") {
		c.queueURL = c.Queue
		return c.queueURL, nil
	}
	out, err := c.SQS.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(c.Queue)})
	if err != nil {
		return "", fmt.Errorf("interruption queue %q: GetQueueUrl: %w", c.Queue, err)
	}
	c.queueURL = aws.ToString(out.QueueUrl)
	return c.queueURL, nil
}

// Run polls until ctx is done, with one poller per 10 of Concurrency. A
// failed receive is retried with backoff. It returns nil when ctx ends, or
// the error resolving the queue, or an error when Region is not set.
func (c *Consumer) Run(ctx context.Context) error {
	c.init()
	if c.Region == "" {
		return errors.New("interruption consumer: no region: every event would be dropped")
	}
	if _, err := c.QueueURL(ctx); err != nil {
		return err
	}
	pollers := (c.Concurrency + 9) / 10
	var wg sync.WaitGroup
	for range pollers {
		wg.Go(func() { c.pollLoop(ctx) })
	}
	wg.Wait()
	return nil
}

func (c *Consumer) pollLoop(ctx context.Context) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		_, err := c.Poll(ctx)
		if err == nil {
			backoff = 0
			continue
		}
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, 500*time.Millisecond), maxBackoff)
		c.Log.Warn("interruption queue: receive failed", slog.String("error", err.Error()), slog.Duration("retry_in", backoff))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Poll receives one batch of messages, handles them concurrently and
// deletes those whose handling is final. It returns the number received.
func (c *Consumer) Poll(ctx context.Context) (int, error) {
	c.init()
	url, err := c.QueueURL(ctx)
	if err != nil {
		return 0, err
	}
	out, err := c.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(url),
		MaxNumberOfMessages: int32(c.MaxMessages), //nolint:gosec // 1 to 10
		WaitTimeSeconds:     int32(c.WaitTime / time.Second),
	})
	if err != nil {
		c.countError("receive")
		return 0, fmt.Errorf("receive: %w", err)
	}
	if len(out.Messages) == 0 {
		return 0, nil
	}
	del := make([]bool, len(out.Messages))
	var wg sync.WaitGroup
	for i := range out.Messages {
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return len(out.Messages), nil
		}
		wg.Go(func() {
			defer func() { <-c.sem }()
			del[i] = c.Handle(ctx, &out.Messages[i])
		})
	}
	wg.Wait()
	c.delete(ctx, url, out.Messages, del)
	return len(out.Messages), nil
}

// delete removes the messages marked in del, in one batch call.
func (c *Consumer) delete(ctx context.Context, url string, msgs []sqstypes.Message, del []bool) {
	var entries []sqstypes.DeleteMessageBatchRequestEntry
	for i, m := range msgs {
		if del[i] && m.ReceiptHandle != nil {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(entries) == 0 {
		return
	}
	// Deleting must not be cut short by shutdown: the actions were taken.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	out, err := c.SQS.DeleteMessageBatch(dctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
	if err != nil {
		c.countError("delete")
		c.Log.Warn("interruption queue: delete failed; the messages come back and are handled as duplicates",
			slog.Int("messages", len(entries)), slog.String("error", err.Error()))
		return
	}
	for _, f := range out.Failed {
		c.countError("delete")
		c.Log.Warn("interruption queue: delete failed", slog.String("entry", aws.ToString(f.Id)), slog.String("code", aws.ToString(f.Code)),
			slog.String("message", aws.ToString(f.Message)))
	}
	if c.Metrics != nil {
		c.Metrics.Deleted.Add(float64(len(out.Successful)))
	}
}

// Handle handles one message and reports whether it may be deleted: after
// its action was accepted, or when it is malformed, dropped (too old, from
// another account or region, without those fields), a duplicate or needs
// nothing. A failed call leaves it on the queue.
//
// The event id is reserved before acting, so two copies of one event in a
// batch, or in two pollers' batches at once, act once: the second is a
// duplicate. A failed action releases the id for the redelivery.
func (c *Consumer) Handle(ctx context.Context, msg *sqstypes.Message) bool {
	c.init()
	received := c.Now()
	if c.Metrics != nil {
		defer func() { c.Metrics.HandleDuration.Observe(c.Now().Sub(received).Seconds()) }()
	}
	ev, err := Parse([]byte(aws.ToString(msg.Body)))
	if err != nil {
		c.malformed(msg, received, err)
		return true
	}
	c.count(ev.Kind, "")
	o := origin{account: c.Account, region: c.Region, maxAge: c.MaxEventAge}
	if d := o.check(ev, received); d != nil {
		c.dropped(ev, received, d)
		return true
	}
	if !c.Dedupe.Reserve(ev.ID) {
		for _, id := range ev.InstanceIDs {
			c.record(ev, received, Outcome{InstanceID: id, Action: ActionDuplicate, Message: "event already handled or being handled"})
		}
		return true
	}
	final := false
	defer func() {
		if final {
			c.Dedupe.Commit(ev.ID)
		} else {
			c.Dedupe.Release(ev.ID)
		}
	}()
	outcomes, err := c.Actor.Act(ctx, ev)
	for _, o := range outcomes {
		c.record(ev, received, o)
	}
	if err != nil {
		c.Log.Warn("interruption event: action failed; the message stays on the queue and is retried",
			slog.String("event", ev.ID), slog.String("kind", ev.Kind), slog.String("error", clipN(err.Error(), maxLoggedError)))
		return false
	}
	final = true
	return true
}

// dropped counts, records and logs (once per event id) an event dropped
// before any action.
func (c *Consumer) dropped(ev *Event, received time.Time, d *drop) {
	c.count(ev.Kind, ActionDropped)
	if c.Metrics != nil {
		c.Metrics.Dropped.WithLabelValues(d.reason).Inc()
	}
	r := Record{ID: ev.ID, Kind: ev.Kind, DetailType: ev.DetailType, EventTime: ev.Time, Received: received, Handled: c.Now(),
		Action: ActionDropped, Message: "dropped (" + d.reason + "): " + d.detail}
	if len(ev.InstanceIDs) > 0 {
		r.InstanceID = ev.InstanceIDs[0]
		if n := len(ev.InstanceIDs); n > 1 {
			r.Message += fmt.Sprintf(" (and %d more instances)", n-1)
		}
	}
	c.Journal.Add(r)
	if key := "event:" + ev.ID; !c.logged.Seen(key) {
		c.logged.Add(key)
		c.Log.Warn("interruption event dropped, not acted on", slog.String("event", clip(ev.ID)), slog.String("kind", ev.Kind),
			slog.String("reason", d.reason), slog.String("detail", d.detail), slog.String("account", clip(ev.Account)),
			slog.String("region", clip(ev.Region)))
	}
}

func (c *Consumer) malformed(msg *sqstypes.Message, received time.Time, err error) {
	c.count(KindUnknown, ActionMalformed)
	c.countError("parse")
	text := clipN(err.Error(), maxLoggedError)
	c.Journal.Add(Record{Kind: KindUnknown, Received: received, Handled: c.Now(), Action: ActionMalformed, Message: text})
	id := aws.ToString(msg.MessageId)
	if id == "" || !c.logged.Seen(id) {
		c.logged.Add(id)
		c.Log.Warn("interruption queue: malformed message deleted, not acted on",
			slog.String("message_id", clip(id)), slog.Int("bytes", len(aws.ToString(msg.Body))), slog.String("error", text))
	}
}

func (c *Consumer) record(ev *Event, received time.Time, o Outcome) {
	c.count(ev.Kind, o.Action)
	c.Journal.Add(Record{
		ID: ev.ID, Kind: ev.Kind, DetailType: ev.DetailType, InstanceID: o.InstanceID, EventTime: ev.Time, Received: received,
		Handled: c.Now(), Action: o.Action, Message: o.Message, NodeName: o.NodeName, Deadline: o.Deadline,
	})
	if o.Action == ActionDisrupted {
		c.Log.Info("interruption event: node disrupted", slog.String("event", ev.ID), slog.String("kind", ev.Kind),
			slog.String("instance", o.InstanceID), slog.String("node", o.NodeName), slog.Time("deadline", o.Deadline))
	}
}

// count counts a received message (action "") or an action (Dropped once
// per event, the others once per instance).
func (c *Consumer) count(kind, action string) {
	if c.Metrics == nil {
		return
	}
	if action == "" || kind == KindUnknown {
		c.Metrics.Received.WithLabelValues(kind).Inc()
	}
	if action != "" {
		c.Metrics.Actions.WithLabelValues(kind, action).Inc()
	}
}

func (c *Consumer) countError(stage string) {
	if c.Metrics != nil {
		c.Metrics.Errors.WithLabelValues(stage).Inc()
	}
}

func clipN(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
