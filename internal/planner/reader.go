package planner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	karpv1 "github.com/flotilla-io/flotilla/internal/apis/karpenter/v1"
	awsv1 "github.com/flotilla-io/flotilla/internal/apis/karpenteraws/v1"
)

// Errors the planner classifies Kubernetes failures into; the CLI reports
// each as one line and exits 2.
var (
	// ErrNoCRDs: the cluster does not serve a Karpenter kind.
	ErrNoCRDs = errors.New("missing CRD")
	// ErrForbidden: RBAC (or authentication) denied a read.
	ErrForbidden = errors.New("access denied")
	// ErrUnreachable: the API server, launcher or solver did not answer.
	ErrUnreachable = errors.New("unreachable")
)

// Scheme returns a scheme with the built-in kinds and karpenter.sh/v1 and
// karpenter.k8s.aws/v1, for the client the planner reads with.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(karpv1.AddToScheme(s))
	utilruntime.Must(awsv1.AddToScheme(s))
	return s
}

// snapshotReader lists each kind once and serves later lists of the same
// kind from that first answer, so that provisioning and every disruption
// step plan against one view of the cluster. Lists with options and Gets
// go to the API server.
type snapshotReader struct {
	r client.Reader

	mu    sync.Mutex
	lists map[reflect.Type]client.ObjectList
	calls int
}

func newSnapshotReader(r client.Reader) *snapshotReader {
	return &snapshotReader{r: r, lists: map[reflect.Type]client.ObjectList{}}
}

// Get reads one object.
func (s *snapshotReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	return classify(s.r.Get(ctx, key, obj, opts...))
}

// List fills list from the first answer for its kind.
func (s *snapshotReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if len(opts) > 0 {
		s.mu.Lock()
		s.calls++
		s.mu.Unlock()
		return classifyList(s.r.List(ctx, list, opts...), list)
	}
	t := reflect.TypeOf(list)
	s.mu.Lock()
	defer s.mu.Unlock()
	cached, ok := s.lists[t]
	if !ok {
		s.calls++
		if err := s.r.List(ctx, list); err != nil {
			return classifyList(err, list)
		}
		cached, ok = list.DeepCopyObject().(client.ObjectList)
		if !ok {
			return fmt.Errorf("list %T does not copy to a list", list)
		}
		s.lists[t] = cached
		return nil
	}
	reflect.ValueOf(list).Elem().Set(reflect.ValueOf(cached.DeepCopyObject()).Elem())
	return nil
}

// classifyList is classify for a failed list: a kind the server does not
// serve is named after the list's kind.
func classifyList(err error, list client.ObjectList) error {
	if err == nil || !meta.IsNoMatchError(err) {
		return classify(err)
	}
	gvk, gvkErr := apiutil.GVKForObject(list, scheme)
	if gvkErr != nil {
		return classify(err)
	}
	return kindErrorf(ErrNoCRDs, "cluster has no %s/%s %s CRD; install deploy/crds", gvk.Group, gvk.Version, strings.TrimSuffix(gvk.Kind, "List"))
}

// scheme maps the lists the planner reads to their kinds.
var scheme = Scheme()

// classify wraps a Kubernetes error with ErrNoCRDs, ErrForbidden or
// ErrUnreachable, with a message a person can act on.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var noMatch *meta.NoKindMatchError
	switch {
	case errors.As(err, &noMatch):
		gk := noMatch.GroupKind
		return kindErrorf(ErrNoCRDs, "cluster has no %s/%s %s CRD; install deploy/crds", gk.Group, firstVersion(noMatch.SearchedVersions), gk.Kind)
	case meta.IsNoMatchError(err):
		return kindErrorf(ErrNoCRDs, "cluster lacks a kind the planner reads (%v); install deploy/crds", err)
	case apierrors.IsForbidden(err):
		return kindErrorf(ErrForbidden, "RBAC denied a read: %v", err)
	case apierrors.IsUnauthorized(err):
		return kindErrorf(ErrForbidden, "the API server rejected the credentials: %v", err)
	case isNetworkError(err):
		return kindErrorf(ErrUnreachable, "cannot reach the Kubernetes API server: %v", err)
	}
	return err
}

// kindError is an error of one of the planner's kinds (ErrNoCRDs,
// ErrForbidden, ErrUnreachable) whose message is only its own.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }

func (e *kindError) Unwrap() error { return e.kind }

func kindErrorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func firstVersion(vs []string) string {
	if len(vs) == 0 {
		return "v1"
	}
	return vs[0]
}

// isNetworkError reports whether err is a failure to talk to the server at
// all (refused, DNS, timeout), as opposed to an answer.
func isNetworkError(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) || errors.As(err, &netErr) {
		return true
	}
	return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) || errors.Is(err, context.DeadlineExceeded)
}

// ReadOnlyTransport wraps an HTTP transport so that only GET and HEAD
// requests reach the API server; any other method fails without being
// sent. The CLI installs it on its rest.Config (rest.Config.WrapTransport),
// so a plan cannot change the cluster even through a bug.
func ReadOnlyTransport(rt http.RoundTripper) http.RoundTripper {
	return readOnly{rt}
}

type readOnly struct{ next http.RoundTripper }

// ErrWriteRefused is returned for a request that would change the cluster.
var ErrWriteRefused = errors.New("flotilla plan is read-only: request refused")

func (r readOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return nil, fmt.Errorf("%w: %s %s", ErrWriteRefused, req.Method, req.URL.Path)
	}
	return r.next.RoundTrip(req)
}
