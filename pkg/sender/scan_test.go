package sender

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// TestEmptyScanKeepsManifest: a rescan that finds no object in a channel
// that had some (its directory unmounted, emptied or replaced) keeps the
// manifest and raises an alert, unless -allow-empty-scan; a channel
// directory replaced by a symlink to it keeps every object (issue 12,
// failure 4).
func TestEmptyScanKeepsManifest(t *testing.T) {
	tests := []struct {
		name       string
		allowEmpty bool
		change     func(t *testing.T, chanDir string)
		wantObjs   int
		wantAlert  bool
	}{
		{"emptied directory", false, emptyDir, 3, true},
		{"emptied directory, allowed", true, emptyDir, 0, false},
		{"directory replaced by a symlink to it", false, func(t *testing.T, chanDir string) {
			moved := chanDir + ".real"
			if err := os.Rename(chanDir, moved); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(moved, chanDir); err != nil {
				t.Fatal(err)
			}
		}, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newTestSender(t, func(c *Config) { c.AllowEmptyScan = tt.allowEmpty })
			before := mustManifest(t, s)
			tt.change(t, filepath.Join(s.cfg.OriginDir, "chan"))
			if err := s.scanAll(context.Background()); err != nil {
				t.Fatal(err)
			}
			after := mustManifest(t, s)
			if got := len(after.GetObjects()); got != tt.wantObjs {
				t.Errorf("%d objects after the rescan, want %d", got, tt.wantObjs)
			}
			if tt.wantObjs == len(before.GetObjects()) && after.GetVersion() != before.GetVersion() {
				t.Errorf("manifest version changed from %016x to %016x", before.GetVersion(), after.GetVersion())
			}
			n, recent := s.alerts.Snapshot()
			if got := n > 0; got != tt.wantAlert {
				t.Errorf("alerts %d (%v), want an alert: %v", n, recent, tt.wantAlert)
			}
		})
	}
}

func emptyDir(t *testing.T, chanDir string) {
	t.Helper()
	entries, err := os.ReadDir(chanDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(chanDir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

func mustManifest(t *testing.T, s *Sender) *pb.Manifest {
	t.Helper()
	resp, err := NewService(s).GetManifest(context.Background(), &pb.GetManifestRequest{Channel: "chan"})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetManifest()
}

// TestManifestTooLargeRefused (issue 12, failure 6): a manifest larger
// than one gRPC message is refused with FailedPrecondition naming the
// limit, and an alert, instead of a message receivers can never receive.
func TestManifestTooLargeRefused(t *testing.T) {
	s, _ := newTestSender(t, nil)
	s.maxManifest = 200
	if err := os.WriteFile(filepath.Join(s.cfg.OriginDir, "chan", "more.txt"), []byte("more"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.scanAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := NewService(s).GetManifest(context.Background(), &pb.GetManifestRequest{Channel: "chan"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "split the channel") {
		t.Fatalf("GetManifest = %v, want FailedPrecondition naming the limit", err)
	}
	if n, _ := s.alerts.Snapshot(); n == 0 {
		t.Error("no alert")
	}
}

// TestManifestStampsInOrder: a sender whose clock is set back stamps its
// next manifest after the previous one all the same, so that receivers
// holding the previous one adopt it (found by the simulator: a receiver
// ignored every new manifest until the clock caught up).
func TestManifestStampsInOrder(t *testing.T) {
	now := time.Unix(2_000_000, 0)
	s, _ := newTestSender(t, func(c *Config) {})
	s.now = func() time.Time { return now }
	before := mustManifest(t, s).GetGeneratedAt().AsTime()
	now = before.Add(-time.Hour)
	if err := os.WriteFile(filepath.Join(s.cfg.OriginDir, "chan", "new.txt"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.scanAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := mustManifest(t, s).GetGeneratedAt().AsTime(); !after.After(before) {
		t.Errorf("manifest after the clock went back an hour stamped %v, not after the previous %v", after, before)
	}
}
