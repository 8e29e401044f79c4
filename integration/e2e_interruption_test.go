package integration

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	harness "github.com/flotilla-io/flotilla/integration/cluster"
	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/ec2sim/eventsim"
	"github.com/flotilla-io/flotilla/internal/interruption/sqstest"
	interruptionv1 "github.com/flotilla-io/flotilla/proto/flotilla/interruption/v1"
)

// spotNotice is the time EC2 gives between a Spot interruption warning and
// the reclaim; ec2sim terminates the instance when it runs out.
const spotNotice = 2 * time.Minute

// offering is an (instance type, zone, capacity type) triple.
type offering struct{ instanceType, zone, capacityType string }

func (o offering) String() string { return o.instanceType + "/" + o.zone + "/" + o.capacityType }

func nodeOffering(n *corev1.Node) offering {
	return offering{n.Labels[corev1.LabelInstanceTypeStable], n.Labels[corev1.LabelTopologyZone], n.Labels[karpv1.CapacityTypeLabelKey]}
}

// testSpotInterruption: a Spot warning for the node that runs a 3-replica
// Deployment with a PodDisruptionBudget, put on the queue by ec2sim as
// EventBridge would, gets a replacement node Ready and the pods Running on
// it before the 2-minute notice ends (when ec2sim reclaims the instance);
// the replacement avoids the interrupted offering; the message is deleted;
// the same message delivered again changes nothing.
func testSpotInterruption(ctx context.Context, t *testing.T, e *e2eEnv) {
	if e.c.InterruptionQueueURL() == "" {
		t.Skipf("the interruption service is not running: %s", e.c.InterruptionSkipped())
	}
	const pool, suite = "e2e-spot", "spot"
	e.pool(ctx, t, "", pool, suite, e2eClass, func(np *karpv1.NodePool) {
		np.Spec.Template.Spec.Requirements = []karpv1.NodeSelectorRequirementWithMinValues{
			{NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: karpv1.CapacityTypeLabelKey, Operator: corev1.NodeSelectorOpIn, Values: []string{"spot"}}},
			{NodeSelectorRequirement: corev1.NodeSelectorRequirement{Key: corev1.LabelInstanceTypeStable, Operator: corev1.NodeSelectorOpIn,
				Values: []string{"c5.large", "c5.xlarge", "m5.large", "m5.xlarge", "c6i.large", "m6i.large"}}},
		}
		// Only empty nodes are consolidated here, so that nothing but the
		// interruption moves the pods.
		np.Spec.Disruption.ConsolidationPolicy = karpv1.ConsolidationPolicyWhenEmpty
	})
	ns := e.namespace(ctx, t, "e2e-spot")
	pdb := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: new(intstr.FromInt32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
	}
	if _, err := e.kube.PolicyV1().PodDisruptionBudgets(ns).Create(ctx, pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.deployment(ctx, t, ns, "web", 3, podSpec(suite, "400m", "512Mi"), nil)
	e.waitRunning(ctx, t, 3*time.Minute, ns, "app=web", 3)

	victim := e.busiestNode(ctx, t, ns, "app=web")
	interrupted := nodeOffering(victim)
	if interrupted.capacityType != "spot" {
		t.Fatalf("node %s is %s, want spot", victim.Name, interrupted)
	}
	instanceID := victim.Spec.ProviderID[strings.LastIndex(victim.Spec.ProviderID, "/")+1:]
	t.Logf("interrupting %s (%s, %s) running the web pods", victim.Name, instanceID, interrupted)

	sent := time.Now()
	ev, err := eventsim.Interrupt(ctx, e.c.EC2Endpoint(), instanceID, eventsim.KindSpot, spotNotice)
	if err != nil {
		t.Fatal(err)
	}
	deadline := sent.Add(spotNotice)

	var replacement *corev1.Node
	took := poll(ctx, t, spotNotice, "web pods Running on a Ready replacement", func() (bool, string) {
		pods, err := e.pods(ctx, ns, "app=web")
		if err != nil {
			return false, err.Error()
		}
		nodes, err := e.nodes(ctx, pool)
		if err != nil {
			return false, err.Error()
		}
		byName := nodeMap(nodes)
		running, elsewhere := 0, 0
		for i := range pods {
			p := &pods[i]
			if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil {
				continue
			}
			running++
			if n := byName[p.Spec.NodeName]; n != nil && n.Name != victim.Name && nodeReady(n) {
				elsewhere++
				replacement = n
			}
		}
		return elsewhere == 3, fmt.Sprintf("%d web pods running, %d on other Ready nodes; %d nodes", running, elsewhere, len(nodes))
	})
	if time.Now().After(deadline) {
		t.Errorf("pods moved %s after the warning, past the 2-minute notice", took)
	}
	got := nodeOffering(replacement)
	if got == interrupted {
		t.Errorf("replacement %s uses the interrupted offering %s", replacement.Name, interrupted)
	}
	t.Logf("3 web pods Running on %s (%s) %s after the warning (notice %s)", replacement.Name, got, took.Round(time.Millisecond), spotNotice)

	// The node is gone from the cluster, and its instance terminated, by
	// Flotilla itself before the reclaim.
	removed := poll(ctx, t, time.Until(deadline)+10*time.Second, "interrupted node and NodeClaim removed", func() (bool, string) {
		if _, err := e.kube.CoreV1().Nodes().Get(ctx, victim.Name, metav1.GetOptions{}); err == nil {
			return false, "node still there"
		}
		for _, c := range e.claims(ctx, t, pool) {
			if c.Status.ProviderID == victim.Spec.ProviderID {
				return false, "NodeClaim " + c.Name + " still there"
			}
		}
		return true, ""
	})

	events := e.interruptionEvents(ctx, t, instanceID)
	if len(events) == 0 || events[0].GetAction() != "Disrupted" || events[0].GetId() != ev.EventID {
		t.Fatalf("interruption journal for %s: %v, want event %s Disrupted", instanceID, events, ev.EventID)
	}
	poll(ctx, t, 30*time.Second, "queue empty", func() (bool, string) {
		n, err := e.queueDepth(ctx)
		return err == nil && n == 0, fmt.Sprintf("%d messages (%v)", n, err)
	})
	cordonDelay := events[0].GetHandledTime().AsTime().Sub(events[0].GetEventTime().AsTime())

	// Redeliver the same message, as SQS may: nothing happens.
	claimsBefore := len(e.claims(ctx, t, pool))
	instsBefore, err := e.instances(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	dupBefore, _ := e.metric(ctx, harness.Interruption, "flotilla_interruption_actions_total", `action="Duplicate"`)
	if _, err := e.sqsClient().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(e.c.InterruptionQueueURL()), MessageBody: aws.String(string(ev.Event))}); err != nil {
		t.Fatalf("redeliver: %v", err)
	}
	poll(ctx, t, 30*time.Second, "redelivered message acknowledged as a duplicate", func() (bool, string) {
		dup, err := e.metric(ctx, harness.Interruption, "flotilla_interruption_actions_total", `action="Duplicate"`)
		n, qerr := e.queueDepth(ctx)
		return err == nil && qerr == nil && dup == dupBefore+1 && n == 0, fmt.Sprintf("duplicates %v→%v, queue %d", dupBefore, dup, n)
	})
	time.Sleep(3 * time.Second) // room for a wrong second disruption to show
	instsAfter, err := e.instances(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.claims(ctx, t, pool)); n != claimsBefore || len(instsAfter) != len(instsBefore) {
		t.Errorf("redelivery changed the pool: NodeClaims %d→%d, instances %d→%d", claimsBefore, n, len(instsBefore), len(instsAfter))
	}
	if _, err := e.kube.CoreV1().Nodes().Get(ctx, replacement.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("replacement node after redelivery: %v", err)
	}
	e.waitRunning(ctx, t, 10*time.Second, ns, "app=web", 3)
	t.Logf("interrupted node and NodeClaim gone %s after the pods moved; event→Disrupt accepted in %s", removed.Round(time.Millisecond), cordonDelay.Round(time.Millisecond))
	e.summary.set(t, "spot_interruption", "pods Running on a replacement (%s, interrupted %s) %s after the warning (notice %s); old node gone %s later; event→Disrupt accepted %s",
		got, interrupted, took.Round(time.Millisecond), spotNotice, removed.Round(time.Millisecond), cordonDelay.Round(time.Millisecond))
}

