package kubeyaml

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func load(t *testing.T, doc string) *Documents {
	t.Helper()
	d, err := Load("test.yaml", strings.NewReader(doc))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return d
}

func podNames(ps []*typesv1.Pod) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

const container = `
      containers:
        - name: c
          resources:
            requests: {cpu: 100m, memory: 128Mi}`

func TestExpansion(t *testing.T) {
	for _, tc := range []struct {
		name  string
		doc   string
		want  []string
		owner string
	}{
		{"deployment default replicas", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:` + container, []string{"default/web-HASH-0"}, "Deployment/default/web"},
		{"deployment 3 replicas", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:` + container, []string{"shop/web-HASH-0", "shop/web-HASH-1", "shop/web-HASH-2"}, "Deployment/shop/web"},
		{"deployment 0 replicas", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 0
  template:
    spec:` + container, nil, ""},
		{"replicaset", `
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: rs}
spec:
  replicas: 2
  template:
    spec:` + container, []string{"default/rs-0", "default/rs-1"}, "ReplicaSet/default/rs"},
		{"statefulset", `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  template:
    spec:` + container, []string{"default/db-0", "default/db-1"}, "StatefulSet/default/db"},
		{"statefulset ordinals", `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  ordinals: {start: 5}
  template:
    spec:` + container, []string{"default/db-5", "default/db-6"}, "StatefulSet/default/db"},
		{"job default parallelism", `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  template:
    spec:` + container, []string{"default/j-0"}, "Job/default/j"},
		{"job parallelism capped by completions", `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  parallelism: 5
  completions: 2
  template:
    spec:` + container, []string{"default/j-0", "default/j-1"}, "Job/default/j"},
		{"job parallelism below completions", `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  parallelism: 3
  completions: 10
  template:
    spec:` + container, []string{"default/j-0", "default/j-1", "default/j-2"}, "Job/default/j"},
		{"suspended job", `
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  suspend: true
  template:
    spec:` + container, nil, ""},
		{"pod with controller", `
apiVersion: v1
kind: Pod
metadata:
  name: p
  ownerReferences:
    - {apiVersion: apps/v1, kind: ReplicaSet, name: rs-1, uid: x, controller: true}
spec:` + strings.ReplaceAll(container, "\n    ", "\n"), []string{"default/p"}, "ReplicaSet/default/rs-1"},
		{"list", `
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: a}
    spec: {containers: [{name: c}]}
  - apiVersion: v1
    kind: Pod
    metadata: {name: b}
    spec: {containers: [{name: c}]}
`, []string{"default/a", "default/b"}, ""},
		{"terminal pods are skipped", `
apiVersion: v1
kind: Pod
metadata: {name: done}
spec: {containers: [{name: c}]}
status: {phase: Succeeded}
`, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := load(t, tc.doc)
			got := podNames(d.Pods)
			if len(got) != len(tc.want) {
				t.Fatalf("pods = %v, want %v", got, tc.want)
			}
			for i, p := range d.Pods {
				want := tc.want[i]
				if h := p.Labels[LabelPodTemplateHash]; h != "" {
					want = strings.Replace(want, "HASH", h, 1)
				}
				if got[i] != want {
					t.Errorf("pod %d = %s, want %s", i, got[i], want)
				}
				if p.Owner != tc.owner {
					t.Errorf("owner = %q, want %q", p.Owner, tc.owner)
				}
				if d.PodSources[i].File != "test.yaml" || d.PodSources[i].Document != 1 {
					t.Errorf("source = %v", d.PodSources[i])
				}
			}
		})
	}
}

func TestControllerLabels(t *testing.T) {
	d := load(t, `
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  template:
    metadata: {labels: {app: db}, annotations: {a: b}}
    spec:`+container+`
---
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  completions: 1
  completionMode: Indexed
  template:
    spec:`+container+`
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:`+container)
	sts, job, dep := d.Pods[0], d.Pods[1], d.Pods[2]
	if sts.Labels["app"] != "db" || sts.Labels[LabelStatefulSetPodName] != "db-0" || sts.Labels[LabelPodIndex] != "0" || sts.Annotations["a"] != "b" || !strings.HasPrefix(sts.Labels[LabelControllerRevision], "db-") {
		t.Errorf("statefulset labels = %v %v", sts.Labels, sts.Annotations)
	}
	if job.Labels[LabelJobName] != "j" || job.Labels[LabelJobCompletionIndex] != "0" {
		t.Errorf("job labels = %v", job.Labels)
	}
	if h := dep.Labels[LabelPodTemplateHash]; h == "" || dep.Name != "web-"+h+"-0" {
		t.Errorf("deployment pod %s labels %v", dep.Name, dep.Labels)
	}
	// The hash is deterministic.
	d2 := load(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:`+container)
	if d2.Pods[0].Name != dep.Name {
		t.Errorf("hash not deterministic: %s vs %s", d2.Pods[0].Name, dep.Name)
	}
}

