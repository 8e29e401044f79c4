package audit

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// inputs decodes YAML documents (separated by ---) into Inputs.
func inputs(t *testing.T, live bool, docs ...string) *Inputs {
	t.Helper()
	in := &Inputs{FromLiveCluster: live}
	for _, d := range strings.Split(strings.Join(docs, "\n---\n"), "\n---\n") {
		if strings.TrimSpace(d) == "" {
			continue
		}
		j, err := yaml.YAMLToJSON([]byte(d))
		if err != nil {
			t.Fatalf("test YAML: %v\n%s", err, d)
		}
		if err := in.addObject(j); err != nil {
			t.Fatalf("test object: %v\n%s", err, d)
		}
	}
	return in
}

// run runs one check and renders its findings as "severity Object: message".
func run(in *Inputs, c checkFunc) (found []string, skipped []string) {
	r := &Report{}
	c(in, r)
	sortFindings(r.Findings)
	for _, f := range r.Findings {
		found = append(found, fmt.Sprintf("%s %s: %s", f.Severity, f.Object, f.Message))
	}
	for _, s := range r.Skipped {
		skipped = append(skipped, s.Check)
	}
	return found, skipped
}

// checkCase is one table row: inputs, and the findings expected, each a
// prefix ("severity Kind ns/name") or a substring of a rendered finding.
type checkCase struct {
	name string
	live bool
	docs []string
	want []string
	skip bool // the check reports itself skipped
}

func runCases(t *testing.T, check checkFunc, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			found, skipped := run(inputs(t, tc.live, tc.docs...), check)
			if len(found) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(found), len(tc.want), strings.Join(found, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(found[i], w) {
					t.Errorf("finding %d = %q, want it to contain %q", i, found[i], w)
				}
			}
			if (len(skipped) > 0) != tc.skip {
				t.Errorf("skipped = %v, want skipped %v", skipped, tc.skip)
			}
		})
	}
}

func nodeClass(name, amiTerms string) string {
	return fmt.Sprintf(`apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: %s}
spec:
  role: r
  %s
  subnetSelectorTerms: [{tags: {a: b}}]
  securityGroupSelectorTerms: [{tags: {a: b}}]`, name, amiTerms)
}

func TestCheckAMIPinned(t *testing.T) {
	runCases(t, checkAMIPinned, []checkCase{
		{name: "pinned alias", docs: []string{nodeClass("a", "amiSelectorTerms: [{alias: al2023@v20240807}]")}},
		{name: "AMI id", docs: []string{nodeClass("a", "amiSelectorTerms: [{id: ami-0123456789abcdef0}]")}},
		{name: "exact name", docs: []string{nodeClass("a", "amiSelectorTerms: [{name: my-ami-2024-08-01, owner: self}]")}},
		{name: "latest alias", docs: []string{nodeClass("a", "amiSelectorTerms: [{alias: al2023@latest}]")}, want: []string{`required EC2NodeClass a: amiSelectorTerms[0].alias "al2023@latest"`}},
		{name: "alias without version", docs: []string{nodeClass("b", "amiSelectorTerms: [{alias: bottlerocket}]")}, want: []string{"required EC2NodeClass b"}},
		{name: "bare amiFamily", docs: []string{nodeClass("c", "amiFamily: AL2023")}, want: []string{"amiFamily AL2023 without amiSelectorTerms"}},
		{name: "recommended SSM parameter", docs: []string{nodeClass("d", "amiSelectorTerms: [{ssmParameter: /aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/standard/recommended/image_id}]")}, want: []string{"ssmParameter"}},
		{name: "name pattern", docs: []string{nodeClass("e", `amiSelectorTerms: [{name: "my-ami-*"}]`)}, want: []string{"is a pattern"}},
		{name: "one term of two", docs: []string{nodeClass("f", "amiSelectorTerms: [{id: ami-1}, {alias: al2@latest}]")}, want: []string{"amiSelectorTerms[1]"}},
	})
}

func nodePool(name, extra string, reqs ...string) string {
	r := "[]"
	if len(reqs) > 0 {
		r = "\n        - " + strings.Join(reqs, "\n        - ")
	}
	return fmt.Sprintf(`apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: %s}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements: %s
  limits: {cpu: 100}
%s`, name, r, extra)
}

const (
	spotReq     = "{key: karpenter.sh/capacity-type, operator: In, values: [spot]}"
	onDemandReq = "{key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}"
)

