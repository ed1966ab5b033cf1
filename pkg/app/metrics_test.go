package app

import (
	"context"
	"flag"
	"io"
	"maps"
	"net"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/version"
)

func TestBuildInfo(t *testing.T) {
	i := version.Get()
	rev := i.Revision
	if rev == "" {
		rev = "unknown"
	}
	if i.Modified {
		rev += "+modified"
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(BuildInfo("receiver"))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) != 1 || fams[0].GetName() != "nackcast_build_info" || fams[0].GetType().String() != "GAUGE" || len(fams[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one nackcast_build_info gauge", fams)
	}
	m := fams[0].GetMetric()[0]
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	want := map[string]string{"version": i.Version, "revision": rev, "goversion": i.GoVersion, "service": "receiver"}
	if !maps.Equal(got, want) || m.GetGauge().GetValue() != 1 {
		t.Errorf("nackcast_build_info%v = %v, want %v = 1", got, m.GetGauge().GetValue(), want)
	}
}

func TestMetricsDeclaration(t *testing.T) {
	var s Metrics
	c := s.Counter("x_things_total", "Things.", "kind")
	g := s.Gauge("x_level", "Level.")
	if got := s.List(); len(got) != 2 || got[0] != c || got[1] != g {
		t.Fatalf("List() = %v, want the two metrics in declaration order", got)
	}
	if c.TypeName() != "counter" || g.TypeName() != "gauge" {
		t.Errorf("types %s, %s", c.TypeName(), g.TypeName())
	}
	ch := make(chan prometheus.Metric, 2)
	c.Emit(ch, 3, "a")
	g.Bool(ch, true)
	close(ch)
	var n int
	for m := range ch {
		n++
		if m.Desc() != c.Desc() && m.Desc() != g.Desc() {
			t.Errorf("metric of an undeclared descriptor %v", m.Desc())
		}
	}
	if n != 2 {
		t.Errorf("%d metrics emitted, want 2", n)
	}
}

// TestClientMetrics: calls made over Common.DialOptions are counted in
// the service's grpc_client_* metrics.
func TestClientMetrics(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	srv := rpc.NewServer(hclog.NewNullLogger())
	srv.SetServing(true)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis, time.Second) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	var c Common
	opts := append(c.DialOptions(), grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	cc, err := rpc.Dial("passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	for range 2 {
		if _, err := healthpb.NewHealthClient(cc).Check(cctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	reg := c.registry("receiver", srv.Metrics, prometheus.NewRegistry())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got float64
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetName() != "grpc_client_handled_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "grpc_method" && l.GetValue() == "Check" {
					got += m.GetCounter().GetValue()
				}
			}
		}
	}
	if got != 2 {
		t.Errorf("grpc_client_handled_total{grpc_method=Check} = %v, want 2", got)
	}
	for _, n := range []string{"nackcast_build_info", "grpc_server_handled_total", "go_goroutines"} {
		if !names[n] {
			t.Errorf("the service registry has no %s", n)
		}
	}
}

// TestVersionFlag: -version prints the build and exits 0 without starting
// the service, even with a bad value in the environment.
func TestVersionFlag(t *testing.T) {
	t.Setenv("NACKCAST_GRACE", "soon")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	var c Common
	fs := flag.NewFlagSet("sender", flag.ContinueOnError)
	c.Register(fs, ":0", "")
	code := Main("sender", fs, &c, []string{"-version"}, func(hclog.Logger, *rpc.Server) (Engine, error) {
		t.Error("-version built the engine")
		return nil, io.EOF
	})
	os.Stdout = stdout
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if got, want := string(out), "sender "+version.Get().String()+"\n"; got != want {
		t.Errorf("printed %q, want %q", got, want)
	}
}
