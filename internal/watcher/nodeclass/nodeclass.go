// Package nodeclass connects EC2NodeClasses to the launcher: it caches the
// instance types each class can launch and turns a ResolveNodeClass answer
// into the class's status. The launcher reads classes by name from the API
// server; the one conversion of a class into the launcher's NodeClass
// message is internal/launcher/nodeclass.FromEC2NodeClass.
package nodeclass

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	launchernc "github.com/flotilla-io/flotilla/internal/launcher/nodeclass"
	launcherv1 "github.com/flotilla-io/flotilla/proto/flotilla/launcher/v1"
	typesv1 "github.com/flotilla-io/flotilla/proto/flotilla/types/v1"
)

// Types caches, per EC2NodeClass generation, the instance types the
// launcher lists for it.
type Types struct {
	Launcher launcherv1.LauncherServiceClient
	// ByName asks for a class by name, which the launcher reads from its
	// API server: the watcher's classes are the cluster's. Unset, the class
	// goes inline (ListInstanceTypes has no side effects, so the launcher
	// accepts it), for `flotilla plan` with classes from files.
	ByName bool
	// TTL is how long a list is reused; the launcher caches too, so this
	// mostly saves round trips within a batch.
	TTL time.Duration
	Now func() time.Time

	mu    sync.Mutex
	cache map[string]cachedTypes
	// unavailable are offerings MarkUnavailable holds unavailable, until
	// when.
	unavailable map[Offering]time.Time
}

type cachedTypes struct {
	generation int64
	at         time.Time
	types      []*typesv1.InstanceType
}

// InstanceTypes returns the types nc can launch.
func (t *Types) InstanceTypes(ctx context.Context, nc *awsv1.EC2NodeClass) ([]*typesv1.InstanceType, error) {
	now := t.now()
	t.mu.Lock()
	c, ok := t.cache[nc.Name]
	if ok && c.generation == nc.Generation && now.Sub(c.at) < t.TTL {
		defer t.mu.Unlock()
		return t.withMarks(c.types, now), nil
	}
	t.mu.Unlock()
	req := &launcherv1.ListInstanceTypesRequest{NodeClassName: nc.Name}
	if !t.ByName {
		req = &launcherv1.ListInstanceTypesRequest{NodeClass: launchernc.FromEC2NodeClass(nc)}
	}
	resp, err := t.Launcher.ListInstanceTypes(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("list instance types: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cache == nil {
		t.cache = map[string]cachedTypes{}
	}
	t.cache[nc.Name] = cachedTypes{generation: nc.Generation, at: now, types: resp.GetInstanceTypes()}
	return t.withMarks(resp.GetInstanceTypes(), now), nil
}

// Invalidate forgets every cached list (not the marks of MarkUnavailable),
// when offerings changed in a way the watcher cannot name, e.g. after the
// interruption service marked an interrupted node's offering unavailable at
// the launcher. A capacity error names its offerings: MarkUnavailable them
// instead.
func (t *Types) Invalidate() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cache = nil
}

func (t *Types) now() time.Time {
	if t.Now == nil {
		return time.Now()
	}
	return t.Now()
}

// ApplyResolution writes a ResolveNodeClass answer into the class's status
// and reports whether the class is ready (every condition True, at least
// one subnet and image).
func ApplyResolution(nc *awsv1.EC2NodeClass, res *launcherv1.ResolveNodeClassResponse) bool {
	st := &nc.Status
	st.Subnets = nil
	for _, s := range res.GetSubnets() {
		st.Subnets = append(st.Subnets, awsv1.Subnet{ID: s.GetId(), Zone: s.GetZone()})
	}
	st.SecurityGroups = nil
	for _, id := range res.GetSecurityGroupIds() {
		st.SecurityGroups = append(st.SecurityGroups, awsv1.SecurityGroup{ID: id})
	}
	st.AMIs = nil
	for _, im := range res.GetImages() {
		ami := awsv1.AMI{ID: im.GetId(), Name: im.GetName()}
		for _, r := range im.GetRequirements() {
			ami.Requirements = append(ami.Requirements, corev1.NodeSelectorRequirement{
				Key: r.GetKey(), Operator: corev1.NodeSelectorOperator(r.GetOperator()), Values: r.GetValues(),
			})
		}
		st.AMIs = append(st.AMIs, ami)
	}
	st.InstanceProfile = res.GetInstanceProfile()
	ready := len(st.Subnets) > 0 && len(st.AMIs) > 0
	msg := ""
	for _, c := range res.GetConditions() {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{
			Type: c.GetType(), Status: metav1.ConditionStatus(c.GetStatus()), Reason: reason(c.GetReason(), c.GetStatus()),
			Message: c.GetMessage(), ObservedGeneration: nc.Generation,
		})
		if c.GetStatus() != string(metav1.ConditionTrue) {
			ready = false
			msg = c.GetType() + ": " + c.GetMessage()
		}
	}
	SetReady(nc, ready, msg)
	return ready
}

// SetReady sets the class's Ready condition.
func SetReady(nc *awsv1.EC2NodeClass, ready bool, message string) {
	c := metav1.Condition{Type: karpv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", ObservedGeneration: nc.Generation}
	if !ready {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "NotReady", message
		if c.Message == "" {
			c.Message = "no subnet or no image selected"
		}
	}
	meta.SetStatusCondition(&nc.Status.Conditions, c)
}

// IsReady says whether the class's Ready condition is True.
func IsReady(nc *awsv1.EC2NodeClass) bool {
	return meta.IsStatusConditionTrue(nc.Status.Conditions, karpv1.ConditionReady)
}

// reason makes a condition reason valid for metav1.Condition (CamelCase,
// non-empty).
func reason(r, status string) string {
	if r != "" {
		return r
	}
	if status == string(metav1.ConditionTrue) {
		return "Resolved"
	}
	return "Unresolved"
}
