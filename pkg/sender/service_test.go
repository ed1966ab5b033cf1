package sender

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/scheduler"
)

// newTestSender builds a sender over a small origin and scans it, without
// starting the transmitter: the gRPC surface and the Fig. 4 wiring can be
// exercised without sockets.
func newTestSender(t testing.TB, mod func(*Config)) (*Sender, map[string][]byte) {
	t.Helper()
	s, files := newScannedSender(t, mod)
	s.markReady()
	return s, files
}

// newScannedSender is newTestSender before the end of start-up: scanned,
// not ready.
func newScannedSender(t testing.TB, mod func(*Config)) (*Sender, map[string][]byte) {
	t.Helper()
	origin := t.TempDir()
	files := map[string][]byte{
		"a.txt":       []byte("hello nackcast"),
		"dir/big.bin": bytes.Repeat([]byte("0123456789"), 1000), // 10 000 bytes
		"empty":       nil,
	}
	for p, data := range files {
		full := filepath.Join(origin, "chan", filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.OriginDir = origin
	cfg.ChunkSize = 1000
	cfg.Scheduler.FirstPassDelay = 0
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.scanAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, files
}

// TestGetManifestWaitsForStartUp: a receiver that asks for a manifest
// while the sender is still starting gets it as soon as the sender is
// ready, within its deadline, rather than an error to retry on; with a
// deadline that ends first it gets DeadlineExceeded.
func TestGetManifestWaitsForStartUp(t *testing.T) {
	s, _ := newScannedSender(t, nil)
	c := client(t, s)
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.GetManifest(short, &pb.GetManifestRequest{Channel: "chan"}); status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("before start-up ends, short deadline: err = %v, want DeadlineExceeded", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := c.GetManifest(testCtx(t), &pb.GetManifestRequest{Channel: "chan"})
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("GetManifest returned before the sender was ready: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	s.markReady()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("GetManifest after start-up: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("GetManifest still waiting after the sender became ready")
	}
}

// client serves s through the production server assembly on a bufconn.
func client(t *testing.T, s *Sender) pb.SenderServiceClient {
	t.Helper()
	srv := rpc.NewServer(hclog.NewNullLogger())
	pb.RegisterSenderServiceServer(srv.GRPC, NewService(s))
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, lis, time.Second); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		cancel()
		<-done
	})
	return pb.NewSenderServiceClient(cc)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func objOf(t *testing.T, s *Sender, p string) *manifest.Object {
	t.Helper()
	ch, err := s.lookup("chan")
	if err != nil {
		t.Fatal(err)
	}
	o, ok := ch.m.Lookup(manifest.ObjectID("chan", p))
	if !ok {
		t.Fatalf("no object %s", p)
	}
	return o
}

func TestNackRPCDecisions(t *testing.T) {
	s, _ := newTestSender(t, func(c *Config) { c.Scheduler.MaxPasses = 1 })
	c := client(t, s)
	ctx := testCtx(t)
	a := objOf(t, s, "a.txt")
	big := objOf(t, s, "dir/big.bin")

	// Everything is pooled for its first pass: WAIT.
	resp, err := c.Nack(ctx, &pb.NackRequest{ReceiverId: "r1", Channel: "chan", Objects: []*pb.ObjectNack{
		{ObjectId: a.ID, Version: a.Version},
		{ObjectId: 42, Version: 1},
		{ObjectId: big.ID, Version: big.Version ^ 1},
	}})
	if err != nil {
		t.Fatalf("Nack: %v", err)
	}
	want := []pb.NackAction{pb.NackAction_NACK_ACTION_WAIT, pb.NackAction_NACK_ACTION_NOT_FOUND, pb.NackAction_NACK_ACTION_NOT_FOUND}
	for i, o := range resp.GetObjects() {
		if o.GetAction() != want[i] {
			t.Errorf("object %d: %v, want %v", i, o.GetAction(), want[i])
		}
	}
	if resp.GetNextNackAfter().AsDuration() <= 0 || resp.GetRole() != pb.SenderRole_SENDER_ROLE_PRIMARY || resp.GetEpoch() == 0 {
		t.Errorf("reply metadata = %v", resp)
	}
	ch, _ := s.lookup("chan")
	if resp.GetManifestVersion() != ch.m.Version {
		t.Errorf("manifest version = %x, want %x", resp.GetManifestVersion(), ch.m.Version)
	}

	// Run every first pass; with MaxPasses = 1 the next NACK gets UNICAST.
	s.mu.Lock()
	for _, j := range s.sched.Next(time.Now()) {
		s.sched.Done(j, time.Now(), 1)
	}
	s.mu.Unlock()
	resp, err = c.Nack(ctx, &pb.NackRequest{Channel: "chan", Objects: []*pb.ObjectNack{{ObjectId: a.ID, Version: a.Version}}})
	if err != nil || resp.GetObjects()[0].GetAction() != pb.NackAction_NACK_ACTION_UNICAST {
		t.Fatalf("after the cap: %v, %v; want UNICAST", resp, err)
	}
	if got := s.Stats(); got.RepliesWait.Load() != 1 || got.RepliesNotFound.Load() != 2 || got.RepliesUnicast.Load() != 1 || got.Nacks.Load() != 2 {
		t.Errorf("counters wait=%d not_found=%d unicast=%d nacks=%d", got.RepliesWait.Load(), got.RepliesNotFound.Load(), got.RepliesUnicast.Load(), got.Nacks.Load())
	}
}

func TestNackRPCInvalid(t *testing.T) {
	s, _ := newTestSender(t, nil)
	c := client(t, s)
	ctx := testCtx(t)
	big := objOf(t, s, "dir/big.bin") // 10 chunks
	many := make([]*pb.ObjectNack, MaxNackObjects+1)
	for i := range many {
		many[i] = &pb.ObjectNack{ObjectId: uint64(i)}
	}
	ranges := make([]*pb.ChunkRange, MaxNackRanges+1)
	for i := range ranges {
		ranges[i] = &pb.ChunkRange{First: 0, Count: 1}
	}
	tests := []struct {
		name string
		req  *pb.NackRequest
		code codes.Code
	}{
		{"bad channel name", &pb.NackRequest{Channel: "../x"}, codes.InvalidArgument},
		{"empty channel", &pb.NackRequest{}, codes.InvalidArgument},
		{"unknown channel", &pb.NackRequest{Channel: "nope"}, codes.NotFound},
		{"too many objects", &pb.NackRequest{Channel: "chan", Objects: many}, codes.InvalidArgument},
		{"too many ranges", &pb.NackRequest{Channel: "chan", Objects: []*pb.ObjectNack{{ObjectId: big.ID, Version: big.Version, Missing: ranges}}}, codes.InvalidArgument},
		{"range past the end", &pb.NackRequest{Channel: "chan", Objects: []*pb.ObjectNack{{ObjectId: big.ID, Version: big.Version, Missing: []*pb.ChunkRange{{First: 9, Count: 2}}}}}, codes.InvalidArgument},
		{"empty range", &pb.NackRequest{Channel: "chan", Objects: []*pb.ObjectNack{{ObjectId: big.ID, Version: big.Version, Missing: []*pb.ChunkRange{{First: 1, Count: 0}}}}}, codes.InvalidArgument},
		{"overflowing range", &pb.NackRequest{Channel: "chan", Objects: []*pb.ObjectNack{{ObjectId: big.ID, Version: big.Version, Missing: []*pb.ChunkRange{{First: 4294967295, Count: 4294967295}}}}}, codes.InvalidArgument},
		{"negative interval", &pb.NackRequest{Channel: "chan", NackInterval: &durationpb.Duration{Seconds: -1}}, codes.InvalidArgument},
		{"invalid interval", &pb.NackRequest{Channel: "chan", NackInterval: &durationpb.Duration{Nanos: 2e9}}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Stats().Nacks.Load()
			_, err := c.Nack(ctx, tt.req)
			if status.Code(err) != tt.code {
				t.Fatalf("err = %v, want %v", err, tt.code)
			}
			if s.Stats().Nacks.Load() != before {
				t.Errorf("a rejected NACK was counted")
			}
		})
	}
	// A rejected NACK changed nothing: the object's pending pass is still whole.
	s.mu.Lock()
	jobs := s.sched.Next(time.Now())
	s.mu.Unlock()
	for _, j := range jobs {
		if j.Object.ID == big.ID && j.Ranges.Len() != 10 {
			t.Errorf("rejected NACK altered the pass: %v", j.Ranges)
		}
	}
}

// TestNackMergesRangesIntoRepair: three NACKs asking for chunks 2-3, 3
// and 7 of a 10-chunk object merge into one repair pass: of those chunks
// without forward error correction; of two parity shards (the most one
// NACK lacks) with it.
func TestNackMergesRangesIntoRepair(t *testing.T) {
	tests := []struct {
		name       string
		fec        scheduler.FEC
		wantChunks uint64
		wantParity []scheduler.BlockParity
	}{
		{"chunks", scheduler.FEC{}, 3, nil},
		{"parity", scheduler.FEC{Block: 32, Parity: 8}, 0, []scheduler.BlockParity{{Block: 0, First: 0, Count: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestSender(t, func(c *Config) {
				c.Scheduler.Period, c.Scheduler.MergeWindow = 0, 0
				c.Scheduler.FEC = tt.fec
			})
			c := client(t, s)
			ctx := testCtx(t)
			big := objOf(t, s, "dir/big.bin")
			s.mu.Lock()
			for _, j := range s.sched.Next(time.Now()) {
				s.sched.Done(j, time.Now(), 1)
			}
			s.mu.Unlock()
			for _, r := range []*pb.ChunkRange{{First: 2, Count: 2}, {First: 3, Count: 1}, {First: 7, Count: 1}} {
				resp, err := c.Nack(ctx, &pb.NackRequest{Channel: "chan", Objects: []*pb.ObjectNack{{ObjectId: big.ID, Version: big.Version, Missing: []*pb.ChunkRange{r}}}})
				if err != nil || resp.GetObjects()[0].GetAction() != pb.NackAction_NACK_ACTION_WAIT {
					t.Fatalf("Nack: %v %v", resp, err)
				}
			}
			s.mu.Lock()
			jobs := s.sched.Next(time.Now())
			s.mu.Unlock()
			if len(jobs) != 1 || jobs[0].Pass != 2 || jobs[0].Ranges.Len() != tt.wantChunks || !slices.Equal(jobs[0].Parity, tt.wantParity) {
				t.Fatalf("repair jobs = %+v, want one pass-2 job of %d chunks and parity %+v", jobs, tt.wantChunks, tt.wantParity)
			}
		})
	}
}

func TestPullRPC(t *testing.T) {
	s, files := newTestSender(t, nil)
	c := client(t, s)
	ctx := testCtx(t)
	big := objOf(t, s, "dir/big.bin")
	pull := func(req *pb.PullRequest) ([]byte, []uint64, error) {
		stream, err := c.Pull(ctx, req)
		if err != nil {
			return nil, nil, err
		}
		var data []byte
		var offs []uint64
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return data, offs, nil
			}
			if err != nil {
				return nil, nil, err
			}
			offs = append(offs, m.GetOffset())
			data = append(data, m.GetData()...)
		}
	}
	data, _, err := pull(&pb.PullRequest{Channel: "chan", ObjectId: big.ID, Version: big.Version})
	if err != nil || !bytes.Equal(data, files["dir/big.bin"]) {
		t.Fatalf("whole pull: %d bytes, %v", len(data), err)
	}
	data, offs, err := pull(&pb.PullRequest{Channel: "chan", ObjectId: big.ID, Version: big.Version, Ranges: []*pb.ChunkRange{{First: 8, Count: 2}, {First: 1, Count: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), files["dir/big.bin"][1000:2000]...), files["dir/big.bin"][8000:]...)
	if !bytes.Equal(data, want) || offs[0] != 1000 {
		t.Errorf("range pull: offsets %v, %d bytes", offs, len(data))
	}
	if s.Stats().Pulls.Load() != 2 || s.Stats().PullBytes.Load() != 13000 {
		t.Errorf("pull counters = %d pulls, %d bytes", s.Stats().Pulls.Load(), s.Stats().PullBytes.Load())
	}

	tests := []struct {
		name string
		req  *pb.PullRequest
		code codes.Code
	}{
		{"unknown channel", &pb.PullRequest{Channel: "nope"}, codes.NotFound},
		{"bad channel", &pb.PullRequest{Channel: "a/b"}, codes.InvalidArgument},
		{"unknown object", &pb.PullRequest{Channel: "chan", ObjectId: 1}, codes.NotFound},
		{"other version", &pb.PullRequest{Channel: "chan", ObjectId: big.ID, Version: 1}, codes.FailedPrecondition},
		{"range past end", &pb.PullRequest{Channel: "chan", ObjectId: big.ID, Version: big.Version, Ranges: []*pb.ChunkRange{{First: 10, Count: 1}}}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := pull(tt.req); status.Code(err) != tt.code {
				t.Errorf("err = %v, want %v", err, tt.code)
			}
		})
	}

	// The origin file changes behind the manifest's back: refuse to serve
	// bytes that do not match the advertised digest.
	if err := os.WriteFile(filepath.Join(s.cfg.OriginDir, "chan", "dir", "big.bin"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pull(&pb.PullRequest{Channel: "chan", ObjectId: big.ID, Version: big.Version}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("pull of a changed file: err = %v, want FailedPrecondition", err)
	}
}

func TestManifestChannelsStatusRPCs(t *testing.T) {
	s, files := newTestSender(t, nil)
	c := client(t, s)
	ctx := testCtx(t)
	mresp, err := c.GetManifest(ctx, &pb.GetManifestRequest{Channel: "chan"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.FromProto(mresp.GetManifest())
	if err != nil {
		t.Fatalf("served manifest does not validate: %v", err)
	}
	if len(m.Objects) != len(files) {
		t.Errorf("manifest has %d objects, want %d", len(m.Objects), len(files))
	}
	for _, o := range m.Objects {
		if o.SHA256 != sha256.Sum256(files[o.Path]) {
			t.Errorf("%s: wrong digest", o.Path)
		}
	}
	for _, name := range []string{"nope", "../x"} {
		if _, err := c.GetManifest(ctx, &pb.GetManifestRequest{Channel: name}); status.Code(err) == codes.OK {
			t.Errorf("GetManifest(%q) succeeded", name)
		}
	}
	lresp, err := c.ListChannels(ctx, &pb.ListChannelsRequest{})
	if err != nil || len(lresp.GetChannels()) != 1 || lresp.GetChannels()[0].GetObjectCount() != 3 || lresp.GetChannels()[0].GetTotalBytes() != 10014 {
		t.Errorf("ListChannels = %v, %v", lresp, err)
	}
	sresp, err := c.GetStatus(ctx, &pb.SenderServiceGetStatusRequest{IncludeObjects: true})
	if err != nil {
		t.Fatal(err)
	}
	st := sresp.GetStatus()
	if st.GetState() != pb.SenderState_SENDER_STATE_ACTIVE || len(st.GetChannels()) != 1 || len(st.GetChannels()[0].GetObjects()) != 3 {
		t.Errorf("status = %v", st)
	}
	for _, o := range st.GetChannels()[0].GetObjects() {
		if o.GetState() != pb.JobState_JOB_STATE_POOLED {
			t.Errorf("%s: state %v, want pooled for its first pass", o.GetPath(), o.GetState())
		}
	}
	ws, err := c.WatchStatus(ctx, &pb.SenderServiceWatchStatusRequest{Interval: durationpb.New(100 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := ws.Recv(); err != nil {
			t.Fatalf("WatchStatus message %d: %v", i, err)
		}
	}
	bad, err := c.WatchStatus(ctx, &pb.SenderServiceWatchStatusRequest{Interval: durationpb.New(time.Millisecond)})
	if err == nil {
		_, err = bad.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("WatchStatus with 1ms interval: %v, want InvalidArgument", err)
	}
}

func TestNotReadyIsUnavailable(t *testing.T) {
	s, _ := newTestSender(t, nil)
	s.mu.Lock()
	s.ready = false
	s.mu.Unlock()
	c := client(t, s)
	if _, err := c.Nack(testCtx(t), &pb.NackRequest{Channel: "chan"}); status.Code(err) != codes.Unavailable {
		t.Errorf("Nack before ready: %v, want Unavailable", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OriginDir = t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	bad := Config{Role: 9, OriginDir: "/nonexistent/nackcast", Channels: []string{"ok", "ok", "../x"}, ChunkSize: 10, Rate: -1, Scheduler: scheduler.Config{}}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"id", "role", "origin", "share channel id", "invalid channel name", "chunk-size", "rate", "intervals", "end-repeats", "max-passes", "interface"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

// FuzzNackRequest feeds arbitrary NACK requests to the sender: it must
// never panic, must answer every object of an accepted request, and must
// reject what it cannot accept with an error.
func FuzzNackRequest(f *testing.F) {
	s, _ := newTestSender(f, nil)
	ch, _ := s.lookup("chan")
	for _, o := range ch.m.Objects {
		seed, _ := proto.Marshal(&pb.NackRequest{Channel: "chan", Objects: []*pb.ObjectNack{{ObjectId: o.ID, Version: o.Version, Missing: []*pb.ChunkRange{{First: 0, Count: 1}}}}})
		f.Add(seed)
	}
	seed, _ := proto.Marshal(&pb.NackRequest{Channel: "chan", NackInterval: durationpb.New(time.Second)})
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req pb.NackRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		resp, err := s.Nack(context.Background(), &req)
		if err != nil {
			if code := status.Code(toStatus(err)); code != codes.InvalidArgument && code != codes.NotFound {
				t.Fatalf("rejected with %v: %v", code, err)
			}
			return
		}
		if len(resp.GetObjects()) != len(req.GetObjects()) {
			t.Fatalf("%d replies for %d objects", len(resp.GetObjects()), len(req.GetObjects()))
		}
	})
}

// TestRestartKeepsPassRecords: a restarted primary does not multicast again
// the objects it multicast before, but does multicast those that changed.
func TestRestartKeepsPassRecords(t *testing.T) {
	s, _ := newTestSender(t, nil)
	s.mu.Lock()
	for _, j := range s.sched.Next(time.Now()) {
		s.sched.Done(j, time.Now(), 1)
	}
	s.passesDirty = true
	s.mu.Unlock()
	if err := s.savePasses(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.cfg.OriginDir, "chan", "a.txt"), []byte("changed while down"), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := New(s.cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := again.scanAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	again.mu.Lock()
	jobs := again.sched.Next(time.Now())
	again.mu.Unlock()
	if len(jobs) != 1 || jobs[0].Object.Path != "a.txt" {
		t.Fatalf("after restart jobs = %+v, want only the changed a.txt", jobs)
	}
	st, _ := again.sched.Lookup(scheduler.Key{Channel: manifest.ChannelID("chan"), Object: manifest.ObjectID("chan", "dir/big.bin")})
	if st.Passes != 1 {
		t.Errorf("restored passes = %d, want 1", st.Passes)
	}
}

func TestReclaimAndAlertsRPCs(t *testing.T) {
	primary, _ := newTestSender(t, nil)
	if _, err := client(t, primary).Reclaim(testCtx(t), &pb.ReclaimRequest{PrimaryId: "p"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Reclaim on a primary: %v, want InvalidArgument", err)
	}
	backup, _ := newTestSender(t, func(c *Config) {
		c.Role = Backup
		c.Peer = "127.0.0.1:1"
		c.PrimaryGrace = 0
		c.HealthTimeout = 50 * time.Millisecond
	})
	backup.mu.Lock()
	backup.setState(pb.SenderState_SENDER_STATE_STANDBY)
	backup.mu.Unlock()
	c := client(t, backup)
	ctx := testCtx(t)
	resp, err := c.Reclaim(ctx, &pb.ReclaimRequest{PrimaryId: "p"})
	if err != nil || resp.GetState() != pb.SenderState_SENDER_STATE_STANDBY {
		t.Fatalf("Reclaim on a standing-by backup = %v, %v", resp, err)
	}
	// A NACK with the primary unreachable takes over; Reclaim hands back.
	a := objOf(t, backup, "a.txt")
	nr, err := c.Nack(ctx, &pb.NackRequest{ReceiverId: "r", Channel: "chan", Objects: []*pb.ObjectNack{{ObjectId: a.ID, Version: a.Version}}})
	if err != nil || nr.GetState() != pb.SenderState_SENDER_STATE_ACTIVE || nr.GetObjects()[0].GetAction() != pb.NackAction_NACK_ACTION_WAIT {
		t.Fatalf("NACK to the backup with the primary down = %v, %v", nr, err)
	}
	resp, err = c.Reclaim(ctx, &pb.ReclaimRequest{PrimaryId: "p"})
	if err != nil || resp.GetState() != pb.SenderState_SENDER_STATE_STANDBY {
		t.Fatalf("Reclaim with nothing in flight = %v, %v; want STANDBY at once", resp, err)
	}

	backup.raiseAlert(&pb.NackRequest{ReceiverId: "r9", Channel: "chan"})
	stream, err := c.WatchAlerts(ctx, &pb.WatchAlertsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.Recv()
	if err != nil || m.GetAlert().GetReceiverId() != "r9" || m.GetAlert().GetKind() != pb.AlertKind_ALERT_KIND_NETWORK {
		t.Errorf("replayed alert = %v, %v", m, err)
	}
}

// BenchmarkNack measures the sender's NACK path in process (no gRPC
// transport): validating a request of one object with three missing
// ranges, the scheduler's decision and merge, and the reply. The object
// has had its passes, so each NACK is answered WAIT or UNICAST without
// starting a job.
func BenchmarkNack(b *testing.B) {
	s, _ := newTestSender(b, func(c *Config) { c.Scheduler.Period, c.Scheduler.MergeWindow = time.Hour, time.Hour })
	var big manifest.Object
	s.mu.Lock()
	for _, ch := range s.channels {
		for i := range ch.m.Objects {
			if ch.m.Objects[i].Path == "dir/big.bin" {
				big = ch.m.Objects[i]
			}
		}
	}
	for _, j := range s.sched.Next(time.Now()) {
		s.sched.Done(j, time.Now(), 1)
	}
	s.mu.Unlock()
	req := &pb.NackRequest{Channel: "chan", ReceiverId: "bench", Objects: []*pb.ObjectNack{{
		ObjectId: big.ID, Version: big.Version,
		Missing: []*pb.ChunkRange{{First: 1, Count: 2}, {First: 4, Count: 1}, {First: 8, Count: 2}},
	}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := s.Nack(ctx, req)
		if err != nil || len(resp.GetObjects()) != 1 {
			b.Fatalf("Nack = %v, %v", resp, err)
		}
	}
}

// TestFeedbackRPC: a receiver's socket report paces the active sender:
// a buffer past ratectl.HighFill caps the rate at 95% of what it drains
// (by at most a fifth), drops cut it; a bad fill is refused and a standing-by sender ignores reports.
func TestFeedbackRPC(t *testing.T) {
	s, _ := newTestSender(t, func(c *Config) { c.Rate = 1e9 })
	c := client(t, s)
	ctx := testCtx(t)
	steps := []struct {
		name string
		req  *pb.FeedbackRequest
		want uint64
		code codes.Code
	}{
		{"calm", &pb.FeedbackRequest{Received: 1000, ReceiveRate: 100e6, QueueFill: 0.2}, 1e9, codes.OK},
		{"half full", &pb.FeedbackRequest{Received: 1000, ReceiveRate: 400e6, QueueFill: 0.6}, 1e9, codes.OK},
		{"nearly full, draining 400 MB/s: a fifth less", &pb.FeedbackRequest{Received: 1000, ReceiveRate: 400e6, QueueFill: 0.9}, 800e6, codes.OK},
		{"dropping", &pb.FeedbackRequest{Received: 900, OverflowDrops: 100, ReceiveRate: 200e6, QueueFill: 1}, 180e6, codes.OK},
		{"fill out of range", &pb.FeedbackRequest{QueueFill: -1}, 0, codes.InvalidArgument},
		{"fill not a number", &pb.FeedbackRequest{QueueFill: float32(math.NaN())}, 0, codes.InvalidArgument},
	}
	for _, st := range steps {
		resp, err := c.Feedback(ctx, st.req)
		if status.Code(err) != st.code {
			t.Fatalf("%s: %v, want %v", st.name, err, st.code)
		}
		if err == nil && (resp.GetRate() < st.want-1e3 || resp.GetRate() > st.want+1e3) {
			t.Errorf("%s: rate %d, want %d", st.name, resp.GetRate(), st.want)
		}
	}
	s.mu.Lock()
	s.state = pb.SenderState_SENDER_STATE_STANDBY
	s.mu.Unlock()
	resp, err := c.Feedback(ctx, &pb.FeedbackRequest{ReceiveRate: 1e6, QueueFill: 0.9})
	if err != nil || resp.GetRate() != 0 {
		t.Errorf("standing by: %v, %v; want rate 0", resp, err)
	}
}
