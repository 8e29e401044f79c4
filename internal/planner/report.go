package planner

import "time"

// Report is what Flotilla would do now: the NodeClaims it would launch for
// the pending pods, the nodes it would disrupt, and what that costs. It is
// what `flotilla plan -o json` prints.
type Report struct {
	// Time is when the cluster was read.
	Time time.Time `json:"time"`
	// InstanceTypes says where instance types and prices came from.
	InstanceTypes string `json:"instanceTypes"`
	// Solver says which solver planned: "in-process" or an address.
	Solver string `json:"solver"`
	// Provisioning is the plan for the pending pods.
	Provisioning Provisioning `json:"provisioning"`
	// Consolidation is the disruption pass's decisions for every launched
	// NodeClaim.
	Consolidation Consolidation `json:"consolidation"`
	// Cost sums it up.
	Cost Cost `json:"cost"`
}

// Provisioning is the plan for the pending pods.
type Provisioning struct {
	// PendingPods counts the pods waiting for capacity.
	PendingPods int `json:"pendingPods"`
	// NodeClaims are the nodes Flotilla would launch.
	NodeClaims []NodeClaim `json:"nodeClaims"`
	// ExistingNodeBindings map an existing node (or in-flight NodeClaim)
	// to the pending pods planned onto it.
	ExistingNodeBindings map[string][]string `json:"existingNodeBindings"`
	// Unschedulable are the pods no NodePool can take, with why.
	Unschedulable []Unschedulable `json:"unschedulable"`
	// Skipped are the objects left out of the request (a NodePool whose
	// EC2NodeClass is missing, a pod that cannot be converted), with why.
	Skipped []Skipped `json:"skipped"`
	// CostPerHour is what the new NodeClaims cost, in US dollars per hour.
	CostPerHour float64 `json:"costPerHour"`
	// LowerBoundPerHour is a proven lower bound on CostPerHour.
	LowerBoundPerHour float64 `json:"lowerBoundPerHour"`
	// SolveSeconds is the solver's time.
	SolveSeconds float64 `json:"solveSeconds"`
}

// NodeClaim is one node Flotilla would launch.
type NodeClaim struct {
	NodePool string `json:"nodePool"`
	// InstanceType is the cheapest option; the launcher may pick any of
	// InstanceTypeOptions.
	InstanceType        string   `json:"instanceType"`
	InstanceTypeOptions []string `json:"instanceTypeOptions"`
	Zone                string   `json:"zone"`
	CapacityType        string   `json:"capacityType"`
	PricePerHour        float64  `json:"pricePerHour"`
	// Pods are the pending pods planned onto it, as namespace/name.
	Pods []string `json:"pods"`
}

// Unschedulable is a pending pod the plan cannot place.
type Unschedulable struct {
	Pod    string `json:"pod"`
	Reason string `json:"reason"`
	// NodePools say what ruled out each NodePool.
	NodePools []PoolReason `json:"nodePools,omitempty"`
}

// PoolReason is why one NodePool cannot take a pod.
type PoolReason struct {
	NodePool string `json:"nodePool"`
	Reason   string `json:"reason"`
}

// Skipped is an object left out of the provisioning request.
type Skipped struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Consolidation is the disruption pass's view of every launched NodeClaim.
type Consolidation struct {
	// Candidates counts the launched NodeClaims looked at.
	Candidates int `json:"candidates"`
	// Decisions are the NodeClaims Flotilla would disrupt now.
	Decisions []Decision `json:"decisions"`
	// Kept are the NodeClaims it would leave alone, with why.
	Kept []Kept `json:"kept"`
}

// Decision is one NodeClaim Flotilla would disrupt.
type Decision struct {
	NodeClaim string `json:"nodeClaim"`
	Node      string `json:"node,omitempty"`
	NodePool  string `json:"nodePool"`
	// Reason is Expired, Drifted, Empty or Underutilized.
	Reason string `json:"reason"`
	// Action is Delete or Replace.
	Action string `json:"action"`
	// PricePerHour is what the node costs now.
	PricePerHour float64 `json:"pricePerHour"`
	// SavingsPerHour is the saving of the consolidation action the node
	// belongs to (which may remove several nodes).
	SavingsPerHour float64 `json:"savingsPerHour"`
	// NewCostPerHour is what its replacements cost (0 for Delete).
	NewCostPerHour float64 `json:"newCostPerHour"`
	// Replacements are the NodeClaims that would be launched first.
	Replacements []NodeClaim `json:"replacements,omitempty"`
	// Message explains the decision.
	Message string `json:"message"`
}

// Kept is a NodeClaim left alone.
type Kept struct {
	NodeClaim    string  `json:"nodeClaim"`
	Node         string  `json:"node,omitempty"`
	NodePool     string  `json:"nodePool"`
	PricePerHour float64 `json:"pricePerHour"`
	// Reason is a short code: DoNotDisrupt, PodDisruptionBudget, Budget,
	// NoCheaperFit (or another solver kind), ConsolidationPolicy,
	// ConsolidateAfter, NotInitialized, NotRegistered, Deleting,
	// NodePoolMissing, Nominated, ...
	Reason string `json:"reason"`
	// Message explains it.
	Message string `json:"message"`
}

// Cost sums the plan up, in US dollars per hour.
type Cost struct {
	// CurrentPerHour is what the launched NodeClaims cost now.
	CurrentPerHour float64 `json:"currentPerHour"`
	// LaunchPerHour is what the provisioning plan adds.
	LaunchPerHour float64 `json:"launchPerHour"`
	// RemovedPerHour is what the disrupted nodes cost.
	RemovedPerHour float64 `json:"removedPerHour"`
	// ReplacementsPerHour is what their replacements cost.
	ReplacementsPerHour float64 `json:"replacementsPerHour"`
	// PlannedPerHour is Current + Launch - Removed + Replacements.
	PlannedPerHour float64 `json:"plannedPerHour"`
}
