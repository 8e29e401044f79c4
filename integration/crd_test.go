package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
)

// karpenterCRDFiles are the CustomResourceDefinitions in deploy/crds.
var karpenterCRDFiles = []string{
	"karpenter.sh_nodepools.yaml",
	"karpenter.sh_nodeclaims.yaml",
	"karpenter.k8s.aws_ec2nodeclasses.yaml",
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installKarpenterCRDs creates (or updates) the CRDs of deploy/crds in the
// API server and waits until each is Established and served.
func installKarpenterCRDs(ctx context.Context, cfg *rest.Config) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	for _, f := range karpenterCRDFiles {
		docs, err := readManifests(filepath.Join("..", "deploy", "crds", f))
		if err != nil {
			return err
		}
		for _, crd := range docs {
			if err := applyCRD(ctx, dyn, crd); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
		}
	}
	for _, gvr := range []schema.GroupVersionResource{karpv1.NodePoolsResource, karpv1.NodeClaimsResource, awsv1.EC2NodeClassesResource} {
		// Established is set before every API server handler serves the
		// resource; a List that succeeds shows it is served.
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
			return err == nil, nil
		})
		if err != nil {
			return fmt.Errorf("%s not served: %w", gvr.Resource, err)
		}
	}
	return nil
}

func applyCRD(ctx context.Context, dyn dynamic.Interface, crd *unstructured.Unstructured) error {
	client := dyn.Resource(crdResource)
	if _, err := client.Apply(ctx, crd.GetName(), crd, metav1.ApplyOptions{FieldManager: "flotilla-integration", Force: true}); err != nil {
		return fmt.Errorf("applying CRD %s: %w", crd.GetName(), err)
	}
	var last string
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := client.Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			last = fmt.Sprintf("%v=%v: %v", m["type"], m["status"], m["message"])
			if m["type"] == "NamesAccepted" && m["status"] == "False" {
				return false, fmt.Errorf("CRD %s names not accepted: %v", crd.GetName(), m["message"])
			}
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("CRD %s not established (last condition %s): %w", crd.GetName(), last, err)
	}
	return nil
}

// readManifests decodes every YAML document of a file.
func readManifests(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading manifests: %w", err)
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(obj) > 0 {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}

// gvrOf maps the kinds of the examples to their resources.
func gvrOf(obj *unstructured.Unstructured) (schema.GroupVersionResource, error) {
	switch obj.GroupVersionKind() {
	case karpv1.GroupVersion.WithKind(karpv1.KindNodePool):
		return karpv1.NodePoolsResource, nil
	case karpv1.GroupVersion.WithKind(karpv1.KindNodeClaim):
		return karpv1.NodeClaimsResource, nil
	case awsv1.GroupVersion.WithKind(awsv1.KindEC2NodeClass):
		return awsv1.EC2NodeClassesResource, nil
	}
	return schema.GroupVersionResource{}, fmt.Errorf("no resource for %s", obj.GroupVersionKind())
}

// fromYAML decodes one YAML document.
func fromYAML(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	b, err := utilyaml.ToJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	return obj
}

// mergePatch applies a JSON merge patch (RFC 7386) written as YAML.
func mergePatch(t *testing.T, base *unstructured.Unstructured, patch string) *unstructured.Unstructured {
	t.Helper()
	b, err := utilyaml.ToJSON([]byte(patch))
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	out := base.DeepCopy()
	out.Object = mergeMaps(out.Object, p)
	return out
}

func mergeMaps(dst, patch map[string]any) map[string]any {
	for k, v := range patch {
		pm, isMap := v.(map[string]any)
		dm, dstMap := dst[k].(map[string]any)
		switch {
		case v == nil:
			delete(dst, k)
		case isMap && dstMap:
			dst[k] = mergeMaps(dm, pm)
		default:
			dst[k] = v
		}
	}
	return dst
}

const (
	minimalNodePool = `
apiVersion: karpenter.sh/v1
kind: NodePool
metadata: {name: crd-minimal}
spec:
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements: []
`
	minimalNodeClass = `
apiVersion: karpenter.k8s.aws/v1
kind: EC2NodeClass
metadata: {name: crd-minimal}
spec:
  role: KarpenterNodeRole-test
  amiSelectorTerms: [{alias: al2023@latest}]
  subnetSelectorTerms: [{tags: {karpenter.sh/discovery: test}}]
  securityGroupSelectorTerms: [{tags: {karpenter.sh/discovery: test}}]
`
	minimalNodeClaim = `
apiVersion: karpenter.sh/v1
kind: NodeClaim
metadata: {name: crd-minimal}
spec:
  nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
  requirements:
    - {key: node.kubernetes.io/instance-type, operator: In, values: [m5.large]}
    - {key: karpenter.sh/nodepool, operator: In, values: [default]}
`
)

// TestKarpenterCRDs installs the CRDs of deploy/crds into the real API
// server, applies every example manifest unchanged, and checks Karpenter
// v1's defaults and validation rules on the server.
func TestKarpenterCRDs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	if err := installKarpenterCRDs(ctx, cluster.Config); err != nil {
		t.Fatal(err)
	}
	t.Logf("CRDs established and served in %v", time.Since(start).Round(time.Millisecond))
	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("examples apply", func(t *testing.T) { testExamplesApply(ctx, t, dyn) })
	t.Run("defaults", func(t *testing.T) { testDefaults(ctx, t, dyn) })
	t.Run("validation", func(t *testing.T) { testValidation(ctx, t, dyn) })
	t.Run("update rules", func(t *testing.T) { testUpdateRules(ctx, t, dyn) })
}

