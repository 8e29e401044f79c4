package server

import (
	"encoding/json"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Dial opens a client connection to another Flotilla service. Calls to the
// named gRPC services (such as "flotilla.launcher.v1.LauncherService") that
// fail with UNAVAILABLE — a service restarting, or between leaders — are
// retried with jittered exponential backoff, up to five attempts over about
// three seconds; other errors reach the caller at once. Calls are spread
// round-robin over every address the target resolves to, so with a
// headless Service (dns:///name.namespace.svc:port) a retry reaches the
// next replica: a standby watcher's UNAVAILABLE sends the call on to the
// leader.
func Dial(addr string, maxMessageBytes int, services ...string) (*grpc.ClientConn, error) {
	cfg, err := retryConfig(services)
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(cfg),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessageBytes), grpc.MaxCallSendMsgSize(maxMessageBytes)))
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
