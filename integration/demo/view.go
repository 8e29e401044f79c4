package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// view renders the watcher's state (GetState over gRPC): redrawn in place
// on a terminal, one line per change otherwise (logs, CI).
type view struct {
	out   io.Writer
	w     watcherv1.WatcherServiceClient
	every time.Duration
	tty   bool
	start time.Time
	last  string
}

func newView(out io.Writer, w watcherv1.WatcherServiceClient, every time.Duration) *view {
	return &view{out: out, w: w, every: every, tty: isTerminal(out), start: time.Now()}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// live shows the state every period until done reports true (then it
// returns that state) or ctx ends (an error, unless done is nil).
func (v *view) live(ctx context.Context, done func(*watcherv1.GetStateResponse) (bool, error)) (*watcherv1.GetStateResponse, error) {
	var last error
	for {
		st, err := v.w.GetState(ctx, &watcherv1.GetStateRequest{})
		if err == nil {
			v.render(st)
			if done == nil {
				last = nil
			} else {
				var ok bool
				ok, last = done(st)
				if ok {
					return st, nil
				}
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			if done == nil {
				return st, nil
			}
			return st, errors.Join(ctx.Err(), last)
		case <-time.After(v.every):
		}
	}
}

func (v *view) render(st *watcherv1.GetStateResponse) {
	if v.tty {
		fmt.Fprint(v.out, "\033[H\033[2J")
		fmt.Fprint(v.out, table(st, time.Since(v.start)))
		return
	}
	line := oneLine(st)
	if line != v.last {
		fmt.Fprintf(v.out, "  [%6s] %s\n", time.Since(v.start).Round(time.Second), line)
		v.last = line
	}
}

// group is the NodeClaims of one (instance type, zone, capacity type).
type group struct {
	instanceType, zone, capacityType string
	count                            int
	pricePerHour                     float64
}

func groups(st *watcherv1.GetStateResponse) []group {
	byKey := map[string]*group{}
	for _, c := range st.GetNodeClaims() {
		it := c.GetInstanceType()
		if it == "" {
			it = "(launching)"
		}
		key := it + "/" + c.GetZone() + "/" + c.GetCapacityType()
		g := byKey[key]
		if g == nil {
			g = &group{instanceType: it, zone: c.GetZone(), capacityType: c.GetCapacityType()}
			byKey[key] = g
		}
		g.count++
		g.pricePerHour += c.GetPricePerHour()
	}
	out := make([]group, 0, len(byKey))
	for _, g := range byKey {
		out = append(out, *g)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].instanceType != out[j].instanceType {
			return out[i].instanceType < out[j].instanceType
		}
		return out[i].zone+out[i].capacityType < out[j].zone+out[j].capacityType
	})
	return out
}

func oneLine(st *watcherv1.GetStateResponse) string {
	parts := make([]string, 0, len(st.GetNodeClaims()))
	for _, g := range groups(st) {
		parts = append(parts, fmt.Sprintf("%d×%s %s %s", g.count, g.instanceType, g.zone, g.capacityType))
	}
	line := fmt.Sprintf("pending %d | %d NodeClaims $%.3f/h", len(st.GetPendingPods()), len(st.GetNodeClaims()), st.GetCostPerHour())
	if ls := st.GetLastSolve(); ls != nil {
		line += fmt.Sprintf(" | last solve %d pods → %d claims $%.3f/h, bound $%.3f/h", ls.GetPods(), ls.GetNodeClaims(), ls.GetCostPerHour(), ls.GetLowerBoundPerHour())
	}
	if len(parts) > 0 {
		line += " | " + strings.Join(parts, ", ")
	}
	return line
}

func table(st *watcherv1.GetStateResponse, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Flotilla demo — %s — Ctrl-C stops everything\n\n", elapsed.Round(time.Second))
	fmt.Fprintf(&b, "pending pods %d    NodeClaims %d    nodes %d    cost $%.3f/h\n", len(st.GetPendingPods()), len(st.GetNodeClaims()), len(st.GetNodes()), st.GetCostPerHour())
	if ls := st.GetLastSolve(); ls != nil {
		ratio := ""
		if ls.GetLowerBoundPerHour() > 0 {
			ratio = fmt.Sprintf(" (%.2f× the bound)", ls.GetCostPerHour()/ls.GetLowerBoundPerHour())
		}
		fmt.Fprintf(&b, "last solve: %d pods → %d NodeClaims at $%.3f/h, lower bound $%.3f/h%s, %.0f ms\n",
			ls.GetPods(), ls.GetNodeClaims(), ls.GetCostPerHour(), ls.GetLowerBoundPerHour(), ratio, ls.GetSolveSeconds()*1000)
	}
	fmt.Fprintf(&b, "\n%-16s %-12s %-10s %5s %10s\n", "INSTANCE TYPE", "ZONE", "CAPACITY", "COUNT", "$/H")
	for _, g := range groups(st) {
		fmt.Fprintf(&b, "%-16s %-12s %-10s %5d %10.3f\n", g.instanceType, g.zone, g.capacityType, g.count, g.pricePerHour)
	}
	if decs := st.GetRecentDecisions(); len(decs) > 0 {
		fmt.Fprintln(&b, "\nrecent decisions:")
		for i, dec := range decs {
			if i == 6 {
				break
			}
			fmt.Fprintf(&b, "  %s %-12s %s %s\n", dec.GetTime().AsTime().Format("15:04:05"), dec.GetKind(), dec.GetObject(), dec.GetMessage())
		}
	}
	return b.String()
}
