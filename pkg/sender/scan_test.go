package sender

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	nackclient "github.com/nackcast/nackcast/pkg/client"
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

// TestManifestTooLargeRefused (issue 12, failure 6): GetManifest refuses a
// manifest larger than one gRPC message with FailedPrecondition naming
// StreamManifest, which serves it (TestStreamManifest); no alert, since
// receivers stream.
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
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "StreamManifest serves it") {
		t.Fatalf("GetManifest = %v, want FailedPrecondition naming StreamManifest", err)
	}
	if n, _ := s.alerts.Snapshot(); n != 0 {
		t.Errorf("%d alerts for a manifest receivers can stream", n)
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

// TestStreamManifest (issue 16): a manifest too large for GetManifest is
// served whole by StreamManifest, cut as asked; the assembled manifest
// equals the sender's, signature included; bad requests are refused.
func TestStreamManifest(t *testing.T) {
	s, _ := newTestSender(t, nil)
	s.maxManifest = 200
	for i := range 9 {
		if err := os.WriteFile(filepath.Join(s.cfg.OriginDir, "chan", fmt.Sprintf("more-%d.txt", i)), []byte("more"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.scanAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := client(t, s)
	if _, err := c.GetManifest(context.Background(), &pb.GetManifestRequest{Channel: "chan"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("GetManifest of a manifest over the limit: %v", err)
	}
	ch, _ := s.lookup("chan")
	for _, per := range []int{0, 1, 2, 5, 16384} {
		resp, err := nackclient.FetchManifest(context.Background(), c, "chan", nackclient.FetchOptions{ObjectsPerMessage: per, HeadTimeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("%d per message: %v", per, err)
		}
		if !proto.Equal(resp.GetManifest(), ch.proto) || resp.GetSenderId() == "" {
			t.Errorf("%d per message: assembled %d objects, sender %q; want the sender's manifest of %d", per, len(resp.GetManifest().GetObjects()), resp.GetSenderId(), len(ch.proto.GetObjects()))
		}
	}
	_, err := nackclient.FetchManifest(context.Background(), c, "chan", nackclient.FetchOptions{MaxObjects: 3})
	if !errors.Is(err, nackclient.ErrManifestStream) {
		t.Errorf("a manifest over the receiver's bound: %v, want ErrManifestStream", err)
	}
	stream, err := c.StreamManifest(context.Background(), &pb.StreamManifestRequest{Channel: "chan", ObjectsPerMessage: 16385})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("16385 objects per message: %v, want InvalidArgument", err)
	}
	stream, err = c.StreamManifest(context.Background(), &pb.StreamManifestRequest{Channel: "nope"})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown channel: %v, want NotFound", err)
	}
}
