package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/flotilla-io/flotilla/internal/server/apierr"
)

// healthPrefix names the health service, which is never limited: probes
// must answer while the server is busy.
const healthPrefix = "/grpc.health.v1.Health/"

// gate admits a call before gRPC reads its request body (a tap handle): it
// authenticates the peer from its verified certificate, authorizes the
// method by the policy, and takes one of maxInFlight slots. A call it
// refuses costs no message decoding and no handler work. As a
// stats.Handler it gives the slot back when the call ends.
type gate struct {
	service     string
	trustDomain string
	insecure    bool
	log         *slog.Logger
	// known holds the methods registered on this server; a call to any
	// other is refused here, since gRPC would report no end for it.
	known map[string]bool

	maxInFlight int64
	inFlight    atomic.Int64

	denied   *prometheus.CounterVec
	rejected *prometheus.CounterVec
	gauge    prometheus.GaugeFunc
}

func newGate(service, trustDomain string, insecure bool, maxInFlight int, log *slog.Logger) *gate {
	g := &gate{service: service, trustDomain: trustDomain, insecure: insecure, log: log, maxInFlight: int64(maxInFlight), known: map[string]bool{}}
	labels := prometheus.Labels{"service": service}
	g.denied = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flotilla_grpc_authz_denied_total", Help: "gRPC calls refused by the authorization policy, by method and caller identity.", ConstLabels: labels,
	}, []string{"method", "identity"})
	g.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flotilla_grpc_overload_rejected_total", Help: "gRPC calls refused with RESOURCE_EXHAUSTED because the in-flight limit was reached.", ConstLabels: labels,
	}, []string{"method"})
	g.gauge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "flotilla_grpc_in_flight", Help: "gRPC calls being served, health checks excluded.", ConstLabels: labels,
	}, func() float64 { return float64(g.inFlight.Load()) })
	return g
}

func (g *gate) collectors() []prometheus.Collector {
	return []prometheus.Collector{g.denied, g.rejected, g.gauge}
}

// slot is the in-flight slot a call holds; release gives it back once.
type slot struct {
	once sync.Once
	g    *gate
}

func (s *slot) release() { s.once.Do(func() { s.g.inFlight.Add(-1) }) }

type slotKey struct{}

// admit is the tap handle.
func (g *gate) admit(ctx context.Context, info *tap.Info) (context.Context, error) {
	method := info.FullMethodName
	if !g.known[method] {
		return nil, status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	if !g.insecure {
		id, err := g.identity(ctx)
		if err != nil {
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
		if !Allowed(method, id) {
			g.denied.WithLabelValues(method, id).Inc()
			g.log.WarnContext(ctx, "permission denied", slog.String("identity", id), slog.String("method", method), slog.String("peer", peerAddr(ctx)))
			return nil, status.Errorf(codes.PermissionDenied, "permission denied: %q may not call %s", id, method)
		}
		ctx = WithPeerIdentity(ctx, id)
	}
	if strings.HasPrefix(method, healthPrefix) || g.maxInFlight <= 0 {
		return ctx, nil
	}
	if n := g.inFlight.Add(1); n > g.maxInFlight {
		g.inFlight.Add(-1)
		g.rejected.WithLabelValues(method).Inc()
		return nil, overloaded(fmt.Sprintf("%s is busy: %d calls in flight, its limit (--max-in-flight); retry later", g.service, g.maxInFlight))
	}
	return context.WithValue(ctx, slotKey{}, &slot{g: g}), nil
}

// overloaded is the status of a call refused for the in-flight limit:
// ResourceExhausted with the reason apierr.ReasonOverloaded, so that it is
// not mistaken for a launch that found no capacity.
func overloaded(msg string) error {
	st, err := status.New(codes.ResourceExhausted, msg).WithDetails(&errdetails.ErrorInfo{Reason: apierr.ReasonOverloaded, Domain: apierr.ErrorDomain})
	if err != nil {
		return status.Error(codes.ResourceExhausted, msg)
	}
	return st.Err()
}

// ErrorReason is the reason of the google.rpc.ErrorInfo detail of a gRPC
// status error in apierr.ErrorDomain, or "".
func ErrorReason(err error) string {
	return flotillaErrorInfo(err).GetReason()
}

// ErrorMetadata is the metadata of the ErrorInfo detail in
// apierr.ErrorDomain of a gRPC error (nil when there is none), e.g. the
// apierr.MetadataQuota of an INSUFFICIENT_CAPACITY error.
func ErrorMetadata(err error) map[string]string {
	return flotillaErrorInfo(err).GetMetadata()
}

func flotillaErrorInfo(err error) *errdetails.ErrorInfo {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == apierr.ErrorDomain {
			return info
		}
	}
	return nil
}

// identity is the peer's identity from its verified certificate chain.
func (g *gate) identity(ctx context.Context) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return "", fmt.Errorf("no TLS peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", fmt.Errorf("the peer presented no verified client certificate")
	}
	return IdentityOf(ti.State.VerifiedChains[0][0], g.trustDomain), nil
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// TagRPC, HandleRPC, TagConn and HandleConn make the gate a stats.Handler:
// the end of a call releases its slot.
func (g *gate) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

func (g *gate) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.End); !ok {
		return
	}
	if sl, ok := ctx.Value(slotKey{}).(*slot); ok {
		sl.release()
	}
}

func (g *gate) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (g *gate) HandleConn(context.Context, stats.ConnStats) {}
