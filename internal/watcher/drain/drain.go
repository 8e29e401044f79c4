// Package drain empties a node before it is terminated, as Karpenter's
// termination controller does: pods leave through the policy/v1 Eviction API,
// so PodDisruptionBudgets are honoured, in the order non-critical pods,
// critical pods, then DaemonSet pods; pods annotated karpenter.sh/do-not-disrupt
// stay until the NodePool's terminationGracePeriod runs out, after which every
// remaining pod is deleted outright.
//
// Drain makes one pass and returns; the caller calls it again (for example on
// the next reconcile) until the Result says Done.
package drain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Well-known names the drainer reads. They match Karpenter's.
const (
	// DoNotDisruptAnnotationKey on a pod keeps it from being evicted until
	// the node's termination grace period runs out.
	DoNotDisruptAnnotationKey = "karpenter.sh/do-not-disrupt"
	// DisruptedTaintKey is the NoSchedule taint put on nodes being
	// disrupted; pods that tolerate it are left alone.
	DisruptedTaintKey = "karpenter.sh/disrupted"
	// MirrorPodAnnotationKey marks a kubelet's mirror of a static pod.
	MirrorPodAnnotationKey = "kubernetes.io/config.mirror"
)

// stuckTerminating is how long past its deletion timestamp a terminating pod
// is still waited for; after that it no longer holds the drain up.
const stuckTerminating = time.Minute

// Drainer evicts the pods of nodes being terminated.
type Drainer struct {
	// Client talks to the Kubernetes API.
	Client kubernetes.Interface
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives one line per pass; nil means slog.Default().
	Log *slog.Logger
	// Metrics counts evictions and deletions; nil records nothing.
	Metrics *Metrics
}

// Blocked is a pod that could not leave in this pass, and why.
type Blocked struct {
	// Pod is the pod, as "namespace/name".
	Pod string
	// Reason says why the pod stays, in words.
	Reason string
}

// Result is the outcome of one Drain pass.
type Result struct {
	// Done is true when no pod that must be drained is left on the node.
	Done bool
	// Evicted are the pods evicted in this pass, as "namespace/name".
	Evicted []string
	// Deleted are the pods deleted outright in this pass because the grace
	// deadline passed, as "namespace/name".
	Deleted []string
	// Blocked are the pods that stay for now, with the reason: a
	// PodDisruptionBudget refused the eviction, or do-not-disrupt.
	Blocked []Blocked
}

// Drain makes one pass over the pods bound to node: evicts (policy/v1 Eviction
// API) what may go now, in order (non-critical, then critical
// (system-cluster-critical/system-node-critical priority classes), DaemonSet
// pods last), skips karpenter.sh/do-not-disrupt pods until the grace deadline
// (nil = never forced), and after the deadline deletes pods outright. Done when
// no pod that must be drained remains (mirror pods, terminal pods and pods that
// tolerate the karpenter.sh/disrupted:NoSchedule taint do not count).
//
// Eviction refusals by PodDisruptionBudgets are not errors: they are listed in
// Result.Blocked and retried on the next pass. The error reports API failures.
func (d *Drainer) Drain(ctx context.Context, node *corev1.Node, pods []*corev1.Pod, forceAfter *time.Time) (Result, error) {
	if node == nil {
		return Result{}, errors.New("drain: node is nil")
	}
	if d.Client == nil {
		return Result{}, errors.New("drain: no Kubernetes client")
	}
	now := d.now()
	waiting := Waiting(node.Name, pods, now)
	res := Result{Done: len(waiting) == 0}
	if res.Done {
		return res, nil
	}
	forced := forceAfter != nil && !now.Before(*forceAfter)
	var err error
	if forced {
		err = d.deleteAll(ctx, waiting, &res)
	} else {
		err = d.evictNext(ctx, waiting, &res)
	}
	d.log().Info("drain pass", slog.String("node", node.Name), slog.Int("waiting", len(waiting)),
		slog.Bool("forced", forced), slog.Int("evicted", len(res.Evicted)), slog.Int("deleted", len(res.Deleted)),
		slog.Int("blocked", len(res.Blocked)))
	return res, err
}

