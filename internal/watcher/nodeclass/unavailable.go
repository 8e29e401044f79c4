package nodeclass

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/flotilla-io/flotilla/internal/launcher/unavailable"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// UnavailableTTL is how long MarkUnavailable keeps an offering unavailable:
// as long as the launcher's own unavailable-offerings cache (Karpenter's
// insufficient-capacity cache), so the watcher does not plan an offering the
// launcher would refuse, nor avoid one the launcher would try again.
const UnavailableTTL = unavailable.DefaultTTL

// Offering names one (instance type, zone, capacity type).
type Offering struct {
	InstanceType, Zone, CapacityType string
}

func (o Offering) String() string { return o.InstanceType + "/" + o.Zone + "/" + o.CapacityType }

// ParseOfferings reads the launcher's list of offerings without capacity
// (apierr.MetadataOfferings): comma-separated type/zone/capacity-type
// triples. An empty list or a malformed triple is an error.
func ParseOfferings(s string) ([]Offering, error) {
	if s == "" {
		return nil, fmt.Errorf("no offerings listed")
	}
	var out []Offering
	for item := range strings.SplitSeq(s, ",") {
		parts := strings.Split(item, "/")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return nil, fmt.Errorf("offering %q: want instance-type/zone/capacity-type", item)
		}
		out = append(out, Offering{InstanceType: parts[0], Zone: parts[1], CapacityType: parts[2]})
	}
	return out, nil
}

// MarkUnavailable holds the offerings unavailable for UnavailableTTL: the
// instance types InstanceTypes returns list them with Available false, so
// the next plan avoids exactly them, while every other cached offering
// stays as it was.
func (t *Types) MarkUnavailable(offerings []Offering) {
	until := t.now().Add(UnavailableTTL)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.unavailable == nil {
		t.unavailable = map[Offering]time.Time{}
	}
	for _, o := range offerings {
		t.unavailable[o] = until
	}
}

// withMarks returns types with the offerings marked unavailable (and not
// expired) turned Available false; types without a marked offering are
// returned as they are, the others copied. It drops expired marks. The
// caller holds t.mu.
func (t *Types) withMarks(types []*typesv1.InstanceType, now time.Time) []*typesv1.InstanceType {
	for o, until := range t.unavailable {
		if !now.Before(until) {
			delete(t.unavailable, o)
		}
	}
	if len(t.unavailable) == 0 {
		return types
	}
	out := make([]*typesv1.InstanceType, len(types))
	for i, it := range types {
		out[i] = it
		for j, off := range it.GetOfferings() {
			if _, marked := t.unavailable[Offering{InstanceType: it.GetName(), Zone: off.GetZone(), CapacityType: off.GetCapacityType()}]; !marked || !off.GetAvailable() {
				continue
			}
			if out[i] == it {
				out[i] = proto.CloneOf(it)
			}
			out[i].Offerings[j].Available = false
		}
	}
	return out
}
