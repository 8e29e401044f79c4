package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flotilla-io/flotilla/integration/controlplane"
	"github.com/flotilla-io/flotilla/internal/solver"
	"github.com/flotilla-io/flotilla/internal/verify"
	"github.com/flotilla-io/flotilla/internal/workload"
)

// cluster is the control plane every test in this package shares.
var cluster *controlplane.ControlPlane

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	build := exec.Command("bash", "../hack/controlplane.sh")
	build.Stderr = os.Stderr
	out, err := build.Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: building the control plane: %v\n", err)
		return 1
	}
	workDir, err := os.MkdirTemp("", "flotilla-controlplane-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(workDir)
	cp, err := controlplane.Start(context.Background(), controlplane.Options{BinDir: strings.TrimSpace(string(out)), WorkDir: workDir})
	defer cp.Stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: starting the control plane: %v\n", err)
		for _, name := range []string{"etcd", "kube-apiserver", "kube-scheduler"} {
			fmt.Fprintf(os.Stderr, "--- last lines of %s.log:\n%s\n", name, cp.LogTail(name, 20))
		}
		return 1
	}
	cluster = cp
	return m.Run()
}

// TestKubeSchedulerAcceptsPlans applies solver plans to a real kube-apiserver
// and lets the real kube-scheduler bind the pods: each planned NodeClaim
// becomes a Node with the labels, taints and allocatable resources of the
// instance it launches, each pod is nominated to its planned node, and every
// pod must end up bound. A pod the scheduler rejects on its nominated node
// falls back to the scheduler's own choice; the test reports how many landed
// exactly where planned.
func TestKubeSchedulerAcceptsPlans(t *testing.T) {
	cases := []struct {
		name    string
		problem *solver.Problem
	}{
		{"karpenter-mix-300", workload.KarpenterMix(300, 11)},
		{"best-practice-nodepools", bestPracticeProblem()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan, err := solver.Solve(t.Context(), tc.problem)
			if err != nil {
				t.Fatalf("solve: %v", err)
			}
			if err := verify.Plan(tc.problem, plan); err != nil {
				t.Fatalf("plan fails the checker: %v", err)
			}
			if len(plan.Unschedulable) > 0 {
				t.Fatalf("%d pods unschedulable, first: %s: %s", len(plan.Unschedulable), plan.Unschedulable[0].Pod, plan.Unschedulable[0].Reason)
			}
			applyPlan(t, tc.problem, plan)
		})
	}
}

func applyPlan(t *testing.T, p *solver.Problem, plan *solver.Plan) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	client := cluster.Client
	t.Cleanup(func() { cleanup(t) })

	namespaces := map[string]map[string]string{}
	for _, pod := range p.Pods {
		namespaces[pod.Namespace] = p.Namespaces[pod.Namespace]
	}
	for _, name := range sortedKeys(namespaces) {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: namespaces[name]}}
		if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
			t.Fatal(err)
		}
	}

	nodes, err := plannedNodes(p, plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := parallel(len(nodes), func(i int) error { return createNode(ctx, client, nodes[i]) }); err != nil {
		t.Fatal(err)
	}

	target := map[solver.PodRef]string{}
	for i, c := range plan.NodeClaims {
		for _, ref := range c.Pods {
			target[ref] = nodes[i].name
		}
	}
	for node, refs := range plan.ExistingBindings {
		for _, ref := range refs {
			target[ref] = node
		}
	}
	// Release the pods in waves that replay a valid binding order: pods with
	// spread or affinity constraints go one per (labels, planned zone) per
	// wave, so each domain grows in step as it did in the solver.
	pods := p.Pods
	total := 0
	for _, wave := range waves(pods, target, nodes) {
		if err := parallel(len(wave), func(i int) error { return createNominated(ctx, wave[i], target[wave[i].Ref()]) }); err != nil {
			t.Fatal(err)
		}
		total += len(wave)
		waitBound(ctx, t, total, func(bound map[solver.PodRef]string) {
			for _, pod := range pods {
				if node, ok := bound[pod.Ref()]; ok && node != target[pod.Ref()] {
					t.Logf("%s planned on %s, bound to %s", pod.Ref(), target[pod.Ref()], node)
				}
			}
		})
	}
	bound := waitBound(ctx, t, total, func(map[solver.PodRef]string) {})
	asPlanned := 0
	for _, pod := range pods {
		if bound[pod.Ref()] == target[pod.Ref()] {
			asPlanned++
		}
	}
	for _, pod := range pods {
		if bound[pod.Ref()] != target[pod.Ref()] {
			t.Errorf("%s: planned on %s, kube-scheduler bound it to %s", pod.Ref(), target[pod.Ref()], bound[pod.Ref()])
		}
	}
	t.Logf("%d pods on %d planned nodes: all bound by kube-scheduler, %d exactly on their planned node", len(pods), len(nodes), asPlanned)
}

