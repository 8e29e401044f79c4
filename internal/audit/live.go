package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
)

// ErrNoNodePoolCRD is returned by Load when the API server does not serve
// karpenter.sh/v1 NodePools.
var ErrNoNodePoolCRD = errors.New("cluster has no karpenter.sh/v1 NodePool CRD")

// ErrUnreachable wraps the error of an API server that could not be reached.
var ErrUnreachable = errors.New("cannot reach the API server")

// DefaultTimeout bounds each request of Load when cfg sets no timeout.
const DefaultTimeout = 30 * time.Second

// Load lists, read-only, every object the checks look at from the cluster
// cfg reaches. It fails with ErrNoNodePoolCRD when the cluster does not
// serve karpenter.sh/v1 NodePools, with an error wrapping ErrUnreachable
// when the API server cannot be reached, and with "listing <resource>:
// forbidden: ..." when RBAC denies a list. EC2NodeClasses are listed when
// their CRD is served, and skipped otherwise.
func Load(ctx context.Context, cfg *rest.Config) (*Inputs, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("API server client: %w", err)
	}
	if ok, err := serves(dc, karpv1.GroupVersion.String(), "nodepools", cfg.Host); err != nil {
		return nil, err
	} else if !ok {
		return nil, ErrNoNodePoolCRD
	}
	nodeClasses, err := serves(dc, awsv1.GroupVersion.String(), "ec2nodeclasses", cfg.Host)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, karpv1.AddToScheme, awsv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("scheme: %w", err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("API server client: %w", err)
	}
	return list(ctx, c, nodeClasses, cfg.Host)
}

// serves reports whether the API server serves resource in groupVersion.
func serves(dc discovery.DiscoveryInterface, groupVersion, resource, host string) (bool, error) {
	rl, err := dc.ServerResourcesForGroupVersion(groupVersion)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, apiError("discovering "+groupVersion, err, host)
	}
	for _, r := range rl.APIResources {
		if r.Name == resource {
			return true, nil
		}
	}
	return false, nil
}

// apiError turns a failed request into a one-line error: forbidden,
// unreachable, or the API server's message.
func apiError(what string, err error, host string) error {
	var status apierrors.APIStatus
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%s: forbidden: %w", what, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%s: unauthorized (check the kubeconfig's credentials): %w", what, err)
	case errors.As(err, &status):
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%w at %s: %s: %w", ErrUnreachable, host, what, err)
}

// list lists every kind into an Inputs.
func list(ctx context.Context, c client.Client, nodeClasses bool, host string) (*Inputs, error) {
	in := &Inputs{FromLiveCluster: true}
	var (
		nps  karpv1.NodePoolList
		ncs  awsv1.EC2NodeClassList
		deps appsv1.DeploymentList
		sts  appsv1.StatefulSetList
		dss  appsv1.DaemonSetList
		pods corev1.PodList
		pdbs policyv1.PodDisruptionBudgetList
		nss  corev1.NamespaceList
		lrs  corev1.LimitRangeList
		cms  corev1.ConfigMapList
		ns   corev1.NodeList
	)
	lists := []struct {
		what string
		list client.ObjectList
		opts []client.ListOption
	}{
		{"nodepools", &nps, nil},
		{"deployments", &deps, nil},
		{"statefulsets", &sts, nil},
		{"daemonsets", &dss, nil},
		{"pods", &pods, nil},
		{"poddisruptionbudgets", &pdbs, nil},
		{"namespaces", &nss, nil},
		{"limitranges", &lrs, nil},
		// Only CoreDNS's Corefile is read; other ConfigMaps are not fetched.
		{"configmaps", &cms, []client.ListOption{client.InNamespace(coreDNSNamespace), client.MatchingFields{metav1.ObjectNameField: coreDNSName}}},
		{"nodes", &ns, nil},
	}
	if nodeClasses {
		lists = append(lists, struct {
			what string
			list client.ObjectList
			opts []client.ListOption
		}{"ec2nodeclasses", &ncs, nil})
	}
	for _, l := range lists {
		if err := c.List(ctx, l.list, l.opts...); err != nil {
			return nil, apiError("listing "+l.what, err, host)
		}
	}
	in.NodePools, in.EC2NodeClasses = nps.Items, ncs.Items
	in.Deployments, in.StatefulSets, in.DaemonSets = deps.Items, sts.Items, dss.Items
	in.Pods, in.PDBs = pods.Items, pdbs.Items
	in.Namespaces, in.LimitRanges, in.ConfigMaps, in.Nodes = nss.Items, lrs.Items, cms.Items, ns.Items
	return in, nil
}