func testExamplesApply(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "karpenter", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	applied := 0
	for _, f := range files {
		docs, err := readManifests(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, obj := range docs {
			gvr, err := gvrOf(obj)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			// Only the name changes, so that other tests sharing the API
			// server may use the examples' names ("default").
			obj.SetName("crd-example-" + obj.GetName())
			got, err := dyn.Resource(gvr).Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: "flotilla-integration"})
			if err != nil {
				t.Errorf("%s: applying %s %s: %v", filepath.Base(f), obj.GetKind(), obj.GetName(), err)
				continue
			}
			applied++
			t.Cleanup(func() { _ = dyn.Resource(gvr).Delete(context.Background(), obj.GetName(), metav1.DeleteOptions{}) })
			// The server keeps every field as written (defaults only add).
			for _, d := range missingFrom("spec", obj.Object["spec"], got.Object["spec"]) {
				t.Errorf("%s %s: %s", obj.GetKind(), obj.GetName(), d)
			}
			decodeStrict(t, got)
		}
	}
	t.Logf("applied %d example objects from %d files", applied, len(files))
}

// missingFrom lists the fields of want that got lacks or holds differently.
func missingFrom(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, _ := got.(map[string]any)
		var out []string
		for k, v := range w {
			out = append(out, missingFrom(path+"."+k, v, g[k])...)
		}
		return out
	case []any:
		g, _ := got.([]any)
		if len(g) != len(w) {
			return []string{fmt.Sprintf("%s: %d items became %d", path, len(w), len(g))}
		}
		var out []string
		for i := range w {
			out = append(out, missingFrom(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	}
	if fmt.Sprint(want) != fmt.Sprint(got) {
		return []string{fmt.Sprintf("%s: %v became %v", path, want, got)}
	}
	return nil
}

// decodeStrict decodes a server object into its Go type, failing on any
// field the Go type lacks.
func decodeStrict(t *testing.T, obj *unstructured.Unstructured) {
	t.Helper()
	b, err := obj.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var typed any
	switch obj.GetKind() {
	case karpv1.KindNodePool:
		typed = &karpv1.NodePool{}
	case karpv1.KindNodeClaim:
		typed = &karpv1.NodeClaim{}
	default:
		typed = &awsv1.EC2NodeClass{}
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(typed); err != nil {
		t.Errorf("%s %s from the server does not decode strictly: %v", obj.GetKind(), obj.GetName(), err)
	}
}

func testDefaults(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	np := createAndCleanUp(ctx, t, dyn, karpv1.NodePoolsResource, fromYAML(t, minimalNodePool))
	var pool karpv1.NodePool
	toTyped(t, np, &pool)
	d := pool.Spec.Disruption
	if d.ConsolidateAfter.Duration == nil || *d.ConsolidateAfter.Duration != 0 || d.ConsolidateAfter.Raw != "0s" {
		t.Errorf("consolidateAfter = %+v, want 0s", d.ConsolidateAfter)
	}
	if d.ConsolidationPolicy != karpv1.ConsolidationPolicyWhenEmptyOrUnderutilized {
		t.Errorf("consolidationPolicy = %q", d.ConsolidationPolicy)
	}
	if len(d.Budgets) != 1 || d.Budgets[0].Nodes != "10%" {
		t.Errorf("budgets = %+v, want [{nodes: 10%%}]", d.Budgets)
	}
	if exp := pool.Spec.Template.Spec.ExpireAfter; exp.Raw != "720h" {
		t.Errorf("expireAfter = %+v, want 720h", exp)
	}

	nc := createAndCleanUp(ctx, t, dyn, awsv1.EC2NodeClassesResource, fromYAML(t, minimalNodeClass))
	var class awsv1.EC2NodeClass
	toTyped(t, nc, &class)
	m := class.Spec.MetadataOptions
	if m == nil || deref(m.HTTPEndpoint) != "enabled" || deref(m.HTTPProtocolIPv6) != "disabled" || deref(m.HTTPTokens) != "required" ||
		m.HTTPPutResponseHopLimit == nil || *m.HTTPPutResponseHopLimit != 1 {
		t.Errorf("metadataOptions = %+v, want enabled/disabled/1/required", m)
	}

	claim := createAndCleanUp(ctx, t, dyn, karpv1.NodeClaimsResource, fromYAML(t, minimalNodeClaim))
	var c karpv1.NodeClaim
	toTyped(t, claim, &c)
	if c.Spec.ExpireAfter.Raw != "720h" {
		t.Errorf("NodeClaim expireAfter = %+v, want 720h", c.Spec.ExpireAfter)
	}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func createAndCleanUp(ctx context.Context, t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	got, err := dyn.Resource(gvr).Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating %s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
	t.Cleanup(func() { _ = dyn.Resource(gvr).Delete(context.Background(), obj.GetName(), metav1.DeleteOptions{}) })
	return got
}

func toTyped(t *testing.T, obj *unstructured.Unstructured, into any) {
	t.Helper()
	decodeStrict(t, obj)
	b, err := obj.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatal(err)
	}
}

// validationCase is a minimal object changed by a merge patch, and what the
// server must say about it: wantErr "" means it must be accepted.
type validationCase struct {
	name, base, patch, wantErr string
}

var nodePoolCases = []validationCase{
	{"weight 0", minimalNodePool, `spec: {weight: 0}`, "should be greater than or equal to 1"},
	{"weight 101", minimalNodePool, `spec: {weight: 101}`, "should be less than or equal to 100"},
	{"schedule without duration", minimalNodePool, `spec: {disruption: {consolidateAfter: 0s, budgets: [{nodes: "0", schedule: "@daily"}]}}`, "'schedule' must be set with 'duration'"},
	{"duration without schedule", minimalNodePool, `spec: {disruption: {consolidateAfter: 0s, budgets: [{nodes: "0", duration: 1h}]}}`, "'schedule' must be set with 'duration'"},
	{"budget nodes 150%", minimalNodePool, `spec: {disruption: {consolidateAfter: 0s, budgets: [{nodes: "150%"}]}}`, "spec.disruption.budgets[0].nodes in body should match"},
	{"budget reason", minimalNodePool, `spec: {disruption: {consolidateAfter: 0s, budgets: [{nodes: "1", reasons: [Expired]}]}}`, "Unsupported value: \"Expired\""},
	{"consolidation policy", minimalNodePool, `spec: {disruption: {consolidateAfter: 0s, consolidationPolicy: Always}}`, "Unsupported value: \"Always\""},
	{"consolidateAfter", minimalNodePool, `spec: {disruption: {consolidateAfter: soon}}`, "consolidateAfter in body should match"},
	{"expireAfter", minimalNodePool, `spec: {template: {spec: {expireAfter: forever}}}`, "expireAfter in body should match"},
	{"restricted label kubernetes.io", minimalNodePool, `spec: {template: {metadata: {labels: {kubernetes.io/team: a}}}}`, `label domain "kubernetes.io" is restricted`},
	{"restricted label k8s.io", minimalNodePool, `spec: {template: {metadata: {labels: {team.k8s.io/x: a}}}}`, `label domain "k8s.io" is restricted`},
	{"restricted label karpenter.sh/nodepool", minimalNodePool, `spec: {template: {metadata: {labels: {karpenter.sh/nodepool: a}}}}`, `label "karpenter.sh/nodepool" is restricted`},
	{"restricted label karpenter.k8s.aws", minimalNodePool, `spec: {template: {metadata: {labels: {karpenter.k8s.aws/custom: a}}}}`, `label domain "karpenter.k8s.aws" is restricted`},
	{"label value", minimalNodePool, `spec: {template: {metadata: {labels: {team: "a b"}}}}`, "spec.template.metadata.labels.team in body should match"},
	{"restricted requirement karpenter.sh", minimalNodePool, `spec: {template: {spec: {requirements: [{key: karpenter.sh/custom, operator: Exists}]}}}`, `label domain "karpenter.sh" is restricted`},
	{"restricted requirement hostname", minimalNodePool, `spec: {template: {spec: {requirements: [{key: kubernetes.io/hostname, operator: In, values: [a]}]}}}`, `label "kubernetes.io/hostname" is restricted`},
	{"requirement nodepool", minimalNodePool, `spec: {template: {spec: {requirements: [{key: karpenter.sh/nodepool, operator: In, values: [a]}]}}}`, `label "karpenter.sh/nodepool" is restricted`},
	{"requirement operator", minimalNodePool, `spec: {template: {spec: {requirements: [{key: team, operator: Equals, values: [a]}]}}}`, "operator must be one of"},
	{"requirement In without values", minimalNodePool, `spec: {template: {spec: {requirements: [{key: team, operator: In}]}}}`, "requirements with operator 'In' must have a value defined"},
	{"requirement Gt not a number", minimalNodePool, `spec: {template: {spec: {requirements: [{key: karpenter.k8s.aws/instance-cpu, operator: Gt, values: [abc]}]}}}`, "must have a single positive integer value"},
	{"requirement Gte not a number", minimalNodePool, `spec: {template: {spec: {requirements: [{key: karpenter.k8s.aws/instance-cpu, operator: Gte, values: ["4.5"]}]}}}`, "must have a single positive integer value"},
	{"requirement Lte two values", minimalNodePool, `spec: {template: {spec: {requirements: [{key: karpenter.k8s.aws/instance-cpu, operator: Lte, values: ["4", "8"]}]}}}`, "must have a single positive integer value"},
	{"requirement Gte negative", minimalNodePool, `spec: {template: {spec: {requirements: [{key: karpenter.k8s.aws/instance-cpu, operator: Gte, values: ["-1"]}]}}}`, "must have a single positive integer value"},
	{"requirement minValues above values", minimalNodePool, `spec: {template: {spec: {requirements: [{key: team, operator: In, values: [a, b], minValues: 3}]}}}`, "must have at least that many values"},
	{"requirement minValues 51", minimalNodePool, `spec: {template: {spec: {requirements: [{key: team, operator: Exists, minValues: 51}]}}}`, "should be less than or equal to 50"},
	{"requirement bad key", minimalNodePool, `spec: {template: {spec: {requirements: [{key: "-bad-", operator: Exists}]}}}`, "spec.template.spec.requirements[0].key in body should match"},
	{"taint effect", minimalNodePool, `spec: {template: {spec: {taints: [{key: a, effect: Never}]}}}`, `Unsupported value: "Never"`},
	{"startup taint key", minimalNodePool, `spec: {template: {spec: {startupTaints: [{key: "Bad Key", effect: NoSchedule}]}}}`, "spec.template.spec.startupTaints[0].key in body should match"},
	{"taint value", minimalNodePool, `spec: {template: {spec: {taints: [{key: a, value: "a b", effect: NoExecute}]}}}`, "spec.template.spec.taints[0].value in body should match"},
	{"nodeClassRef without group", minimalNodePool, `spec: {template: {spec: {nodeClassRef: {group: ""}}}}`, "group may not be empty"},
	{"well-known labels allowed", minimalNodePool, `
spec:
  weight: 100
  template:
    metadata: {labels: {topology.kubernetes.io/zone: us-east-1a, node-restriction.kubernetes.io/team: a, kops.k8s.io/x: a, karpenter.sh/capacity-type: spot, karpenter.k8s.aws/instance-family: m5, billing-team: a}}
    spec:
      expireAfter: Never
      terminationGracePeriod: 1h30m
      requirements:
        - {key: node.kubernetes.io/instance-type, operator: NotIn, values: [m5.metal]}
        - {key: kubernetes.io/arch, operator: In, values: [amd64]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand], minValues: 2}
        - {key: karpenter.k8s.aws/instance-generation, operator: Gt, values: ["4"]}
        - {key: example.com/team, operator: DoesNotExist}
        - {key: karpenter.k8s.aws/instance-cpu, operator: Gte, values: ["4"]}
        - {key: karpenter.k8s.aws/instance-memory, operator: Lte, values: ["65536"]}
  disruption:
    consolidateAfter: Never
    consolidationPolicy: WhenEmpty
    budgets: [{nodes: "0", schedule: "0 9 * * mon-fri", duration: 8h, reasons: [Drifted]}, {nodes: "5"}]
`, ""},
	{"every karpenter.k8s.aws key Karpenter allows", minimalNodePool, awsKeysPatch(), ""},
	{"consolidation policy Balanced", minimalNodePool, `spec: {disruption: {consolidateAfter: 0s, consolidationPolicy: Balanced}}`, ""},
	{"static NodePool", minimalNodePool, `spec: {replicas: 3, limits: {nodes: "5"}}`, ""},
	{"static NodePool replicas -1", minimalNodePool, `spec: {replicas: -1}`, "should be greater than or equal to 0"},
	{"static NodePool with weight", minimalNodePool, `spec: {replicas: 1, weight: 10}`, "'weight' is not supported on static NodePools"},
	{"static NodePool with a cpu limit", minimalNodePool, `spec: {replicas: 1, limits: {cpu: "10"}}`, "only 'limits.nodes' is supported on static NodePools"},
}

// awsKeysPatch is a NodePool patch with a requirement and a template label
// on each of karpv1.KarpenterAWSKeys.
func awsKeysPatch() string {
	var reqs, labels []string
	for _, k := range karpv1.KarpenterAWSKeys {
		reqs = append(reqs, fmt.Sprintf("{key: karpenter.k8s.aws/%s, operator: Exists}", k))
		labels = append(labels, fmt.Sprintf("karpenter.k8s.aws/%s: x", k))
	}
	return fmt.Sprintf("spec: {template: {metadata: {labels: {%s}}, spec: {requirements: [%s]}}}",
		strings.Join(labels, ", "), strings.Join(reqs, ", "))
}

var nodeClassCases = []validationCase{
	{"windows2025 alias", minimalNodeClass, `spec: {amiSelectorTerms: [{alias: windows2025@latest}]}`, ""},
	{"Karpenter's other fields", minimalNodeClass, `
spec:
  context: arn:aws:outposts:us-east-1:111122223333:outpost/op-0123
  capacityReservationSelectorTerms: [{id: cr-0123456789abcdef0}, {tags: {team: a}, ownerID: "111122223333", instanceMatchCriteria: targeted}]
  placementGroupSelector: {name: my-cluster-pg}
  networkInterfaces: [{networkCardIndex: 0, deviceIndex: 0, interfaceType: interface}, {networkCardIndex: 1, deviceIndex: 0, interfaceType: efa-only}]
  ipPrefixCount: 1
  cpuOptions: {nestedVirtualization: enabled}
  connectionTracking: {tcpEstablishedTimeout: 3600, udpTimeout: 30}
  blockDeviceMappings: [{deviceName: /dev/xvda, ebs: {snapshotID: snap-0123, volumeInitializationRate: 200}}]
`, ""},
	{"capacity reservation id with tags", minimalNodeClass, `spec: {capacityReservationSelectorTerms: [{id: cr-0123, tags: {a: b}}]}`, "'id' is mutually exclusive"},
	{"placement group name and id", minimalNodeClass, `spec: {placementGroupSelector: {name: a, id: pg-0123}}`, "'name' and 'id' are mutually exclusive"},
	{"network interfaces without a primary", minimalNodeClass, `spec: {networkInterfaces: [{networkCardIndex: 1, deviceIndex: 0, interfaceType: efa-only}]}`, "must include a primary interface"},
	{"connection tracking empty", minimalNodeClass, `spec: {connectionTracking: {}}`, "at least one of tcpEstablishedTimeout"},
	{"udp timeout 90", minimalNodeClass, `spec: {connectionTracking: {udpTimeout: 90}}`, "should be less than or equal to 60"},
	{"volume initialization without snapshot", minimalNodeClass, `spec: {blockDeviceMappings: [{deviceName: /dev/xvda, ebs: {volumeSize: 20Gi, volumeInitializationRate: 200}}]}`, "volumeInitializationRate requires snapshotID"},
	{"alias without version", minimalNodeClass, `spec: {amiSelectorTerms: [{alias: al2023}]}`, "'alias' is improperly formatted, must match the format 'family@version'"},
	{"alias family", minimalNodeClass, `spec: {amiSelectorTerms: [{alias: ubuntu@latest}]}`, "family is not supported"},
	{"windows alias version", minimalNodeClass, `spec: {amiSelectorTerms: [{alias: windows2022@v20240807}]}`, "windows families may only specify version 'latest'"},
	{"alias with id", minimalNodeClass, `spec: {amiSelectorTerms: [{alias: al2023@latest, id: ami-0123}]}`, "'alias' is mutually exclusive, cannot be set with a combination of other fields"},
	{"two alias terms", minimalNodeClass, `spec: {amiSelectorTerms: [{alias: al2023@latest}, {alias: al2@latest}]}`, "'alias' is mutually exclusive, cannot be set with a combination of other amiSelectorTerms"},
	{"empty ami term", minimalNodeClass, `spec: {amiSelectorTerms: [{}]}`, "expected at least one, got none, ['tags', 'id', 'name', 'alias', 'ssmParameter']"},
	{"no ami terms", minimalNodeClass, `spec: {amiSelectorTerms: []}`, "should have at least 1 items"},
	{"id without amiFamily", minimalNodeClass, `spec: {amiSelectorTerms: [{id: ami-0123}]}`, "must specify amiFamily if amiSelectorTerms does not contain an alias"},
	{"amiFamily differs from alias", minimalNodeClass, `spec: {amiFamily: Bottlerocket}`, "amiFamily must be 'Custom' or the family of the amiSelectorTerms alias"},
	{"role and instanceProfile", minimalNodeClass, `spec: {instanceProfile: KarpenterNodeInstanceProfile}`, "must specify exactly one of ['role', 'instanceProfile']"},
	{"neither role nor instanceProfile", minimalNodeClass, `spec: {role: null}`, "must specify exactly one of ['role', 'instanceProfile']"},
	{"empty subnet term", minimalNodeClass, `spec: {subnetSelectorTerms: [{}]}`, "expected at least one, got none, ['tags', 'id']"},
	{"subnet id and tags", minimalNodeClass, `spec: {subnetSelectorTerms: [{id: subnet-0123, tags: {a: b}}]}`, "'id' is mutually exclusive"},
	{"security group name and id", minimalNodeClass, `spec: {securityGroupSelectorTerms: [{id: sg-0123, name: web}]}`, "'id' is mutually exclusive"},
	{"empty tag value", minimalNodeClass, `spec: {subnetSelectorTerms: [{tags: {a: ""}}]}`, "empty tag keys or values aren't supported"},
	{"restricted tag", minimalNodeClass, `spec: {tags: {kubernetes.io/cluster/test: owned}}`, "tag contains a restricted tag matching kubernetes.io/cluster/"},
	{"httpTokens", minimalNodeClass, `spec: {metadataOptions: {httpTokens: sometimes}}`, "Unsupported value: \"sometimes\""},
	{"hop limit", minimalNodeClass, `spec: {metadataOptions: {httpPutResponseHopLimit: 65}}`, "should be less than or equal to 64"},
	{"image GC thresholds", minimalNodeClass, `spec: {kubelet: {imageGCHighThresholdPercent: 50, imageGCLowThresholdPercent: 60}}`, "imageGCHighThresholdPercent must be greater than imageGCLowThresholdPercent"},
	{"evictionSoft without grace period", minimalNodeClass, `spec: {kubelet: {evictionSoft: {memory.available: 5%}}}`, "evictionSoft OwnerKey does not have a matching evictionSoftGracePeriod"},
	{"systemReserved key", minimalNodeClass, `spec: {kubelet: {systemReserved: {gpu: "1"}}}`, "valid keys for systemReserved"},
	{"two root volumes", minimalNodeClass, `spec: {blockDeviceMappings: [{rootVolume: true, ebs: {volumeSize: 20Gi}}, {rootVolume: true, ebs: {volumeSize: 20Gi}}]}`, "must have only one blockDeviceMappings with rootVolume"},
	{"volume without size", minimalNodeClass, `spec: {blockDeviceMappings: [{deviceName: /dev/xvda, ebs: {volumeType: gp3}}]}`, "snapshotID or volumeSize must be defined"},
	{"volume type", minimalNodeClass, `spec: {blockDeviceMappings: [{deviceName: /dev/xvda, ebs: {volumeSize: 20Gi, volumeType: gp9}}]}`, "Unsupported value: \"gp9\""},
	{"instance store policy", minimalNodeClass, `spec: {instanceStorePolicy: RAID5}`, "Unsupported value: \"RAID5\""},
	{"custom AMIs by id and tags", minimalNodeClass, `
spec:
  amiFamily: Custom
  role: null
  instanceProfile: KarpenterNodeInstanceProfile
  amiSelectorTerms: [{id: ami-0123}, {tags: {team: a}, owner: self}, {name: my-ami-*}]
  subnetSelectorTerms: [{id: subnet-0123}, {tags: {Name: "*private*"}}]
  securityGroupSelectorTerms: [{id: sg-0123}, {name: nodes}]
  kubelet: {maxPods: 110, evictionSoft: {memory.available: 5%}, evictionSoftGracePeriod: {memory.available: 1m}, systemReserved: {cpu: 100m}}
  blockDeviceMappings: [{deviceName: /dev/xvda, rootVolume: true, ebs: {volumeSize: 100Gi, volumeType: gp3}}]
  instanceStorePolicy: RAID0
`, ""},
	{"bottlerocket alias with family", minimalNodeClass, `spec: {amiFamily: Bottlerocket, amiSelectorTerms: [{alias: bottlerocket@v1.20.3}]}`, ""},
}

var nodeClaimCases = []validationCase{
	{"no nodeClassRef", minimalNodeClaim, `spec: {nodeClassRef: null}`, "spec.nodeClassRef: Required value"},
	{"restricted requirement", minimalNodeClaim, `spec: {requirements: [{key: kubernetes.io/custom, operator: Exists}]}`, `label domain "kubernetes.io" is restricted`},
	{"taint effect", minimalNodeClaim, `spec: {taints: [{key: a, effect: Sometimes}]}`, `Unsupported value: "Sometimes"`},
	{"requirement Lte not a number", minimalNodeClaim, `spec: {requirements: [{key: karpenter.k8s.aws/instance-cpu, operator: Lte, values: [many]}]}`, "must have a single positive integer value"},
	{"Gte, Lte and new karpenter.k8s.aws keys", minimalNodeClaim, `spec: {requirements: [{key: karpenter.k8s.aws/instance-cpu, operator: Gte, values: ["2"]}, {key: karpenter.k8s.aws/instance-cpu, operator: Lte, values: ["8"]}, {key: karpenter.k8s.aws/capacity-reservation-type, operator: In, values: [default]}, {key: karpenter.k8s.aws/instance-tenancy, operator: In, values: [default]}]}`, ""},
}

func testValidation(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	rejected := 0
	for _, group := range []struct {
		gvr   schema.GroupVersionResource
		cases []validationCase
	}{
		{karpv1.NodePoolsResource, nodePoolCases},
		{awsv1.EC2NodeClassesResource, nodeClassCases},
		{karpv1.NodeClaimsResource, nodeClaimCases},
	} {
		for _, tc := range group.cases {
			obj := mergePatch(t, fromYAML(t, tc.base), tc.patch)
			_, err := dyn.Resource(group.gvr).Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("%s %q: rejected: %v", obj.GetKind(), tc.name, err)
			case tc.wantErr == "":
			case err == nil:
				t.Errorf("%s %q: accepted, want %q", obj.GetKind(), tc.name, tc.wantErr)
			case !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("%s %q: error %v, want Invalid with %q", obj.GetKind(), tc.name, err, tc.wantErr)
			default:
				rejected++
			}
		}
	}
	t.Logf("%d invalid objects rejected with the expected message", rejected)
}

func testUpdateRules(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	claims := dyn.Resource(karpv1.NodeClaimsResource)
	claim := createAndCleanUp(ctx, t, dyn, karpv1.NodeClaimsResource, mergePatch(t, fromYAML(t, minimalNodeClaim), `metadata: {name: crd-immutable}`))
	changed := mergePatch(t, claim, `spec: {requirements: [{key: node.kubernetes.io/instance-type, operator: In, values: [m5.xlarge]}]}`)
	if _, err := claims.Update(ctx, changed, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "spec is immutable") {
		t.Errorf("NodeClaim spec update: err = %v, want spec is immutable", err)
	}
	// Metadata stays mutable: the watcher labels NodeClaims after launch.
	labelled := mergePatch(t, claim, `metadata: {labels: {karpenter.sh/nodepool: default}}`)
	if _, err := claims.Update(ctx, labelled, metav1.UpdateOptions{}); err != nil {
		t.Errorf("NodeClaim label update: %v", err)
	}

	classes := dyn.Resource(awsv1.EC2NodeClassesResource)
	class := createAndCleanUp(ctx, t, dyn, awsv1.EC2NodeClassesResource,
		mergePatch(t, fromYAML(t, minimalNodeClass), `
metadata: {name: crd-profile}
spec: {role: null, instanceProfile: KarpenterNodeInstanceProfile}
`))
	// A NodePool stays static or dynamic for life; a static one scales
	// through the scale subresource (kubectl scale nodepool/x --replicas).
	pools := dyn.Resource(karpv1.NodePoolsResource)
	dynPool := createAndCleanUp(ctx, t, dyn, karpv1.NodePoolsResource, mergePatch(t, fromYAML(t, minimalNodePool), `metadata: {name: crd-dynamic}`))
	if _, err := pools.Update(ctx, mergePatch(t, dynPool, `spec: {replicas: 2}`), metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "Cannot transition NodePool between static") {
		t.Errorf("dynamic NodePool made static: err = %v", err)
	}
	static := createAndCleanUp(ctx, t, dyn, karpv1.NodePoolsResource, mergePatch(t, fromYAML(t, minimalNodePool), "metadata: {name: crd-static}\nspec: {replicas: 1}\n"))
	scale, err := pools.Get(ctx, static.GetName(), metav1.GetOptions{}, "scale")
	if err != nil {
		t.Fatalf("scale subresource: %v", err)
	}
	if err := unstructured.SetNestedField(scale.Object, int64(4), "spec", "replicas"); err != nil {
		t.Fatal(err)
	}
	if _, err := pools.Update(ctx, scale, metav1.UpdateOptions{}, "scale"); err != nil {
		t.Fatalf("scale to 4: %v", err)
	}
	got, err := pools.Get(ctx, static.GetName(), metav1.GetOptions{})
	if n, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); err != nil || n != 4 {
		t.Errorf("spec.replicas after scaling = %d, %v; want 4", n, err)
	}
	if _, err := pools.Update(ctx, mergePatch(t, got, `spec: {replicas: null}`), metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "Cannot transition NodePool between static") {
		t.Errorf("static NodePool made dynamic: err = %v", err)
	}

	toRole := mergePatch(t, class, `spec: {instanceProfile: null, role: KarpenterNodeRole-test}`)
	if _, err := classes.Update(ctx, toRole, metav1.UpdateOptions{}); err == nil || !strings.Contains(err.Error(), "changing from 'instanceProfile' to 'role' is not supported") {
		t.Errorf("EC2NodeClass instanceProfile to role: err = %v", err)
	}
}