func TestPodConversion(t *testing.T) {
	d := load(t, `
apiVersion: v1
kind: Pod
metadata:
  name: full
  namespace: ns1
  labels: {app: full, version: v1}
  annotations: {karpenter.sh/do-not-disrupt: "true"}
spec:
  priority: 1000
  overhead: {cpu: 250m, memory: 120Mi}
  nodeSelector: {kubernetes.io/arch: arm64}
  initContainers:
    - name: init
      resources: {requests: {cpu: "2"}}
    - name: sidecar
      restartPolicy: Always
      ports: [{containerPort: 9000, hostPort: 9000}]
      resources: {requests: {cpu: 100m}}
  containers:
    - name: main
      ports:
        - {containerPort: 80, hostPort: 8080}
        - {containerPort: 53, hostPort: 53, protocol: UDP, hostIP: 10.0.0.1}
        - {containerPort: 81}
      resources:
        requests: {cpu: 500m}
        limits: {cpu: "1", memory: 1Gi, nvidia.com/gpu: 1}
  tolerations:
    - {key: nvidia.com/gpu, operator: Equal, value: "true", effect: NoSchedule}
    - {operator: Exists}
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
          - matchExpressions:
              - {key: topology.kubernetes.io/zone, operator: In, values: [us-east-1a]}
              - {key: karpenter.k8s.aws/instance-generation, operator: Gt, values: ["5"]}
          - matchExpressions:
              - {key: special, operator: Exists}
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 50
          preference:
            matchExpressions: [{key: karpenter.sh/capacity-type, operator: In, values: [spot]}]
    podAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        - topologyKey: topology.kubernetes.io/zone
          labelSelector: {matchLabels: {app: cache}}
          namespaces: [ns2]
          matchLabelKeys: [version]
    podAntiAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 10
          podAffinityTerm:
            topologyKey: kubernetes.io/hostname
            labelSelector:
              matchExpressions: [{key: app, operator: In, values: [full]}]
            namespaceSelector: {}
            mismatchLabelKeys: [version]
  topologySpreadConstraints:
    - maxSkew: 2
      topologyKey: topology.kubernetes.io/zone
      whenUnsatisfiable: DoNotSchedule
      labelSelector: {matchLabels: {app: full}}
      minDomains: 3
      nodeAffinityPolicy: Ignore
      nodeTaintsPolicy: Honor
      matchLabelKeys: [pod-template-hash]
`)
	got := d.Pods[0]
	want := &typesv1.Pod{
		Namespace:    "ns1",
		Name:         "full",
		Labels:       map[string]string{"app": "full", "version": "v1"},
		Annotations:  map[string]string{"karpenter.sh/do-not-disrupt": "true"},
		Priority:     1000,
		Overhead:     map[string]string{"cpu": "250m", "memory": "120Mi"},
		NodeSelector: map[string]string{"kubernetes.io/arch": "arm64"},
		InitContainers: []*typesv1.Container{
			{Name: "init", Requests: map[string]string{"cpu": "2"}},
			{Name: "sidecar", Requests: map[string]string{"cpu": "100m"}, RestartPolicyAlways: true},
		},
		Containers: []*typesv1.Container{
			{Name: "main", Requests: map[string]string{"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"}},
		},
		Tolerations: []*typesv1.Toleration{
			{Key: "nvidia.com/gpu", Operator: "Equal", Value: "true", Effect: "NoSchedule"},
			{Operator: "Exists"},
		},
		RequiredNodeAffinity: []*typesv1.NodeSelectorTerm{
			{MatchExpressions: []*typesv1.Requirement{
				{Key: "topology.kubernetes.io/zone", Operator: "In", Values: []string{"us-east-1a"}},
				{Key: "karpenter.k8s.aws/instance-generation", Operator: "Gt", Values: []string{"5"}},
			}},
			{MatchExpressions: []*typesv1.Requirement{{Key: "special", Operator: "Exists"}}},
		},
		PreferredNodeAffinity: []*typesv1.PreferredSchedulingTerm{
			{Weight: 50, Preference: &typesv1.NodeSelectorTerm{MatchExpressions: []*typesv1.Requirement{{Key: "karpenter.sh/capacity-type", Operator: "In", Values: []string{"spot"}}}}},
		},
		PodAffinity: &typesv1.PodAffinity{Required: []*typesv1.PodAffinityTerm{{
			TopologyKey:    "topology.kubernetes.io/zone",
			LabelSelector:  &typesv1.LabelSelector{MatchLabels: map[string]string{"app": "cache"}},
			Namespaces:     []string{"ns2"},
			MatchLabelKeys: []string{"version"},
		}}},
		PodAntiAffinity: &typesv1.PodAffinity{Preferred: []*typesv1.WeightedPodAffinityTerm{{
			Weight: 10,
			PodAffinityTerm: &typesv1.PodAffinityTerm{
				TopologyKey:       "kubernetes.io/hostname",
				LabelSelector:     &typesv1.LabelSelector{MatchExpressions: []*typesv1.LabelSelectorRequirement{{Key: "app", Operator: "In", Values: []string{"full"}}}},
				NamespaceSelector: &typesv1.LabelSelector{},
				MismatchLabelKeys: []string{"version"},
			},
		}}},
		TopologySpreadConstraints: []*typesv1.TopologySpreadConstraint{{
			MaxSkew:            2,
			TopologyKey:        "topology.kubernetes.io/zone",
			WhenUnsatisfiable:  "DoNotSchedule",
			LabelSelector:      &typesv1.LabelSelector{MatchLabels: map[string]string{"app": "full"}},
			MinDomains:         3,
			NodeAffinityPolicy: "Ignore",
			NodeTaintsPolicy:   "Honor",
			MatchLabelKeys:     []string{"pod-template-hash"},
		}},
		HostPorts: []*typesv1.HostPort{
			{Port: 9000, Protocol: "TCP"},
			{Port: 8080, Protocol: "TCP"},
			{Port: 53, Protocol: "UDP", HostIp: "10.0.0.1"},
		},
	}
	if !proto.Equal(got, want) {
		t.Errorf("pod:\n%s\nwant:\n%s", protojson.Format(got), protojson.Format(want))
	}
}

