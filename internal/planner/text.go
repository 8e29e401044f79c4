package planner

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// maxOptionsShown is how many instance type options a text row lists.
const maxOptionsShown = 3

// WriteText prints the report for people: the provisioning plan, the
// disruption decisions and the cost.
func WriteText(w io.Writer, r *Report) error {
	if _, err := fmt.Fprintf(w, "Flotilla plan at %s (instance types: %s; solver: %s). Nothing was changed.\n\n",
		r.Time.Format(time.RFC3339), r.InstanceTypes, r.Solver); err != nil {
		return err
	}
	if err := writeProvisioning(w, &r.Provisioning); err != nil {
		return err
	}
	if err := writeConsolidation(w, &r.Consolidation); err != nil {
		return err
	}
	c := r.Cost
	_, err := fmt.Fprintf(w, "\nCost: %s/hour now -> %s/hour planned (+%s launch, -%s removed, +%s replacements)\n",
		money(c.CurrentPerHour), money(c.PlannedPerHour), money(c.LaunchPerHour), money(c.RemovedPerHour), money(c.ReplacementsPerHour))
	return err
}

func writeProvisioning(w io.Writer, p *Provisioning) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PROVISIONING: %d pending %s\n", p.PendingPods, plural(p.PendingPods, "pod", "pods"))
	placedNew := 0
	if len(p.NodeClaims) > 0 {
		fmt.Fprintln(tw, "#\tNODEPOOL\tINSTANCE TYPE\tOPTIONS\tZONE\tCAPACITY TYPE\t$/HOUR\tPODS")
		for i, nc := range p.NodeClaims {
			placedNew += len(nc.Pods)
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", i+1, nc.NodePool, nc.InstanceType, options(nc.InstanceTypeOptions),
				nc.Zone, nc.CapacityType, money(nc.PricePerHour), len(nc.Pods))
		}
	}
	placedExisting := 0
	if len(p.ExistingNodeBindings) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "EXISTING NODE\tPODS")
		for _, n := range sortedKeys(p.ExistingNodeBindings) {
			placedExisting += len(p.ExistingNodeBindings[n])
			fmt.Fprintf(tw, "%s\t%d\n", n, len(p.ExistingNodeBindings[n]))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeUnschedulable(w, p); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "Launch: %d %s, %s/hour (lower bound %s/hour); %d pods on new nodes, %d on existing nodes, %d unschedulable\n",
		len(p.NodeClaims), plural(len(p.NodeClaims), "NodeClaim", "NodeClaims"), money(p.CostPerHour), money(p.LowerBoundPerHour),
		placedNew, placedExisting, len(p.Unschedulable))
	return err
}

func writeUnschedulable(w io.Writer, p *Provisioning) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(p.Unschedulable) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "UNSCHEDULABLE POD\tREASON")
		for _, u := range p.Unschedulable {
			fmt.Fprintf(tw, "%s\t%s\n", u.Pod, oneLine(u.Reason))
			for _, r := range u.NodePools {
				fmt.Fprintf(tw, "\t  nodepool %s: %s\n", r.NodePool, oneLine(r.Reason))
			}
		}
	}
	if len(p.Skipped) > 0 {
		fmt.Fprintln(tw)
		fmt.Fprintln(tw, "LEFT OUT\tREASON")
		for _, s := range p.Skipped {
			fmt.Fprintf(tw, "%s %s\t%s\n", s.Kind, s.Name, oneLine(s.Reason))
		}
	}
	if len(p.Unschedulable) > 0 || len(p.Skipped) > 0 || len(p.NodeClaims) > 0 || len(p.ExistingNodeBindings) > 0 {
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

func writeConsolidation(w io.Writer, c *Consolidation) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nDISRUPTION: %d launched %s, %d to disrupt\n", c.Candidates, plural(c.Candidates, "NodeClaim", "NodeClaims"), len(c.Decisions))
	if len(c.Decisions)+len(c.Kept) > 0 {
		fmt.Fprintln(tw, "NODECLAIM\tNODE\tNODEPOOL\t$/HOUR\tDECISION\tSAVES $/H\tNEW $/H\tWHY")
	}
	for _, d := range c.Decisions {
		why := d.Message
		if len(d.Replacements) > 0 {
			var its []string
			for _, r := range d.Replacements {
				its = append(its, fmt.Sprintf("%s %s %s", r.InstanceType, r.Zone, r.CapacityType))
			}
			why += "; replacement: " + strings.Join(its, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t%s\t%s\t%s\n", d.NodeClaim, dash(d.Node), d.NodePool, money(d.PricePerHour),
			d.Action, d.Reason, money(d.SavingsPerHour), money(d.NewCostPerHour), oneLine(why))
	}
	for _, k := range c.Kept {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tkeep (%s)\t-\t-\t%s\n", k.NodeClaim, dash(k.Node), dash(k.NodePool), money(k.PricePerHour),
			k.Reason, oneLine(k.Message))
	}
	return tw.Flush()
}

func options(opts []string) string {
	if len(opts) == 0 {
		return "-"
	}
	if len(opts) <= maxOptionsShown {
		return strings.Join(opts, ",")
	}
	return fmt.Sprintf("%s +%d", strings.Join(opts[:maxOptionsShown], ","), len(opts)-maxOptionsShown)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func money(v float64) string { return "$" + strconv.FormatFloat(v, 'f', 4, 64) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
