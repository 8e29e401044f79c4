// Package interruption turns EC2 interruption events, which EventBridge puts
// on an SQS queue, into disruption requests: a Spot interruption warning marks
// the offering unavailable at the launcher and asks the watcher to Disrupt the
// node (replacement first, then drain, then terminate) before the notice runs
// out; AWS Health scheduled changes, instance state changes and capacity
// reservation interruption warnings disrupt the node; rebalance
// recommendations are recorded and acted on only when configured.
//
// Every message is parsed by one strict parser per (source, detail-type).
// A message that cannot be validated is counted, logged once and deleted; it
// is never acted on. A message is deleted only after its action was accepted,
// so a failed call is retried when the message becomes visible again.
package interruption

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Kinds of events.
const (
	KindSpotInterruption                = "SpotInterruption"
	KindRebalanceRecommendation         = "RebalanceRecommendation"
	KindScheduledChange                 = "ScheduledChange"
	KindStateChange                     = "StateChange"
	KindCapacityReservationInterruption = "CapacityReservationInterruption"
	// KindUnknown labels messages that could not be parsed.
	KindUnknown = "Unknown"
)

// Kinds lists the kinds of events the service understands.
var Kinds = []string{KindSpotInterruption, KindRebalanceRecommendation, KindScheduledChange, KindStateChange, KindCapacityReservationInterruption}

// EventBridge sources and detail-types of the events handled.
const (
	SourceEC2    = "aws.ec2"
	SourceHealth = "aws.health"

	DetailTypeSpotInterruption     = "EC2 Spot Instance Interruption Warning"
	DetailTypeRebalance            = "EC2 Instance Rebalance Recommendation"
	DetailTypeHealth               = "AWS Health Event"
	DetailTypeStateChange          = "EC2 Instance State-change Notification"
	DetailTypeCapacityReservation  = "EC2 Capacity Reservation Instance Interruption Warning"
	healthServiceEC2               = "EC2"
	healthCategoryScheduledChange  = "scheduledChange"
	defaultNotice                  = 2 * time.Minute
	maxIDLength                    = 256
	maxHealthEntities              = 1000
	maxRegionLength, maxAcctLength = 64, 64
)

// MaxMessageBytes is the largest message body parsed; larger ones are
// malformed. SQS itself accepts up to 1 MiB; EventBridge events are at most
// 256 KiB.
const MaxMessageBytes = 256 << 10

// ErrMalformed marks a message that is not a valid event of a handled kind:
// bad JSON, a missing or invalid field, an unknown detail-type, too large.
var ErrMalformed = errors.New("malformed event")

// Event is one validated interruption event.
type Event struct {
	// ID is the EventBridge event id.
	ID string
	// Kind is one of the Kind constants.
	Kind string
	// Source and DetailType are the EventBridge envelope's.
	Source, DetailType string
	// Account and Region are the envelope's; empty when it has none.
	Account, Region string
	// Time is when AWS emitted the event; zero when the envelope has none.
	Time time.Time
	// InstanceIDs are the instances the event is about (one, except for
	// AWS Health events).
	InstanceIDs []string
	// Deadline is when the instances will be gone (the notice's end), or
	// zero when the event announces nothing (a rebalance recommendation).
	Deadline time.Time
	// State is the new state of a state-change event.
	State string
	// Actionable is false for a valid event that asks for nothing, such as
	// a state change to running or a Health event of another category.
	Actionable bool
	// Note explains a non-actionable event.
	Note string
}