// Waiting returns the pods on nodeName the drain still waits for: bound to the
// node, not terminal, not mirror pods, not tolerating the disrupted taint, and
// not stuck terminating for more than a minute past their deletion timestamp.
func Waiting(nodeName string, pods []*corev1.Pod, now time.Time) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range pods {
		if p == nil || p.Spec.NodeName != nodeName || IsTerminal(p) || IsMirror(p) || ToleratesDisrupted(p) {
			continue
		}
		if p.DeletionTimestamp != nil && now.Sub(p.DeletionTimestamp.Time) > stuckTerminating {
			continue
		}
		out = append(out, p)
	}
	return out
}

// evictNext evicts the first non-empty priority group of evictable pods.
// Later groups wait until the earlier ones are gone.
func (d *Drainer) evictNext(ctx context.Context, waiting []*corev1.Pod, res *Result) error {
	var evictable []*corev1.Pod
	for _, p := range waiting {
		switch {
		case p.DeletionTimestamp != nil:
			// Already leaving.
		case HasDoNotDisrupt(p):
			res.Blocked = append(res.Blocked, Blocked{Pod: key(p),
				Reason: "pod has the " + DoNotDisruptAnnotationKey + " annotation; it stays until the termination grace period ends"})
		default:
			evictable = append(evictable, p)
		}
	}
	var errs []error
	for _, p := range firstGroup(evictable) {
		if err := d.evict(ctx, p, res); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// firstGroup returns the pods of the lowest drain group present.
func firstGroup(pods []*corev1.Pod) []*corev1.Pod {
	best := -1
	var out []*corev1.Pod
	for _, p := range pods {
		g := Group(p)
		switch {
		case best == -1 || g < best:
			best, out = g, []*corev1.Pod{p}
		case g == best:
			out = append(out, p)
		}
	}
	return out
}

// Group is a pod's drain group, drained in increasing order: 0 regular pods,
// 1 critical pods, 2 DaemonSet pods, 3 critical DaemonSet pods.
func Group(p *corev1.Pod) int {
	g := 0
	if IsCritical(p) {
		g++
	}
	if IsDaemonSetPod(p) {
		g += 2
	}
	return g
}

// evict asks the API server to evict p. A 429 is a PodDisruptionBudget
// refusal and a 500 the "more than one budget" refusal: both are recorded as
// blocked. A 404 means the pod is already gone.
func (d *Drainer) evict(ctx context.Context, p *corev1.Pod, res *Result) error {
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace}}
	err := d.Client.PolicyV1().Evictions(p.Namespace).Evict(ctx, ev)
	switch {
	case err == nil:
		res.Evicted = append(res.Evicted, key(p))
		d.Metrics.record("evicted")
		return nil
	case apierrors.IsNotFound(err):
		d.Metrics.record("gone")
		return nil
	case apierrors.IsTooManyRequests(err):
		res.Blocked = append(res.Blocked, Blocked{Pod: key(p), Reason: "eviction refused by a PodDisruptionBudget: " + err.Error()})
		d.Metrics.record("blocked")
		return nil
	case apierrors.IsInternalError(err):
		res.Blocked = append(res.Blocked, Blocked{Pod: key(p), Reason: "eviction refused: " + err.Error()})
		d.Metrics.record("blocked")
		return nil
	default:
		d.Metrics.record("error")
		return fmt.Errorf("drain: evict pod %s: %w", key(p), err)
	}
}

// deleteAll deletes every waiting pod that is not already terminating: the
// grace deadline passed, so PodDisruptionBudgets and do-not-disrupt no longer
// hold it.
func (d *Drainer) deleteAll(ctx context.Context, waiting []*corev1.Pod, res *Result) error {
	var errs []error
	for _, p := range waiting {
		if p.DeletionTimestamp != nil {
			continue
		}
		err := d.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
		switch {
		case err == nil:
			res.Deleted = append(res.Deleted, key(p))
			d.Metrics.record("deleted")
		case apierrors.IsNotFound(err):
			d.Metrics.record("gone")
		default:
			d.Metrics.record("error")
			errs = append(errs, fmt.Errorf("drain: delete pod %s: %w", key(p), err))
		}
	}
	return errors.Join(errs...)
}

func (d *Drainer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Drainer) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.Default()
}

func key(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }
