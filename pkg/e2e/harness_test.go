package e2e

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/sender"
)

// binDir holds the service binaries built once by TestMain for the tests
// that kill real processes.
var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		// Every test here runs real sockets or processes; skipShort
		// skips each, and no binaries are needed.
		os.Exit(m.Run())
	}
	os.Exit(runWithBinaries(m))
}

// runWithBinaries builds the service binaries into a temporary binDir and
// runs the tests. Under the race detector (make test-race) the binaries
// are built with -race as well and write any race report to files that
// are checked after the run: a race in a child process fails the run,
// whichever test started it.
func runWithBinaries(m *testing.M) int {
	dir, err := os.MkdirTemp("", "nackcast-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-o", dir + "/"}
	raceDir := filepath.Join(dir, "race")
	if raceEnabled {
		args = append(args, "-race")
		if err := os.Mkdir(raceDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// Children inherit it: reports go to race/report.PID.
		os.Setenv("GORACE", "log_path="+filepath.Join(raceDir, "report"))
	}
	args = append(args, "github.com/nackcast/nackcast/services/sender", "github.com/nackcast/nackcast/services/backup",
		"github.com/nackcast/nackcast/services/receiver", "github.com/nackcast/nackcast/services/nackctl",
		"github.com/nackcast/nackcast/pkg/e2e/internal/flooder", "github.com/nackcast/nackcast/pkg/client/examples/manager")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building service binaries:", err)
		return 1
	}
	binDir = dir
	code := m.Run()
	if raceEnabled && childRaces(raceDir) != 0 {
		code = 1
	}
	return code
}

// childRaces prints the race reports service processes wrote to dir and
// returns 1 if there is any.
func childRaces(dir string) int {
	reports, _ := filepath.Glob(filepath.Join(dir, "report.*"))
	if len(reports) == 0 {
		fmt.Fprintln(os.Stderr, "race detector: no race reported by any service process")
		return 0
	}
	for _, r := range reports {
		b, _ := os.ReadFile(r)
		fmt.Fprintf(os.Stderr, "race detector: a service process reported (%s):\n%s\n", filepath.Base(r), b)
	}
	fmt.Fprintf(os.Stderr, "FAIL: %d service processes reported data races\n", len(reports))
	return 1
}

// requireRootEnv, when set, turns the skip of a test that needs root into
// a failure: CI sets it when it runs as root, so such a test cannot pass
// by skipping there.
const requireRootEnv = "NACKCAST_REQUIRE_ROOT_TESTS"

// skipShort skips a test under go test -short: every test of this package
// runs real sockets, gRPC servers or processes for seconds (make
// test-short is the fast loop; make test and CI run them all).
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real sockets and processes: skipped with -short")
	}
}

// newCloud returns a cloud of real processes under a temporary directory,
// closed (its processes killed) when the test ends, and the directory.
func newCloud(t *testing.T) (*cloud.Cloud, string) {
	t.Helper()
	dir := t.TempDir()
	cl, err := cloud.New(binDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, dir
}

// cluster runs senders and receivers in this process, each with its own
// engine, real multicast socket on lo and real gRPC server on loopback.
type cluster struct {
	t    *testing.T
	dir  string
	port int // multicast port shared by the cluster
	// clock, when set, is the clock of every sender and receiver started
	// from then on.
	clock func() time.Time
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	skipShort(t)
	port, err := cloud.FreeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{t: t, dir: t.TempDir(), port: port}
}

func testLogger(t *testing.T, name string) hclog.Logger {
	level := hclog.Warn
	if os.Getenv("NACKCAST_TEST_DEBUG") != "" {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: os.Stderr})
}

type node struct {
	addr   string
	cancel context.CancelFunc
	done   chan struct{}
}

// serve runs an engine and its gRPC server until the test ends or stop.
func (c *cluster) serve(name string, engine interface{ Run(context.Context) error }, register func(*rpc.Server), addr string) *node {
	c.t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		c.t.Fatal(err)
	}
	srv := rpc.NewServer(hclog.NewNullLogger())
	register(srv)
	srv.SetServing(true)
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{addr: lis.Addr().String(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ctx, lis, time.Second) }()
		if err := engine.Run(ctx); err != nil {
			c.t.Errorf("%s: %v", name, err)
		}
		if err := <-served; err != nil {
			c.t.Errorf("%s: gRPC server: %v", name, err)
		}
	}()
	c.t.Cleanup(n.stop)
	return n
}

func (n *node) stop() {
	n.cancel()
	<-n.done
}

// sender starts a sender over origin on a free gRPC address.
func (c *cluster) sender(origin string, mod func(*sender.Config)) (*sender.Sender, *node) {
	c.t.Helper()
	return c.senderAt(origin, "", mod)
}

// senderAt starts a sender over origin on gRPC address addr ("" for any).
func (c *cluster) senderAt(origin, addr string, mod func(*sender.Config)) (*sender.Sender, *node) {
	c.t.Helper()
	cfg := sender.DefaultConfig()
	cfg.ID = "sender"
	cfg.OriginDir = origin
	cfg.Multicast.Port = c.port
	cfg.Rate = 200_000_000
	cfg.Scheduler.Period = 300 * time.Millisecond
	cfg.Scheduler.FirstPassDelay = 300 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	var sopts []sender.Option
	if c.clock != nil {
		sopts = append(sopts, sender.WithClock(c.clock))
	}
	s, err := sender.New(cfg, testLogger(c.t, cfg.ID), sopts...)
	if err != nil {
		c.t.Fatal(err)
	}
	n := c.serve(cfg.ID, s, func(srv *rpc.Server) { pb.RegisterSenderServiceServer(srv.GRPC, sender.NewService(s)) }, addr)
	<-s.Ready()
	return s, n
}

// receiver starts a receiver of channel "c" with its data under the
// cluster directory.
func (c *cluster) receiver(name, primary string, mod func(*receiver.Config)) (*receiver.Receiver, *node) {
	c.t.Helper()
	cfg := receiver.DefaultConfig()
	cfg.ID = name
	cfg.DataDir = filepath.Join(c.dir, name)
	cfg.Channels = []string{"c"}
	cfg.Primary = primary
	cfg.Multicast.Port = c.port
	cfg.Repair.ScanInterval = 500 * time.Millisecond
	cfg.DiskScanInterval = 300 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	var ropts []receiver.Option
	if c.clock != nil {
		ropts = append(ropts, receiver.WithClock(c.clock))
	}
	r, err := receiver.New(cfg, testLogger(c.t, name), ropts...)
	if err != nil {
		c.t.Fatal(err)
	}
	n := c.serve(name, r, func(srv *rpc.Server) { pb.RegisterReceiverServiceServer(srv.GRPC, receiver.NewService(r)) }, "")
	<-r.Ready()
	return r, n
}

// waitComplete waits until every receiver reports complete.
func waitComplete(t *testing.T, timeout time.Duration, rs ...*receiver.Receiver) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done := true
		for _, r := range rs {
			if !r.Status(false).GetComplete() {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			for _, r := range rs {
				st := r.Status(false)
				t.Logf("%s: %v", st.GetReceiverId(), st)
			}
			t.Fatalf("receivers not complete after %v", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verify checks a receiver's copy of channel "c" against the origin.
func verify(t *testing.T, origin, dataDir string) {
	t.Helper()
	want, err := cloud.Digests(filepath.Join(origin, "c"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cloud.Digests(filepath.Join(dataDir, "c"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cloud.Compare(want, got); err != nil {
		t.Fatalf("%s differs from the origin:\n%v", dataDir, err)
	}
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