// waves orders pods for release. Unconstrained pods all go first; a pod
// with a topology spread or required pod affinity goes in wave k when it
// is the k-th pod with its labels planned into its zone.
func waves(pods []*solver.Pod, target map[solver.PodRef]string, nodes []nodeSpec) [][]*solver.Pod {
	zoneOf := map[string]string{}
	for _, n := range nodes {
		zoneOf[n.name] = n.labels[solver.LabelZone]
	}
	seen := map[string]int{}
	var out [][]*solver.Pod
	for _, pod := range pods {
		k := 0
		if len(pod.TopologySpread) > 0 || len(pod.PodAffinity.Required) > 0 {
			key := fmt.Sprint(pod.Namespace, pod.Labels, zoneOf[target[pod.Ref()]])
			k = seen[key]
			seen[key]++
		}
		for len(out) <= k {
			out = append(out, nil)
		}
		out[k] = append(out[k], pod)
	}
	return out
}

// createNominated creates the pod behind a scheduling gate, nominates it to
// its planned node, and then lifts the gate.
func createNominated(ctx context.Context, p *solver.Pod, node string) error {
	pods := cluster.Client.CoreV1().Pods(p.Namespace)
	pod := corePod(p)
	pod.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: planGate}}
	created, err := pods.Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create pod %s: %w", p.Ref(), err)
	}
	created.Status.NominatedNodeName = node
	updated, err := pods.UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("nominate pod %s: %w", p.Ref(), err)
	}
	updated.Spec.SchedulingGates = nil
	if _, err := pods.Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("ungate pod %s: %w", p.Ref(), err)
	}
	return nil
}

// waitBound waits until want pods are bound and returns pod → node; when
// binding makes no progress for a minute it fails the test with the
// scheduler's reasons for the rest.
func waitBound(ctx context.Context, t *testing.T, want int, explain func(map[solver.PodRef]string)) map[solver.PodRef]string {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	last, lastChange := -1, time.Now()
	for {
		list, err := cluster.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bound := map[solver.PodRef]string{}
		var pending []string
		for _, pod := range list.Items {
			if pod.Spec.NodeName != "" {
				bound[solver.PodRef{Namespace: pod.Namespace, Name: pod.Name}] = pod.Spec.NodeName
				continue
			}
			for _, c := range pod.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
					pending = append(pending, pod.Namespace+"/"+pod.Name+": "+c.Message)
				}
			}
		}
		if len(bound) >= want {
			return bound
		}
		if len(bound) != last {
			last, lastChange = len(bound), time.Now()
		} else if time.Since(lastChange) > time.Minute {
			cancel()
		}
		select {
		case <-ctx.Done():
			explain(bound)
			if len(pending) > 5 {
				pending = pending[:5]
			}
			t.Fatalf("only %d of %d pods bound; unschedulable: %s", len(bound), want, strings.Join(pending, "; "))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func cleanup(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := cluster.Client
	zero := int64(0)
	namespaces, err := client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, ns := range namespaces.Items {
		if err := client.CoreV1().Pods(ns.Name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{}); err != nil {
			t.Errorf("cleanup pods in %s: %v", ns.Name, err)
		}
	}
	if err := client.CoreV1().Nodes().DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		t.Errorf("cleanup nodes: %v", err)
	}
	for {
		pods, err := client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) == 0 || ctx.Err() != nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}
