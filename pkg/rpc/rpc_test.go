package rpc

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// panicHealth is a health server whose Check panics, to exercise recovery
// through the production chain.
type panicHealth struct {
	healthpb.UnimplementedHealthServer
}

func (panicHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	panic("boom")
}

// panickyDesc describes a one-method service whose handler panics.
var panickyDesc = grpc.ServiceDesc{
	ServiceName: "test.Panicky",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Check",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := new(healthpb.HealthCheckRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				return srv.(panicHealth).Check(ctx, req.(*healthpb.HealthCheckRequest))
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/test.Panicky/Check"}, h)
		},
	}},
}

func start(t *testing.T, srv *Server) *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, lis, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestHealthStartsNotServing(t *testing.T) {
	srv := NewServer(hclog.NewNullLogger())
	cc := start(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(cc)
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("initial health = %v, %v; want NOT_SERVING", resp, err)
	}
	srv.SetServing(true, "nackcast.v1.SenderService")
	for _, svc := range []string{"", "nackcast.v1.SenderService"} {
		resp, err = hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health(%q) after SetServing = %v, %v", svc, resp, err)
		}
	}
}

func TestRecoveryAndLogging(t *testing.T) {
	var buf bytes.Buffer
	log := hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Debug})
	srv := NewServer(log)
	srv.GRPC.RegisterService(&panickyDesc, panicHealth{})
	cc := start(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := cc.Invoke(ctx, "/test.Panicky/Check", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	if status.Code(err) != codes.Internal {
		t.Fatalf("panicking handler: err = %v, want Internal", err)
	}
	// The server survives: health still answers.
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("server dead after panic: %v", err)
	}
	out := buf.String()
	if !strings.Contains(out, "panic in rpc handler") || !strings.Contains(out, "boom") {
		t.Errorf("panic not logged:\n%s", out)
	}
	if !strings.Contains(out, "test.Panicky") {
		t.Errorf("call not logged by the logging interceptor:\n%s", out)
	}
	if strings.Contains(out, "grpc.health.v1") {
		t.Errorf("health checks logged:\n%s", out)
	}
}

func TestDialRejectsEmpty(t *testing.T) {
	if _, err := Dial(""); err == nil {
		t.Error("Dial(\"\") succeeded")
	}
}
