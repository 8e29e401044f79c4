package solverapi

import (
	"errors"
	"math"
	"strings"
	"testing"

	solverv1 "github.com/flotilla-io/flotilla/proto/flotilla/solver/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// validRequest is a small request every validation case starts from.
func validRequest() *solverv1.SolveRequest {
	return &solverv1.SolveRequest{
		Pods: []*typesv1.Pod{
			{
				Name: "web-1",
				Containers: []*typesv1.Container{
					{Name: "app", Requests: map[string]string{"cpu": "500m", "memory": "1Gi"}},
				},
				Tolerations: []*typesv1.Toleration{{Key: "dedicated", Operator: "Equal", Value: "web", Effect: "NoSchedule"}},
				TopologySpreadConstraints: []*typesv1.TopologySpreadConstraint{{
					MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: "DoNotSchedule",
					LabelSelector: &typesv1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				}},
				PodAntiAffinity: &typesv1.PodAffinity{Preferred: []*typesv1.WeightedPodAffinityTerm{{
					Weight: 50, PodAffinityTerm: &typesv1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname"},
				}}},
				PreferredNodeAffinity: []*typesv1.PreferredSchedulingTerm{{
					Weight: 10, Preference: &typesv1.NodeSelectorTerm{MatchExpressions: []*typesv1.Requirement{{Key: "k", Operator: "Exists"}}},
				}},
				RequiredNodeAffinity: []*typesv1.NodeSelectorTerm{{MatchExpressions: []*typesv1.Requirement{{Key: "gen", Operator: "Gt", Values: []string{"4"}}}}},
				HostPorts:            []*typesv1.HostPort{{Port: 8080}},
			},
			{Namespace: "batch", Name: "job-1", Containers: []*typesv1.Container{{Requests: map[string]string{"nvidia.com/gpu": "1"}}}},
		},
		NodePools: []*typesv1.NodePool{{
			Name: "default", Weight: 10,
			Requirements: []*typesv1.Requirement{
				{Key: "karpenter.sh/capacity-type", Operator: "In", Values: []string{"spot", "on-demand"}},
				{Key: "karpenter.k8s.aws/instance-cpu", Operator: "Gte", Values: []string{"2"}},
				{Key: "karpenter.k8s.aws/instance-cpu", Operator: "Lte", Values: []string{"64"}},
			},
			Limits: map[string]string{"cpu": "1000"},
		}},
		InstanceTypes: []*typesv1.InstanceType{{
			Name:        "m5.large",
			Capacity:    map[string]string{"cpu": "2", "memory": "8Gi", "pods": "29"},
			Allocatable: map[string]string{"cpu": "1930m", "memory": "7Gi", "pods": "29"},
			Offerings:   []*typesv1.Offering{{Zone: "us-east-1a", CapacityType: "spot", PricePerHour: 0.04, Available: true}},
		}},
		Nodes: []*typesv1.Node{{Name: "node-a", NodePool: "unmanaged-pool", Allocatable: map[string]string{"cpu": "4"}}},
	}
}

func TestValidRequestPasses(t *testing.T) {
	if err := ValidateSolveRequest(validRequest()); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRules(t *testing.T) {
	pod0 := func(r *solverv1.SolveRequest) *typesv1.Pod { return r.Pods[0] }
	for _, tc := range []struct {
		name   string
		mutate func(r *solverv1.SolveRequest)
		field  string
		reason string
	}{
		{"bad quantity", func(r *solverv1.SolveRequest) { pod0(r).Containers[0].Requests["cpu"] = "12x" },
			`pods[0].containers[0].requests["cpu"]`, `invalid quantity "12x"`},
		{"negative quantity", func(r *solverv1.SolveRequest) { pod0(r).Containers[0].Requests["memory"] = "-1Gi" },
			`pods[0].containers[0].requests["memory"]`, "must not be negative"},
		{"huge quantity", func(r *solverv1.SolveRequest) { pod0(r).Containers[0].Requests["memory"] = "1e30" },
			`pods[0].containers[0].requests["memory"]`, "too large"},
		{"fractional extended resource", func(r *solverv1.SolveRequest) { r.Pods[1].Containers[0].Requests["nvidia.com/gpu"] = "0.5" },
			`pods[1].containers[0].requests["nvidia.com/gpu"]`, "whole number"},
		{"empty resource name", func(r *solverv1.SolveRequest) { pod0(r).Containers[0].Requests[""] = "1" },
			`pods[0].containers[0].requests[""]`, "resource name"},
		{"init container quantity", func(r *solverv1.SolveRequest) {
			pod0(r).InitContainers = []*typesv1.Container{{Requests: map[string]string{"cpu": "x"}}}
		}, `pods[0].init_containers[0].requests["cpu"]`, "invalid quantity"},
		{"overhead quantity", func(r *solverv1.SolveRequest) { pod0(r).Overhead = map[string]string{"cpu": "abc"} },
			`pods[0].overhead["cpu"]`, "invalid quantity"},
		{"allocatable quantity", func(r *solverv1.SolveRequest) { r.InstanceTypes[0].Allocatable["pods"] = "1.5" },
			`instance_types[0].allocatable["pods"]`, "whole number"},
		{"limit quantity", func(r *solverv1.SolveRequest) { r.NodePools[0].Limits["memory"] = "lots" },
			`node_pools[0].limits["memory"]`, "invalid quantity"},
		{"node allocatable", func(r *solverv1.SolveRequest) { r.Nodes[0].Allocatable["cpu"] = "-2" },
			`nodes[0].allocatable["cpu"]`, "negative"},

		{"unknown requirement operator", func(r *solverv1.SolveRequest) { r.NodePools[0].Requirements[0].Operator = "Within" },
			"node_pools[0].requirements[0].operator", `unknown operator "Within"`},
		{"In without values", func(r *solverv1.SolveRequest) { r.NodePools[0].Requirements[0].Values = nil },
			"node_pools[0].requirements[0].values", "at least one value"},
		{"Exists with values", func(r *solverv1.SolveRequest) {
			pod0(r).PreferredNodeAffinity[0].Preference.MatchExpressions[0].Values = []string{"x"}
		},
			"pods[0].preferred_node_affinity[0].preference.match_expressions[0].values", "takes no values"},
		{"Gt two values", func(r *solverv1.SolveRequest) {
			pod0(r).RequiredNodeAffinity[0].MatchExpressions[0].Values = []string{"1", "2"}
		},
			"pods[0].required_node_affinity[0].match_expressions[0].values", "exactly one value"},
		{"Lt non-integer", func(r *solverv1.SolveRequest) {
			pod0(r).RequiredNodeAffinity[0].MatchExpressions[0] = &typesv1.Requirement{Key: "gen", Operator: "Lt", Values: []string{"four"}}
		}, "pods[0].required_node_affinity[0].match_expressions[0].values[0]", "integer"},
		{"NodePool Gte non-integer", func(r *solverv1.SolveRequest) { r.NodePools[0].Requirements[1].Values = []string{"2.5"} },
			"node_pools[0].requirements[1].values[0]", "operator Gte needs an integer"},
		{"NodePool Lte two values", func(r *solverv1.SolveRequest) { r.NodePools[0].Requirements[2].Values = []string{"1", "2"} },
			"node_pools[0].requirements[2].values", "operator Lte needs exactly one value"},
		{"pod Gte", func(r *solverv1.SolveRequest) {
			pod0(r).RequiredNodeAffinity[0].MatchExpressions[0].Operator = "Gte"
		}, "pods[0].required_node_affinity[0].match_expressions[0].operator", "only allowed in NodePool requirements"},
		{"requirement key", func(r *solverv1.SolveRequest) { r.NodePools[0].Requirements[0].Key = "" },
			"node_pools[0].requirements[0].key", "must not be empty"},
		{"negative min values", func(r *solverv1.SolveRequest) { r.NodePools[0].Requirements[0].MinValues = -1 },
			"node_pools[0].requirements[0].min_values", "negative"},
		{"min values above values", func(r *solverv1.SolveRequest) { r.NodePools[0].Requirements[0].MinValues = 3 },
			"node_pools[0].requirements[0].min_values", "more than the 2 values"},
		{"min values on a pod", func(r *solverv1.SolveRequest) { pod0(r).RequiredNodeAffinity[0].MatchExpressions[0].MinValues = 1 },
			"pods[0].required_node_affinity[0].match_expressions[0].min_values", "only allowed in NodePool"},
		{"volume term", func(r *solverv1.SolveRequest) {
			pod0(r).Volumes = []*typesv1.VolumeTopology{{Name: "data", Terms: []*typesv1.NodeSelectorTerm{{MatchExpressions: []*typesv1.Requirement{{Key: "z", Operator: "In"}}}}}}
		}, "pods[0].volumes[0].terms[0].match_expressions[0].values", "at least one value"},

		{"label selector operator", func(r *solverv1.SolveRequest) {
			pod0(r).TopologySpreadConstraints[0].LabelSelector.MatchExpressions = []*typesv1.LabelSelectorRequirement{{Key: "app", Operator: "Gt", Values: []string{"1"}}}
		}, "pods[0].topology_spread_constraints[0].label_selector.match_expressions[0].operator", `unknown operator "Gt"`},
		{"label selector In without values", func(r *solverv1.SolveRequest) {
			pod0(r).PodAntiAffinity.Preferred[0].PodAffinityTerm.LabelSelector = &typesv1.LabelSelector{MatchExpressions: []*typesv1.LabelSelectorRequirement{{Key: "app", Operator: "In"}}}
		}, "pods[0].pod_anti_affinity.preferred[0].pod_affinity_term.label_selector.match_expressions[0].values", "at least one value"},
		{"namespace selector Exists with values", func(r *solverv1.SolveRequest) {
			pod0(r).PodAntiAffinity.Preferred[0].PodAffinityTerm.NamespaceSelector = &typesv1.LabelSelector{MatchExpressions: []*typesv1.LabelSelectorRequirement{{Key: "team", Operator: "Exists", Values: []string{"a"}}}}
		}, "pods[0].pod_anti_affinity.preferred[0].pod_affinity_term.namespace_selector.match_expressions[0].values", "takes no values"},

		{"taint effect", func(r *solverv1.SolveRequest) {
			r.NodePools[0].Taints = []*typesv1.Taint{{Key: "dedicated", Value: "web", Effect: "NoWay"}}
		}, "node_pools[0].taints[0].effect", `unknown effect "NoWay"`},
		{"startup taint key", func(r *solverv1.SolveRequest) {
			r.NodePools[0].StartupTaints = []*typesv1.Taint{{Effect: "NoSchedule"}}
		}, "node_pools[0].startup_taints[0].key", "must not be empty"},
		{"node taint effect empty", func(r *solverv1.SolveRequest) { r.Nodes[0].Taints = []*typesv1.Taint{{Key: "k"}} },
			"nodes[0].taints[0].effect", `unknown effect ""`},
		{"toleration operator", func(r *solverv1.SolveRequest) { pod0(r).Tolerations[0].Operator = "Like" },
			"pods[0].tolerations[0].operator", `unknown operator "Like"`},
		{"toleration Exists with value", func(r *solverv1.SolveRequest) { pod0(r).Tolerations[0].Operator = "Exists" },
			"pods[0].tolerations[0].value", "must be empty when operator is Exists"},
		{"toleration Equal without key", func(r *solverv1.SolveRequest) { pod0(r).Tolerations[0].Key = "" },
			"pods[0].tolerations[0].key", "unless operator is Exists"},
		{"toleration effect", func(r *solverv1.SolveRequest) { pod0(r).Tolerations[0].Effect = "Sometimes" },
			"pods[0].tolerations[0].effect", `unknown effect "Sometimes"`},

		{"spread max skew", func(r *solverv1.SolveRequest) { pod0(r).TopologySpreadConstraints[0].MaxSkew = 0 },
			"pods[0].topology_spread_constraints[0].max_skew", "less than 1"},
		{"spread topology key", func(r *solverv1.SolveRequest) { pod0(r).TopologySpreadConstraints[0].TopologyKey = "" },
			"pods[0].topology_spread_constraints[0].topology_key", "must not be empty"},
		{"spread when unsatisfiable", func(r *solverv1.SolveRequest) { pod0(r).TopologySpreadConstraints[0].WhenUnsatisfiable = "" },
			"pods[0].topology_spread_constraints[0].when_unsatisfiable", `unknown action ""`},
		{"spread min domains negative", func(r *solverv1.SolveRequest) { pod0(r).TopologySpreadConstraints[0].MinDomains = -1 },
			"pods[0].topology_spread_constraints[0].min_domains", "negative"},
		{"spread min domains with ScheduleAnyway", func(r *solverv1.SolveRequest) {
			c := pod0(r).TopologySpreadConstraints[0]
			c.WhenUnsatisfiable, c.MinDomains = "ScheduleAnyway", 2
		}, "pods[0].topology_spread_constraints[0].min_domains", "only allowed with when_unsatisfiable DoNotSchedule"},
		{"spread affinity policy", func(r *solverv1.SolveRequest) { pod0(r).TopologySpreadConstraints[0].NodeAffinityPolicy = "Obey" },
			"pods[0].topology_spread_constraints[0].node_affinity_policy", `unknown policy "Obey"`},
		{"spread taints policy", func(r *solverv1.SolveRequest) { pod0(r).TopologySpreadConstraints[0].NodeTaintsPolicy = "honor" },
			"pods[0].topology_spread_constraints[0].node_taints_policy", `unknown policy "honor"`},

		{"pod affinity topology key", func(r *solverv1.SolveRequest) {
			pod0(r).PodAffinity = &typesv1.PodAffinity{Required: []*typesv1.PodAffinityTerm{{LabelSelector: &typesv1.LabelSelector{}}}}
		}, "pods[0].pod_affinity.required[0].topology_key", "must not be empty"},
		{"weighted term missing", func(r *solverv1.SolveRequest) { pod0(r).PodAntiAffinity.Preferred[0].PodAffinityTerm = nil },
			"pods[0].pod_anti_affinity.preferred[0].pod_affinity_term", "must be set"},
		{"pod affinity weight 0", func(r *solverv1.SolveRequest) { pod0(r).PodAntiAffinity.Preferred[0].Weight = 0 },
			"pods[0].pod_anti_affinity.preferred[0].weight", "outside 1..100"},
		{"node affinity weight 101", func(r *solverv1.SolveRequest) { pod0(r).PreferredNodeAffinity[0].Weight = 101 },
			"pods[0].preferred_node_affinity[0].weight", "outside 1..100"},

		{"host port 0", func(r *solverv1.SolveRequest) { pod0(r).HostPorts[0].Port = 0 },
			"pods[0].host_ports[0].port", "outside 1..65535"},
		{"host port 65536", func(r *solverv1.SolveRequest) { pod0(r).HostPorts[0].Port = 65536 },
			"pods[0].host_ports[0].port", "outside 1..65535"},
		{"host port protocol", func(r *solverv1.SolveRequest) { pod0(r).HostPorts[0].Protocol = "tcp" },
			"pods[0].host_ports[0].protocol", `unknown protocol "tcp"`},

		{"pod name", func(r *solverv1.SolveRequest) { pod0(r).Name = "" }, "pods[0].name", "must not be empty"},
		{"duplicate pod", func(r *solverv1.SolveRequest) {
			r.Pods = append(r.Pods, &typesv1.Pod{Namespace: "default", Name: "web-1"})
		}, "pods[2].name", `duplicate pod "default/web-1" (also pods[0])`},
		{"node pod name", func(r *solverv1.SolveRequest) { r.Nodes[0].Pods = []*typesv1.Pod{{}} },
			"nodes[0].pods[0].name", "must not be empty"},
		{"nil pod", func(r *solverv1.SolveRequest) { r.Pods = append(r.Pods, nil) }, "pods[2]", "must be set"},

		{"empty catalog", func(r *solverv1.SolveRequest) { r.InstanceTypes = nil }, "instance_types", "must not be empty"},
		{"instance type name", func(r *solverv1.SolveRequest) { r.InstanceTypes[0].Name = "" },
			"instance_types[0].name", "must not be empty"},
		{"duplicate instance type", func(r *solverv1.SolveRequest) {
			r.InstanceTypes = append(r.InstanceTypes, &typesv1.InstanceType{Name: "m5.large"})
		}, "instance_types[1].name", `duplicate instance type "m5.large"`},
		{"negative price", func(r *solverv1.SolveRequest) { r.InstanceTypes[0].Offerings[0].PricePerHour = -0.1 },
			"instance_types[0].offerings[0].price_per_hour", "negative"},
		{"NaN price", func(r *solverv1.SolveRequest) { r.InstanceTypes[0].Offerings[0].PricePerHour = math.NaN() },
			"instance_types[0].offerings[0].price_per_hour", "not a finite number"},
		{"empty zone", func(r *solverv1.SolveRequest) { r.InstanceTypes[0].Offerings[0].Zone = "" },
			"instance_types[0].offerings[0].zone", "must not be empty"},
		{"empty capacity type", func(r *solverv1.SolveRequest) { r.InstanceTypes[0].Offerings[0].CapacityType = "" },
			"instance_types[0].offerings[0].capacity_type", "must not be empty"},

		{"duplicate NodePool", func(r *solverv1.SolveRequest) {
			r.NodePools = append(r.NodePools, &typesv1.NodePool{Name: "default"})
		}, "node_pools[1].name", `duplicate NodePool "default"`},
		{"NodePool name", func(r *solverv1.SolveRequest) { r.NodePools[0].Name = "" }, "node_pools[0].name", "must not be empty"},
		{"NodePool weight", func(r *solverv1.SolveRequest) { r.NodePools[0].Weight = 101 },
			"node_pools[0].weight", "outside 0..100"},
		{"NodePool negative weight", func(r *solverv1.SolveRequest) { r.NodePools[0].Weight = -1 },
			"node_pools[0].weight", "outside 0..100"},

		{"duplicate node", func(r *solverv1.SolveRequest) { r.Nodes = append(r.Nodes, &typesv1.Node{Name: "node-a"}) },
			"nodes[1].name", `duplicate node "node-a" (also nodes[0])`},
		{"claim named like a node", func(r *solverv1.SolveRequest) {
			r.NodeClaims = []*typesv1.NodeClaim{{Name: "node-a", NodePool: "default"}}
		}, "node_claims[0].name", `duplicate node or NodeClaim "node-a"`},
		{"node price", func(r *solverv1.SolveRequest) { r.Nodes[0].PricePerHour = math.Inf(1) },
			"nodes[0].price_per_hour", "not a finite number"},
		{"daemonset template", func(r *solverv1.SolveRequest) {
			r.DaemonSets = []*typesv1.DaemonSet{{Name: "agent"}}
		}, "daemon_sets[0].template", "must be set"},
		{"daemonset template quantity", func(r *solverv1.SolveRequest) {
			r.DaemonSets = []*typesv1.DaemonSet{{Name: "agent", Template: &typesv1.Pod{Containers: []*typesv1.Container{{Requests: map[string]string{"cpu": "?"}}}}}}
		}, `daemon_sets[0].template.containers[0].requests["cpu"]`, "invalid quantity"},
		{"duplicate namespace", func(r *solverv1.SolveRequest) {
			r.Namespaces = []*typesv1.Namespace{{Name: "a"}, {Name: "a"}}
		}, "namespaces[1].name", "duplicate namespace"},
		{"max instance type options", func(r *solverv1.SolveRequest) {
			r.Options = &solverv1.SolveOptions{MaxInstanceTypeOptions: -1}
		}, "options.max_instance_type_options", "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := validRequest()
			tc.mutate(req)
			err := ValidateSolveRequest(req)
			if err == nil {
				t.Fatal("request accepted")
			}
			if !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("error %v does not wrap ErrInvalidArgument", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v has no FieldError", err)
			}
			if fe.Field != tc.field {
				t.Errorf("field = %q, want %q (error: %v)", fe.Field, tc.field, err)
			}
			if !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("reason = %q, want it to contain %q", fe.Reason, tc.reason)
			}
			if want := tc.field + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("message %q does not start with %q", err.Error(), want)
			}
			// Solve must refuse it the same way, before the solver runs.
			if _, err := Solve(t.Context(), req); !errors.Is(err, ErrInvalidArgument) {
				t.Errorf("Solve: %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func TestFieldErrorMessage(t *testing.T) {
	err := error(&FieldError{Field: `pods[3].containers[0].requests["cpu"]`, Reason: `invalid quantity "12x"`})
	if got, want := err.Error(), `pods[3].containers[0].requests["cpu"]: invalid quantity "12x"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrInvalidArgument) {
		t.Error("FieldError does not wrap ErrInvalidArgument")
	}
}

func TestValidationErrorCapsAndCounts(t *testing.T) {
	req := validRequest()
	for i := 0; i < 25; i++ {
		req.Pods = append(req.Pods, &typesv1.Pod{}) // no name
	}
	err := ValidateSolveRequest(req)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v", err)
	}
	if len(ve.Errors) != maxFieldErrors || ve.Omitted != 25-maxFieldErrors {
		t.Errorf("errors %d omitted %d", len(ve.Errors), ve.Omitted)
	}
	if !strings.HasSuffix(err.Error(), "; and 15 more") || strings.Contains(err.Error(), "\n") {
		t.Errorf("message %q", err.Error())
	}
}

func TestValidateAllowsUnknownNodePoolOnNodes(t *testing.T) {
	req := validRequest()
	req.Nodes[0].NodePool = "gone"
	req.NodeClaims = []*typesv1.NodeClaim{{Name: "claim-1", NodePool: "also-gone"}}
	if err := ValidateSolveRequest(req); err != nil {
		t.Fatal(err)
	}
}

func TestValidateSamePodNameInOtherNamespace(t *testing.T) {
	req := validRequest()
	req.Pods = append(req.Pods, &typesv1.Pod{Namespace: "other", Name: "web-1"})
	if err := ValidateSolveRequest(req); err != nil {
		t.Fatal(err)
	}
	// An empty namespace is "default".
	req.Pods = append(req.Pods, &typesv1.Pod{Name: "web-1"})
	if err := ValidateSolveRequest(req); err == nil {
		t.Fatal(`duplicate of "default/web-1" accepted`)
	}
}

func TestValidateConsolidateRequest(t *testing.T) {
	if err := ValidateConsolidateRequest(&solverv1.ConsolidateRequest{}); err != nil {
		t.Errorf("empty consolidate request: %v", err)
	}
	err := ValidateConsolidateRequest(&solverv1.ConsolidateRequest{
		Nodes: []*typesv1.Node{{Name: "n", Pods: []*typesv1.Pod{{Name: "p", HostPorts: []*typesv1.HostPort{{Port: -1}}}}}},
	})
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "nodes[0].pods[0].host_ports[0].port" {
		t.Errorf("got %v", err)
	}
	if _, err := Consolidate(t.Context(), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Consolidate(t.Context(), nil): %v", err)
	}
	if _, err := Solve(t.Context(), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Solve(nil): %v", err)
	}
}