func TestHostNetworkPorts(t *testing.T) {
	d := load(t, `
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  hostNetwork: true
  containers: [{name: c, ports: [{containerPort: 9100}]}]
`)
	if hp := d.Pods[0].HostPorts; len(hp) != 1 || hp[0].Port != 9100 {
		t.Errorf("host ports = %v", hp)
	}
}

func TestPriorityClasses(t *testing.T) {
	d := load(t, `
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000000
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: -10
globalDefault: true
---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec: {priorityClassName: high, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c}
spec: {priorityClassName: system-node-critical, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: d}
spec: {priorityClassName: unknown, containers: [{name: c}]}
`)
	want := []int32{1000000, -10, 2000001000, 0}
	for i, p := range d.Pods {
		if p.Priority != want[i] {
			t.Errorf("%s priority = %d, want %d", p.Name, p.Priority, want[i])
		}
	}
}

func TestVolumeTopology(t *testing.T) {
	d := load(t, `
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: zonal}
provisioner: ebs.csi.aws.com
allowedTopologies:
  - matchLabelExpressions:
      - {key: topology.kubernetes.io/zone, values: [us-east-1a, us-east-1b]}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: ebs.csi.aws.com
allowedTopologies:
  - matchLabelExpressions:
      - {key: topology.kubernetes.io/zone, values: [us-east-1c]}
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: pv-1}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: topology.kubernetes.io/zone, operator: In, values: [us-east-1b]}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: bound}
spec:
  volumeName: pv-1
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: unbound}
spec:
  storageClassName: zonal
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Gi}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: defaulted}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 10Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c}]
  volumes:
    - {name: a, persistentVolumeClaim: {claimName: bound}}
    - {name: b, persistentVolumeClaim: {claimName: unbound}}
    - {name: c, persistentVolumeClaim: {claimName: defaulted}}
    - {name: d, persistentVolumeClaim: {claimName: missing}}
    - {name: e, emptyDir: {}}
    - name: f
      ephemeral:
        volumeClaimTemplate:
          spec:
            storageClassName: zonal
            accessModes: [ReadWriteOnce]
            resources: {requests: {storage: 1Gi}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  template:
    spec:
      containers: [{name: c}]
  volumeClaimTemplates:
    - metadata: {name: data}
      spec:
        storageClassName: zonal
        accessModes: [ReadWriteOnce]
        resources: {requests: {storage: 1Gi}}
`)
	zoneTerm := func(zones ...string) []*typesv1.NodeSelectorTerm {
		return []*typesv1.NodeSelectorTerm{{MatchExpressions: []*typesv1.Requirement{{Key: "topology.kubernetes.io/zone", Operator: "In", Values: zones}}}}
	}
	want := []*typesv1.VolumeTopology{
		{Name: "bound", Terms: zoneTerm("us-east-1b")},
		{Name: "unbound", Terms: zoneTerm("us-east-1a", "us-east-1b")},
		{Name: "defaulted", Terms: zoneTerm("us-east-1c")},
		{Name: "p-f", Terms: zoneTerm("us-east-1a", "us-east-1b")},
	}
	got := d.Pods[0].Volumes
	if len(got) != len(want) {
		t.Fatalf("volumes = %v", got)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("volume %d = %v, want %v", i, got[i], want[i])
		}
	}
	sts := d.Pods[1]
	if len(sts.Volumes) != 1 || sts.Volumes[0].Name != "data-db-0" || !proto.Equal(sts.Volumes[0].Terms[0], zoneTerm("us-east-1a", "us-east-1b")[0]) {
		t.Errorf("statefulset volumes = %v", sts.Volumes)
	}
}