func TestCheckNodePoolOverlap(t *testing.T) {
	runCases(t, checkNodePoolOverlap, []checkCase{
		{name: "one pool", docs: []string{nodePool("a", "")}},
		{name: "same weight, no requirements", docs: []string{nodePool("a", ""), nodePool("b", "")}, want: []string{"high NodePool a: can match the same pods as NodePool b with the same weight 0"}},
		{name: "different weights", docs: []string{nodePool("a", "  weight: 10"), nodePool("b", "")}},
		{name: "same explicit weight", docs: []string{nodePool("a", "  weight: 10"), nodePool("b", "  weight: 10")}, want: []string{"weight 10"}},
		{name: "spot and on-demand", docs: []string{nodePool("a", "", spotReq), nodePool("b", "", onDemandReq)}},
		{name: "spot and default on-demand", docs: []string{nodePool("a", "", spotReq), nodePool("b", "")}},
		{name: "both allow spot", docs: []string{nodePool("a", "", spotReq), nodePool("b", "", "{key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}")}, want: []string{"NodePool a"}},
		{name: "disjoint arch", docs: []string{
			nodePool("a", "", "{key: kubernetes.io/arch, operator: In, values: [amd64]}"),
			nodePool("b", "", "{key: kubernetes.io/arch, operator: In, values: [arm64]}"),
		}},
		{name: "NotIn excludes the only value", docs: []string{
			nodePool("a", "", "{key: karpenter.k8s.aws/instance-family, operator: In, values: [m5]}"),
			nodePool("b", "", "{key: karpenter.k8s.aws/instance-family, operator: NotIn, values: [m5]}"),
		}},
		{name: "disjoint cpu ranges", docs: []string{
			nodePool("a", "", "{key: karpenter.k8s.aws/instance-cpu, operator: Lt, values: ['9']}"),
			nodePool("b", "", "{key: karpenter.k8s.aws/instance-cpu, operator: Gt, values: ['8']}"),
		}},
		{name: "overlapping cpu ranges", docs: []string{
			nodePool("a", "", "{key: karpenter.k8s.aws/instance-cpu, operator: Lt, values: ['17']}"),
			nodePool("b", "", "{key: karpenter.k8s.aws/instance-cpu, operator: Gt, values: ['8']}"),
		}, want: []string{"NodePool a"}},
		{name: "Exists and DoesNotExist", docs: []string{
			nodePool("a", "", "{key: example.com/team, operator: Exists}"),
			nodePool("b", "", "{key: example.com/team, operator: DoesNotExist}"),
		}},
		{name: "different taints", docs: []string{
			strings.Replace(nodePool("a", ""), "requirements: []", "requirements: []\n      taints: [{key: gpu, value: 'true', effect: NoSchedule}]", 1),
			nodePool("b", ""),
		}},
		{name: "different template labels", docs: []string{
			strings.Replace(nodePool("a", ""), "  template:\n", "  template:\n    metadata: {labels: {team: a}}\n", 1),
			strings.Replace(nodePool("b", ""), "  template:\n", "  template:\n    metadata: {labels: {team: b}}\n", 1),
		}},
		{name: "three overlapping pools", docs: []string{nodePool("a", ""), nodePool("b", ""), nodePool("c", "")}, want: []string{"NodePool a: can match the same pods as NodePool b", "NodePool a: can match the same pods as NodePool c", "NodePool b"}},
	})
}

