package eventsim_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flotilla-io/flotilla/internal/ec2catalog"
	"github.com/flotilla-io/flotilla/internal/ec2sim"
	"github.com/flotilla-io/flotilla/internal/ec2sim/eventsim"
	"github.com/flotilla-io/flotilla/internal/interruption"
	"github.com/flotilla-io/flotilla/internal/interruption/sqstest"
)

// launchSpot launches one spot m5.large in the simulator through the EC2 SDK.
func launchSpot(t *testing.T, sim *ec2sim.Sim, endpoint string) string {
	t.Helper()
	ctx := context.Background()
	c := ec2.New(ec2.Options{Region: sim.Region(), BaseEndpoint: aws.String(endpoint), Credentials: credentials.NewStaticCredentialsProvider("a", "b", "")})
	sim.AddImage(ec2sim.Image{ID: "ami-0123456789abcdef0", Name: "eks-node", OwnerID: "602401143452", Architecture: "x86_64"})
	if _, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String("lt-eventsim"), LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String("ami-0123456789abcdef0")},
	}); err != nil {
		t.Fatal(err)
	}
	out, err := c.CreateFleet(ctx, &ec2.CreateFleetInput{
		Type: types.FleetTypeInstant,
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: aws.String("lt-eventsim"), Version: aws.String("$Latest")},
			Overrides:                   []types.FleetLaunchTemplateOverridesRequest{{InstanceType: types.InstanceType("m5.large"), AvailabilityZone: aws.String(sim.Zones()[0])}},
		}},
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{TotalTargetCapacity: aws.Int32(1), DefaultTargetCapacityType: types.DefaultTargetCapacityTypeSpot},
	})
	if err != nil || len(out.Instances) != 1 {
		t.Fatalf("CreateFleet: %v %+v", err, out)
	}
	return out.Instances[0].InstanceIds[0]
}

func TestInterrupt(t *testing.T) {
	q := sqstest.Start(t)
	queueURL := q.CreateQueue(t, "eventsim", 30*time.Second)
	sim := ec2sim.New(ec2sim.Options{Catalog: ec2catalog.Embedded()})
	sender := &eventsim.Sender{SQS: q.Client, QueueURL: queueURL, Sim: sim}
	t.Cleanup(sender.Stop)
	eventsim.Install(sim, sender)
	ts := httptest.NewServer(sim)
	t.Cleanup(ts.Close)
	id := launchSpot(t, sim, ts.URL)

	post := func(t *testing.T, params url.Values) (int, map[string]any) {
		t.Helper()
		params.Set("Version", eventsim.APIVersion)
		resp, err := http.Post(ts.URL+"/_sim/interrupt?"+params.Encode(), "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	receive := func(t *testing.T) *interruption.Event {
		t.Helper()
		out, err := q.Client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10})
		if err != nil || len(out.Messages) != 1 {
			t.Fatalf("ReceiveMessage: %v, %d messages", err, len(out.Messages))
		}
		if _, err := q.Client.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: out.Messages[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
		ev, err := interruption.Parse([]byte(aws.ToString(out.Messages[0].Body)))
		if err != nil {
			t.Fatalf("the interruption service cannot parse the event: %v", err)
		}
		return ev
	}

	for kind, want := range map[string]string{
		eventsim.KindSpot: interruption.KindSpotInterruption, eventsim.KindRebalance: interruption.KindRebalanceRecommendation,
		eventsim.KindHealth: interruption.KindScheduledChange, eventsim.KindState: interruption.KindStateChange,
		eventsim.KindCapacityReservation: interruption.KindCapacityReservationInterruption,
	} {
		t.Run(kind, func(t *testing.T) {
			code, body := post(t, url.Values{"instance": {id}, "kind": {kind}})
			if code != http.StatusOK {
				t.Fatalf("status %d: %v", code, body)
			}
			ev := receive(t)
			if ev.Kind != want || ev.InstanceIDs[0] != id || ev.ID != body["eventId"] || !ev.Actionable {
				t.Fatalf("event %+v, answer %v", ev, body)
			}
		})
	}

	t.Run("unknown instance refused unless forced", func(t *testing.T) {
		if code, _ := post(t, url.Values{"instance": {"i-0fffffffffffffff0"}}); code != http.StatusNotFound {
			t.Fatalf("status %d, want 404", code)
		}
		if code, _ := post(t, url.Values{"instance": {"i-0fffffffffffffff0"}, "force": {"true"}}); code != http.StatusOK {
			t.Fatalf("forced: status %d", code)
		}
		receive(t)
	})

	t.Run("the Interrupt client", func(t *testing.T) {
		res, err := eventsim.Interrupt(context.Background(), ts.URL, id, eventsim.KindSpot, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ev := receive(t); ev.ID != res.EventID || ev.Kind != interruption.KindSpotInterruption {
			t.Fatalf("received %+v, the client returned %+v", ev, res)
		}
		if _, err := eventsim.Interrupt(context.Background(), ts.URL, "i-0fffffffffffffff0", eventsim.KindSpot, 0); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("unknown instance: %v, want the 404 in the error", err)
		}
	})

	t.Run("bad kind", func(t *testing.T) {
		if code, _ := post(t, url.Values{"instance": {id}, "kind": {"meteor"}}); code != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", code)
		}
	})

	t.Run("terminate_after ends the instance like EC2 at the notice's end", func(t *testing.T) {
		if code, body := post(t, url.Values{"instance": {id}, "terminate_after": {"100ms"}}); code != http.StatusOK {
			t.Fatalf("status %d: %v", code, body)
		}
		receive(t)
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if sim.Instances()[0].State == "terminated" {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("instance state %s, want terminated", sim.Instances()[0].State)
	})

	t.Run("Handler serves the path without Version", func(t *testing.T) {
		hs := httptest.NewServer(eventsim.Handler(sim, sender))
		defer hs.Close()
		resp, err := http.Post(hs.URL+eventsim.Path+"?kind=rebalance&instance="+id, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
		receive(t)
	})
}
