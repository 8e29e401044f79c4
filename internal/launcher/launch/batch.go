package launch

import (
	"context"
	"sync"

	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// maxFilterValues is how many values one DescribeInstances filter carries;
// a lookup uses two per NodeClaim.
const maxFilterValues = 200

type lookupResult struct {
	instances []ec2types.Instance
	err       error
}

// lookupBatcher coalesces NodeClaim lookups: while one DescribeInstances
// is in flight, new lookups queue, and the next call carries all of them.
// A lone lookup goes out at once, so batching adds no delay; 100 concurrent
// launches need a handful of calls instead of 100.
type lookupBatcher struct {
	fetch   func(context.Context, []string) (map[string][]ec2types.Instance, error)
	mu      sync.Mutex
	pending map[string][]chan lookupResult
	running bool
}

func newLookupBatcher(fetch func(context.Context, []string) (map[string][]ec2types.Instance, error)) *lookupBatcher {
	return &lookupBatcher{fetch: fetch, pending: map[string][]chan lookupResult{}}
}

// lookup returns the live instances tagged with claim.
func (b *lookupBatcher) lookup(ctx context.Context, claim string) ([]ec2types.Instance, error) {
	ch := make(chan lookupResult, 1)
	b.mu.Lock()
	b.pending[claim] = append(b.pending[claim], ch)
	if !b.running {
		b.running = true
		go b.run()
	}
	b.mu.Unlock()
	select {
	case r := <-ch:
		return r.instances, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run sends batches until the queue is empty.
func (b *lookupBatcher) run() {
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		batch := map[string][]chan lookupResult{}
		for claim, waiters := range b.pending {
			if 2*len(batch) >= maxFilterValues {
				break
			}
			batch[claim] = waiters
			delete(b.pending, claim)
		}
		b.mu.Unlock()
		b.send(batch)
	}
}

func (b *lookupBatcher) send(batch map[string][]chan lookupResult) {
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	found, err := b.fetch(ctx, sortedKeys(batch))
	for claim, waiters := range batch {
		for _, ch := range waiters {
			ch <- lookupResult{instances: found[claim], err: err}
		}
	}
}

// keyedMutex serializes work per key (per NodeClaim).
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
