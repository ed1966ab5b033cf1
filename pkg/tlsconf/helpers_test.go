package tlsconf

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// fakeClock is the clock of a Reloader's checks in tests.
type fakeClock struct{ ns atomic.Int64 }

func newClock() *fakeClock {
	c := new(fakeClock)
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// syncBuffer is a log output written by concurrent handshakes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newCA(t *testing.T) *DevCA {
	t.Helper()
	ca, err := NewDevCA(24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *DevCA, name, role string) PEM {
	t.Helper()
	p, err := ca.Issue(name, role, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func caPEM(t *testing.T, cas ...*DevCA) []byte {
	t.Helper()
	var b []byte
	for _, ca := range cas {
		p, err := ca.PEM()
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, p.Cert...)
	}
	return b
}

// mtime makes every file written by the tests look changed, even on file
// systems with coarse timestamps.
var mtime atomic.Int64

func touch(t *testing.T, path string) {
	t.Helper()
	ts := time.Now().Add(time.Duration(mtime.Add(1)) * time.Second)
	if err := os.Chtimes(path, ts, ts); err != nil {
		t.Fatal(err)
	}
}

// writeFiles writes a CA bundle trusting cas and the key pair p to dir,
// and returns their Files.
func writeFiles(t *testing.T, dir string, p PEM, cas ...*DevCA) Files {
	t.Helper()
	f := Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
	if err := os.WriteFile(f.CA, caPEM(t, cas...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFiles(f.Cert, f.Key); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{f.CA, f.Cert, f.Key} {
		touch(t, path)
	}
	return f
}

// peerFiles writes, in a new directory, a CA bundle trusting trust and a
// key pair named name with role issued by issuer.
func peerFiles(t *testing.T, issuer *DevCA, name, role string, trust ...*DevCA) Files {
	t.Helper()
	return writeFiles(t, t.TempDir(), issue(t, issuer, name, role), trust...)
}

// newReloader returns a Reloader of f on a fake clock, logging to the
// returned buffer.
func newReloader(t *testing.T, f Files) (*Reloader, *fakeClock, *syncBuffer) {
	t.Helper()
	buf := new(syncBuffer)
	log := hclog.New(&hclog.LoggerOptions{Output: buf, Level: hclog.Debug})
	r, err := New(f, log)
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	r.mu.Lock()
	r.now = clk.Now
	r.checked = clk.Now()
	r.mu.Unlock()
	return r, clk, buf
}

// startServer serves the standard health service on 127.0.0.1 and returns
// its address.
func startServer(t *testing.T, creds credentials.TransportCredentials, opts ...grpc.ServerOption) string {
	t.Helper()
	return startServerOn(t, "127.0.0.1:0", creds, opts...)
}

// startServerOn is startServer on the address addr.
func startServerOn(t *testing.T, addr string, creds credentials.TransportCredentials, opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(append([]grpc.ServerOption{grpc.Creds(creds)}, opts...)...)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := gs.Serve(lis); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	return lis.Addr().String()
}

// dial returns a client connection to addr, closed at the end of the test.
func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// check makes a health check on a new connection, and so a new handshake.
func check(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// healthClientCheck makes a health check on cc.
func healthClientCheck(cc *grpc.ClientConn) (*healthpb.HealthCheckResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
}
