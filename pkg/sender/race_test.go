package sender

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// holdingLogger holds the goroutine that logs msg until release is closed,
// and discards everything.
type holdingLogger struct {
	hclog.Logger
	msg     string
	release chan struct{}
}

func (l *holdingLogger) Info(msg string, args ...any) {
	if msg == l.msg {
		<-l.release
	}
}

// TestTakeOverAsSoonAsReady: a backup whose primary is down takes over on
// the first NACK, which can arrive the moment the backup is ready, while
// Run is still logging its start-up (held here at that log line). Run must
// read the epoch and the channels under the lock.
func TestTakeOverAsSoonAsReady(t *testing.T) {
	port, err := cloud.FreeUDPPort()
	if err != nil {
		t.Fatal(err)
	}
	// A primary that refuses connections.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	primary := lis.Addr().String()
	lis.Close()

	cfg := DefaultConfig()
	cfg.OriginDir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(cfg.OriginDir, "chan"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.OriginDir, "chan", "a"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.ChunkSize = 1000
	cfg.Multicast.Port = port
	cfg.Role = Backup
	cfg.Peer = primary
	cfg.PrimaryGrace = 0
	log := &holdingLogger{Logger: hclog.NewNullLogger(), msg: "sender ready", release: make(chan struct{})}
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	defer close(log.release)
	select {
	case <-s.Ready():
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("Run ended before the sender was ready: %v", err)
	}
	before := s.Epoch()
	resp, err := s.Nack(ctx, &pb.NackRequest{ReceiverId: "r", Channel: "chan"})
	if err != nil {
		t.Fatalf("Nack: %v", err)
	}
	if resp.GetPrimaryActive() || s.Epoch() == before {
		t.Errorf("backup did not take over: primary_active %v, epoch %x then %x", resp.GetPrimaryActive(), before, s.Epoch())
	}
}
