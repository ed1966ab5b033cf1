package manifest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

func TestValidatePath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"a", true},
		{"dir/file.bin", true},
		{"deep/er/path/x.txt", true},
		{"unicodé/ファイル", true},
		{".hidden", true},
		{"", false},
		{"/etc/passwd", false},
		{"../x", false},
		{"a/../../x", false},
		{"a/./b", false},
		{".", false},
		{"..", false},
		{"a//b", false},
		{"a/", false},
		{"a\\b", false},
		{"a\x00b", false},
		{"a\nb", false},
		{"\xff", false},
		{".nackcast/state", false},
		{"x/.nackcast-upload-1", false},
		{strings.Repeat("a", MaxElemLen+1), false},
		{strings.Repeat("a/", MaxPathLen/2) + "b", false},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			err := ValidatePath(tt.path)
			if (err == nil) != tt.ok {
				t.Errorf("ValidatePath(%q) = %v, want ok=%v", tt.path, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidPath) {
				t.Errorf("err = %v, want ErrInvalidPath", err)
			}
		})
	}
}

func TestValidateChannelName(t *testing.T) {
	for name, ok := range map[string]bool{
		"sample": true, "news-2026.v1_a": true, "0": true,
		"": false, ".hidden": false, "-x": false, "a/b": false, "a b": false, strings.Repeat("x", 129): false,
	} {
		if err := ValidateChannelName(name); (err == nil) != ok {
			t.Errorf("ValidateChannelName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func obj(t *testing.T, channel, p string, content string) Object {
	t.Helper()
	o, err := NewObject(channel, p, uint64(len(content)), sha256.Sum256([]byte(content)), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestNewObjectChunks(t *testing.T) {
	tests := []struct {
		size       uint64
		wantChunks uint32
		lastLen    int
	}{
		{0, 0, 0},
		{1, 1, 1},
		{999, 1, 999},
		{1000, 1, 1000},
		{1001, 2, 1},
		{5000, 5, 1000},
	}
	for _, tt := range tests {
		o, err := NewObject("c", "f", tt.size, [32]byte{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if o.Chunks != tt.wantChunks {
			t.Errorf("size %d: chunks = %d, want %d", tt.size, o.Chunks, tt.wantChunks)
		}
		if tt.wantChunks > 0 {
			if got := o.ChunkLen(o.Chunks - 1); got != tt.lastLen {
				t.Errorf("size %d: last chunk len = %d, want %d", tt.size, got, tt.lastLen)
			}
		}
		if got := o.ChunkLen(o.Chunks); got != 0 {
			t.Errorf("size %d: ChunkLen(out of range) = %d", tt.size, got)
		}
	}
	for _, cs := range []uint32{0, MinChunkSize - 1, MaxChunkSize + 1} {
		if _, err := NewObject("c", "f", 10, [32]byte{}, cs); !errors.Is(err, ErrInvalidManifest) {
			t.Errorf("chunk size %d: err = %v", cs, err)
		}
	}
}

func TestNewManifest(t *testing.T) {
	a, b := obj(t, "c", "b/x", "1"), obj(t, "c", "a", "2")
	m, err := New("c", []Object{a, b}, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if m.Objects[0].Path != "a" || m.Objects[1].Path != "b/x" {
		t.Errorf("not sorted: %v", m.Objects)
	}
	if got, ok := m.Lookup(a.ID); !ok || got.Path != "b/x" {
		t.Errorf("Lookup = %v %v", got, ok)
	}
	m2, _ := New("c", []Object{b, a}, time.Unix(2, 0))
	if m.Version != m2.Version {
		t.Errorf("version depends on order or time")
	}
	m3, _ := New("c", []Object{a, obj(t, "c", "a", "changed")}, time.Unix(1, 0))
	if m3.Version == m.Version {
		t.Errorf("version did not change with content")
	}
	if m.TotalBytes() != 2 {
		t.Errorf("TotalBytes = %d", m.TotalBytes())
	}

	conflicts := map[string][]Object{
		"duplicate":     {a, a},
		"file and dir":  {obj(t, "c", "b", "1"), a},
		"bad name only": nil,
	}
	for name, objs := range conflicts {
		ch := "c"
		if name == "bad name only" {
			ch = "../c"
		}
		if _, err := New(ch, objs, time.Time{}); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

func TestProtoRoundTripAndTampering(t *testing.T) {
	m, err := New("chan", []Object{obj(t, "chan", "x", "hello"), obj(t, "chan", "d/y", "")}, time.Unix(100, 0))
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromProto(m.Proto())
	if err != nil {
		t.Fatalf("FromProto: %v", err)
	}
	if back.Version != m.Version || len(back.Objects) != 2 || back.Objects[1] != m.Objects[1] {
		t.Errorf("round trip differs")
	}
	tamper := map[string]func(p *pb.Manifest){
		"nil objects sha":   func(p *pb.Manifest) { p.Objects[0].Sha256 = nil },
		"channel id":        func(p *pb.Manifest) { p.ChannelId++ },
		"channel name":      func(p *pb.Manifest) { p.Channel = "../etc" },
		"object id":         func(p *pb.Manifest) { p.Objects[0].ObjectId++ },
		"object version":    func(p *pb.Manifest) { p.Objects[0].Version++ },
		"chunk count":       func(p *pb.Manifest) { p.Objects[1].ChunkCount++ },
		"traversal path":    func(p *pb.Manifest) { p.Objects[0].Path = "../../etc/passwd" },
		"absolute path":     func(p *pb.Manifest) { p.Objects[0].Path = "/etc/passwd" },
		"manifest version":  func(p *pb.Manifest) { p.Version++ },
		"size changed":      func(p *pb.Manifest) { p.Objects[1].Size = 1 << 40 },
		"chunk size zero":   func(p *pb.Manifest) { p.Objects[0].ChunkSize = 0 },
		"duplicate entries": func(p *pb.Manifest) { p.Objects = append(p.Objects, p.Objects[0]) },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			p := proto.Clone(m.Proto()).(*pb.Manifest)
			f(p)
			if _, err := FromProto(p); err == nil {
				t.Errorf("FromProto accepted a tampered manifest")
			}
		})
	}
	if _, err := FromProto(nil); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("FromProto(nil) = %v", err)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScan(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.txt"), "alpha")
	writeFile(t, filepath.Join(dir, "sub/b.bin"), "beta")
	writeFile(t, filepath.Join(dir, "empty"), "")
	writeFile(t, filepath.Join(dir, ".nackcast-upload-123"), "partial upload")
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	s, err := NewScanner(1024)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := s.Scan(ctx, dir, "c", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, o := range res.Manifest.Objects {
		paths = append(paths, o.Path)
	}
	if got := strings.Join(paths, ","); got != "a.txt,empty,sub/b.bin" {
		t.Errorf("objects = %s", got)
	}
	if res.Hashed != 3 {
		t.Errorf("hashed = %d, want 3", res.Hashed)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Path != "link" {
		t.Errorf("skipped = %v, want the symlink", res.Skipped)
	}
	a, _ := res.Manifest.Lookup(ObjectID("c", "a.txt"))
	if a.SHA256 != sha256.Sum256([]byte("alpha")) {
		t.Errorf("digest of a.txt wrong")
	}

	res2, err := s.Scan(ctx, dir, "c", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if res2.Hashed != 0 || res2.Manifest.Version != res.Manifest.Version {
		t.Errorf("rescan hashed %d files, version %x vs %x", res2.Hashed, res2.Manifest.Version, res.Manifest.Version)
	}

	// Replace a file atomically with new content of the same size and mtime.
	mt := time.Unix(1700000000, 0)
	if err := os.Chtimes(filepath.Join(dir, "a.txt"), mt, mt); err != nil {
		t.Fatal(err)
	}
	res, _ = s.Scan(ctx, dir, "c", time.Now())
	writeFile(t, filepath.Join(dir, "tmp"), "ALPHA")
	if err := os.Chtimes(filepath.Join(dir, "tmp"), mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "tmp"), filepath.Join(dir, "a.txt")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "sub/b.bin"))
	res3, err := s.Scan(ctx, dir, "c", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	a3, _ := res3.Manifest.Lookup(ObjectID("c", "a.txt"))
	if a3.SHA256 != sha256.Sum256([]byte("ALPHA")) {
		t.Errorf("replaced file with same size and mtime kept its old digest")
	}
	if _, ok := res3.Manifest.Lookup(ObjectID("c", "sub/b.bin")); ok {
		t.Errorf("removed file still in manifest")
	}
	if res3.Manifest.Version == res.Manifest.Version {
		t.Errorf("version unchanged after changes")
	}
}

func FuzzFromProto(f *testing.F) {
	o, _ := NewObject("c", "p", 3, sha256.Sum256([]byte("abc")), 1000)
	m, _ := New("c", []Object{o}, time.Unix(1, 0))
	seed, _ := proto.Marshal(m.Proto())
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		var p pb.Manifest
		if proto.Unmarshal(data, &p) != nil {
			return
		}
		m, err := FromProto(&p)
		if err != nil {
			return
		}
		for _, o := range m.Objects {
			if ValidatePath(o.Path) != nil {
				t.Fatalf("accepted invalid path %q", o.Path)
			}
		}
	})
}

func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "/abs", "a//b", ".nackcast"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePath(p) != nil {
			return
		}
		if filepath.IsAbs(p) || strings.Contains("/"+p+"/", "/../") || !filepath.IsLocal(p) {
			t.Fatalf("accepted escaping path %q", p)
		}
	})
}

// TestScanSymlinkedChannelDir: a channel directory replaced by a symlink
// to it (a volume mounted elsewhere) is scanned through the link, not seen
// as empty (issue 12, failure 4); links inside it stay skipped.
func TestScanSymlinkedChannelDir(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	writeFile(t, filepath.Join(real, "a.txt"), "alpha")
	writeFile(t, filepath.Join(real, "sub/b.bin"), "beta")
	if err := os.Symlink("a.txt", filepath.Join(real, "inner-link")); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "c")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	s, err := NewScanner(1024)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Scan(context.Background(), link, "c", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Manifest.Objects); n != 2 {
		t.Errorf("%d objects through the symlinked channel directory, want 2", n)
	}
	if len(res.Skipped) != 1 || res.Skipped[0].Path != "inner-link" {
		t.Errorf("skipped = %+v, want the inner link", res.Skipped)
	}
	if _, err := s.Scan(context.Background(), filepath.Join(base, "missing"), "c", time.Now()); err == nil {
		t.Error("a missing channel directory scanned without error")
	}
}

// TestVersionCoversChunkSize: the same content cut in chunks of another
// size is another object version, so that chunks of the two never mix in
// one partial object (issue 12, failure 7).
func TestVersionCoversChunkSize(t *testing.T) {
	sum := sha256.Sum256([]byte("content"))
	a, err := NewObject("c", "f", 7, sum, 1000)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewObject("c", "f", 7, sum, 1400)
	if err != nil {
		t.Fatal(err)
	}
	if a.Version == b.Version {
		t.Errorf("chunk sizes 1000 and 1400 give the same version %016x", a.Version)
	}
	if a.ID != b.ID {
		t.Errorf("the object id changed with the chunk size")
	}
	if c, _ := NewObject("c", "f", 7, sum, 1000); c.Version != a.Version {
		t.Errorf("version not deterministic: %016x, %016x", a.Version, c.Version)
	}
}

func TestCompare(t *testing.T) {
	obj := func(p, content string) Object {
		o, err := NewObject("c", p, uint64(len(content)), sha256.Sum256([]byte(content)), 1000)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	mk := func(objs ...Object) *Manifest {
		m, err := New("c", objs, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a := mk(obj("a", "1"), obj("b", "2"), obj("c", "3"), obj("e", "5"))
	b := mk(obj("b", "2"), obj("c", "changed"), obj("d", "4"), obj("e", "5"))
	d := Compare(a, b)
	if got := fmt.Sprint(d.OnlyA, d.OnlyB, d.Changed); got != "[a] [d] [c]" {
		t.Errorf("Compare = %s, want [a] [d] [c]", got)
	}
	if d.Empty() || !Compare(a, a).Empty() || !Compare(mk(), mk()).Empty() {
		t.Error("Empty is wrong")
	}
	if d := Compare(mk(), a); len(d.OnlyB) != 4 {
		t.Errorf("empty vs a: %+v", d)
	}
}
