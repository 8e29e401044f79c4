// Package server is the gRPC bootstrap every Flotilla service shares:
// mutual TLS with certificates reloaded from files, a gate that
// authenticates, authorizes (one policy table, authz.go) and limits every
// call before its body is read, one interceptor chain (metrics, logging,
// error mapping, panic recovery, validation), health and optional
// reflection, a Prometheus /metrics and /healthz listener, and a graceful,
// bounded shutdown. Dial is the client side, with the same certificates.
//
// A service's main builds a Config (usually from flags, see Flags), calls
// New with a function that registers its handlers, and runs Serve with a
// context cancelled on SIGTERM or SIGINT.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// Defaults for zero Config fields.
const (
	DefaultMaxMessageBytes = 4 << 20
	DefaultDrainPeriod     = 5 * time.Second
	DefaultStopTimeout     = 20 * time.Second
	DefaultMaxInFlight     = 64
)

// Connection limits every server applies: a client must not ping more
// often than keepaliveMinTime, an idle connection is closed after
// maxConnectionIdle, a TLS handshake must finish within handshakeTimeout,
// and one connection carries at most maxStreamsPerConn calls at once.
const (
	keepaliveMinTime  = 10 * time.Second
	maxConnectionIdle = 5 * time.Minute
	keepaliveTime     = time.Minute
	keepaliveTimeout  = 20 * time.Second
	handshakeTimeout  = 10 * time.Second
	maxStreamsPerConn = 128
)

// handlingTimeBuckets cover a health check (sub-millisecond) up to a large
// solve (a minute).
var handlingTimeBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// Config configures a Server.
type Config struct {
	// Name names the service in logs, such as "solver".
	Name string
	// GRPCAddr is the gRPC listen address, such as ":50051" or
	// "127.0.0.1:0".
	GRPCAddr string
	// MetricsAddr is the HTTP listen address of /metrics and /healthz;
	// empty disables that listener.
	MetricsAddr string
	// MaxMessageBytes caps received and sent messages; 0 means 4 MiB.
	// A larger request is refused with codes.ResourceExhausted.
	MaxMessageBytes int
	// TLS names the service's certificate, key and CA bundle. Every
	// listener requires and verifies a client certificate, and Dial
	// presents this certificate to other services.
	TLS TLSFiles
	// Insecure serves plaintext without authentication or authorization,
	// and Dial connects in plaintext. It must be set explicitly when TLS
	// is empty; New logs a warning.
	Insecure bool
	// TrustDomain is the SPIFFE trust domain of identities; empty means
	// DefaultTrustDomain.
	TrustDomain string
	// MaxInFlight caps the calls served at once (health checks excluded);
	// over it a call is refused with codes.ResourceExhausted before its
	// body is read. 0 means DefaultMaxInFlight; negative means no limit.
	MaxInFlight int
	// Reflection turns on the gRPC reflection service.
	Reflection bool
	// DrainPeriod is how long the server keeps serving, with health
	// NOT_SERVING, after shutdown starts, so load balancers and kubelet
	// probes notice before connections close. 0 means no drain; a negative
	// value is an error.
	DrainPeriod time.Duration
	// StopTimeout bounds the graceful stop; in-flight RPCs still running
	// then are cancelled. 0 means 20s.
	StopTimeout time.Duration
	// Logger receives the server's logs; nil means slog.Default().
	Logger *slog.Logger
	// Validators maps a full method name ("/pkg.Service/Method") to a
	// check run before its handler; see interceptorSet.
	Validators map[string]ValidatorFunc
}

// Server is a gRPC server with its metrics listener. Create it with New and
// run it once with Serve.
type Server struct {
	cfg      Config
	log      *slog.Logger
	grpc     *grpc.Server
	health   *health.Server
	registry *prometheus.Registry
	lis      net.Listener
	mlis     net.Listener
	http     *http.Server
	once     sync.Once
}

