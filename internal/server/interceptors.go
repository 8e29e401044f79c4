package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flotilla-io/flotilla/internal/server/apierr"
)

// ValidatorFunc checks a request before its handler runs. It returns nil
// for a valid request, or an error wrapping apierr.ErrInvalidArgument.
type ValidatorFunc func(req any) error

// errorCodes is the one table that turns domain errors into gRPC codes.
// Handlers and the packages below them wrap these sentinels with %w; the
// error-mapping interceptor consults the table once, at the boundary. The
// first match wins. Errors that are already gRPC statuses pass through, and
// anything else becomes codes.Internal.
var errorCodes = []struct {
	err  error
	code codes.Code
}{
	{apierr.ErrInvalidArgument, codes.InvalidArgument},
	{apierr.ErrNotFound, codes.NotFound},
	{apierr.ErrFailedPrecondition, codes.FailedPrecondition},
	{apierr.ErrUnavailable, codes.Unavailable},
	{apierr.ErrResourceExhausted, codes.ResourceExhausted},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// ToStatus maps err to a gRPC status error using the table above. It
// returns nil for nil.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	for _, e := range errorCodes {
		if errors.Is(err, e.err) {
			return status.Error(e.code, err.Error())
		}
	}
	// A gRPC status (possibly wrapped) keeps its code; FromError then
	// reports the whole message.
	if s, ok := status.FromError(err); ok {
		return s.Err()
	}
	return status.Error(codes.Internal, err.Error())
}

// interceptorSet builds the unary and stream interceptor chains.
//
// grpc.ChainUnaryInterceptor runs the first interceptor outermost, so the
// order below is the order a request meets them and the reverse of the order
// a response (or error) leaves through them:
//
//  1. metrics: outermost, so it times everything and counts the final code
//     the client sees, including codes produced by the layers below.
//  2. logging: one line per finished call with the final code and duration
//     (health checks are skipped; probes would drown the log).
//  3. error mapping: turns domain errors (wrapped sentinels from apierr,
//     context errors) into gRPC statuses once, so metrics and logging above
//     see real codes and nothing below has to know about gRPC.
//  4. recovery: turns a panic in validation or the handler into
//     codes.Internal, logging the panic and its stack. It sits below
//     error mapping so the status it returns passes through unchanged.
//  5. validation: runs the ValidatorFunc registered for the full method
//     name, if any. Generated request types have no Validate method, so
//     validators are registered per method instead; services whose handlers
//     validate as part of converting the request (the solver does, through
//     solverapi, so the CLI and the service share one code path) simply
//     register none.
func interceptorSet(name string, logger *slog.Logger, metrics *grpcprom.ServerMetrics, validators map[string]ValidatorFunc) ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithLevels(serverCodeToLevel),
	}
	slogger := interceptorLogger(logger)
	notHealth := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service != "grpc.health.v1.Health"
	})
	recoverOpt := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in gRPC handler",
			slog.String("service", name),
			slog.String("panic", fmt.Sprint(p)),
			slog.String("stack", string(debug.Stack())))
		return status.Error(codes.Internal, "internal error: the server recovered from a panic")
	})
	unary := []grpc.UnaryServerInterceptor{
		metrics.UnaryServerInterceptor(),
		selector.UnaryServerInterceptor(logging.UnaryServerInterceptor(slogger, logOpts...), notHealth),
		unaryErrorMapping,
		recovery.UnaryServerInterceptor(recoverOpt),
		unaryValidation(validators),
	}
	stream := []grpc.StreamServerInterceptor{
		metrics.StreamServerInterceptor(),
		selector.StreamServerInterceptor(logging.StreamServerInterceptor(slogger, logOpts...), notHealth),
		streamErrorMapping,
		recovery.StreamServerInterceptor(recoverOpt),
		// Stream messages are validated by their handlers, if at all.
	}
	return unary, stream
}

// serverCodeToLevel logs successful calls at debug level, client mistakes
// at info and server faults at error.
func serverCodeToLevel(code codes.Code) logging.Level {
	if code == codes.OK {
		return logging.LevelDebug
	}
	return logging.DefaultServerCodeToLevel(code)
}

// interceptorLogger adapts a slog.Logger to the middleware's logger.
func interceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

func unaryErrorMapping(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		return nil, ToStatus(err)
	}
	return resp, nil
}

func streamErrorMapping(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return ToStatus(handler(srv, ss))
}

func unaryValidation(validators map[string]ValidatorFunc) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if v := validators[info.FullMethod]; v != nil {
			if err := v(req); err != nil {
				if !errors.Is(err, apierr.ErrInvalidArgument) {
					err = fmt.Errorf("%w: %w", apierr.ErrInvalidArgument, err)
				}
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

// serviceNames lists the services registered on s other than the
// infrastructure ones this package adds.
func serviceNames(s *grpc.Server) []string {
	var names []string
	for name := range s.GetServiceInfo() {
		if name == "grpc.health.v1.Health" || strings.HasPrefix(name, "grpc.reflection.") {
			continue
		}
		names = append(names, name)
	}
	return names
}
