package disruption

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
)

// DefaultBudget is the budget that applies when a NodePool lists none.
var DefaultBudget = karpv1.Budget{Nodes: "10%"}

// AllowedDisruptions is how many more of a NodePool's nodes may be disrupted
// for reason now: the smallest allowance among the budgets that are active
// (always, or inside a schedule window) and apply to the reason (no reasons
// listed means every reason), minus the nodes already disrupting. A budget's
// nodes is a count or a percentage of total, rounded up as Karpenter does. No
// budgets means the default "10%". An invalid budget fails closed: 0 and an
// error.
func AllowedDisruptions(budgets []karpv1.Budget, reason karpv1.DisruptionReason, now time.Time, total, disrupting int) (int, error) {
	if len(budgets) == 0 {
		budgets = []karpv1.Budget{DefaultBudget}
	}
	allowed := math.MaxInt32
	var errs []error
	for i := range budgets {
		b := &budgets[i]
		n, err := budgetAllowance(b, now, total)
		if err != nil {
			errs = append(errs, fmt.Errorf("budget %d: %w", i, err))
			continue
		}
		if len(b.Reasons) == 0 || slices.Contains(b.Reasons, reason) {
			allowed = min(allowed, n)
		}
	}
	if len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	allowed = min(allowed, total) - disrupting
	return max(allowed, 0), nil
}

// budgetAllowance is one budget's node allowance at now: MaxInt32 when the
// budget is inactive.
func budgetAllowance(b *karpv1.Budget, now time.Time, total int) (int, error) {
	active, err := BudgetActive(b, now)
	if err != nil {
		return 0, err
	}
	if !active {
		return math.MaxInt32, nil
	}
	return ScaleNodes(b.Nodes, total)
}

// BudgetActive reports whether the budget applies at now: always without a
// schedule, otherwise within duration after each schedule hit. Schedule and
// duration go together.
func BudgetActive(b *karpv1.Budget, now time.Time) (bool, error) {
	switch {
	case b.Schedule == nil && b.Duration == nil:
		return true, nil
	case b.Schedule == nil || b.Duration == nil:
		return false, errors.New("schedule and duration must be set together")
	case b.Duration.Duration < 0:
		return false, fmt.Errorf("duration %s is negative", b.Duration.Duration)
	}
	s, err := ParseSchedule(*b.Schedule)
	if err != nil {
		return false, err
	}
	return s.Active(now, b.Duration.Duration), nil
}

// ScaleNodes resolves a budget's nodes value against the NodePool's node
// count: a count ("5") as is, a percentage ("10%", 0 to 100) of total rounded
// up.
func ScaleNodes(nodes string, total int) (int, error) {
	if pct, ok := strings.CutSuffix(nodes, "%"); ok {
		p, err := strconv.Atoi(pct)
		if err != nil || p < 0 || p > 100 || pct == "" || pct[0] == '+' || pct[0] == '-' {
			return 0, fmt.Errorf("nodes %q: a percentage must be 0%% to 100%%", nodes)
		}
		return (total*p + 99) / 100, nil
	}
	n, err := strconv.Atoi(nodes)
	if err != nil || n < 0 || nodes[0] == '+' {
		return 0, fmt.Errorf("nodes %q is neither a non-negative count nor a percentage such as \"10%%\"", nodes)
	}
	return n, nil
}