// New listens on the configured addresses, builds the gRPC server with the
// shared interceptor chain, lets register add the service handlers, and
// turns on health (SERVING for "" and every registered service) and, when
// asked, reflection. It does not serve yet; call Serve.
func New(cfg Config, register func(*grpc.Server)) (*Server, error) {
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.TrustDomain == "" {
		cfg.TrustDomain = DefaultTrustDomain
	}
	switch {
	case cfg.Insecure && cfg.TLS.set():
		return nil, errors.New("server: both insecure and TLS files are set; choose one")
	case !cfg.Insecure && !cfg.TLS.set():
		return nil, errors.New("server: no TLS files (--tls-cert, --tls-key, --tls-ca); plaintext needs --insecure")
	case cfg.MaxMessageBytes < 0:
		return nil, fmt.Errorf("server: max message bytes %d is negative", cfg.MaxMessageBytes)
	case cfg.DrainPeriod < 0:
		return nil, fmt.Errorf("server: drain period %s is negative", cfg.DrainPeriod)
	case cfg.StopTimeout < 0:
		return nil, fmt.Errorf("server: stop timeout %s is negative", cfg.StopTimeout)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.Name != "" {
		log = log.With(slog.String("service", cfg.Name))
	}

	registry := prometheus.NewRegistry()
	metrics := grpcprom.NewServerMetrics(
		grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(handlingTimeBuckets)),
	)
	if err := registry.Register(metrics); err != nil {
		return nil, fmt.Errorf("server: register gRPC metrics: %w", err)
	}
	registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)

	g := newGate(cfg.Name, cfg.TrustDomain, cfg.Insecure, cfg.MaxInFlight, log)
	registry.MustRegister(g.collectors()...)

	unary, stream := interceptorSet(cfg.Name, log, metrics, cfg.Validators)
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.MaxSendMsgSize(cfg.MaxMessageBytes),
		grpc.InTapHandle(g.admit),
		grpc.StatsHandler(g),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMinTime, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: maxConnectionIdle, Time: keepaliveTime, Timeout: keepaliveTimeout}),
		grpc.ConnectionTimeout(handshakeTimeout),
		grpc.MaxConcurrentStreams(maxStreamsPerConn),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	if cfg.Insecure {
		log.Warn("mTLS is off (--insecure): every caller may call every method unauthenticated; never run so outside a test")
	} else {
		src, err := newCertSource(cfg.TLS, log)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(serverTLS(src))))
	}
	gs := grpc.NewServer(opts...)
	if register != nil {
		register(gs)
	}
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	if cfg.Reflection {
		reflection.Register(gs)
	}
	for svc, info := range gs.GetServiceInfo() {
		for _, m := range info.Methods {
			g.known["/"+svc+"/"+m.Name] = true
		}
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for _, name := range serviceNames(gs) {
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	metrics.InitializeMetrics(gs)

	s := &Server{cfg: cfg, log: log, grpc: gs, health: hs, registry: registry}
	var err error
	if s.lis, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("server: listen for gRPC on %q: %w", cfg.GRPCAddr, err)
	}
	if cfg.MetricsAddr != "" {
		if s.mlis, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			_ = s.lis.Close()
			return nil, fmt.Errorf("server: listen for metrics on %q: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(registry, promhttp.HandlerOpts{
			Registry:          registry,
			EnableOpenMetrics: true,
			Timeout:           10 * time.Second,
		}))
		mux.HandleFunc("GET /healthz", s.healthz)
		s.http = &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}
	return s, nil
}

// Addr is the gRPC listener's address, useful with port 0.
func (s *Server) Addr() net.Addr { return s.lis.Addr() }

// MetricsAddr is the metrics listener's address, or nil when disabled.
func (s *Server) MetricsAddr() net.Addr {
	if s.mlis == nil {
		return nil
	}
	return s.mlis.Addr()
}

// Registry is the Prometheus registry served on /metrics; services may add
// their own collectors to it.
func (s *Server) Registry() *prometheus.Registry { return s.registry }

// healthz answers 200 while the gRPC health status of "" is SERVING and
// 503 while draining.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	resp, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, "not serving")
		return
	}
	_, _ = fmt.Fprintln(w, "ok")
}

// Serve serves gRPC and metrics until ctx is done, then shuts down: health
// goes NOT_SERVING, the server keeps serving for DrainPeriod, then stops
// gracefully, cancelling whatever still runs after StopTimeout. It returns
// nil after a shutdown caused by ctx, or the error that stopped a listener.
// Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	served := false
	s.once.Do(func() { served = true })
	if !served {
		return errors.New("server: Serve called twice")
	}
	errc := make(chan error, 2)
	go func() {
		if err := s.grpc.Serve(s.lis); err != nil {
			errc <- fmt.Errorf("server: gRPC: %w", err)
		}
	}()
	if s.http != nil {
		go func() {
			if err := s.http.Serve(s.mlis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("server: metrics: %w", err)
			}
		}()
	}
	attrs := []any{slog.String("grpc_addr", s.Addr().String())}
	if m := s.MetricsAddr(); m != nil {
		attrs = append(attrs, slog.String("metrics_addr", m.String()))
	}
	s.log.Info("serving", attrs...)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		s.log.Error("listener failed, shutting down", slog.Any("error", serveErr))
	}
	s.shutdown()
	return serveErr
}

// shutdown drains and stops both servers.
func (s *Server) shutdown() {
	s.log.Info("shutting down", slog.Duration("drain_period", s.cfg.DrainPeriod), slog.Duration("stop_timeout", s.cfg.StopTimeout))
	// Every service, and "", reports NOT_SERVING (and stays so).
	s.health.Shutdown()
	if s.cfg.DrainPeriod > 0 {
		time.Sleep(s.cfg.DrainPeriod)
	}

	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(s.cfg.StopTimeout)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.log.Warn("graceful stop timed out; cancelling in-flight RPCs")
		s.grpc.Stop()
		<-stopped
	}

	if s.http != nil {
		hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.http.Shutdown(hctx); err != nil {
			_ = s.http.Close()
		}
	}
	s.log.Info("stopped")
}
