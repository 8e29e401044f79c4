package solverapi

import (
	"fmt"

	"github.com/flotilla-io/flotilla/internal/server/apierr"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// Limits bound the size of a request the solver takes on, so that an
// oversized one is refused at once (ResourceExhausted, naming the limit)
// instead of exhausting memory or its caller's deadline. Zero means no
// limit.
type Limits struct {
	// MaxPods bounds the pods of a request: pending pods plus the pods
	// bound to its nodes and NodeClaims.
	MaxPods int
	// MaxInstanceTypes bounds the instance types of a request.
	MaxInstanceTypes int
}

// DefaultLimits are the solver service's limits unless its flags say
// otherwise: twice the largest workload measured (100,000 pods against 800
// instance types in about 5 s and 400 MB of heap on two cores), and ten
// times the instance types EC2 offers in any region.
var DefaultLimits = Limits{MaxPods: 200_000, MaxInstanceTypes: 10_000}

// check refuses a request beyond the limits.
func (l Limits) check(pods int, types int) error {
	if l.MaxPods > 0 && pods > l.MaxPods {
		return fmt.Errorf("%w: pods: the request has %d pods (pending and bound), more than the solver's limit of %d (solver flag --max-pods)",
			apierr.ErrResourceExhausted, pods, l.MaxPods)
	}
	if l.MaxInstanceTypes > 0 && types > l.MaxInstanceTypes {
		return fmt.Errorf("%w: instance_types: the request has %d instance types, more than the solver's limit of %d (solver flag --max-instance-types)",
			apierr.ErrResourceExhausted, types, l.MaxInstanceTypes)
	}
	return nil
}

// countPods is the pending pods plus those bound to nodes and NodeClaims.
func countPods(pending int, nodes []*typesv1.Node, claims []*typesv1.NodeClaim) int {
	n := pending
	for _, node := range nodes {
		n += len(node.GetPods())
	}
	for _, c := range claims {
		n += len(c.GetPods())
	}
	return n
}
