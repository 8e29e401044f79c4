// Package fieldstatus is the one list of what Flotilla does with each
// field of Karpenter's NodePool and EC2NodeClass and each karpenter.k8s.aws
// label key: supported (acted on as Karpenter acts on it), or accepted
// with a condition (the CRD takes it, Flotilla does not act on it yet and
// says so on the object). docs/migrating-from-karpenter.md carries the
// table it renders; TestDocsTable keeps the two equal and checks that every
// field of the generated CRDs has a status.
package fieldstatus

import (
	"fmt"
	"sort"
	"strings"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
)

// Status is what Flotilla does with a field or label key.
type Status string

// Statuses.
const (
	Supported Status = "supported"
	// WithCondition: accepted, not acted on, and named on the object (a
	// status condition or validation message).
	WithCondition Status = "accepted-with-condition"
)

// Entry is the status of one field path (or of every field under it
// without an entry of its own).
type Entry struct {
	Path   string
	Status Status
	Note   string
}

// NodePool fields, by path prefix.
var NodePool = []Entry{
	{"spec.template.metadata", Supported, "labels and annotations go onto NodeClaims and nodes"},
	{"spec.template.spec.requirements", Supported, "every operator (In, NotIn, Exists, DoesNotExist, Gt, Lt, Gte, Lte) and minValues, planned by the solver and sent to the launcher"},
	{"spec.template.spec.nodeClassRef", Supported, "EC2NodeClass by name"},
	{"spec.template.spec.taints", Supported, ""},
	{"spec.template.spec.startupTaints", Supported, "ignored by planning until the node is initialized"},
	{"spec.template.spec.expireAfter", Supported, "expiration"},
	{"spec.template.spec.terminationGracePeriod", Supported, "drain deadline"},
	{"spec.template", Supported, ""},
	{"spec.disruption.budgets", Supported, "nodes, reasons, schedule and duration"},
	{"spec.disruption.consolidateAfter", Supported, ""},
	{"spec.disruption.consolidationPolicy", Supported, "WhenEmpty and WhenEmptyOrUnderutilized; Balanced consolidates only empty nodes and is named in the FieldsHonored condition"},
	{"spec.disruption", Supported, ""},
	{"spec.limits", Supported, "every resource, and nodes"},
	{"spec.weight", Supported, ""},
	{"spec.replicas", WithCondition, "static NodePools fail ValidationSucceeded (named in its message), are not Ready and launch nothing"},
}

// EC2NodeClass fields, by path prefix.
var EC2NodeClass = []Entry{
	{"spec.subnetSelectorTerms", Supported, ""},
	{"spec.securityGroupSelectorTerms", Supported, ""},
	{"spec.amiSelectorTerms", Supported, "alias (al2023, al2, bottlerocket; a Windows alias makes the class not Ready), id, name+owner (self,amazon by default), tags, ssmParameter"},
	{"spec.amiFamily", Supported, "user data per family; Windows by id, name or tags"},
	{"spec.userData", Supported, "merged per family as Karpenter documents"},
	{"spec.role", Supported, "managed instance profile"},
	{"spec.instanceProfile", Supported, ""},
	{"spec.tags", Supported, ""},
	{"spec.kubelet", Supported, "every field, in the user data and (maxPods, podsPerCore, reserved, eviction) in allocatable"},
	{"spec.blockDeviceMappings[].ebs.volumeInitializationRate", WithCondition, "FieldsHonored condition"},
	{"spec.blockDeviceMappings", Supported, ""},
	{"spec.instanceStorePolicy", Supported, "RAID0 in the user data"},
	{"spec.metadataOptions", Supported, ""},
	{"spec.detailedMonitoring", Supported, ""},
	{"spec.associatePublicIPAddress", Supported, ""},
	{"spec.context", WithCondition, "FieldsHonored condition"},
	{"spec.capacityReservationSelectorTerms", WithCondition, "FieldsHonored condition; no reserved capacity type"},
	{"spec.placementGroupSelector", WithCondition, "FieldsHonored condition"},
	{"spec.networkInterfaces", WithCondition, "FieldsHonored condition"},
	{"spec.ipPrefixCount", WithCondition, "FieldsHonored condition"},
	{"spec.cpuOptions", WithCondition, "FieldsHonored condition"},
	{"spec.connectionTracking", WithCondition, "FieldsHonored condition"},
}