func TestCheckSpotDiversity(t *testing.T) {
	types := func(n int) string {
		var v []string
		for i := 0; i < n; i++ {
			v = append(v, fmt.Sprintf("t%d.large", i))
		}
		return "{key: node.kubernetes.io/instance-type, operator: In, values: [" + strings.Join(v, ", ") + "]}"
	}
	runCases(t, checkSpotDiversity, []checkCase{
		{name: "on-demand with few types", docs: []string{nodePool("a", "", types(2))}},
		{name: "spot with few types", docs: []string{nodePool("a", "", spotReq, types(2))}, want: []string{"high NodePool a: allows Spot but only 2 instance types"}},
		{name: "spot with 15 types", docs: []string{nodePool("a", "", spotReq, types(15))}},
		{name: "spot with 14 types", docs: []string{nodePool("a", "", spotReq, types(14))}, want: []string{"only 14 instance types"}},
		{name: "NotIn narrows the list", docs: []string{nodePool("a", "", spotReq, types(15), "{key: node.kubernetes.io/instance-type, operator: NotIn, values: [t0.large]}")}, want: []string{"only 14"}},
		{name: "spot without type constraints", docs: []string{nodePool("a", "", spotReq, "{key: karpenter.k8s.aws/instance-category, operator: In, values: [c, m, r]}")}},
		{name: "single family, sized", docs: []string{nodePool("a", "", spotReq, "{key: karpenter.k8s.aws/instance-family, operator: In, values: [m5]}", "{key: karpenter.k8s.aws/instance-cpu, operator: Lt, values: ['9']}")}, want: []string{"single instance family m5, further narrowed by karpenter.k8s.aws/instance-cpu"}},
		{name: "single family, any size", docs: []string{nodePool("a", "", spotReq, "{key: karpenter.k8s.aws/instance-family, operator: In, values: [m5]}")}},
		{name: "families times sizes", docs: []string{nodePool("a", "", spotReq, "{key: karpenter.k8s.aws/instance-family, operator: In, values: [m5, m6i, c5]}", "{key: karpenter.k8s.aws/instance-size, operator: In, values: [large, xlarge]}")}, want: []string{"at most 6 instance types (3 families times 2 sizes)"}},
		{name: "many families times sizes", docs: []string{nodePool("a", "", spotReq, "{key: karpenter.k8s.aws/instance-family, operator: In, values: [m5, m6i, m7i, c5, c6i, c7i, r5, r6i]}", "{key: karpenter.k8s.aws/instance-size, operator: In, values: [large, xlarge]}")}},
	})
}

func TestCheckNodePoolLimits(t *testing.T) {
	noLimits := strings.Replace(nodePool("b", ""), "  limits: {cpu: 100}\n", "", 1)
	runCases(t, checkNodePoolLimits, []checkCase{
		{name: "limits", docs: []string{nodePool("a", "")}},
		{name: "no limits", docs: []string{nodePool("a", ""), noLimits}, want: []string{"high NodePool b: no spec.limits"}},
	})
}

func deployment(ns, name string, replicas int, podSpec string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: %s, namespace: %s}
spec:
  replicas: %d
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
%s`, name, ns, replicas, name, name, indent(podSpec, "      "))
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

const (
	avoidAffinity = `affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions: [{key: karpenter.sh/nodepool, operator: DoesNotExist}]`
	goodContainer = `containers:
  - name: app
    image: app:1
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {memory: 128Mi}`
)

func controllerPod(name, node string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: flotilla, labels: {app: flotilla-launcher}}
spec:
  nodeName: %s
  containers: [{name: c, image: i}]`, name, node)
}

func node(name string, labels string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Node\nmetadata: {name: %s, labels: {%s}}", name, labels)
}

func TestCheckControllerPlacement(t *testing.T) {
	runCases(t, checkControllerPlacement, []checkCase{
		{name: "no controller", docs: []string{deployment("default", "web", 1, goodContainer)}, skip: true},
		{name: "affinity", docs: []string{deployment("flotilla", "flotilla-launcher", 1, avoidAffinity+"\n"+goodContainer)}},
		{name: "nodegroup selector", docs: []string{deployment("flotilla", "flotilla-launcher", 1, "nodeSelector: {eks.amazonaws.com/nodegroup: system}\n"+goodContainer)}},
		{name: "no affinity", docs: []string{deployment("flotilla", "flotilla-launcher", 1, goodContainer)}, want: []string{"required Deployment flotilla/flotilla-launcher: flotilla-launcher pods may be scheduled"}},
		{name: "karpenter without affinity", docs: []string{deployment("kube-system", "karpenter", 2, goodContainer)}, want: []string{"required Deployment kube-system/karpenter"}},
		{name: "affinity in one term of two", docs: []string{deployment("flotilla", "flotilla-solver", 1, `affinity:
  nodeAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      nodeSelectorTerms:
        - matchExpressions: [{key: karpenter.sh/nodepool, operator: DoesNotExist}]
        - matchExpressions: [{key: kubernetes.io/os, operator: In, values: [linux]}]
`+goodContainer)}, want: []string{"Deployment flotilla/flotilla-solver"}},
		{name: "live pod on a managed node", live: true, docs: []string{
			deployment("flotilla", "flotilla-launcher", 1, avoidAffinity+"\n"+goodContainer),
			controllerPod("flotilla-launcher-abc", "ip-1"),
			node("ip-1", "karpenter.sh/nodepool: general"),
		}, want: []string{"required Pod flotilla/flotilla-launcher-abc: flotilla-launcher pod runs on node ip-1, launched by NodePool general"}},
		{name: "live pods on fargate", live: true, docs: []string{
			deployment("flotilla", "flotilla-launcher", 1, goodContainer),
			controllerPod("flotilla-launcher-abc", "fargate-ip-1"),
			node("fargate-ip-1", "eks.amazonaws.com/compute-type: fargate"),
		}},
	})
}

