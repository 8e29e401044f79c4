package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/watcher/disruption"
)

// Karpenter's hash scheme versions (sigs.k8s.io/karpenter v1:
// NodePoolHashVersion "v3"; karpenter-provider-aws v1:
// EC2NodeClassHashVersion "v4"), stamped on the NodeClaims it launched.
const (
	karpenterNodePoolHashVersion  = "v3"
	karpenterNodeClassHashVersion = "v4"
)

// testKarpenterAdoption: a cluster moving from Karpenter, as
// docs/migrating-from-karpenter.md describes it. NodeClaims, nodes and
// instances are left as Karpenter leaves them — Launched, Registered and
// Initialized, with Karpenter's own hash values and hash versions and no
// Flotilla annotation — while the watcher is down; the watcher then starts.
// It must adopt them: nothing launched, nothing terminated, no pod moved,
// no drift replacement for the foreign hashes, which it re-stamps with its
// own scheme instead.
func testKarpenterAdoption(ctx context.Context, t *testing.T, e *e2eEnv) {
	const pool, suite = "e2e-adopt", "adopt"
	e.pool(ctx, t, "", pool, suite, e2eClass, func(np *karpv1.NodePool) {
		np.Spec.Template.Spec.Requirements = append(np.Spec.Template.Spec.Requirements, karpv1.NodeSelectorRequirementWithMinValues{
			NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn, Values: []string{"c5.large", "m5.large"}}})
		// consolidateAfter Never: only drift could replace a node here.
		np.Spec.Disruption.ConsolidateAfter = karpv1.NillableDuration{}
	})
	ns := e.namespace(ctx, t, pool)
	e.deployment(ctx, t, ns, "held", 4, podSpec(suite, "700m", "512Mi"), nil)
	e.waitRunning(ctx, t, 3*time.Minute, ns, "app=held", 4)
	poll(ctx, t, time.Minute, "one instance per NodeClaim", func() (bool, string) { return e.oneToOne(ctx, t, pool) })
	before := e.adoptionState(ctx, t, ns, pool)

	e.proc.kill(t)
	for _, c := range e.claims(ctx, t, pool) {
		c := c
		patch := client.MergeFrom(c.DeepCopy())
		for k := range c.Annotations {
			if strings.HasPrefix(k, "flotilla.io/") {
				delete(c.Annotations, k)
			}
		}
		c.Annotations[karpv1.NodePoolHashAnnotationKey] = "6069342446063474539"
		c.Annotations[karpv1.NodePoolHashVersionAnnotationKey] = karpenterNodePoolHashVersion
		c.Annotations[karpv1.NodeClassHashAnnotationKey] = "4187916577453434185"
		c.Annotations[karpv1.NodeClassHashVersionAnnotationKey] = karpenterNodeClassHashVersion
		if err := e.crc.Patch(ctx, &c, patch); err != nil {
			t.Fatalf("make NodeClaim %s look like Karpenter's: %v", c.Name, err)
		}
	}
	for _, c := range e.claims(ctx, t, pool) {
		if c.Annotations[karpv1.NodePoolHashVersionAnnotationKey] != karpenterNodePoolHashVersion {
			t.Fatalf("NodeClaim %s does not carry Karpenter's hash version before the start: %v", c.Name, c.Annotations)
		}
	}
	drifted := e.disrupted(ctx)["Drifted"]
	e.proc.restart(ctx, t)

	took := poll(ctx, t, 2*time.Minute, "Karpenter's NodeClaims re-stamped with Flotilla's hash versions", func() (bool, string) {
		for _, c := range e.claims(ctx, t, pool) {
			if c.Annotations[karpv1.NodePoolHashVersionAnnotationKey] != disruption.NodePoolHashVersion {
				return false, c.Name + " still " + c.Annotations[karpv1.NodePoolHashVersionAnnotationKey]
			}
		}
		return true, ""
	})
	// Several disruption passes (every 2s) after the re-stamp: still the
	// same NodeClaims, instances and pods.
	time.Sleep(10 * time.Second)
	after := e.adoptionState(ctx, t, ns, pool)
	if after != before {
		t.Errorf("adoption changed the cluster:\nbefore %s\nafter  %s", before, after)
	}
	if d := e.disrupted(ctx)["Drifted"] - drifted; d != 0 {
		t.Errorf("%v NodeClaims disrupted as Drifted after adoption", d)
	}
	t.Logf("adopted %s; re-stamped %s after the restarted watcher was healthy", after, took.Round(time.Millisecond))
	e.summary.set(t, "karpenter_adoption", "re-stamped %s after the watcher was healthy; nothing launched, terminated or moved (%s)", took.Round(time.Millisecond), after)
}

// adoptionState is what adoption must not change: the pool's NodeClaims
// (none being deleted), its instances and the pods' UIDs and nodes.
func (e *e2eEnv) adoptionState(ctx context.Context, t *testing.T, ns, pool string) string {
	t.Helper()
	var claims, insts, pods []string
	for _, c := range e.claims(ctx, t, pool) {
		name := c.Name
		if c.DeletionTimestamp != nil {
			name += "(deleting)"
		}
		claims = append(claims, name)
	}
	is, err := e.instances(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range is {
		insts = append(insts, aws.ToString(i.InstanceId))
	}
	ps, err := e.pods(ctx, ns, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		pods = append(pods, string(p.UID)+"@"+p.Spec.NodeName+"/"+string(p.Status.Phase))
	}
	for _, s := range [][]string{claims, insts, pods} {
		sort.Strings(s)
	}
	return fmt.Sprintf("NodeClaims %v, instances %v, pods %v", claims, insts, pods)
}
