package interruption

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const inst = "i-1234567890abcdef0"

func healthJSON(service, category, start string, entities ...string) string {
	var es []string
	for _, e := range entities {
		es = append(es, fmt.Sprintf(`{"entityValue":%q}`, e))
	}
	return fmt.Sprintf(`{"eventArn":"arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/x","service":%q,`+
		`"eventTypeCode":"AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED","eventTypeCategory":%q,"startTime":%q,"endTime":"",`+
		`"eventDescription":[{"language":"en_US","latestDescription":"retirement"}],"affectedEntities":[%s]}`,
		service, category, start, strings.Join(es, ","))
}

func TestParse(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		kind       string
		instances  []string
		deadline   time.Time
		actionable bool
		state      string
	}{
		{"spot", spotEvent("e1", inst, t0), KindSpotInterruption, []string{inst}, t0.Add(2 * time.Minute), true, ""},
		{"spot stop", eventJSON("e1", SourceEC2, DetailTypeSpotInterruption, t0, `{"instance-id":"i-0abcdef1","instance-action":"stop"}`),
			KindSpotInterruption, []string{"i-0abcdef1"}, t0.Add(2 * time.Minute), true, ""},
		{"rebalance", eventJSON("e2", SourceEC2, DetailTypeRebalance, t0, `{"instance-id":"`+inst+`"}`),
			KindRebalanceRecommendation, []string{inst}, time.Time{}, true, ""},
		{"state terminated", eventJSON("e3", SourceEC2, DetailTypeStateChange, t0, `{"instance-id":"`+inst+`","state":"terminated"}`),
			KindStateChange, []string{inst}, t0, true, "terminated"},
		{"state stopping", eventJSON("e3", SourceEC2, DetailTypeStateChange, t0, `{"instance-id":"`+inst+`","state":"stopping"}`),
			KindStateChange, []string{inst}, t0, true, "stopping"},
		{"state running is not actionable", eventJSON("e3", SourceEC2, DetailTypeStateChange, t0, `{"instance-id":"`+inst+`","state":"running"}`),
			KindStateChange, []string{inst}, time.Time{}, false, "running"},
		{"capacity reservation", eventJSON("e4", SourceEC2, DetailTypeCapacityReservation, t0,
			`{"instance-id":"`+inst+`","instance-action":"terminate","instance-termination-time":"2026-01-02T03:06:00Z","azId":"use1-az1"}`),
			KindCapacityReservationInterruption, []string{inst}, time.Date(2026, 1, 2, 3, 6, 0, 0, time.UTC), true, ""},
		{"health scheduled change, RFC 1123 start", eventJSON("e5", SourceHealth, DetailTypeHealth, t0,
			healthJSON("EC2", "scheduledChange", "Sat, 10 Jan 2026 12:00:00 GMT", inst, "i-0abcdef1", inst)),
			KindScheduledChange, []string{inst, "i-0abcdef1"}, time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC), true, ""},
		{"health of another service", eventJSON("e6", SourceHealth, DetailTypeHealth, t0, healthJSON("RDS", "scheduledChange", "", "db-1")),
			KindScheduledChange, nil, time.Time{}, false, ""},
		{"health issue", eventJSON("e6", SourceHealth, DetailTypeHealth, t0, healthJSON("EC2", "issue", "")),
			KindScheduledChange, nil, time.Time{}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.Kind != tt.kind || ev.Actionable != tt.actionable || ev.State != tt.state || !ev.Deadline.Equal(tt.deadline) ||
				fmt.Sprint(ev.InstanceIDs) != fmt.Sprint(tt.instances) || !ev.Time.Equal(t0) {
				t.Fatalf("got %+v", ev)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := map[string]string{
		"empty":                   ``,
		"not json":                `hello`,
		"array":                   `[1,2]`,
		"trailing data":           spotEvent("e1", inst, t0) + `{}`,
		"wrong version":           strings.Replace(spotEvent("e1", inst, t0), `"version":"0"`, `"version":"1"`, 1),
		"no id":                   spotEvent("", inst, t0),
		"unknown detail-type":     eventJSON("e1", SourceEC2, "EC2 Fleet Spot Instance Request Change", t0, `{"instance-id":"`+inst+`"}`),
		"wrong source":            eventJSON("e1", "aws.autoscaling", DetailTypeSpotInterruption, t0, `{"instance-id":"`+inst+`","instance-action":"terminate"}`),
		"bad time":                strings.Replace(spotEvent("e1", inst, t0), t0.Format(time.RFC3339), "yesterday", 1),
		"missing instance":        eventJSON("e1", SourceEC2, DetailTypeSpotInterruption, t0, `{"instance-action":"terminate"}`),
		"bad instance id":         spotEvent("e1", "i-XYZ; rm -rf /", t0),
		"node name, not instance": spotEvent("e1", "ip-10-0-0-1.ec2.internal", t0),
		"bad spot action":         eventJSON("e1", SourceEC2, DetailTypeSpotInterruption, t0, `{"instance-id":"`+inst+`","instance-action":"dance"}`),
		"detail not object":       eventJSON("e1", SourceEC2, DetailTypeSpotInterruption, t0, `"x"`),
		"detail missing":          `{"version":"0","id":"e1","detail-type":"EC2 Spot Instance Interruption Warning","source":"aws.ec2","time":"2026-01-02T03:04:05Z"}`,
		"instance id not string":  eventJSON("e1", SourceEC2, DetailTypeSpotInterruption, t0, `{"instance-id":12,"instance-action":"terminate"}`),
		"unknown state":           eventJSON("e1", SourceEC2, DetailTypeStateChange, t0, `{"instance-id":"`+inst+`","state":"exploded"}`),
		"health without entities": eventJSON("e1", SourceHealth, DetailTypeHealth, t0, healthJSON("EC2", "scheduledChange", "")),
		"health bad entity":       eventJSON("e1", SourceHealth, DetailTypeHealth, t0, healthJSON("EC2", "scheduledChange", "", "vol-123")),
		"health bad start":        eventJSON("e1", SourceHealth, DetailTypeHealth, t0, healthJSON("EC2", "scheduledChange", "soon", inst)),
		"health no service":       eventJSON("e1", SourceHealth, DetailTypeHealth, t0, `{"eventTypeCategory":"scheduledChange"}`),
		"capacity bad time":       eventJSON("e1", SourceEC2, DetailTypeCapacityReservation, t0, `{"instance-id":"`+inst+`","instance-termination-time":"never"}`),
		"huge":                    eventJSON("e1", SourceEC2, DetailTypeRebalance, t0, `{"instance-id":"`+inst+`","pad":"`+strings.Repeat("x", MaxMessageBytes)+`"}`),
		"deep nesting":            strings.Repeat("[", 100000),
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			ev, err := Parse([]byte(body))
			if !errors.Is(err, ErrMalformed) || ev != nil {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", ev, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add(spotEvent("e1", inst, t0))
	f.Add(eventJSON("e2", SourceEC2, DetailTypeRebalance, t0, `{"instance-id":"`+inst+`"}`))
	f.Add(eventJSON("e3", SourceEC2, DetailTypeStateChange, t0, `{"instance-id":"`+inst+`","state":"terminated"}`))
	f.Add(eventJSON("e4", SourceEC2, DetailTypeCapacityReservation, t0, `{"instance-id":"`+inst+`","instance-termination-time":"2026-01-02T03:06:00Z"}`))
	f.Add(eventJSON("e5", SourceHealth, DetailTypeHealth, t0, healthJSON("EC2", "scheduledChange", "Sat, 10 Jan 2026 12:00:00 GMT", inst)))
	f.Add(`{"version":"0"}`)
	f.Add(`{`)
	f.Fuzz(func(t *testing.T, body string) {
		ev, err := Parse([]byte(body))
		if err != nil {
			if !errors.Is(err, ErrMalformed) || ev != nil {
				t.Fatalf("error %v does not wrap ErrMalformed or came with an event", err)
			}
			return
		}
		// A parsed event is fully valid: what the actor acts on is checked.
		// A missing time, account or region passes here; the consumer
		// drops such events (FuzzHandle).
		if ev.ID == "" || !slices.Contains(Kinds, ev.Kind) {
			t.Fatalf("invalid event accepted: %+v", ev)
		}
		if ev.Actionable && len(ev.InstanceIDs) == 0 {
			t.Fatalf("actionable event without instances: %+v", ev)
		}
		for _, id := range ev.InstanceIDs {
			if checkInstanceID(id) != nil {
				t.Fatalf("bad instance id accepted: %q", id)
			}
		}
	})
}
