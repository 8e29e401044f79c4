package launch

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

func TestLookupsCoalesce(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	b := newLookupBatcher(func(_ context.Context, claims []string) (map[string][]ec2types.Instance, error) {
		if calls.Add(1) == 1 {
			<-release // hold the first call so the rest queue
		}
		out := map[string][]ec2types.Instance{}
		for _, c := range claims {
			out[c] = []ec2types.Instance{{InstanceId: aws.String("i-" + c)}}
		}
		return out, nil
	})
	var wg sync.WaitGroup
	first := make(chan struct{})
	go func() { _, _ = b.lookup(context.Background(), "first"); close(first) }()
	for calls.Load() == 0 {
		runtime.Gosched()
	}
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprint("c", i)
			got, err := b.lookup(context.Background(), name)
			if err != nil || len(got) != 1 || aws.ToString(got[0].InstanceId) != "i-"+name {
				t.Errorf("%s: %v %v", name, got, err)
			}
		}()
	}
	for {
		b.mu.Lock()
		n := len(b.pending)
		b.mu.Unlock()
		if n == 100 {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	<-first
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d DescribeInstances calls for 101 lookups, want 2", n)
	}
}
