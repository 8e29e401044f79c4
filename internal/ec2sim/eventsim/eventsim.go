// Package eventsim plays EventBridge for ec2sim: an admin call puts an
// interruption event for a simulated instance on an SQS queue, in the
// published EventBridge format, through the real aws-sdk-go-v2 SQS client.
// It is a test and demo tool.
//
// Mounted in ec2sim (Install), the call is
//
//	POST /_sim/interrupt?Version=flotilla-eventsim&instance=i-…&kind=spot
//
// (ec2sim routes query requests of other services by their Version; the
// path is free). Behind Handler the Version may be left out. Parameters:
//
//   - instance: the instance id (required); it must be one of the
//     simulator's instances unless force=true.
//   - kind: spot (EC2 Spot Instance Interruption Warning, the default),
//     rebalance (EC2 Instance Rebalance Recommendation), health (AWS Health
//     Event, EC2 scheduled change), state (EC2 Instance State-change
//     Notification) or capacity-reservation (EC2 Capacity Reservation
//     Instance Interruption Warning).
//   - state: the new state of a state event (default terminated).
//   - terminate_after: a duration such as 2m; the simulator terminates the
//     instance then, as EC2 does at the end of a Spot notice.
//
// The answer is JSON: {"eventId":…,"messageId":…,"detailType":…,"event":{…}}.
package eventsim

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/flotilla-io/flotilla/internal/ec2sim"
)

// APIVersion is the query-protocol Version under which Install mounts the
// sender in ec2sim.
const APIVersion = "flotilla-eventsim"

// Path is the admin call's path behind Handler.
const Path = "/_sim/interrupt"

// Kinds of events the sender puts on the queue.
const (
	KindSpot                = "spot"
	KindRebalance           = "rebalance"
	KindHealth              = "health"
	KindState               = "state"
	KindCapacityReservation = "capacity-reservation"
)

// ErrBadRequest marks a request the caller must fix.
var ErrBadRequest = errors.New("bad request")

// ErrUnknownInstance marks an instance the simulator does not have.
var ErrUnknownInstance = errors.New("unknown instance")

// SendAPI is the part of the SQS client the sender uses.
type SendAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// Sender puts events on the queue.
type Sender struct {
	// SQS sends the events.
	SQS SendAPI
	// QueueURL is the queue EventBridge would target.
	QueueURL string
	// Sim, when set, checks the instance and terminates it on
	// terminate_after; its region is the events' region.
	Sim *ec2sim.Sim
	// Now nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	timers []*time.Timer
}

// Request is one event to send.
type Request struct {
	InstanceID string
	Kind       string
	// State is the new state of a KindState event; empty means terminated.
	State string
	// Force skips the check that the instance exists.
	Force bool
	// TerminateAfter, when positive, terminates the instance in the
	// simulator after that long.
	TerminateAfter time.Duration
}

// Result is what was sent.
type Result struct {
	EventID    string          `json:"eventId"`
	MessageID  string          `json:"messageId"`
	DetailType string          `json:"detailType"`
	Event      json.RawMessage `json:"event"`
}

// Install mounts s in sim under APIVersion.
func Install(sim *ec2sim.Sim, s *Sender) {
	sim.QueryHandlers[APIVersion] = s
}

// Handler serves Path with s and everything else with next (such as the
// simulator).
func Handler(next http.Handler, s *Sender) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Path, s)
	mux.Handle("/", next)
	return mux
}

// ServeHTTP serves the admin call.
func (s *Sender) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use POST"})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	req, err := parseRequest(r.Form)
	if err == nil {
		var res *Result
		res, err = s.Send(r.Context(), req)
		if err == nil {
			writeJSON(w, http.StatusOK, res)
			return
		}
	}
	status := http.StatusBadGateway
	switch {
	case errors.Is(err, ErrBadRequest):
		status = http.StatusBadRequest
	case errors.Is(err, ErrUnknownInstance):
		status = http.StatusNotFound
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func parseRequest(form url.Values) (Request, error) {
	req := Request{InstanceID: form.Get("instance"), Kind: form.Get("kind"), State: form.Get("state"), Force: form.Get("force") == "true"}
	if req.Kind == "" {
		req.Kind = KindSpot
	}
	if v := form.Get("terminate_after"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return req, fmt.Errorf("%w: terminate_after %q is not a positive duration", ErrBadRequest, v)
		}
		req.TerminateAfter = d
	}
	return req, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Send builds the event for req and puts it on the queue.
func (s *Sender) Send(ctx context.Context, req Request) (*Result, error) {
	if req.InstanceID == "" {
		return nil, fmt.Errorf("%w: instance is required", ErrBadRequest)
	}
	region := "us-east-1"
	if s.Sim != nil {
		region = s.Sim.Region()
		if !req.Force && !s.hasInstance(req.InstanceID) {
			return nil, fmt.Errorf("%w: %s", ErrUnknownInstance, req.InstanceID)
		}
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ev, err := Build(req, region, now())
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	out, err := s.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.QueueURL), MessageBody: aws.String(string(body))})
	if err != nil {
		return nil, fmt.Errorf("SendMessage: %w", err)
	}
	if req.TerminateAfter > 0 && s.Sim != nil {
		s.terminateLater(req.InstanceID, req.TerminateAfter)
	}
	return &Result{EventID: ev.ID, MessageID: aws.ToString(out.MessageId), DetailType: ev.DetailType, Event: body}, nil
}

