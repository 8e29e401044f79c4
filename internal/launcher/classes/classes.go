// Package classes reads EC2NodeClasses by name from the Kubernetes API
// server for the launcher. The node-class content of a launch (AMIs, user
// data, metadata options, subnets, security groups, role) comes from these
// objects, which only those allowed to write EC2NodeClasses can change, and
// never over the wire from a caller. The launcher only reads them (get,
// list, watch), from an informer cache of EC2NodeClasses alone.
package classes

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
	"github.com/flotilla-io/flotilla/internal/server/apierr"
)

// Getter reads EC2NodeClasses by name.
type Getter interface {
	// Get returns the EC2NodeClass called name, or an error wrapping
	// apierr.ErrNotFound naming it when there is none.
	Get(ctx context.Context, name string) (*awsv1.EC2NodeClass, error)
}

// Reader is a Getter over a controller-runtime reader: the informer cache
// in the service, a client in tests.
type Reader struct {
	Client client.Reader
}

// Get implements Getter. A name that cannot be an object's name is refused
// with apierr.ErrInvalidArgument before any read.
func (r Reader) Get(ctx context.Context, name string) (*awsv1.EC2NodeClass, error) {
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return nil, fmt.Errorf("%w: node_class_name: %q is not an EC2NodeClass name: %s", apierr.ErrInvalidArgument, name, msgs[0])
	}
	nc := &awsv1.EC2NodeClass{}
	err := r.Client.Get(ctx, client.ObjectKey{Name: name}, nc)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("%w: EC2NodeClass %q does not exist", apierr.ErrNotFound, name)
	case err != nil:
		return nil, fmt.Errorf("read EC2NodeClass %q: %w", name, err)
	}
	return nc, nil
}

// Scheme knows EC2NodeClasses only.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := awsv1.AddToScheme(s); err != nil {
		panic(err) // static registration of the package's own types
	}
	return s
}

// Cache is a Getter served by an informer that lists and watches
// EC2NodeClasses (and nothing else) through cfg.
type Cache struct {
	Reader
	cache cache.Cache
}

// NewCache prepares the informer; it fails when the API server has no
// karpenter.k8s.aws/v1 EC2NodeClass resource. Run starts it.
func NewCache(ctx context.Context, cfg *rest.Config) (*Cache, error) {
	c, err := cache.New(cfg, cache.Options{
		Scheme:                      Scheme(),
		DefaultTransform:            cache.TransformStripManagedFields(),
		ReaderFailOnMissingInformer: true,
	})
	if err != nil {
		return nil, fmt.Errorf("EC2NodeClass cache: %w", err)
	}
	if _, err := c.GetInformer(ctx, &awsv1.EC2NodeClass{}); err != nil {
		return nil, fmt.Errorf("EC2NodeClass informer (is the %s CRD installed?): %w", awsv1.EC2NodeClassesResource.GroupResource(), err)
	}
	return &Cache{Reader: Reader{Client: c}, cache: c}, nil
}

// Run runs the informer until ctx is done.
func (c *Cache) Run(ctx context.Context) error { return c.cache.Start(ctx) }

// WaitForSync waits until the informer holds every EC2NodeClass, or ctx is
// done (an error naming the permissions it needs).
func (c *Cache) WaitForSync(ctx context.Context) error {
	if c.cache.WaitForCacheSync(ctx) {
		return nil
	}
	err := fmt.Errorf("EC2NodeClasses not listed (may the launcher get, list and watch %s?)", awsv1.EC2NodeClassesResource.GroupResource())
	if cause := context.Cause(ctx); cause != nil {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	return err
}