func TestNodesAndBoundPods(t *testing.T) {
	l := NewLoader()
	if err := l.Add("nodes.yaml", strings.NewReader(`
apiVersion: v1
kind: Node
metadata:
  name: n1
  labels:
    node.kubernetes.io/instance-type: m5.large
    topology.kubernetes.io/zone: us-east-1a
    karpenter.sh/capacity-type: spot
    karpenter.sh/nodepool: default
spec:
  unschedulable: true
  taints: [{key: k, value: v, effect: NoSchedule}]
status:
  allocatable: {cpu: 1930m, memory: 7Gi, pods: "29"}
`)); err != nil {
		t.Fatal(err)
	}
	if err := l.Add("pods.yaml", strings.NewReader(`
apiVersion: v1
kind: Pod
metadata: {name: running}
spec: {nodeName: n1, containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: pending}
spec: {containers: [{name: c}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: c, resources: {requests: {cpu: 50m}}}]
---
apiVersion: v1
kind: Namespace
metadata: {name: team, labels: {tier: gold}}
`)); err != nil {
		t.Fatal(err)
	}
	d, err := l.Documents()
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Nodes) != 1 || len(d.Pods) != 1 || d.Pods[0].Name != "pending" {
		t.Fatalf("nodes %d pods %v", len(d.Nodes), podNames(d.Pods))
	}
	n := d.Nodes[0]
	if n.InstanceType != "m5.large" || n.Zone != "us-east-1a" || n.CapacityType != "spot" || n.NodePool != "default" || !n.Unschedulable {
		t.Errorf("node = %v", n)
	}
	if n.Allocatable["cpu"] != "1930m" || len(n.Taints) != 1 || len(n.Pods) != 1 || n.Pods[0].Name != "running" {
		t.Errorf("node = %v", n)
	}
	if d.NodeSources[0].File != "nodes.yaml" {
		t.Errorf("node source = %v", d.NodeSources[0])
	}
	if len(d.DaemonSets) != 1 {
		t.Fatalf("daemonsets = %v", d.DaemonSets)
	}
	ds := d.DaemonSets[0]
	if ds.Name != "agent" || ds.Namespace != "kube-system" || !ds.Template.DaemonSet || ds.Template.Owner != "DaemonSet/kube-system/agent" || len(ds.Template.Tolerations) != len(daemonSetTolerations) {
		t.Errorf("daemonset = %v", ds)
	}
	var nsNames []string
	for _, ns := range d.Namespaces {
		nsNames = append(nsNames, ns.Name)
		if ns.Labels["kubernetes.io/metadata.name"] != ns.Name {
			t.Errorf("namespace %s labels %v", ns.Name, ns.Labels)
		}
		if ns.Name == "team" && ns.Labels["tier"] != "gold" {
			t.Errorf("team labels = %v", ns.Labels)
		}
	}
	if strings.Join(nsNames, ",") != "default,kube-system,team" {
		t.Errorf("namespaces = %v", nsNames)
	}
}