// awsKeyNotes are the karpenter.k8s.aws keys that are not instance-type
// labels the launcher publishes; every other key of
// karpv1.KarpenterAWSKeys is.
var awsKeyNotes = map[string]Entry{
	"ec2nodeclass":                       {Status: Supported, Note: "tag and label of the node's EC2NodeClass"},
	"instance-tenancy":                   {Status: Supported, Note: "default on every type (Flotilla launches shared tenancy only); a requirement on dedicated leaves no type"},
	"capacity-reservation-type":          {Status: WithCondition, Note: noType + " (no capacity reservations yet)"},
	"capacity-reservation-id":            {Status: WithCondition, Note: noType + " (no capacity reservations yet)"},
	"capacity-reservation-interruptible": {Status: WithCondition, Note: noType + " (no capacity reservations yet)"},
	"placement-group-id":                 {Status: WithCondition, Note: noType + " (no placement groups yet)"},
	"placement-group-partition":          {Status: WithCondition, Note: noType + " (no placement groups yet)"},
	"nitro-sandbox":                      {Status: WithCondition, Note: noType},
}

// noType is what a requirement on a karpenter.k8s.aws key no type carries
// does: it filters, so the pods are reported unschedulable (a
// FailedScheduling event naming the NodePool).
const noType = "no instance type carries it, so an In requirement leaves the NodePool no type and its pods are reported unschedulable"

// AWSLabels is the status of each karpenter.k8s.aws key.
func AWSLabels() []Entry {
	var out []Entry
	for _, k := range karpv1.KarpenterAWSKeys {
		e, ok := awsKeyNotes[k]
		if !ok {
			e = Entry{Status: Supported, Note: "published on instance types and nodes; requirements filter on it"}
		}
		e.Path = "karpenter.k8s.aws/" + k
		out = append(out, e)
	}
	return out
}

// Lookup returns the entry for path: its own, else its nearest ancestor's.
func Lookup(entries []Entry, path string) (Entry, bool) {
	best := -1
	for i, e := range entries {
		if path == e.Path || strings.HasPrefix(path, e.Path+".") || strings.HasPrefix(path, e.Path+"[]") {
			if best < 0 || len(e.Path) > len(entries[best].Path) {
				best = i
			}
		}
	}
	if best < 0 {
		return Entry{}, false
	}
	return entries[best], true
}

// Table renders the markdown table of docs/migrating-from-karpenter.md:
// every field path of the CRDs (given per kind), then every label key,
// with the counts per status.
func Table(fields map[string][]string) string {
	var b strings.Builder
	counts := map[Status]int{}
	b.WriteString("| Kind | Field or label | Status | Notes |\n|---|---|---|---|\n")
	kinds := make([]string, 0, len(fields))
	for k := range fields {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		entries := map[string][]Entry{"NodePool": NodePool, "EC2NodeClass": EC2NodeClass}[kind]
		for _, path := range fields[kind] {
			e, _ := Lookup(entries, path)
			counts[e.Status]++
			note := ""
			if e.Path == path {
				note = e.Note
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", kind, path, e.Status, note)
		}
	}
	for _, e := range AWSLabels() {
		counts[e.Status]++
		fmt.Fprintf(&b, "| label | `%s` | %s | %s |\n", e.Path, e.Status, e.Note)
	}
	fmt.Fprintf(&b, "\n%d supported, %d accepted-with-condition, 0 rejected.\n", counts[Supported], counts[WithCondition])
	return b.String()
}
