package launch

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Batch tags: a CreateFleet shared by several NodeClaims tags every
// instance with the batch and the NodeClaims in order, packed as
// ",claim-a,claim-b," into up to maxClaimChunks tag values. Sorted by
// instance ID, the i-th instance of the batch belongs to the i-th
// NodeClaim. The record is written by the same call that creates the
// instances, so a launcher that dies before tagging each instance with its
// NodeClaim still finds, after a restart, which instance is whose.
const (
	TagLaunchBatch       = "flotilla.io/launch-batch"
	TagLaunchBatchClaims = "flotilla.io/launch-batch-claims-"
)

const (
	// maxClaimChunks bounds the tags that list a batch's NodeClaims.
	maxClaimChunks = 4
	// maxTagValue is EC2's limit on the length of a tag value.
	maxTagValue = 256
	// maxResourceTags is EC2's limit on the tags of one resource.
	maxResourceTags = 50
	// fleetTimeout bounds one shared CreateFleet, which serves many callers
	// and so runs on its own context.
	fleetTimeout = 2 * time.Minute
)

// Defaults of Options.BatchWindow and Options.MaxBatch.
const (
	DefaultBatchWindow = 25 * time.Millisecond
	DefaultMaxBatch    = 100
)

// packClaims packs claims, in order, into tag values of the form
// ",a,b,c,"; ok is false when they need more than maxChunks values.
func packClaims(claims []string, maxChunks int) (chunks []string, ok bool) {
	var cur strings.Builder
	for _, c := range claims {
		if cur.Len() > 0 && cur.Len()+len(c)+1 > maxTagValue {
			chunks = append(chunks, cur.String())
			cur.Reset()
		}
		if cur.Len() == 0 {
			cur.WriteByte(',')
		}
		if cur.Len()+len(c)+1 > maxTagValue {
			return nil, false
		}
		cur.WriteString(c)
		cur.WriteByte(',')
	}
	if cur.Len() > 0 {
		chunks = append(chunks, cur.String())
	}
	return chunks, len(chunks) <= maxChunks
}

// claimChunks is how many batch claim tags fit beside the spec's shared
// tags, the batch tag, and the NodeClaim and Name tags added afterwards.
func (s *fleetSpec) claimChunks() int {
	return min(maxClaimChunks, maxResourceTags-len(s.shared)-3)
}

// batchable reports whether a launch of claim with spec may share a fleet.
func batchable(spec *fleetSpec, claim string) bool {
	_, ok := packClaims([]string{claim}, spec.claimChunks())
	return spec.claimChunks() > 0 && ok
}

// claimsOf says which NodeClaim each instance is for: its NodeClaim tag,
// or else its place in its launch batch. instances must hold every
// instance of each batch present (terminated ones too), as a lookup by
// batch tag returns them.
func claimsOf(instances []ec2types.Instance) map[string]string {
	out := map[string]string{}
	batches := map[string][]ec2types.Instance{}
	for _, in := range instances {
		id := aws.ToString(in.InstanceId)
		if c := tagValue(in.Tags, TagNodeClaim); c != "" {
			out[id] = c
		}
		if b := tagValue(in.Tags, TagLaunchBatch); b != "" {
			batches[b] = append(batches[b], in)
		}
	}
	for _, members := range batches {
		sort.Slice(members, func(i, j int) bool { return aws.ToString(members[i].InstanceId) < aws.ToString(members[j].InstanceId) })
		claims := batchClaims(members[0].Tags)
		for i, in := range members {
			id := aws.ToString(in.InstanceId)
			if _, tagged := out[id]; !tagged && i < len(claims) {
				out[id] = claims[i]
			}
		}
	}
	return out
}

// batchClaims reads the NodeClaims of a launch batch from its tags.
func batchClaims(tags []ec2types.Tag) []string {
	var out []string
	for i := 0; ; i++ {
		v := tagValue(tags, TagLaunchBatchClaims+strconv.Itoa(i))
		if v == "" {
			return out
		}
		for _, c := range strings.Split(strings.Trim(v, ","), ",") {
			if c != "" {
				out = append(out, c)
			}
		}
	}
}

// fleetBatcher gathers launches of equal specs that arrive within window
// of the first into one CreateFleet with TotalTargetCapacity = N.
type fleetBatcher struct {
	window time.Duration
	max    int
	run    func(spec *fleetSpec, members []*fleetMember)
	mu     sync.Mutex
	open   map[string]*fleetBatch
}

type fleetBatch struct {
	key     string
	spec    *fleetSpec
	members []*fleetMember
	claims  []string
	sent    bool
}

func newFleetBatcher(window time.Duration, maxBatch int, run func(*fleetSpec, []*fleetMember)) *fleetBatcher {
	return &fleetBatcher{window: window, max: maxBatch, run: run, open: map[string]*fleetBatch{}}
}

// submit adds m to the open batch of spec (opening one when there is none
// or m does not fit) and waits for its result. It waits even when the
// caller gives up (the batch's own timeout bounds the wait): the caller
// holds its NodeClaim's lock, and a retry must not look the NodeClaim up
// before the batch that may launch its instance is done, or it could
// launch a second one under another ClientToken.
func (b *fleetBatcher) submit(spec *fleetSpec, m *fleetMember) memberResult {
	key := spec.key()
	b.mu.Lock()
	fb := b.open[key]
	if fb != nil && !b.fits(fb, m.claim) {
		b.sendLocked(fb)
		fb = nil
	}
	if fb == nil {
		fb = &fleetBatch{key: key, spec: spec}
		b.open[key] = fb
		time.AfterFunc(b.window, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.sendLocked(fb)
		})
	}
	fb.members = append(fb.members, m)
	fb.claims = append(fb.claims, m.claim)
	if len(fb.members) >= b.max {
		b.sendLocked(fb)
	}
	b.mu.Unlock()
	return <-m.done
}

func (b *fleetBatcher) fits(fb *fleetBatch, claim string) bool {
	if len(fb.members) >= b.max {
		return false
	}
	_, ok := packClaims(append(fb.claims[:len(fb.claims):len(fb.claims)], claim), fb.spec.claimChunks())
	return ok
}

// sendLocked closes fb and runs its CreateFleet. Call with b.mu held.
func (b *fleetBatcher) sendLocked(fb *fleetBatch) {
	if fb.sent {
		return
	}
	fb.sent = true
	if b.open[fb.key] == fb {
		delete(b.open, fb.key)
	}
	go b.run(fb.spec, fb.members)
}

// runBatch runs a batch's CreateFleet on its own context (it serves many
// callers) and hands out the results.
func (l *Launcher) runBatch(spec *fleetSpec, members []*fleetMember) {
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	defer cancel()
	for i, r := range l.runFleet(ctx, spec, members) {
		members[i].done <- r
	}
}