func (s *Sender) hasInstance(id string) bool {
	for _, in := range s.Sim.Instances() {
		if in.ID == id {
			return true
		}
	}
	return false
}

// terminateLater terminates the instance through the simulator's own
// TerminateInstances, as EC2 does when a notice runs out.
func (s *Sender) terminateLater(id string, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timers = append(s.timers, time.AfterFunc(after, func() {
		form := url.Values{"Action": {"TerminateInstances"}, "Version": {ec2sim.APIVersion}, "InstanceId.1": {id}}
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		s.Sim.ServeHTTP(httptest.NewRecorder(), r)
	}))
}

// Stop cancels pending terminations.
func (s *Sender) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.timers {
		t.Stop()
	}
	s.timers = nil
}

// Event is an EventBridge event.
type Event struct {
	Version    string         `json:"version"`
	ID         string         `json:"id"`
	DetailType string         `json:"detail-type"`
	Source     string         `json:"source"`
	Account    string         `json:"account"`
	Time       string         `json:"time"`
	Region     string         `json:"region"`
	Resources  []string       `json:"resources"`
	Detail     map[string]any `json:"detail"`
}

// Build makes the EventBridge event of req at time now in region.
func Build(req Request, region string, now time.Time) (*Event, error) {
	now = now.UTC().Truncate(time.Second)
	arn := fmt.Sprintf("arn:aws:ec2:%s:%s:instance/%s", region, ec2sim.AccountID, req.InstanceID)
	ev := &Event{Version: "0", ID: newUUID(), Source: "aws.ec2", Account: ec2sim.AccountID, Time: now.Format(time.RFC3339), Region: region, Resources: []string{arn}}
	switch req.Kind {
	case KindSpot:
		ev.DetailType = "EC2 Spot Instance Interruption Warning"
		ev.Detail = map[string]any{"instance-id": req.InstanceID, "instance-action": "terminate"}
	case KindRebalance:
		ev.DetailType = "EC2 Instance Rebalance Recommendation"
		ev.Detail = map[string]any{"instance-id": req.InstanceID}
	case KindState:
		state := req.State
		if state == "" {
			state = "terminated"
		}
		ev.DetailType = "EC2 Instance State-change Notification"
		ev.Detail = map[string]any{"instance-id": req.InstanceID, "state": state}
	case KindCapacityReservation:
		ev.DetailType = "EC2 Capacity Reservation Instance Interruption Warning"
		ev.Detail = map[string]any{"instance-id": req.InstanceID, "instance-action": "terminate",
			"instance-termination-time": now.Add(2 * time.Minute).Format(time.RFC3339), "azId": region + "-az1"}
	case KindHealth:
		ev.Source, ev.DetailType = "aws.health", "AWS Health Event"
		ev.Detail = map[string]any{
			"eventArn":          fmt.Sprintf("arn:aws:health:%s::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/%s", region, ev.ID),
			"service":           "EC2",
			"eventTypeCode":     "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
			"eventTypeCategory": "scheduledChange",
			"eventScopeCode":    "ACCOUNT_SPECIFIC",
			"startTime":         now.Add(2 * time.Minute).Format(time.RFC1123),
			"eventDescription":  []map[string]string{{"language": "en_US", "latestDescription": "The instance is scheduled for retirement."}},
			"affectedEntities":  []map[string]string{{"entityValue": req.InstanceID}},
		}
	default:
		return nil, fmt.Errorf("%w: kind %q is not spot, rebalance, health, state or capacity-reservation", ErrBadRequest, req.Kind)
	}
	return ev, nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
