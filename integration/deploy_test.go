package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// deployPlaceholders are what docs/deploy.md has envsubst fill into
// deploy/manifests/*.yaml.
var deployPlaceholders = strings.NewReplacer(
	"${CLUSTER_NAME}", "dry-run", "${AWS_REGION}", "eu-west-1",
	"${AWS_ACCOUNT_ID}", "123456789012", "${AWS_PARTITION}", "aws",
)

// serviceMonitorCRD is a minimal stand-in for the Prometheus Operator's
// ServiceMonitor CRD: enough for the API server to serve the kind, so the
// rendered ServiceMonitor can be dry-run created (its spec is checked by
// TestDeployManifestsDryRun's own assertions, not by this schema).
const serviceMonitorCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: servicemonitors.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [selector, endpoints]
              x-kubernetes-preserve-unknown-fields: true
              properties:
                selector: {type: object, x-kubernetes-preserve-unknown-fields: true}
                endpoints:
                  type: array
                  minItems: 1
                  items: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// certManagerCRDs are stand-ins for cert-manager's Certificate and Issuer
// CRDs (cert-manager.io/v1): the fields the chart uses, with cert-manager's
// names, types and enums, and no others, so the strict server-side dry run
// rejects a misspelt or misplaced field as cert-manager's own CRDs would.
const certManagerCRDs = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: certificates.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: Certificate, listKind: CertificateList, plural: certificates, singular: certificate}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [secretName, issuerRef]
              properties:
                secretName: {type: string}
                secretTemplate:
                  type: object
                  properties:
                    labels: {type: object, additionalProperties: {type: string}}
                    annotations: {type: object, additionalProperties: {type: string}}
                commonName: {type: string}
                isCA: {type: boolean}
                uris: {type: array, items: {type: string}}
                dnsNames: {type: array, items: {type: string}}
                duration: {type: string}
                renewBefore: {type: string}
                privateKey:
                  type: object
                  properties:
                    algorithm: {type: string, enum: [RSA, ECDSA, Ed25519]}
                    size: {type: integer}
                    encoding: {type: string, enum: [PKCS1, PKCS8]}
                    rotationPolicy: {type: string, enum: [Never, Always]}
                usages:
                  type: array
                  items:
                    type: string
                    enum: [signing, digital signature, content commitment, key encipherment, key agreement,
                      data encipherment, cert sign, crl sign, encipher only, decipher only, any, server auth,
                      client auth, code signing, email protection, s/mime, ipsec end system, ipsec tunnel,
                      ipsec user, timestamping, ocsp signing, microsoft sgc, netscape sgc]
                issuerRef:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    kind: {type: string}
                    group: {type: string}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: issuers.cert-manager.io}
spec:
  group: cert-manager.io
  scope: Namespaced
  names: {kind: Issuer, listKind: IssuerList, plural: issuers, singular: issuer}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                selfSigned:
                  type: object
                  properties:
                    crlDistributionPoints: {type: array, items: {type: string}}
                ca:
                  type: object
                  required: [secretName]
                  properties:
                    secretName: {type: string}
