package sender

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/scheduler"
)

// upload publishes data in pieces of at most piece bytes with the given
// header, returning the response or the error.
func upload(t *testing.T, c pb.SenderServiceClient, h *pb.PublishHeader, data []byte, piece int) (*pb.PublishObjectResponse, error) {
	t.Helper()
	stream, err := c.PublishObject(testCtx(t))
	if err != nil {
		return nil, err
	}
	if h != nil {
		if err := stream.Send(&pb.PublishObjectRequest{Part: &pb.PublishObjectRequest_Header{Header: h}}); err != nil {
			return nil, err
		}
	}
	for len(data) > 0 {
		n := min(piece, len(data))
		if err := stream.Send(&pb.PublishObjectRequest{Part: &pb.PublishObjectRequest_Data{Data: data[:n]}}); err != nil {
			break // the server gave up; CloseAndRecv reports why
		}
		data = data[n:]
	}
	return stream.CloseAndRecv()
}

func header(channel, p string, data []byte) *pb.PublishHeader {
	sum := sha256.Sum256(data)
	return &pb.PublishHeader{Channel: channel, Path: p, Size: uint64(len(data)), Sha256: sum[:]}
}

// noTemporaries fails if an upload left a temporary file anywhere in the
// origin.
func noTemporaries(t *testing.T, origin string) {
	t.Helper()
	err := filepath.Walk(origin, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(fi.Name(), "-upload-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walk the origin: %v", err)
	}
}

func TestPublishObject(t *testing.T) {
	s, _ := newTestSender(t, nil)
	c := client(t, s)
	data := bytes.Repeat([]byte("published "), 5000)
	resp, err := upload(t, c, header("chan", "new/dir/p.bin", data), data, 777)
	if err != nil {
		t.Fatalf("PublishObject: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(s.cfg.OriginDir, "chan", "new", "dir", "p.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("origin file: %v", err)
	}
	sum := sha256.Sum256(data)
	if !bytes.Equal(resp.GetObject().GetSha256(), sum[:]) || resp.GetObject().GetPath() != "new/dir/p.bin" {
		t.Errorf("response object = %v", resp.GetObject())
	}
	ch, _ := s.lookup("chan")
	if resp.GetManifestVersion() != ch.m.Version || len(ch.m.Objects) != 4 {
		t.Errorf("manifest not updated: version %x vs %x, %d objects", resp.GetManifestVersion(), ch.m.Version, len(ch.m.Objects))
	}
	st, _ := s.sched.Lookup(scheduler.Key{Channel: ch.id, Object: resp.GetObject().GetObjectId()})
	if st.State != scheduler.Pooled || st.Passes != 0 {
		t.Errorf("published object state %v, passes %d: want pooled for its first pass", st.State, st.Passes)
	}
	// An unknown channel is an error (a misspelt name must not become a
	// channel) unless the upload asks to create it; replacing an object
	// works.
	if _, err := upload(t, c, header("fresh", "a", []byte("x")), []byte("x"), 10); status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "-create") {
		t.Fatalf("publish into an unknown channel: %v, want NotFound naming -create", err)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.OriginDir, "fresh")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused publish created the channel's directory: %v", err)
	}
	create := header("fresh", "a", []byte("x"))
	create.CreateChannel = true
	if _, err := upload(t, c, create, []byte("x"), 10); err != nil {
		t.Fatalf("publish into a new channel: %v", err)
	}
	if _, err := upload(t, c, header("fresh", "a", []byte("yz")), []byte("yz"), 10); err != nil {
		t.Fatalf("replace: %v", err)
	}
	fresh, err := s.lookup("fresh")
	if err != nil || len(fresh.m.Objects) != 1 || fresh.m.Objects[0].Size != 2 {
		t.Errorf("new channel = %v, %v", fresh, err)
	}
	noTemporaries(t, s.cfg.OriginDir)
}