// busiestNode is the node running most pods of selector in ns.
func (e *e2eEnv) busiestNode(ctx context.Context, t *testing.T, ns, selector string) *corev1.Node {
	t.Helper()
	pods, err := e.pods(ctx, ns, selector)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, p := range pods {
		count[p.Spec.NodeName]++
	}
	names := make([]string, 0, len(count))
	for n := range count {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return count[b] - count[a] })
	if len(names) == 0 || names[0] == "" {
		t.Fatalf("no node runs %s in %s", selector, ns)
	}
	n, err := e.kube.CoreV1().Nodes().Get(ctx, names[0], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *e2eEnv) sqsClient() *sqs.Client { return sqstest.NewClient(e.c.SQSEndpoint()) }

// queueDepth is the number of messages on the interruption queue, visible
// or in flight.
func (e *e2eEnv) queueDepth(ctx context.Context) (int, error) {
	out, err := e.sqsClient().GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(e.c.InterruptionQueueURL()),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible},
	})
	if err != nil {
		return 0, err
	}
	total := 0
	for _, v := range out.Attributes {
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("queue attribute %q: %w", v, err)
		}
		total += n
	}
	return total, nil
}

// interruptionEvents asks the interruption service over gRPC what it did
// about an instance, newest first.
func (e *e2eEnv) interruptionEvents(ctx context.Context, t *testing.T, instanceID string) []*interruptionv1.Event {
	t.Helper()
	conn, err := e.c.DialAs(harness.Interruption, harness.OperatorIdentity)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out, err := interruptionv1.NewInterruptionServiceClient(conn).ListRecentEvents(ctx, &interruptionv1.ListRecentEventsRequest{InstanceId: instanceID})
	if err != nil {
		t.Fatalf("ListRecentEvents: %v", err)
	}
	return out.GetEvents()
}
