package rpc

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func TestClientLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewClientLimiter(10, 5, "/m")
	l.now = func() time.Time { return now }
	for i := range 5 {
		if !l.Allow("a") {
			t.Fatalf("call %d of the burst refused", i+1)
		}
	}
	if l.Allow("a") {
		t.Error("call over the burst allowed")
	}
	if !l.Allow("b") {
		t.Error("another client limited by the first")
	}
	now = now.Add(100 * time.Millisecond) // one token at 10/s
	if !l.Allow("a") || l.Allow("a") {
		t.Error("refill: want exactly one call after 100 ms")
	}
	if NewClientLimiter(0, 5) != nil {
		t.Error("rate 0 must mean no limiter")
	}
}

func TestClientLimiterBoundsClients(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewClientLimiter(1, 1, "/m")
	l.now = func() time.Time { return now }
	for i := range MaxClients + 10 {
		now = now.Add(time.Microsecond)
		l.Allow(fmt.Sprint(i))
	}
	if n := l.Clients(); n > MaxClients {
		t.Errorf("%d clients tracked, want at most %d", n, MaxClients)
	}
}

func TestClientKey(t *testing.T) {
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 555}})
	if got := ClientKey(ctx); got != "ip:10.1.2.3" {
		t.Errorf("ClientKey = %q", got)
	}
	if got := ClientKey(context.Background()); got != "unknown" {
		t.Errorf("ClientKey without peer = %q", got)
	}
}

// TestClientLimiterInterceptor: over a real gRPC server, the limited
// method fails with ResourceExhausted past the burst; others do not.
func TestClientLimiterInterceptor(t *testing.T) {
	l := NewClientLimiter(0.001, 2, "/grpc.health.v1.Health/Check")
	srv := NewServer(hclog.NewNullLogger(), l.ServerOptions()...)
	srv.SetServing(true)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.GRPC.Serve(lis) }()
	defer func() {
		srv.GRPC.Stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(cc)
	for i := range 2 {
		if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("third call: %v, want ResourceExhausted", err)
	}
	if _, err := hc.List(ctx, &healthpb.HealthListRequest{}); status.Code(err) == codes.ResourceExhausted {
		t.Errorf("an unlimited method was limited: %v", err)
	}
}