`

// TestDeployManifestsDryRun applies every object of the committed plain
// manifests (deploy/manifests/flotilla.yaml, rendered from the Helm chart and
// kept fresh by hack/verify-manifests.sh) and the ServiceMonitor to the real
// API server: the CRDs and the Namespace for real, everything else with a
// server-side dry run, which runs defaulting, validation and admission
// without persisting (cert-manager's CRDs are stand-ins, certManagerCRDs).
// Every object must be accepted. It also checks what the API server cannot:
// Services select their Deployments, the probes reach /healthz, every
// service runs with mutual TLS from a Certificate naming its identity, the
// watcher's RBAC is deploy/watcher-rbac.yaml's and the launcher's reads
// EC2NodeClasses only, IRSA roles sit only on the services that call AWS.
func TestDeployManifestsDryRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	objs := readDeployManifests(t, "flotilla.yaml")
	monitors := readDeployManifests(t, "servicemonitor.yaml")
	t.Run("consistency", func(t *testing.T) { checkDeployConsistency(t, objs, monitors) })
	t.Run("iam policies", checkIAMPolicies)

	dyn, err := dynamic.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var rest []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "CustomResourceDefinition":
			if err := applyCRD(ctx, dyn, o); err != nil {
				t.Fatal(err)
			}
		case "Namespace":
			createNamespaceOnce(ctx, t, o.GetName())
		default:
			rest = append(rest, o)
		}
	}
	if err := applyCRD(ctx, dyn, fromYAML(t, serviceMonitorCRD)); err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(certManagerCRDs, "\n---\n") {
		if err := applyCRD(ctx, dyn, fromYAML(t, doc)); err != nil {
			t.Fatal(err)
		}
	}
	rest = append(rest, monitors...)
	mapper, err := servedMapper(ctx, t,
		schema.GroupKind{Group: "monitoring.coreos.com", Kind: "ServiceMonitor"},
		schema.GroupKind{Group: "cert-manager.io", Kind: "Certificate"},
		schema.GroupKind{Group: "cert-manager.io", Kind: "Issuer"})
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, o := range rest {
		if err := dryRunCreate(ctx, dyn, mapper, o); err != nil {
			t.Errorf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
			failed++
		}
	}
	t.Logf("%d objects accepted by server-side dry run, %d rejected, in %v (CRDs and namespace applied for real)",
		len(rest)-failed, failed, time.Since(start).Round(time.Millisecond))
	// The dry run persisted nothing.
	if _, err := cluster.Client.AppsV1().Deployments("flotilla").Get(ctx, "flotilla-solver", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("after a dry run, Get deployment flotilla-solver: %v, want NotFound", err)
	}
}

// iamPlaceholders are the variables docs/deploy.md fills into deploy/iam/*.json.
var iamPlaceholders = map[string]bool{
	"AWS_PARTITION": true, "AWS_REGION": true, "AWS_ACCOUNT_ID": true, "CLUSTER_NAME": true,
	"NODE_ROLE_NAME": true, "OIDC_PROVIDER": true, "NAMESPACE": true, "SERVICE_ACCOUNT": true,
}

// checkIAMPolicies: every deploy/iam/*.json is an IAM policy document with
// only documented placeholders, and never allows an action on every resource
// unless it is a read (Describe*, pricing:GetProducts).
func checkIAMPolicies(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "deploy", "iam", "*.json"))
	if err != nil || len(files) < 3 {
		t.Fatalf("deploy/iam: %v files (%v), want the launcher, interruption and trust policies", len(files), err)
	}
	placeholder := regexp.MustCompile(`\$\{([A-Za-z_]+)\}`)
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range placeholder.FindAllStringSubmatch(string(raw), -1) {
			if !iamPlaceholders[m[1]] {
				t.Errorf("%s: undocumented placeholder ${%s}", f, m[1])
			}
		}
		var doc struct {
			Version   string
			Statement []struct {
				Sid, Effect      string
				Action, Resource any
			}
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if doc.Version != "2012-10-17" || len(doc.Statement) == 0 {
			t.Errorf("%s: version %q, %d statements", f, doc.Version, len(doc.Statement))
		}
		for _, st := range doc.Statement {
			if st.Resource != "*" {
				continue
			}
			for _, a := range strings.Fields(fmt.Sprint(st.Action)) {
				a = strings.Trim(a, "[]")
				if !strings.HasPrefix(a, "ec2:Describe") && a != "pricing:GetProducts" {
					t.Errorf("%s: statement %s allows %s on every resource", f, st.Sid, a)
				}
			}
		}
	}
}

// readDeployManifests reads deploy/manifests/<name> with the install-time
// placeholders filled in, as docs/deploy.md's envsubst does.
func readDeployManifests(t *testing.T, name string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "manifests", name))
	if err != nil {
		t.Fatal(err)
	}
	filled := deployPlaceholders.Replace(string(raw))
	if m := regexp.MustCompile(`\$\{[A-Z_]+\}`).FindString(filled); m != "" {
		t.Fatalf("%s: placeholder %s is not documented (docs/deploy.md, deployPlaceholders)", name, m)
	}
	tmp := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(tmp, []byte(filled), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := readManifests(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("%s: no objects", name)
	}
	return objs
}

// createNamespaceOnce creates the namespace for real (namespaced objects
// cannot be dry-run created in a missing one) and deletes it at the end of
// the test when it created it.
func createNamespaceOnce(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	_, err := cluster.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
	case err != nil:
		t.Fatal(err)
	default:
		t.Cleanup(func() {
			err := cluster.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting namespace %s: %v", name, err)
			}
		})
	}
}

// servedMapper is a REST mapper from the API server's discovery, built once
// the kinds (of CRDs just applied) show up in it.
func servedMapper(ctx context.Context, t *testing.T, gks ...schema.GroupKind) (meta.RESTMapper, error) {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cluster.Config)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	cached := memory.NewMemCacheClient(dc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		cached.Invalidate()
		mapper.Reset()
		for _, gk := range gks {
			if _, err := mapper.RESTMapping(gk); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%v not in discovery: %w", gks, err)
	}
	return mapper, nil
}

// dryRunCreate creates obj with a server-side dry run.
func dryRunCreate(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("no resource for %s: %w", gvk, err)
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			return errors.New("namespaced object without a namespace")
		}
		ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	_, err = ri.Create(ctx, obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
	return err
}

// deployObjects are the rendered objects by kind and name.
type deployObjects map[string]map[string]*unstructured.Unstructured

func indexObjects(objs []*unstructured.Unstructured) deployObjects {
	idx := deployObjects{}
	for _, o := range objs {
		if idx[o.GetKind()] == nil {
			idx[o.GetKind()] = map[string]*unstructured.Unstructured{}
		}
		idx[o.GetKind()][o.GetName()] = o
	}
	return idx
}

func convert[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return out
}

var flotillaServices = []string{"solver", "launcher", "watcher", "interruption"}

// checkDeployConsistency checks the relations between the rendered objects.
func checkDeployConsistency(t *testing.T, objs, monitors []*unstructured.Unstructured) {
	idx := indexObjects(objs)
	for _, svc := range flotillaServices {
		name := "flotilla-" + svc
		d, ok := idx["Deployment"][name]
		if !ok {
			t.Errorf("no Deployment %s", name)
			continue
		}
		dep := convert[appsv1.Deployment](t, d)
		checkPodSpec(t, name, &dep.Spec.Template.Spec)
		checkServerArgs(t, name, svc, dep.Spec.Template.Spec.Containers[0].Args)
		checkCertificate(t, idx, svc, tlsSecretOf(t, name, &dep.Spec.Template.Spec))
		// Only the watcher and the launcher (EC2NodeClasses) talk to the API server.
		kubeAPI := svc == "watcher" || svc == "launcher"
		if a := dep.Spec.Template.Spec.AutomountServiceAccountToken; a == nil || *a != kubeAPI {
			t.Errorf("%s: automountServiceAccountToken %v, want %v", name, a, kubeAPI)
		}
		if _, ok := idx["ServiceAccount"][dep.Spec.Template.Spec.ServiceAccountName]; !ok {
			t.Errorf("%s: ServiceAccount %q is not in the manifests", name, dep.Spec.Template.Spec.ServiceAccountName)
		}
		if _, ok := idx["NetworkPolicy"][name]; !ok {
			t.Errorf("no NetworkPolicy %s", name)
		}
		checkService(t, idx, name, dep)
		checkIRSA(t, idx, name, svc == "launcher" || svc == "interruption")
	}
	for svc, min := range map[string]int32{"solver": 2, "watcher": 2} {
		dep := convert[appsv1.Deployment](t, idx["Deployment"]["flotilla-"+svc])
		if dep.Spec.Replicas == nil || *dep.Spec.Replicas < min {
			t.Errorf("flotilla-%s: replicas %v, want >= %d", svc, dep.Spec.Replicas, min)
		}
		if len(dep.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
			t.Errorf("flotilla-%s: no topology spread", svc)
		}
		if _, ok := idx["PodDisruptionBudget"]["flotilla-"+svc]; !ok {
			t.Errorf("flotilla-%s: no PodDisruptionBudget", svc)
		}
	}
	checkWatcherRBAC(t, idx)
	checkLauncherRBAC(t, idx)
	checkServiceMonitor(t, idx, monitors)
}

func checkPodSpec(t *testing.T, name string, spec *corev1.PodSpec) {
	if spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("%s: priorityClassName %q", name, spec.PriorityClassName)
	}
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: pod is not runAsNonRoot", name)
	}
	if !avoidsManagedNodes(spec.Affinity) {
		t.Errorf("%s: no required node affinity karpenter.sh/nodepool DoesNotExist", name)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", name, len(spec.Containers))
	}
	c := spec.Containers[0]
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		!reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("%s: container security context %+v, want read-only root, no privilege escalation, drop ALL", name, c.SecurityContext)
	}
	// The gRPC port requires a client certificate, which the kubelet's gRPC
	// probe cannot present: the probes ask /healthz on the metrics port.
	metrics := false
	for _, p := range c.Ports {
		metrics = metrics || p.Name == "metrics"
	}
	for kind, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "metrics" || !metrics {
			t.Errorf("%s: %s probe %+v is not GET /healthz on the metrics port", name, kind, p)
			continue
		}
		if p.TimeoutSeconds < 3 {
			t.Errorf("%s: %s probe timeout %ds, want at least 3s", name, kind, p.TimeoutSeconds)
		}
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("%s: resources %+v, want cpu and memory requests and a memory limit", name, c.Resources)
	}
	checkGoMemLimit(t, name, c)
}

// checkGoMemLimit: GOMEMLIMIT is set, in MiB, to 80-95% of the memory limit.
func checkGoMemLimit(t *testing.T, name string, c corev1.Container) {
	var val string
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			val = e.Value
		}
	}
	mib, ok := strings.CutSuffix(val, "MiB")
	n, err := strconv.ParseInt(mib, 10, 64)
	if !ok || err != nil {
		t.Errorf("%s: GOMEMLIMIT %q, want <n>MiB", name, val)
		return
	}
	limit := c.Resources.Limits.Memory().Value()
	if got := float64(n<<20) / float64(limit); got < 0.8 || got > 0.95 {
		t.Errorf("%s: GOMEMLIMIT %s is %.0f%% of the memory limit %s, want 80-95%%", name, val, 100*got, c.Resources.Limits.Memory())
	}
}

// tlsDir is where every service reads its certificate, key and CA bundle.
const tlsDir = "/etc/flotilla/tls"

// checkServerArgs: mutual TLS from the mounted files, never --insecure, the
// trust domain, an in-flight limit and a message size limit (16 MiB for
// the solver and the watcher, which sends it the cluster-sized Solve
// requests), reflection off.
func checkServerArgs(t *testing.T, name, svc string, args []string) {
	flags := map[string]string{}
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		flags[k] = v
	}
	for _, f := range []string{"--insecure", "--reflection"} {
		if _, ok := flags[f]; ok {
			t.Errorf("%s: %s is set; the default install is mutual TLS without reflection", name, f)
		}
	}
	want := map[string]string{
		"--tls-cert": tlsDir + "/tls.crt", "--tls-key": tlsDir + "/tls.key", "--tls-ca": tlsDir + "/ca.crt",
		"--trust-domain": "flotilla",
	}
	if svc == "solver" || svc == "watcher" {
		want["--max-message-bytes"] = strconv.Itoa(16 << 20)
	}
	for f, v := range want {
		if flags[f] != v {
			t.Errorf("%s: %s=%q, want %q", name, f, flags[f], v)
		}
	}
	for _, f := range []string{"--max-in-flight", "--max-message-bytes"} {
		if n, err := strconv.Atoi(flags[f]); err != nil || n <= 0 {
			t.Errorf("%s: %s=%q, want a positive limit", name, f, flags[f])
		}
	}
}

// tlsSecretOf is the Secret mounted read-only at tlsDir.
func tlsSecretOf(t *testing.T, name string, spec *corev1.PodSpec) string {
	var vol string
	for _, m := range spec.Containers[0].VolumeMounts {
		if m.MountPath == tlsDir && m.ReadOnly && m.SubPath == "" {
			vol = m.Name
		}
	}
	for _, v := range spec.Volumes {
		if v.Name == vol && v.Secret != nil {
			return v.Secret.SecretName
		}
	}
	t.Errorf("%s: no Secret volume mounted read-only (whole, so renewals show) at %s", name, tlsDir)
	return ""
}

// checkCertificate: a cert-manager Certificate writes the service's Secret,
// names the service by its SPIFFE identity and its Service's DNS names,
// serves and calls (server and client auth), and is signed by the chart's
// CA Issuer, whose CA Certificate comes from the self-signed Issuer.
func checkCertificate(t *testing.T, idx deployObjects, svc, secret string) {
	if secret == "" {
		return
	}
	var cert *unstructured.Unstructured
	for _, c := range idx["Certificate"] {
		if n, _, _ := unstructured.NestedString(c.Object, "spec", "secretName"); n == secret {
			cert = c
		}
	}
	if cert == nil {
		t.Errorf("flotilla-%s: no Certificate writes its Secret %s", svc, secret)
		return
	}
	uris, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "uris")
	if want := []string{"spiffe://flotilla/" + svc}; !reflect.DeepEqual(uris, want) {
		t.Errorf("Certificate %s: uris %v, want %v", cert.GetName(), uris, want)
	}
	dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	if host := "flotilla-" + svc + ".flotilla.svc"; !slices.Contains(dns, host) {
		t.Errorf("Certificate %s: dnsNames %v lack %s, the address its callers dial", cert.GetName(), dns, host)
	}
	usages, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "usages")
	if !slices.Contains(usages, "server auth") || !slices.Contains(usages, "client auth") {
		t.Errorf("Certificate %s: usages %v, want server auth and client auth", cert.GetName(), usages)
	}
	if alg, _, _ := unstructured.NestedString(cert.Object, "spec", "privateKey", "algorithm"); alg != "ECDSA" {
		t.Errorf("Certificate %s: key algorithm %q, want ECDSA", cert.GetName(), alg)
	}
	issuer, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
	ca, ok := idx["Issuer"][issuer]
	if !ok {
		t.Errorf("Certificate %s: issuer %q is not in the manifests", cert.GetName(), issuer)
		return
	}
	caSecret, _, _ := unstructured.NestedString(ca.Object, "spec", "ca", "secretName")
	for _, c := range idx["Certificate"] {
		if n, _, _ := unstructured.NestedString(c.Object, "spec", "secretName"); n != caSecret || caSecret == "" {
			continue
		}
		isCA, _, _ := unstructured.NestedBool(c.Object, "spec", "isCA")
		root, _, _ := unstructured.NestedString(c.Object, "spec", "issuerRef", "name")
		selfSigned := false
		if r, ok := idx["Issuer"][root]; ok {
			_, selfSigned, _ = unstructured.NestedMap(r.Object, "spec", "selfSigned")
		}
		if !isCA || !selfSigned {
			t.Errorf("Certificate %s (the CA of Issuer %s): isCA %v, issuer %q self-signed %v", c.GetName(), issuer, isCA, root, selfSigned)
		}
		return
	}
	t.Errorf("Issuer %s: no CA Certificate writes its Secret %q", issuer, caSecret)
}

func avoidsManagedNodes(a *corev1.Affinity) bool {
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	for _, term := range terms {
		found := false
		for _, e := range term.MatchExpressions {
			found = found || (e.Key == "karpenter.sh/nodepool" && e.Operator == corev1.NodeSelectorOpDoesNotExist)
		}
		if !found {
			return false // terms are ORed: every one must exclude managed nodes
		}
	}
	return len(terms) > 0
}

// checkService: the Service selects the Deployment's pods and names its ports.
func checkService(t *testing.T, idx deployObjects, name string, dep *appsv1.Deployment) {
	s, ok := idx["Service"][name]
	if !ok {
		t.Errorf("no Service %s", name)
		return
	}
	svc := convert[corev1.Service](t, s)
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("Service %s selector %v does not select the Deployment's pods %v", name, svc.Spec.Selector, dep.Spec.Template.Labels)
	}
	ports := map[string]bool{}
	for _, p := range dep.Spec.Template.Spec.Containers[0].Ports {
		ports[p.Name] = true
	}
	for _, p := range svc.Spec.Ports {
		if !ports[p.TargetPort.String()] {
			t.Errorf("Service %s port %s targets %s, not a container port", name, p.Name, p.TargetPort.String())
		}
	}
}

// checkIRSA: an IAM role only on the ServiceAccounts of services that call AWS.
func checkIRSA(t *testing.T, idx deployObjects, name string, callsAWS bool) {
	sa, ok := idx["ServiceAccount"][name]
	if !ok {
		return
	}
	role := sa.GetAnnotations()["eks.amazonaws.com/role-arn"]
	switch {
	case callsAWS && !strings.HasPrefix(role, "arn:aws:iam::123456789012:role/"):
		t.Errorf("ServiceAccount %s: role-arn %q, want the IRSA role", name, role)
	case !callsAWS && role != "":
		t.Errorf("ServiceAccount %s: role-arn %q, but it calls no AWS API", name, role)
	}
}

// checkWatcherRBAC: the chart's ClusterRole has deploy/watcher-rbac.yaml's rules.
func checkWatcherRBAC(t *testing.T, idx deployObjects) {
	cr, ok := idx["ClusterRole"]["flotilla-watcher"]
	if !ok {
		t.Error("no ClusterRole flotilla-watcher")
		return
	}
	want, err := readManifests(filepath.Join("..", "deploy", "watcher-rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range want {
		if o.GetKind() == "ClusterRole" {
			got, exp := convert[rbacv1.ClusterRole](t, cr), convert[rbacv1.ClusterRole](t, o)
			if !reflect.DeepEqual(got.Rules, exp.Rules) {
				t.Errorf("ClusterRole flotilla-watcher rules differ from deploy/watcher-rbac.yaml:\n got %+v\nwant %+v", got.Rules, exp.Rules)
			}
			return
		}
	}
	t.Error("deploy/watcher-rbac.yaml has no ClusterRole")
}

// checkLauncherRBAC: the launcher may read EC2NodeClasses, and nothing else.
func checkLauncherRBAC(t *testing.T, idx deployObjects) {
	cr, ok := idx["ClusterRole"]["flotilla-launcher"]
	if !ok {
		t.Error("no ClusterRole flotilla-launcher (the launcher reads EC2NodeClasses by name)")
		return
	}
	want := []rbacv1.PolicyRule{{
		APIGroups: []string{"karpenter.k8s.aws"}, Resources: []string{"ec2nodeclasses"}, Verbs: []string{"get", "list", "watch"},
	}}
	if got := convert[rbacv1.ClusterRole](t, cr).Rules; !reflect.DeepEqual(got, want) {
		t.Errorf("ClusterRole flotilla-launcher rules %+v, want %+v", got, want)
	}
	b, ok := idx["ClusterRoleBinding"]["flotilla-launcher"]
	if !ok {
		t.Error("no ClusterRoleBinding flotilla-launcher")
		return
	}
	crb := convert[rbacv1.ClusterRoleBinding](t, b)
	wantSubj := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "flotilla-launcher", Namespace: "flotilla"}}
	if crb.RoleRef.Name != "flotilla-launcher" || !reflect.DeepEqual(crb.Subjects, wantSubj) {
		t.Errorf("ClusterRoleBinding flotilla-launcher binds %s to %+v, want flotilla-launcher to %+v", crb.RoleRef.Name, crb.Subjects, wantSubj)
	}
}

// checkServiceMonitor: it selects the Services of all four services, each
// with a metrics port.
func checkServiceMonitor(t *testing.T, idx deployObjects, monitors []*unstructured.Unstructured) {
	if len(monitors) != 1 || monitors[0].GetKind() != "ServiceMonitor" {
		t.Fatalf("servicemonitor.yaml: want one ServiceMonitor, got %d objects", len(monitors))
	}
	spec, _, _ := unstructured.NestedMap(monitors[0].Object, "spec", "selector")
	var sel metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(spec, &sel); err != nil {
		t.Fatal(err)
	}
	selector, err := metav1.LabelSelectorAsSelector(&sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range flotillaServices {
		s, ok := idx["Service"]["flotilla-"+svc]
		if !ok {
			continue
		}
		if !selector.Matches(labels.Set(s.GetLabels())) {
			t.Errorf("ServiceMonitor does not select Service flotilla-%s (labels %v)", svc, s.GetLabels())
		}
	}
}
