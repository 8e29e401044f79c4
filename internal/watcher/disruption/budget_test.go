package disruption

import (
	"math"
	"testing"
	"time"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func sched(s string, d time.Duration) func(*karpv1.Budget) {
	return func(b *karpv1.Budget) {
		b.Schedule = &s
		b.Duration = &metav1.Duration{Duration: d}
	}
}

func reasons(rs ...karpv1.DisruptionReason) func(*karpv1.Budget) {
	return func(b *karpv1.Budget) { b.Reasons = rs }
}

func budget(nodes string, opts ...func(*karpv1.Budget)) karpv1.Budget {
	b := karpv1.Budget{Nodes: nodes}
	for _, o := range opts {
		o(&b)
	}
	return b
}

func TestAllowedDisruptions(t *testing.T) {
	monday10 := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	saturday := time.Date(2026, 3, 7, 10, 0, 0, 0, time.UTC)
	business := sched("0 9 * * mon-fri", 8*time.Hour)
	cases := []struct {
		name              string
		budgets           []karpv1.Budget
		reason            karpv1.DisruptionReason
		now               time.Time
		total, disrupting int
		want              int
		wantErr           bool
	}{
		{name: "default 10% rounds up", total: 5, want: 1},
		{name: "default 10% of 20", total: 20, want: 2},
		{name: "default with none", total: 0, want: 0},
		{name: "count", budgets: []karpv1.Budget{budget("3")}, total: 10, want: 3},
		{name: "count capped by nodes", budgets: []karpv1.Budget{budget("30")}, total: 10, want: 10},
		{name: "count minus disrupting", budgets: []karpv1.Budget{budget("3")}, total: 10, disrupting: 2, want: 1},
		{name: "never negative", budgets: []karpv1.Budget{budget("1")}, total: 10, disrupting: 4, want: 0},
		{name: "percent rounds up", budgets: []karpv1.Budget{budget("25%")}, total: 7, want: 2},
		{name: "percent 0", budgets: []karpv1.Budget{budget("0%")}, total: 7, want: 0},
		{name: "percent 100", budgets: []karpv1.Budget{budget("100%")}, total: 7, disrupting: 1, want: 6},
		{name: "minimum of active", budgets: []karpv1.Budget{budget("50%"), budget("2")}, total: 10, want: 2},
		{name: "window active", budgets: []karpv1.Budget{budget("0", business), budget("5")}, now: monday10, total: 10, want: 0},
		{name: "window inactive", budgets: []karpv1.Budget{budget("0", business), budget("5")}, now: saturday, total: 10, want: 5},
		{name: "only inactive budgets", budgets: []karpv1.Budget{budget("0", business)}, now: saturday, total: 10, want: 10},
		{name: "reason filter applies", budgets: []karpv1.Budget{budget("0", reasons("Drifted")), budget("4")}, reason: "Drifted", total: 10, want: 0},
		{name: "reason filter other", budgets: []karpv1.Budget{budget("0", reasons("Drifted")), budget("4")}, reason: "Empty", total: 10, want: 4},
		{name: "reasons and window", budgets: []karpv1.Budget{budget("1", business, reasons("Underutilized", "Empty"))}, reason: "Empty", now: monday10, total: 10, want: 1},
		{name: "bad nodes fails closed", budgets: []karpv1.Budget{budget("ten")}, total: 10, wantErr: true},
		{name: "bad percent", budgets: []karpv1.Budget{budget("101%")}, total: 10, wantErr: true},
		{name: "negative count", budgets: []karpv1.Budget{budget("-1")}, total: 10, wantErr: true},
		{name: "bad schedule", budgets: []karpv1.Budget{budget("1", sched("0 25 * * *", time.Hour))}, total: 10, wantErr: true},
		{name: "schedule without duration", budgets: []karpv1.Budget{{Nodes: "1", Schedule: new("@daily")}}, total: 10, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reason := tc.reason
			if reason == "" {
				reason = karpv1.DisruptionReasonUnderutilized
			}
			now := tc.now
			if now.IsZero() {
				now = monday10
			}
			got, err := AllowedDisruptions(tc.budgets, reason, now, tc.total, tc.disrupting)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if tc.wantErr {
				if got != 0 {
					t.Fatalf("invalid budget must fail closed, got %d", got)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestScaleNodes(t *testing.T) {
	for _, tc := range []struct {
		nodes string
		total int
		want  int
	}{{"10%", 1, 1}, {"10%", 10, 1}, {"10%", 11, 2}, {"33%", 3, 1}, {"0", 5, 0}, {"7", 5, 7}} {
		got, err := ScaleNodes(tc.nodes, tc.total)
		if err != nil || got != tc.want {
			t.Errorf("ScaleNodes(%q, %d) = %d, %v; want %d", tc.nodes, tc.total, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "%", "+5", "+5%", "-5%", "1.5", "5 %"} {
		if _, err := ScaleNodes(bad, 10); err == nil {
			t.Errorf("ScaleNodes(%q) succeeded", bad)
		}
	}
	if got, _ := budgetAllowance(&karpv1.Budget{Nodes: "1", Schedule: new("0 0 30 2 *"), Duration: &metav1.Duration{Duration: time.Hour}}, time.Now(), 3); got != math.MaxInt32 {
		t.Errorf("inactive budget allowance = %d", got)
	}
}