func flotillaInterruption(args string) string {
	return deployment("flotilla", "flotilla-interruption", 1, avoidAffinity+`
containers:
  - name: interruption
    image: i
    args: [`+args+`]`)
}

func TestCheckInterruption(t *testing.T) {
	spotPool := nodePool("spot", "", spotReq)
	nth := `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: aws-node-termination-handler, namespace: kube-system}
spec:
  selector: {matchLabels: {app: nth}}
  template:
    metadata: {labels: {app: nth}}
    spec: {containers: [{name: nth, image: nth}]}`
	runCases(t, checkInterruption, []checkCase{
		{name: "no spot", docs: []string{nodePool("od", ""), flotillaInterruption("--cluster-name=c")}, skip: true},
		{name: "spot, no controller in inputs", docs: []string{spotPool}, skip: true},
		{name: "queue flag", docs: []string{spotPool, flotillaInterruption("--interruption-queue=q")}},
		{name: "queue flag, separate value", docs: []string{spotPool, flotillaInterruption("--interruption-queue, q")}},
		{name: "queue env", docs: []string{spotPool, deployment("flotilla", "flotilla-interruption", 1, `containers: [{name: c, image: i, env: [{name: FLOTILLA_INTERRUPTION_QUEUE, value: q}]}]`)}},
		{name: "no queue", docs: []string{spotPool, flotillaInterruption("--cluster-name=c")}, want: []string{"required Deployment flotilla/flotilla-interruption: no interruption queue configured while NodePool spot allows Spot"}},
		{name: "empty queue", docs: []string{spotPool, flotillaInterruption("--interruption-queue=")}, want: []string{"no interruption queue"}},
		{name: "flotilla without interruption service", docs: []string{spotPool, deployment("flotilla", "flotilla-watcher", 1, goodContainer)}, want: []string{"required Deployment flotilla/flotilla-watcher: Flotilla runs without its interruption service"}},
		{name: "karpenter with queue", docs: []string{spotPool, deployment("kube-system", "karpenter", 1, `containers: [{name: controller, image: k, env: [{name: INTERRUPTION_QUEUE, value: my-cluster}]}]`)}},
		{name: "karpenter without queue", docs: []string{spotPool, deployment("kube-system", "karpenter", 1, `containers: [{name: controller, image: k, env: [{name: CLUSTER_NAME, value: c}]}]`)}, want: []string{"required Deployment kube-system/karpenter"}},
		{name: "termination handler beside a queue", docs: []string{spotPool, flotillaInterruption("--interruption-queue=q"), nth}, want: []string{"required DaemonSet kube-system/aws-node-termination-handler"}},
		{name: "termination handler without a queue", docs: []string{nodePool("od", ""), nth}, want: []string{"high DaemonSet kube-system/aws-node-termination-handler"}, skip: true},
		{name: "termination handler alone", docs: []string{nth}, skip: true},
	})
}

func TestCheckDisruptionBudgets(t *testing.T) {
	pdb := func(ns, app string) string {
		return fmt.Sprintf("apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: p, namespace: %s}\nspec: {minAvailable: 1, selector: {matchLabels: {app: %s}}}", ns, app)
	}
	sts := `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: data}
spec:
  replicas: 3
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: db}]}`
	runCases(t, checkDisruptionBudgets, []checkCase{
		{name: "one replica", docs: []string{deployment("shop", "web", 1, goodContainer)}},
		{name: "three replicas, no PDB", docs: []string{deployment("shop", "web", 3, goodContainer)}, want: []string{"high Deployment shop/web: 3 replicas without"}},
		{name: "PDB", docs: []string{deployment("shop", "web", 3, goodContainer), pdb("shop", "web")}},
		{name: "PDB in another namespace", docs: []string{deployment("shop", "web", 3, goodContainer), pdb("other", "web")}, want: []string{"Deployment shop/web"}},
		{name: "PDB for other pods", docs: []string{deployment("shop", "web", 3, goodContainer), pdb("shop", "api")}, want: []string{"Deployment shop/web"}},
		{name: "topology spread", docs: []string{deployment("shop", "web", 3, `topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: {app: web}}}]
`+goodContainer)}},
		{name: "statefulset", docs: []string{sts}, want: []string{"high StatefulSet data/db"}},
	})
}

