package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// DialOptions configure a client connection.
type DialOptions struct {
	// MaxMessageBytes caps messages sent and received; 0 means
	// DefaultMaxMessageBytes.
	MaxMessageBytes int
	// TLS names the client certificate, its key and the CA bundle the
	// server's certificate must chain to.
	TLS TLSFiles
	// Insecure dials plaintext; it must be set explicitly when TLS is
	// empty.
	Insecure bool
	// TrustDomain is the trust domain of ServerIdentity; empty means
	// DefaultTrustDomain.
	TrustDomain string
	// ServerIdentity, when set, is the identity the server's certificate
	// must carry ("launcher"), checked instead of its host name. Empty,
	// the host name of addr is checked, as a browser would.
	ServerIdentity string
	// Services are the gRPC services whose UNAVAILABLE calls are retried.
	Services []string
	// Logger receives certificate reload messages; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Dial opens a client connection to the service identity at addr with the
// service's own certificate as the client certificate, its message size
// limit, and retries of UNAVAILABLE calls to services (see DialWith).
func (c Config) Dial(addr, identity string, services ...string) (*grpc.ClientConn, error) {
	return DialWith(addr, DialOptions{
		MaxMessageBytes: c.MaxMessageBytes, TLS: c.TLS, Insecure: c.Insecure, TrustDomain: c.TrustDomain,
		ServerIdentity: identity, Services: services, Logger: c.Logger,
	})
}

// DialWith opens a client connection to a Flotilla service. Calls to the
// named gRPC services (such as "flotilla.launcher.v1.LauncherService") that
// fail with UNAVAILABLE — a service restarting, or between leaders — are
// retried with jittered exponential backoff, up to five attempts over about
// three seconds; other errors reach the caller at once. Calls are spread
// round-robin over every address the target resolves to, so with a
// headless Service (dns:///name.namespace.svc:port) a retry reaches the
// next replica: a standby watcher's UNAVAILABLE sends the call on to the
// leader.
//
// The connection uses mutual TLS with o.TLS, whose files are re-read when
// they change, unless o.Insecure; it pings an idle server no more often
// than servers allow.
func DialWith(addr string, o DialOptions) (*grpc.ClientConn, error) {
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if o.TrustDomain == "" {
		o.TrustDomain = DefaultTrustDomain
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var creds credentials.TransportCredentials
	switch {
	case o.Insecure && o.TLS.set():
		return nil, errors.New("dial: both insecure and TLS files are set; choose one")
	case o.Insecure:
		creds = insecure.NewCredentials()
	default:
		src, err := newCertSource(o.TLS, o.Logger)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		creds = credentials.NewTLS(clientTLS(src, o.TrustDomain, o.ServerIdentity))
	}
	cfg, err := retryConfig(o.Services)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultServiceConfig(cfg),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 2 * keepaliveMinTime, Timeout: keepaliveTimeout}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(o.MaxMessageBytes), grpc.MaxCallSendMsgSize(o.MaxMessageBytes)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// retryConfig is the gRPC service config that retries UNAVAILABLE calls to
// the services.
func retryConfig(services []string) (string, error) {
	type name struct {
		Service string `json:"service"`
	}
	names := make([]name, 0, len(services))
	for _, s := range services {
		names = append(names, name{s})
	}
	cfg := map[string]any{"loadBalancingConfig": []any{map[string]any{"round_robin": map[string]any{}}}, "methodConfig": []any{map[string]any{
		"name": names,
		"retryPolicy": map[string]any{
			"maxAttempts": 5, "initialBackoff": "0.2s", "maxBackoff": "2s",
			"backoffMultiplier": 2, "retryableStatusCodes": []string{"UNAVAILABLE"},
		},
	}}}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("retry config: %w", err)
	}
	return string(b), nil
}