func TestPublishObjectRejects(t *testing.T) {
	s, _ := newTestSender(t, func(c *Config) { c.MaxPublishSize = 1000 })
	c := client(t, s)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(s.cfg.OriginDir, "chan", "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.cfg.OriginDir, "chan", "isdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	ok := []byte("fine")
	before, _ := s.lookup("chan")
	wrongSum := header("chan", "x", ok)
	wrongSum.Sha256[0] ^= 1
	tests := []struct {
		name string
		h    *pb.PublishHeader
		data []byte
		code codes.Code
	}{
		{"no header", nil, ok, codes.InvalidArgument},
		{"traversal", header("chan", "../../etc/x", ok), ok, codes.InvalidArgument},
		{"absolute", header("chan", "/etc/x", ok), ok, codes.InvalidArgument},
		{"reserved name", header("chan", ".nackcast-x", ok), ok, codes.InvalidArgument},
		{"bad channel", header("a/b", "x", ok), ok, codes.InvalidArgument},
		{"over the limit", header("chan", "big", make([]byte, 1001)), make([]byte, 1001), codes.ResourceExhausted},
		{"more than announced", &pb.PublishHeader{Channel: "chan", Path: "x", Size: 2, Sha256: make([]byte, 32)}, ok, codes.InvalidArgument},
		{"fewer than announced", &pb.PublishHeader{Channel: "chan", Path: "x", Size: 10, Sha256: wrongSum.Sha256}, ok, codes.InvalidArgument},
		{"checksum", wrongSum, ok, codes.InvalidArgument},
		{"short sha256", &pb.PublishHeader{Channel: "chan", Path: "x", Size: 4, Sha256: []byte{1}}, ok, codes.InvalidArgument},
		{"through a symlink out of the origin", header("chan", "escape/x", ok), ok, codes.InvalidArgument},
		{"under a file", header("chan", "a.txt/x", ok), ok, codes.InvalidArgument},
		{"onto a directory", header("chan", "isdir", ok), ok, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := upload(t, c, tt.h, tt.data, 3)
			if status.Code(err) != tt.code {
				t.Fatalf("err = %v, want %v", err, tt.code)
			}
		})
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wrote outside the origin: %v", entries)
	}
	after, _ := s.lookup("chan")
	if after.m.Version != before.m.Version {
		t.Errorf("a rejected upload changed the manifest")
	}
	noTemporaries(t, s.cfg.OriginDir)

	restricted, _ := newTestSender(t, func(c *Config) { c.Channels = []string{"chan"} })
	if _, err := upload(t, client(t, restricted), header("other", "x", ok), ok, 10); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("publish to a channel not served: %v, want FailedPrecondition", err)
	}
}

func TestDeleteObject(t *testing.T) {
	s, _ := newTestSender(t, nil)
	c := client(t, s)
	ctx := testCtx(t)
	before, _ := s.lookup("chan")
	resp, err := c.DeleteObject(ctx, &pb.DeleteObjectRequest{Channel: "chan", Path: "dir/big.bin"})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := s.lookup("chan")
	if resp.GetManifestVersion() == before.m.Version || resp.GetManifestVersion() != after.m.Version || len(after.m.Objects) != 2 {
		t.Errorf("after delete: version %x (was %x), %d objects", resp.GetManifestVersion(), before.m.Version, len(after.m.Objects))
	}
	if _, ok := after.m.Lookup(manifest.ObjectID("chan", "dir/big.bin")); ok {
		t.Error("deleted object still in the manifest")
	}
	if _, err := os.Stat(filepath.Join(s.cfg.OriginDir, "chan", "dir")); !os.IsNotExist(err) {
		t.Errorf("empty directory left behind: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(s.cfg.OriginDir, "chan", "d2"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		req  *pb.DeleteObjectRequest
		code codes.Code
	}{
		"missing":   {&pb.DeleteObjectRequest{Channel: "chan", Path: "nope"}, codes.NotFound},
		"traversal": {&pb.DeleteObjectRequest{Channel: "chan", Path: "../chan/a.txt"}, codes.InvalidArgument},
		"directory": {&pb.DeleteObjectRequest{Channel: "chan", Path: "d2"}, codes.InvalidArgument},
		"channel":   {&pb.DeleteObjectRequest{Channel: "nope", Path: "a.txt"}, codes.NotFound},
	} {
		if _, err := c.DeleteObject(ctx, tc.req); status.Code(err) != tc.code {
			t.Errorf("%s: %v, want %v", name, err, tc.code)
		}
	}
}