// envelope is the EventBridge event's outer structure.
type envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  json.RawMessage `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

type parser func(env *envelope, ev *Event) error

type parserKey struct{ source, detailType string }

// parsers holds one parser per (source, detail-type).
var parsers = map[parserKey]parser{
	{SourceEC2, DetailTypeSpotInterruption}:    parseSpot,
	{SourceEC2, DetailTypeRebalance}:           parseRebalance,
	{SourceHealth, DetailTypeHealth}:           parseHealth,
	{SourceEC2, DetailTypeStateChange}:         parseStateChange,
	{SourceEC2, DetailTypeCapacityReservation}: parseCapacityReservation,
}

var (
	instanceIDPattern = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
	printable         = regexp.MustCompile(`^[\x21-\x7e]+$`)
)

// Parse validates one SQS message body as an EventBridge event of a handled
// kind. Every error wraps ErrMalformed.
func Parse(body []byte) (*Event, error) {
	if len(body) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes is more than %d", ErrMalformed, len(body), MaxMessageBytes)
	}
	var env envelope
	if err := decodeStrictObject(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	ev, err := parseEnvelope(&env)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return ev, nil
}

func parseEnvelope(env *envelope) (*Event, error) {
	if env.Version != "0" {
		return nil, fmt.Errorf("version %q is not \"0\"", clip(env.Version))
	}
	if env.ID == "" || len(env.ID) > maxIDLength || !printable.MatchString(env.ID) {
		return nil, fmt.Errorf("id %q is empty, too long or not printable", clip(env.ID))
	}
	p := parsers[parserKey{env.Source, env.DetailType}]
	if p == nil {
		return nil, fmt.Errorf("no parser for source %q detail-type %q", clip(env.Source), clip(env.DetailType))
	}
	// A missing time, account or region is not malformed: the consumer
	// drops such events with a reason of their own (origin.check).
	var t time.Time
	if env.Time != "" {
		parsed, err := time.Parse(time.RFC3339, env.Time)
		if err != nil {
			return nil, fmt.Errorf("time %q: not RFC 3339", clip(env.Time))
		}
		t = parsed.UTC()
	}
	if len(env.Region) > maxRegionLength || len(env.Account) > maxAcctLength {
		return nil, errors.New("region or account too long")
	}
	if len(env.Detail) == 0 || env.Detail[0] != '{' {
		return nil, errors.New("detail: missing or not an object")
	}
	ev := &Event{ID: env.ID, Source: env.Source, DetailType: env.DetailType, Account: env.Account, Region: env.Region, Time: t, Actionable: true}
	if err := p(env, ev); err != nil {
		return nil, fmt.Errorf("%s: %w", env.DetailType, err)
	}
	return ev, nil
}

// decodeStrictObject decodes one JSON object into v, refusing trailing data.
func decodeStrictObject(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if dec.More() {
		return errors.New("json: data after the object")
	}
	return nil
}

func checkInstanceID(id string) error {
	if !instanceIDPattern.MatchString(id) {
		return fmt.Errorf("instance-id %q is not an EC2 instance id", clip(id))
	}
	return nil
}

// instanceDetail is the detail of the EC2 instance events that name one instance.
type instanceDetail struct {
	InstanceID              string `json:"instance-id"`
	InstanceAction          string `json:"instance-action"`
	State                   string `json:"state"`
	InstanceTerminationTime string `json:"instance-termination-time"`
}

func parseInstanceDetail(env *envelope) (*instanceDetail, error) {
	var d instanceDetail
	if err := decodeStrictObject(env.Detail, &d); err != nil {
		return nil, fmt.Errorf("detail: %w", err)
	}
	if err := checkInstanceID(d.InstanceID); err != nil {
		return nil, err
	}
	return &d, nil
}

var spotActions = []string{"terminate", "stop", "hibernate"}

func parseSpot(env *envelope, ev *Event) error {
	d, err := parseInstanceDetail(env)
	if err != nil {
		return err
	}
	if !slices.Contains(spotActions, d.InstanceAction) {
		return fmt.Errorf("instance-action %q is not terminate, stop or hibernate", clip(d.InstanceAction))
	}
	ev.Kind = KindSpotInterruption
	ev.InstanceIDs = []string{d.InstanceID}
	ev.Deadline = ev.Time.Add(defaultNotice)
	return nil
}

func parseRebalance(env *envelope, ev *Event) error {
	d, err := parseInstanceDetail(env)
	if err != nil {
		return err
	}
	ev.Kind = KindRebalanceRecommendation
	ev.InstanceIDs = []string{d.InstanceID}
	return nil
}

// disruptiveStates are the state changes that lose the node.
var disruptiveStates = []string{"stopping", "stopped", "shutting-down", "terminated"}

var allStates = append([]string{"pending", "running"}, disruptiveStates...)

func parseStateChange(env *envelope, ev *Event) error {
	d, err := parseInstanceDetail(env)
	if err != nil {
		return err
	}
	if !slices.Contains(allStates, d.State) {
		return fmt.Errorf("state %q is not an EC2 instance state", clip(d.State))
	}
	ev.Kind = KindStateChange
	ev.InstanceIDs = []string{d.InstanceID}
	ev.State = d.State
	if !slices.Contains(disruptiveStates, d.State) {
		ev.Actionable = false
		ev.Note = "state " + d.State + " needs no action"
		return nil
	}
	// The instance is already going: drain without waiting.
	ev.Deadline = ev.Time
	return nil
}

func parseCapacityReservation(env *envelope, ev *Event) error {
	d, err := parseInstanceDetail(env)
	if err != nil {
		return err
	}
	ev.Kind = KindCapacityReservationInterruption
	ev.InstanceIDs = []string{d.InstanceID}
	ev.Deadline = ev.Time.Add(defaultNotice)
	if d.InstanceTerminationTime != "" {
		t, err := time.Parse(time.RFC3339, d.InstanceTerminationTime)
		if err != nil {
			return fmt.Errorf("instance-termination-time %q: not RFC 3339", clip(d.InstanceTerminationTime))
		}
		ev.Deadline = t.UTC()
	}
	return nil
}

// healthDetail is the part of an AWS Health event's detail that matters.
type healthDetail struct {
	Service           string `json:"service"`
	EventTypeCode     string `json:"eventTypeCode"`
	EventTypeCategory string `json:"eventTypeCategory"`
	StartTime         string `json:"startTime"`
	AffectedEntities  []struct {
		EntityValue string `json:"entityValue"`
	} `json:"affectedEntities"`
}

// healthTimeLayouts are the layouts AWS Health uses for startTime.
var healthTimeLayouts = []string{time.RFC3339, time.RFC1123, time.RFC1123Z}

func parseHealth(env *envelope, ev *Event) error {
	var d healthDetail
	if err := decodeStrictObject(env.Detail, &d); err != nil {
		return fmt.Errorf("detail: %w", err)
	}
	if d.Service == "" || d.EventTypeCategory == "" {
		return errors.New("detail: service and eventTypeCategory are required")
	}
	ev.Kind = KindScheduledChange
	if d.Service != healthServiceEC2 || d.EventTypeCategory != healthCategoryScheduledChange {
		ev.Actionable = false
		ev.Note = fmt.Sprintf("Health event for service %q category %q needs no action", clip(d.Service), clip(d.EventTypeCategory))
		return nil
	}
	if len(d.AffectedEntities) == 0 || len(d.AffectedEntities) > maxHealthEntities {
		return fmt.Errorf("affectedEntities: %d entities, want 1 to %d", len(d.AffectedEntities), maxHealthEntities)
	}
	seen := map[string]bool{}
	for _, e := range d.AffectedEntities {
		if err := checkInstanceID(e.EntityValue); err != nil {
			return fmt.Errorf("affectedEntities: %w", err)
		}
		if !seen[e.EntityValue] {
			seen[e.EntityValue] = true
			ev.InstanceIDs = append(ev.InstanceIDs, e.EntityValue)
		}
	}
	ev.Deadline = ev.Time.Add(defaultNotice)
	if d.StartTime != "" {
		t, err := parseHealthTime(d.StartTime)
		if err != nil {
			return err
		}
		ev.Deadline = t
	}
	ev.Note = d.EventTypeCode
	return nil
}

func parseHealthTime(s string) (time.Time, error) {
	for _, layout := range healthTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("startTime %q: not a time", clip(s))
}

// clip shortens untrusted strings quoted in errors and logs.
func clip(s string) string {
	const limit = 64
	if len(s) <= limit {
		return s
	}
	return strings.ToValidUTF8(s[:limit], "") + "…"
}
