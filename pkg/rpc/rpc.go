// Package rpc assembles nackcast's gRPC servers and clients the same way in
// every service: an interceptor chain with hclog logging outermost and panic
// recovery innermost, grpc.health.v1 (NOT_SERVING until the service says it
// is ready), server reflection, and a graceful stop that falls back to a
// forced stop.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strings"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// MaxMessageSize bounds received messages: a NACK of 4096 objects with
// ranges fits well inside.
const MaxMessageSize = 16 << 20

// Server is a gRPC server with health and reflection registered.
type Server struct {
	GRPC   *grpc.Server
	Health *health.Server
	// Metrics are the server's Prometheus metrics (calls, codes, latency),
	// for the service's registry.
	Metrics *grpcprom.ServerMetrics
	log     hclog.Logger
}

// NewServer returns a server with the production interceptor chain:
// logging outermost, then Prometheus metrics, then panic recovery. Every
// service registered on it starts NOT_SERVING; call SetServing when the
// service is ready.
func NewServer(log hclog.Logger, opts ...grpc.ServerOption) *Server {
	logOpts := []logging.Option{
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithLevels(codeToLevel),
	}
	rec := recovery.WithRecoveryHandler(func(p any) error {
		log.Error("panic in rpc handler", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})
	logged := selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
		return c.Service != healthpb.Health_ServiceDesc.ServiceName && !strings.HasPrefix(c.Service, "grpc.reflection.")
	})
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	base := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageSize),
		grpc.ChainUnaryInterceptor(
			selector.UnaryServerInterceptor(logging.UnaryServerInterceptor(Logger(log), logOpts...), logged),
			metrics.UnaryServerInterceptor(),
			recovery.UnaryServerInterceptor(rec),
		),
		grpc.ChainStreamInterceptor(
			selector.StreamServerInterceptor(logging.StreamServerInterceptor(Logger(log), logOpts...), logged),
			metrics.StreamServerInterceptor(),
			recovery.StreamServerInterceptor(rec),
		),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	}
	gs := grpc.NewServer(append(base, opts...)...)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return &Server{GRPC: gs, Health: hs, Metrics: metrics, log: log}
}

// SetServing sets the health of the whole server ("") and of each named
// service.
func (s *Server) SetServing(serving bool, services ...string) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.Health.SetServingStatus("", st)
	for _, svc := range services {
		s.Health.SetServingStatus(svc, st)
	}
}

// Serve serves on lis until ctx is done, then stops gracefully, forcing
// the stop after grace. It returns nil after a stop caused by ctx.
func (s *Server) Serve(ctx context.Context, lis net.Listener, grace time.Duration) error {
	s.Metrics.InitializeMetrics(s.GRPC)
	errc := make(chan error, 1)
	go func() { errc <- s.GRPC.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("grpc server: %w", err)
	case <-ctx.Done():
	}
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.GRPC.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		s.log.Warn("graceful stop timed out; forcing", "grace", grace)
		s.GRPC.Stop()
		<-done
	}
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("grpc server: %w", err)
	}
	return nil
}

// codeToLevel logs successful calls at debug (NACKs arrive by the hundred
// per second), caller mistakes at info and server failures at error.
func codeToLevel(c codes.Code) logging.Level {
	switch c {
	case codes.OK:
		return logging.LevelDebug
	case codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists,
		codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition,
		codes.OutOfRange, codes.ResourceExhausted, codes.DeadlineExceeded:
		return logging.LevelInfo
	}
	return logging.LevelError
}

// Logger adapts an hclog logger to go-grpc-middleware's logging interface.
func Logger(l hclog.Logger) logging.Logger {
	return logging.LoggerFunc(func(_ context.Context, lvl logging.Level, msg string, fields ...any) {
		switch lvl {
		case logging.LevelDebug:
			l.Debug(msg, fields...)
		case logging.LevelInfo:
			l.Info(msg, fields...)
		case logging.LevelWarn:
			l.Warn(msg, fields...)
		default:
			l.Error(msg, fields...)
		}
	})
}

// Dial returns a client connection to target (host:port) with plaintext
// transport. The connection is lazy: errors surface on the first call.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if target == "" {
		return nil, errors.New("empty gRPC address")
	}
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(MaxMessageSize)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second, PermitWithoutStream: true}),
		// Reconnect quickly: a receiver waiting for its sender, or going
		// back to a recovered primary, should not sit out gRPC's default
		// one-second-and-growing reconnect backoff.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 2 * time.Second,
		}),
	}
	cc, err := grpc.NewClient(target, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return cc, nil
}

// MinWatchInterval is the shortest interval a WatchStatus stream accepts.
const MinWatchInterval = 100 * time.Millisecond

// WatchInterval validates the interval of a WatchStatus request: unset
// means one second. A bad value is an InvalidArgument status error.
func WatchInterval(d *durationpb.Duration) (time.Duration, error) {
	if d == nil {
		return time.Second, nil
	}
	if err := d.CheckValid(); err != nil {
		return 0, status.Errorf(codes.InvalidArgument, "interval: %v", err)
	}
	if d.AsDuration() < MinWatchInterval {
		return 0, status.Errorf(codes.InvalidArgument, "interval %v shorter than %v", d.AsDuration(), MinWatchInterval)
	}
	return d.AsDuration(), nil
}
