package interruption

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/flotilla-io/flotilla/internal/server/apierr"
	interruptionv1 "github.com/flotilla-io/flotilla/proto/flotilla/interruption/v1"
)

// Limits of ListRecentEvents.
const (
	DefaultListLimit = 100
	// JournalSize is how many records the service keeps.
	JournalSize = 1000
)

// Service implements flotilla.interruption.v1.InterruptionService.
type Service struct {
	interruptionv1.UnimplementedInterruptionServiceServer
	// Journal holds the records listed.
	Journal *Journal
}

// ListRecentEvents lists the latest events, newest first.
func (s *Service) ListRecentEvents(_ context.Context, req *interruptionv1.ListRecentEventsRequest) (*interruptionv1.ListRecentEventsResponse, error) {
	limit := int(req.GetLimit())
	switch {
	case limit < 0:
		return nil, fmt.Errorf("%w: limit %d is negative", apierr.ErrInvalidArgument, limit)
	case limit == 0:
		limit = DefaultListLimit
	}
	kind, instance := req.GetKind(), req.GetInstanceId()
	records := s.Journal.Recent(limit, func(r *Record) bool {
		return (kind == "" || r.Kind == kind) && (instance == "" || r.InstanceID == instance)
	})
	resp := &interruptionv1.ListRecentEventsResponse{Events: make([]*interruptionv1.Event, 0, len(records))}
	for i := range records {
		resp.Events = append(resp.Events, toProto(&records[i]))
	}
	return resp, nil
}

func toProto(r *Record) *interruptionv1.Event {
	return &interruptionv1.Event{
		Id: r.ID, Kind: r.Kind, DetailType: r.DetailType, InstanceId: r.InstanceID,
		EventTime: ts(r.EventTime), ReceivedTime: ts(r.Received), HandledTime: ts(r.Handled), Deadline: ts(r.Deadline),
		Action: r.Action, Message: r.Message, NodeName: r.NodeName,
	}
}

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