func TestCheckResourceRequests(t *testing.T) {
	standalone := "apiVersion: v1\nkind: Pod\nmetadata: {name: debug, namespace: default}\nspec: {containers: [{name: sh, image: busybox}]}"
	owned := "apiVersion: v1\nkind: Pod\nmetadata: {name: web-1, namespace: default, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web, uid: u, controller: true}]}\nspec: {containers: [{name: sh, image: busybox}]}"
	runCases(t, checkResourceRequests, []checkCase{
		{name: "requests", docs: []string{deployment("shop", "web", 1, goodContainer)}},
		{name: "limits stand for requests", docs: []string{deployment("shop", "web", 1, "containers: [{name: c, image: i, resources: {limits: {cpu: 1, memory: 1Gi}}}]")}},
		{name: "none", docs: []string{deployment("shop", "web", 1, "containers: [{name: c, image: i}]")}, want: []string{"high Deployment shop/web: container c requests no cpu or memory"}},
		{name: "memory only", docs: []string{deployment("shop", "web", 1, "containers: [{name: c, image: i, resources: {requests: {memory: 1Gi}}}]")}, want: []string{"container c requests no cpu"}},
		{name: "standalone pod", docs: []string{standalone}, want: []string{"high Pod default/debug"}},
		{name: "pod of a ReplicaSet", docs: []string{owned}},
		{name: "daemonset", docs: []string{"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, namespace: kube-system}\nspec: {selector: {matchLabels: {a: b}}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: a, image: a}]}}}"}, want: []string{"DaemonSet kube-system/agent"}},
	})
}

func TestCheckMemoryLimits(t *testing.T) {
	consolidating := nodePool("general", "  disruption: {consolidationPolicy: WhenEmptyOrUnderutilized, consolidateAfter: 1m}")
	emptyOnly := nodePool("batch", "  disruption: {consolidationPolicy: WhenEmpty, consolidateAfter: 1m}")
	tainted := strings.Replace(consolidating, "requirements: []", "requirements: []\n      taints: [{key: gpu, value: 'true', effect: NoSchedule}]", 1)
	unequal := "containers: [{name: c, image: i, resources: {requests: {cpu: 1, memory: 1Gi}, limits: {memory: 2Gi}}}]"
	runCases(t, checkMemoryLimits, []checkCase{
		{name: "no consolidating pool", docs: []string{emptyOnly, deployment("shop", "web", 1, unequal)}, skip: true},
		{name: "equal", docs: []string{consolidating, deployment("shop", "web", 1, goodContainer)}},
		{name: "unequal", docs: []string{consolidating, deployment("shop", "web", 1, unequal)}, want: []string{"recommended Deployment shop/web: can run on NodePool general (WhenEmptyOrUnderutilized): container c requests 1Gi of memory but is limited to 2Gi"}},
		{name: "no limit", docs: []string{consolidating, deployment("shop", "web", 1, "containers: [{name: c, image: i, resources: {requests: {memory: 1Gi}}}]")}, want: []string{"has no memory limit"}},
		{name: "default policy consolidates", docs: []string{nodePool("general", ""), deployment("shop", "web", 1, unequal)}, want: []string{"NodePool general"}},
		{name: "pod does not tolerate the taint", docs: []string{tainted, deployment("shop", "web", 1, unequal)}},
		{name: "pod tolerates the taint", docs: []string{tainted, deployment("shop", "web", 1, "tolerations: [{key: gpu, operator: Exists}]\n"+unequal)}, want: []string{"Deployment shop/web"}},
		{name: "selector for another pool's label", docs: []string{consolidating, deployment("shop", "web", 1, "nodeSelector: {team: a}\n"+unequal)}},
		{name: "selector for a well-known label", docs: []string{consolidating, deployment("shop", "web", 1, "nodeSelector: {kubernetes.io/arch: arm64}\n"+unequal)}, want: []string{"Deployment shop/web"}},
		{name: "pinned to a managed node group", docs: []string{consolidating, deployment("shop", "web", 1, avoidAffinity+"\n"+unequal)}},
		{name: "nodepool selector", docs: []string{consolidating, emptyOnly, deployment("shop", "web", 1, "nodeSelector: {karpenter.sh/nodepool: batch}\n"+unequal)}},
	})
}

