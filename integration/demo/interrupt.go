package demo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	"github.com/flotilla-io/flotilla/internal/ec2sim/eventsim"
	watcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/watcher/v1"
)

// spotNotice is EC2's warning time before it reclaims a Spot instance;
// ec2sim terminates the instance when it runs out.
const spotNotice = 2 * time.Minute

// interruption has ec2sim put a Spot interruption warning for the node of
// the worker pods on the queue, as EventBridge would, and waits until the
// pods run on a replacement and the interrupted node is gone — before the
// notice ends.
func (d *demo) interruption(ctx context.Context) (string, error) {
	if d.c.InterruptionQueueURL() == "" {
		return "", fmt.Errorf("the interruption service is not running: %s", d.c.InterruptionSkipped())
	}
	pods, err := d.pods(ctx, "worker")
	if err != nil || len(pods) == 0 {
		return "", fmt.Errorf("worker pods: %d (%w)", len(pods), err)
	}
	victim := &corev1.Node{}
	if err := d.crc.Get(ctx, client.ObjectKey{Name: pods[0].Spec.NodeName}, victim); err != nil {
		return "", fmt.Errorf("node of %s: %w", pods[0].Name, err)
	}
	interrupted := offeringOf(victim)
	instanceID := victim.Spec.ProviderID[strings.LastIndex(victim.Spec.ProviderID, "/")+1:]
	fmt.Fprintf(d.opts.Out, "Spot interruption warning for %s (%s, %s): 2 minutes to move its pods.\n", victim.Name, instanceID, interrupted)
	sent := time.Now()
	if _, err := eventsim.Interrupt(ctx, d.c.EC2Endpoint(), instanceID, eventsim.KindSpot, spotNotice); err != nil {
		return "", err
	}
	var replacement *corev1.Node
	st, err := d.view.live(ctx, func(st *watcherv1.GetStateResponse) (bool, error) {
		pods, err := d.pods(ctx, "worker")
		if err != nil {
			return false, err
		}
		moved := 0
		for _, p := range pods {
			if p.Status.Phase != corev1.PodRunning || p.DeletionTimestamp != nil || p.Spec.NodeName == victim.Name {
				continue
			}
			n := &corev1.Node{}
			if err := d.crc.Get(ctx, client.ObjectKey{Name: p.Spec.NodeName}, n); err == nil {
				moved++
				replacement = n
			}
		}
		for _, c := range st.GetNodeClaims() {
			if c.GetProviderId() == victim.Spec.ProviderID {
				return false, errors.New("the interrupted NodeClaim is still there")
			}
		}
		return moved == len(pods) && len(pods) == 3, nil
	})
	took := time.Since(sent)
	if err != nil {
		return "", err
	}
	if took > spotNotice {
		return "", fmt.Errorf("the pods moved %s after the warning, past the 2-minute notice", took.Round(time.Second))
	}
	// The NodeClaims launched since the warning (the replacement) avoid
	// the interrupted offering; the pods may also have found room on
	// nodes that were already there.
	var launched []string
	for _, c := range st.GetNodeClaims() {
		if c.GetCreated().AsTime().Before(sent.Truncate(time.Second)) {
			continue
		}
		o := c.GetInstanceType() + "/" + c.GetZone() + "/" + c.GetCapacityType()
		if o == interrupted {
			return "", fmt.Errorf("replacement NodeClaim %s uses the interrupted offering %s", c.GetName(), interrupted)
		}
		launched = append(launched, c.GetName()+" ("+o+")")
	}
	what := "no replacement was needed"
	if len(launched) > 0 {
		what = "replacement " + strings.Join(launched, ", ")
	}
	return fmt.Sprintf("%s; worker pods Running on %s (%s) and the interrupted node gone %s after the warning (notice %s)",
		what, replacement.Name, offeringOf(replacement), took.Round(100*time.Millisecond), spotNotice), nil
}

func offeringOf(n *corev1.Node) string {
	return n.Labels[corev1.LabelInstanceTypeStable] + "/" + n.Labels[corev1.LabelTopologyZone] + "/" + n.Labels[karpv1.CapacityTypeLabelKey]
}