func TestErrors(t *testing.T) {
	pod := func(spec string) string {
		return "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n" + spec
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"malformed yaml", "apiVersion: v1\nkind: Pod\n  bad: [\n", "test.yaml: document 1: invalid YAML"},
		{"not an object", "- a\n- b\n", "test.yaml: document 1: document (at line 1) is not a Kubernetes object"},
		{"missing kind", "apiVersion: v1\nmetadata: {name: x}\n", "test.yaml: document 1: kind: missing"},
		{"unknown kind", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", `test.yaml: document 1 (Service x): unsupported kind "Service"`},
		{"missing name", "apiVersion: v1\nkind: Pod\nspec: {containers: [{name: c}]}\n", "test.yaml: document 1 (Pod): metadata.name: required"},
		{"bad quantity", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers: [{name: c, resources: {requests: {cpu: 1 core}}}]
`, `test.yaml: document 1 (Deployment default/web): spec.template.spec.containers[0].resources.requests.cpu: invalid quantity "1 core": quantities must match the regular expression`},
		{"unknown unit", pod("  containers: [{name: c, resources: {limits: {memory: 1GB}}}]\n"), `spec.containers[0].resources.limits.memory: invalid quantity "1GB"`},
		{"negative quantity", pod("  containers: [{name: c, resources: {requests: {cpu: -1}}}]\n"), `spec.containers[0].resources.requests.cpu: invalid quantity "-1": must not be negative`},
		{"request above limit", pod("  containers: [{name: c, resources: {requests: {cpu: 2}, limits: {cpu: 1}}}]\n"), `spec.containers[0].resources.requests.cpu: request 2 exceeds limit 1`},
		{"unknown field", pod("  containers: [{name: c, resource: {}}]\n"), `unknown field "spec.containers[0].resource"`},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: three}\n", "test.yaml: document 1 (Deployment default/web):"},
		{"no containers", pod("  containers: []\n"), "spec.containers: a pod needs at least one container"},
		{"In without values", pod("  containers: [{name: c}]\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: a, operator: In}]}]}}}\n"), "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: operator In needs at least one value"},
		{"Exists with values", pod("  containers: [{name: c}]\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: a, operator: Exists, values: [x]}]}]}}}\n"), "operator Exists takes no values, got 1"},
		{"Gt two values", pod("  containers: [{name: c}]\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: a, operator: Gt, values: [\"1\", \"2\"]}]}]}}}\n"), "operator Gt takes exactly one value, got 2"},
		{"Gt not a number", pod("  containers: [{name: c}]\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: a, operator: Lt, values: [x]}]}]}}}\n"), "operator Lt needs an integer value"},
		{"bad operator", pod("  containers: [{name: c}]\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: a, operator: Like, values: [x]}]}]}}}\n"), `unsupported operator "Like"`},
		{"node affinity Gte is Karpenter's, not Kubernetes'", pod("  containers: [{name: c}]\n  affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: a, operator: Gte, values: [\"1\"]}]}]}}}\n"), `unsupported operator "Gte": use In, NotIn, Exists, DoesNotExist, Gt or Lt`},
		{"label selector Gt", pod("  containers: [{name: c}]\n  topologySpreadConstraints: [{maxSkew: 1, topologyKey: z, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchExpressions: [{key: a, operator: Gt, values: [\"1\"]}]}}]\n"), `spec.topologySpreadConstraints[0].labelSelector.matchExpressions[0].operator: unsupported operator "Gt"`},
		{"bad toleration", pod("  containers: [{name: c}]\n  tolerations: [{key: a, operator: Exists, value: b}]\n"), "spec.tolerations[0].value: must be empty when operator is Exists"},
		{"bad effect", pod("  containers: [{name: c}]\n  tolerations: [{key: a, effect: Sometimes}]\n"), `spec.tolerations[0].effect: unsupported effect "Sometimes"`},
		{"zero skew", pod("  containers: [{name: c}]\n  topologySpreadConstraints: [{maxSkew: 0, topologyKey: z, whenUnsatisfiable: DoNotSchedule}]\n"), "spec.topologySpreadConstraints[0].maxSkew: must be at least 1"},
		{"bad policy", pod("  containers: [{name: c}]\n  topologySpreadConstraints: [{maxSkew: 1, topologyKey: z, whenUnsatisfiable: DoNotSchedule, nodeTaintsPolicy: Maybe}]\n"), `nodeTaintsPolicy: unsupported policy "Maybe"`},
		{"affinity without topology key", pod("  containers: [{name: c}]\n  affinity: {podAntiAffinity: {requiredDuringSchedulingIgnoredDuringExecution: [{labelSelector: {}}]}}\n"), "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: required"},
		{"bad weight", pod("  containers: [{name: c}]\n  affinity: {nodeAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 0, preference: {}}]}}\n"), "weight: must be between 1 and 100, not 0"},
		{"negative replicas", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: -1\n  template: {spec: {containers: [{name: c}]}}\n", "spec.replicas: must not be negative"},
		{"huge replicas", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 2000000000\n  template: {spec: {containers: [{name: c}]}}\n", "spec.replicas: 2000000000 is more than"},
		{"selector mismatch", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  selector: {matchLabels: {app: a}}\n  template: {metadata: {labels: {app: b}}, spec: {containers: [{name: c}]}}\n", "selector does not match template labels"},
		{"duplicate pod", pod("  containers: [{name: c}]\n") + "---\n" + pod("  containers: [{name: c}]\n"), "test.yaml: document 2 (Pod default/p): duplicate Pod default/p: already defined at test.yaml: document 1 (Pod default/p)"},
		{"duplicate generated pod", pod("  containers: [{name: c}]\n") + "---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: p}\nspec: {replicas: 1, template: {spec: {containers: [{name: c}]}}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p-0}\nspec: {containers: [{name: c}]}\n", "test.yaml: document 3 (Pod default/p-0): duplicate Pod default/p-0: already defined at test.yaml: document 2 (StatefulSet default/p)"},
		{"unbound node", pod("  nodeName: ghost\n  containers: [{name: c}]\n"), `spec.nodeName: the pod is bound to node "ghost", which no Node document defines`},
		{"list item error", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n  spec: {containers: [{name: c, resources: {requests: {cpu: x}}}]}\n", `test.yaml: document 1 item 1 (Pod default/a): spec.containers[0].resources.requests.cpu: invalid quantity "x"`},
		{"document index counts documents", "# comment\n---\n" + pod("  containers: [{name: c}]\n") + "---\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", `test.yaml: document 2 (Secret s): unsupported kind "Secret"`},
		{"yaml line numbers are file lines", pod("  containers: [{name: c}]\n") + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: q}\nspec:\n  containers: [{name: c}\n", "line 11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load("test.yaml", strings.NewReader(tc.doc))
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.HasPrefix(msg, "test.yaml: document ") {
				t.Errorf("error does not name file and document: %q", msg)
			}
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error = %q\nwant it to contain %q", msg, tc.want)
			}
		})
	}
}

func TestExamples(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "examples", "pods.yaml"))
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	d, err := Load("pods.yaml", f)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Pods) != 14 {
		t.Errorf("examples/pods.yaml: %d pods, want 14: %v", len(d.Pods), podNames(d.Pods))
	}
	for _, p := range d.Pods {
		if strings.HasPrefix(p.Name, "trainer-") && p.Containers[0].Requests["nvidia.com/gpu"] != "1" {
			t.Errorf("trainer requests = %v", p.Containers[0].Requests)
		}
		if strings.HasPrefix(p.Name, "postgres-") && (len(p.Volumes) != 1 || p.Priority != 2000000000) {
			t.Errorf("postgres pod = %v", p)
		}
	}
}

func FuzzLoadPods(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "examples", "pods.yaml")); err == nil {
		f.Add(string(b))
	}
	f.Add("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: c, resources: {requests: {cpu: 1}}}]}\n")
	f.Add("apiVersion: v1\nkind: List\nitems: [{kind: Pod, apiVersion: v1, metadata: {name: a}, spec: {containers: [{name: c}]}}]\n")
	f.Add("---\n---\n...\n")
	f.Add("apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\nspec: {replicas: 2, template: {spec: {containers: [{name: c}]}}, volumeClaimTemplates: [{metadata: {name: d}}]}\n")
	f.Fuzz(func(t *testing.T, doc string) {
		pods, err := LoadPods("fuzz.yaml", strings.NewReader(doc))
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "fuzz.yaml") || strings.ContainsAny(msg, "\n") {
				t.Fatalf("bad error %q", msg)
			}
			return
		}
		seen := map[string]bool{}
		for _, p := range pods {
			key := p.Namespace + "/" + p.Name
			if p.Name == "" || p.Namespace == "" || seen[key] {
				t.Fatalf("bad or duplicate pod %q", key)
			}
			seen[key] = true
		}
	})
}