func TestCheckLimitRanges(t *testing.T) {
	ns := func(n string) string { return "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + n + "}" }
	lr := "apiVersion: v1\nkind: LimitRange\nmetadata: {name: d, namespace: shop}\nspec: {limits: [{type: Container, defaultRequest: {cpu: 100m}}]}"
	runCases(t, checkLimitRanges, []checkCase{
		{name: "no namespaces", docs: []string{deployment("shop", "web", 1, goodContainer)}, skip: true},
		{name: "system namespaces", docs: []string{ns("kube-system"), ns("kube-public"), ns("kube-node-lease")}},
		{name: "missing", docs: []string{ns("shop"), ns("api")}, want: []string{"recommended Namespace api: no LimitRange", "recommended Namespace shop"}},
		{name: "present", docs: []string{ns("shop"), lr}},
	})
}

func TestCheckCoreDNS(t *testing.T) {
	probe := `containers:
  - name: coredns
    image: coredns
    readinessProbe: {httpGet: {path: /ready, port: 8181}}`
	corefile := func(health string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: coredns, namespace: kube-system}\ndata:\n  Corefile: |\n    .:53 {\n        errors\n        " + health + "\n        ready\n    }\n"
	}
	runCases(t, checkCoreDNS, []checkCase{
		{name: "no coredns", docs: []string{deployment("shop", "web", 1, goodContainer)}, skip: true},
		{name: "good", docs: []string{deployment("kube-system", "coredns", 2, probe), corefile("health {\n           lameduck 5s\n        }")}},
		{name: "no lameduck", docs: []string{deployment("kube-system", "coredns", 2, probe), corefile("health")}, want: []string{"recommended ConfigMap kube-system/coredns: the Corefile sets no lameduck period"}},
		{name: "commented lameduck", docs: []string{deployment("kube-system", "coredns", 2, probe), corefile("health # lameduck 5s")}, want: []string{"ConfigMap kube-system/coredns"}},
		{name: "no readiness probe", docs: []string{deployment("kube-system", "coredns", 2, "containers: [{name: coredns, image: coredns}]"), corefile("health {\n           lameduck 5s\n        }")}, want: []string{"recommended Deployment kube-system/coredns: container coredns has no readinessProbe"}},
		{name: "manifests without the ConfigMap", docs: []string{deployment("kube-system", "coredns", 2, probe)}, skip: true},
		{name: "live cluster without the ConfigMap", live: true, docs: []string{deployment("kube-system", "coredns", 2, probe)}, want: []string{"ConfigMap not found"}},
	})
}

func TestRunSortsBySeverityThenObject(t *testing.T) {
	in := inputs(t, false,
		nodeClass("z", "amiSelectorTerms: [{alias: al2023@latest}]"),
		strings.Replace(nodePool("b", ""), "  limits: {cpu: 100}\n", "", 1),
		strings.Replace(nodePool("a", "  weight: 5"), "  limits: {cpu: 100}\n", "", 1),
		"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}",
	)
	rep := Run(in)
	var got []string
	for _, f := range rep.Findings {
		got = append(got, fmt.Sprintf("%s %s %s", f.Severity, f.Object, f.Check))
	}
	want := []string{
		"required EC2NodeClass z ami-pinned",
		"high NodePool a nodepool-limits",
		"high NodePool b nodepool-limits",
		"recommended Namespace shop limit-range",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !rep.Failed() || rep.Count(SeverityHigh) != 2 {
		t.Fatalf("Failed %v, high %d", rep.Failed(), rep.Count(SeverityHigh))
	}
	var checks []string
	for _, s := range rep.Skipped {
		checks = append(checks, s.Check)
	}
	if !sort.StringsAreSorted(checks) || len(checks) == 0 {
		t.Fatalf("skipped %v", checks)
	}
	if empty := Run(nil); len(empty.Findings) != 0 || empty.Failed() {
		t.Fatalf("Run(nil) = %+v", empty)
	}
}
