package main

import (
	"context"
	"flag"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flotilla-io/flotilla/internal/interruption/interruptiontest"
	"github.com/flotilla-io/flotilla/internal/interruption/sqstest"
	interruptionv1 "github.com/flotilla-io/flotilla/proto/flotilla/interruption/v1"
)

func TestFlags(t *testing.T) {
	fs := flag.NewFlagSet("interruption", flag.ContinueOnError)
	f := addFlags(fs)
	if err := fs.Parse([]string{"--interruption-queue=q", "--cluster-name=c"}); err != nil {
		t.Fatal(err)
	}
	if err := f.check(); err != nil {
		t.Fatalf("defaults rejected: %v", err)
	}
	if f.maxMessages != 10 || f.waitTime != 20*time.Second || f.concurrency != 10 || f.actOnRebalance || f.unavailableTTL != 3*time.Minute {
		t.Errorf("defaults: %+v", f)
	}
	if err := fs.Parse([]string{"--account-id=123456789012"}); err != nil {
		t.Fatal(err)
	}
	if err := f.check(); err != nil {
		t.Fatalf("an account id rejected: %v", err)
	}
	if err := fs.Parse([]string{"--max-messages=11", "--wait-time=21s", "--concurrency=0", "--account-id=12345", "--unavailable-ttl=31m"}); err != nil {
		t.Fatal(err)
	}
	err := f.check()
	for _, want := range []string{"--max-messages", "--wait-time", "--concurrency", "--account-id", "--unavailable-ttl"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check() = %v, want an error naming %s", err, want)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func spotEvent(id, instance string) string {
	return `{"version":"0","id":"` + id + `","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","account":"123456789012",` +
		`"time":"` + time.Now().UTC().Format(time.RFC3339) + `","region":"us-east-1","resources":[],"detail":{"instance-id":"` + instance + `","instance-action":"terminate"}}`
}

// TestService runs the service in-process against the SQS emulator and fake
// watcher and launcher servers over loopback gRPC.
func TestService(t *testing.T) {
	q := sqstest.Start(t)
	queueURL := q.CreateQueue(t, "flotilla-interruption", 30*time.Second)
	fakes := interruptiontest.Start(t, 3)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	grpcAddr, metricsAddr := freeAddr(t), freeAddr(t)

	send := func(body string) {
		t.Helper()
		if _, err := q.Client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	send(spotEvent("ev-1", interruptiontest.InstanceID(1)))
	send(`{"not":"an event"}`)
	send(strings.Replace(spotEvent("ev-foreign", interruptiontest.InstanceID(2)), "123456789012", "210987654321", 1))

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{
			"--grpc-addr=" + grpcAddr, "--metrics-addr=" + metricsAddr, "--drain-period=0", "--log-format=text", "--log-level=warn", "--insecure",
			"--interruption-queue=flotilla-interruption", "--sqs-endpoint=" + q.Endpoint, "--region=us-east-1",
			"--cluster-name=" + interruptiontest.Cluster, "--watcher-addr=" + fakes.Addr, "--launcher-addr=" + fakes.Addr, "--wait-time=1s",
			"--account-id=123456789012",
		})
	}()
	waitFor(t, "the Disrupt", func() bool { return len(fakes.Watcher.Disrupts()) == 1 })
	if m := fakes.Launcher.Marked(); len(m) != 1 || m[0].GetInstanceType() != "m5.large" {
		t.Fatalf("MarkUnavailable: %v", m)
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := interruptionv1.NewInterruptionServiceClient(conn)
	var events []*interruptionv1.Event
	waitFor(t, "the three events listed", func() bool {
		resp, err := client.ListRecentEvents(context.Background(), &interruptionv1.ListRecentEventsRequest{})
		events = resp.GetEvents()
		return err == nil && len(events) == 3
	})
	actions := map[string]*interruptionv1.Event{}
	for _, e := range events {
		actions[e.GetAction()] = e
	}
	if e := actions["Disrupted"]; e == nil || e.GetInstanceId() != interruptiontest.InstanceID(1) || e.GetKind() != "SpotInterruption" ||
		e.GetNodeName() != "node-"+interruptiontest.InstanceID(1) || e.GetDeadline() == nil || e.GetEventTime() == nil {
		t.Fatalf("events: %v", events)
	}
	if actions["Malformed"] == nil {
		t.Fatalf("no Malformed event: %v", events)
	}
	if e := actions["Dropped"]; e == nil || !strings.Contains(e.GetMessage(), "other_account") {
		t.Fatalf("the other account's event is not Dropped: %v", events)
	}

	// Redelivering the event changes nothing.
	send(spotEvent("ev-1", interruptiontest.InstanceID(1)))
	waitFor(t, "the duplicate", func() bool {
		resp, err := client.ListRecentEvents(context.Background(), &interruptionv1.ListRecentEventsRequest{Kind: "SpotInterruption", Limit: 1})
		return err == nil && len(resp.GetEvents()) == 1 && resp.GetEvents()[0].GetAction() == "Duplicate"
	})
	if len(fakes.Watcher.Disrupts()) != 1 {
		t.Fatal("a redelivered event disrupted again")
	}
	if _, err := client.ListRecentEvents(context.Background(), &interruptionv1.ListRecentEventsRequest{Limit: -1}); err == nil || !strings.Contains(err.Error(), "InvalidArgument") {
		t.Fatalf("negative limit: %v", err)
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	for _, want := range []string{
		`flotilla_interruption_messages_received_total{kind="SpotInterruption"} 3`,
		`flotilla_interruption_events_dropped_total{reason="other_account"} 1`,
		`flotilla_interruption_events_dropped_total{reason="stale"} 0`,
		`flotilla_interruption_actions_total{action="Disrupted",kind="SpotInterruption"} 1`,
		`flotilla_interruption_disrupt_delay_seconds_count{kind="SpotInterruption"} 1`,
		`flotilla_interruption_messages_deleted_total 4`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
}

func TestServiceUnknownQueue(t *testing.T) {
	q := sqstest.Start(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	err := run(context.Background(), []string{
		"--grpc-addr=127.0.0.1:0", "--metrics-addr=", "--drain-period=0", "--insecure", "--interruption-queue=missing", "--sqs-endpoint=" + q.Endpoint,
		"--cluster-name=c",
	})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("run = %v, want an error naming the queue", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
