package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/manifest"
)

const chunkSize = 256

func content(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func object(t *testing.T, p string, data []byte) manifest.Object {
	t.Helper()
	o, err := manifest.NewObject("ch", p, uint64(len(data)), sha256.Sum256(data), chunkSize)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func writeChunks(t *testing.T, p *Partial, data []byte, which func(i uint32) bool) {
	t.Helper()
	o := p.Object()
	for i := uint32(0); i < o.Chunks; i++ {
		if !which(i) {
			continue
		}
		off := o.Offset(i)
		if _, err := p.WriteChunk(i, data[off:off+int64(o.ChunkLen(i))]); err != nil {
			t.Fatalf("WriteChunk(%d): %v", i, err)
		}
	}
}

func TestReceiveCommit(t *testing.T) {
	for _, size := range []int{0, 1, chunkSize, chunkSize + 1, 10*chunkSize + 17} {
		dir := t.TempDir()
		s := openStore(t, dir)
		data := content(size, uint64(size))
		o := object(t, "sub/dir/file.bin", data)
		p, err := s.OpenPartial("ch", o)
		if err != nil {
			t.Fatal(err)
		}
		// Out of order, with duplicates.
		writeChunks(t, p, data, func(i uint32) bool { return i%2 == 1 })
		writeChunks(t, p, data, func(i uint32) bool { return true })
		if !p.Full() {
			t.Fatalf("size %d: not full", size)
		}
		if held, b := p.Progress(); held != o.Chunks || b != uint64(size) {
			t.Errorf("size %d: progress = %d chunks, %d bytes", size, held, b)
		}
		if _, err := os.Stat(filepath.Join(dir, "ch/sub/dir/file.bin")); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("size %d: final file exists before commit", size)
		}
		if err := s.Commit(p); err != nil {
			t.Fatalf("size %d: Commit: %v", size, err)
		}
		got, err := os.ReadFile(filepath.Join(dir, "ch/sub/dir/file.bin"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("size %d: final content wrong (%v)", size, err)
		}
		if s.HasPartial("ch", o) {
			t.Errorf("size %d: partial left behind", size)
		}
		if id, err := s.StatFinal("ch", "sub/dir/file.bin"); err != nil || !id.Equal(p.Final()) {
			t.Errorf("size %d: commit's identity %+v, the final file's %+v (%v)", size, p.Final(), id, err)
		}
		ok, _, err := s.VerifyFinal("ch", o)
		if err != nil || !ok {
			t.Errorf("size %d: VerifyFinal = %v, %v", size, ok, err)
		}
	}
}

func TestWriteChunkRejects(t *testing.T) {
	s := openStore(t, t.TempDir())
	data := content(3*chunkSize+10, 1)
	p, err := s.OpenPartial("ch", object(t, "f", data))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cases := []struct {
		name string
		i    uint32
		n    int
	}{
		{"short", 0, chunkSize - 1},
		{"long", 0, chunkSize + 1},
		{"last chunk full size", 3, chunkSize},
		{"past end", 4, 10},
	}
	for _, c := range cases {
		if _, err := p.WriteChunk(c.i, make([]byte, c.n)); !errors.Is(err, ErrChunk) {
			t.Errorf("%s: err = %v, want ErrChunk", c.name, err)
		}
	}
	if held, _ := p.Progress(); held != 0 {
		t.Errorf("rejected chunks were recorded")
	}
	if err := s.Commit(p); !errors.Is(err, ErrIncomplete) {
		t.Errorf("Commit of empty partial = %v, want ErrIncomplete", err)
	}
}

func TestResumeFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	data := content(20*chunkSize, 2)
	o := object(t, "big", data)

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.OpenPartial("ch", o)
	writeChunks(t, p, data, func(i uint32) bool { return i < 10 })
	if err := p.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// Chunks written after the last checkpoint are not claimed after a
	// crash: simulate one by closing the file without a checkpoint.
	writeChunks(t, p, data, func(i uint32) bool { return i >= 10 && i < 12 })
	p.f.Close()
	s.Close()

	s2 := openStore(t, dir)
	p2, err := s2.OpenPartial("ch", o)
	if err != nil {
		t.Fatal(err)
	}
	if want := (chunks.List{{First: 10, Count: 10}}); !slices.Equal(p2.Missing(), want) {
		t.Fatalf("resumed missing = %v, want %v", p2.Missing(), want)
	}
	writeChunks(t, p2, data, func(i uint32) bool { return i >= 10 })
	if err := s2.Commit(p2); err != nil {
		t.Fatalf("Commit after resume: %v", err)
	}
}

func TestCorruptBitmapStartsOver(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	data := content(5*chunkSize, 3)
	o := object(t, "f", data)
	p, _ := s.OpenPartial("ch", o)
	writeChunks(t, p, data, func(i uint32) bool { return true })
	p.Close()
	bm := filepath.Join(dir, partialBase("ch", &o)+".bitmap")
	b, err := os.ReadFile(bm)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0xff
	if err := os.WriteFile(bm, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p2, err := s.OpenPartial("ch", o)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if held, _ := p2.Progress(); held != 0 {
		t.Errorf("corrupt bitmap trusted: %d chunks held", held)
	}
}

func TestVerifyFailureResets(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	data := content(4*chunkSize, 4)
	o := object(t, "f", data)
	p, _ := s.OpenPartial("ch", o)
	bad := slices.Clone(data)
	bad[5] ^= 1
	writeChunks(t, p, bad, func(i uint32) bool { return true })
	if err := s.Commit(p); !errors.Is(err, ErrVerify) {
		t.Fatalf("Commit of corrupt content = %v, want ErrVerify", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ch/f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("corrupt content installed")
	}
	p2, _ := s.OpenPartial("ch", o)
	defer p2.Close()
	if held, _ := p2.Progress(); held != 0 {
		t.Errorf("after verify failure %d chunks still held", held)
	}
}

func TestWriteRun(t *testing.T) {
	s := openStore(t, t.TempDir())
	data := content(3*chunkSize+5, 5)
	o := object(t, "f", data)
	p, _ := s.OpenPartial("ch", o)
	if n, err := p.WriteRun(chunkSize, data[chunkSize:]); err != nil || n != len(data)-chunkSize {
		t.Fatalf("WriteRun = %d, %v", n, err)
	}
	if _, err := p.WriteRun(1, data[1:chunkSize]); !errors.Is(err, ErrChunk) {
		t.Errorf("unaligned run err = %v", err)
	}
	if _, err := p.WriteRun(0, data[:chunkSize-1]); !errors.Is(err, ErrChunk) {
		t.Errorf("partial-chunk run err = %v", err)
	}
	if n, _ := p.WriteRun(0, data[:2*chunkSize]); n != chunkSize {
		t.Errorf("overlapping run counted %d new bytes, want %d", n, chunkSize)
	}
	if err := s.Commit(p); err != nil {
		t.Fatal(err)
	}
}

func TestSymlinkEscapeRefused(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	s := openStore(t, dir)
	if err := os.Symlink(outside, filepath.Join(dir, "ch")); err != nil {
		t.Fatal(err)
	}
	data := content(10, 6)
	o := object(t, "x", data)
	p, _ := s.OpenPartial("ch", o)
	writeChunks(t, p, data, func(uint32) bool { return true })
	if err := s.Commit(p); err == nil {
		t.Fatal("Commit through a symlink out of the data directory succeeded")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("wrote outside the data directory: %v", entries)
	}
}

func TestReplaceEmptyDirectoryAndRemove(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := os.MkdirAll(filepath.Join(dir, "ch/a/b"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := content(10, 7)
	o := object(t, "a/b", data) // a directory (empty) stands where the file goes
	p, _ := s.OpenPartial("ch", o)
	writeChunks(t, p, data, func(uint32) bool { return true })
	if err := s.Commit(p); err != nil {
		t.Fatalf("Commit over an empty directory: %v", err)
	}
	if err := s.RemoveFinal("ch", "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ch/a")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty parent directory left behind")
	}
	if _, err := os.Stat(filepath.Join(dir, "ch")); err != nil {
		t.Errorf("channel directory removed: %v", err)
	}
}

// TestRemoveFinalKeepsNonEmptyParents: pruning the parents stops, without
// an error, at the first one that still holds something.
func TestRemoveFinalKeepsNonEmptyParents(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	for i, name := range []string{"d/e/x", "d/y"} {
		data := content(10, uint64(20+i))
		p, err := s.OpenPartial("ch", object(t, name, data))
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, p, data, func(uint32) bool { return true })
		if err := s.Commit(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveFinal("ch", "d/e/x"); err != nil {
		t.Fatalf("RemoveFinal with a non-empty parent: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ch/d/e")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty directory d/e left behind")
	}
	if _, err := os.Stat(filepath.Join(dir, "ch/d/y")); err != nil {
		t.Errorf("sibling object: %v", err)
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir)
	if _, err := Open(dir); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
}

func TestCleanPartials(t *testing.T) {
	s := openStore(t, t.TempDir())
	keep := object(t, "keep", content(10, 8))
	drop := object(t, "drop", content(10, 9))
	for _, o := range []manifest.Object{keep, drop} {
		p, err := s.OpenPartial("ch", o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.WriteChunk(0, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	if err := s.CleanPartials("ch", []manifest.Object{keep}); err != nil {
		t.Fatal(err)
	}
	if !s.HasPartial("ch", keep) || s.HasPartial("ch", drop) {
		t.Errorf("CleanPartials kept the wrong files")
	}
}

func TestManifestPersistence(t *testing.T) {
	s := openStore(t, t.TempDir())
	m, err := manifest.New("ch", []manifest.Object{object(t, "f", []byte("x"))}, time.Unix(5, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveManifest(m.Proto()); err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadManifest("ch")
	if err != nil || got.Version != m.Version {
		t.Fatalf("LoadManifest = %v, %v", got, err)
	}
	if _, err := s.LoadManifest("other"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing manifest err = %v", err)
	}
}

// TestCommitBatch: a group commit installs every good object, verified and
// under its final name, and reports each failure on its own (a corrupted
// object, an incomplete one) without holding back the others; a listing
// then sees exactly what is on disk.
func TestCommitBatch(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	type item struct {
		path    string
		data    []byte
		corrupt bool // write a different chunk 0 (wrong SHA-256)
		partial bool // leave the last chunk out
		want    error
	}
	items := []item{
		{path: "a/one.bin", data: content(1000, 1)},
		{path: "a/two.bin", data: content(3000, 2)},
		{path: "b/bad.bin", data: content(900, 3), corrupt: true, want: ErrVerify},
		{path: "b/short.bin", data: content(2000, 4), partial: true, want: ErrIncomplete},
		{path: "c/deep/three.bin", data: content(257, 5)},
	}
	ps := make([]*Partial, len(items))
	for i, it := range items {
		o := object(t, it.path, it.data)
		p, err := s.OpenPartial("ch", o)
		if err != nil {
			t.Fatal(err)
		}
		data := it.data
		if it.corrupt {
			data = bytes.Clone(data)
			data[0] ^= 0xff
		}
		writeChunks(t, p, data, func(i uint32) bool { return !it.partial || i+1 < o.Chunks })
		ps[i] = p
	}
	errs := s.CommitBatch(ps)
	for i, it := range items {
		final := filepath.Join(dir, "ch", filepath.FromSlash(it.path))
		got, readErr := os.ReadFile(final)
		switch it.want {
		case nil:
			if errs[i] != nil {
				t.Errorf("%s: %v", it.path, errs[i])
			} else if readErr != nil || !bytes.Equal(got, it.data) {
				t.Errorf("%s: final file wrong or missing (%v)", it.path, readErr)
			}
		default:
			if !errors.Is(errs[i], it.want) {
				t.Errorf("%s: err = %v, want %v", it.path, errs[i], it.want)
			}
			if readErr == nil {
				t.Errorf("%s: a file under the final name after a failed commit", it.path)
			}
		}
	}
	l, err := s.List("ch")
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if got := l.MayHaveFinal(it.path); got != (it.want == nil) {
			t.Errorf("listing: MayHaveFinal(%s) = %v", it.path, got)
		}
	}
	// The incomplete object keeps its partial; the corrupted one lost it.
	if !l.MayHavePartial("ch", ps[3].Object()) || l.MayHavePartial("ch", ps[2].Object()) || l.MayHavePartial("ch", ps[0].Object()) {
		t.Error("listing of partials does not match the commits")
	}
	if l, err := s.List("nothing-here"); err != nil || l.MayHaveFinal("x") {
		t.Errorf("listing of an absent channel: %v, %v", l, err)
	}
}

// writer writes consecutive chunks from first into a partial under test.
type writer func(first uint32, bufs ...[]byte)

// TestRunningDigest: the SHA-256 a commit checks is the running sum of
// the bytes written in order, continued from the file where the order
// broke; it is always the digest of what is on disk. A chunk written out
// of order with other bytes stays wrong on disk even when the right bytes
// arrive later in order (they are not written again, so they must not be
// hashed either).
func TestRunningDigest(t *testing.T) {
	data := content(10*chunkSize+17, 11)
	bad := slices.Clone(data)
	bad[3*chunkSize+5] ^= 1
	chunk := func(d []byte, i uint32, o manifest.Object) []byte {
		off := o.Offset(i)
		return d[off : off+int64(o.ChunkLen(i))]
	}
	tests := []struct {
		name string
		// write feeds the partial; hashed is how far the running sum
		// got before the commit.
		write    func(w writer, o manifest.Object)
		hashed   uint64
		wantFail bool
	}{
		{"in order", func(w writer, o manifest.Object) {
			for i := range o.Chunks {
				w(i, chunk(data, i, o))
			}
		}, uint64(len(data)), false},
		{"in order, batched", func(w writer, o manifest.Object) {
			var bufs [][]byte
			for i := range o.Chunks {
				bufs = append(bufs, chunk(data, i, o))
			}
			w(0, bufs[:4]...)
			w(4, bufs[4:]...)
		}, uint64(len(data)), false},
		{"a gap filled later", func(w writer, o manifest.Object) {
			for i := range o.Chunks {
				if i != 2 {
					w(i, chunk(data, i, o))
				}
			}
			w(2, chunk(data, 2, o))
		}, 3 * chunkSize, false},
		{"a wrong chunk first, the right bytes later in order", func(w writer, o manifest.Object) {
			w(3, chunk(bad, 3, o))
			for i := range o.Chunks {
				w(i, chunk(data, i, o))
			}
		}, 3 * chunkSize, true},
		{"a wrong chunk in order", func(w writer, o manifest.Object) {
			for i := range o.Chunks {
				w(i, chunk(bad, i, o))
			}
		}, uint64(len(data)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			o := object(t, "f", data)
			p, err := s.OpenPartial("ch", o)
			if err != nil {
				t.Fatal(err)
			}
			tt.write(func(first uint32, bufs ...[]byte) {
				t.Helper()
				if _, err := p.WriteChunks(first, bufs); err != nil {
					t.Fatal(err)
				}
			}, o)
			if p.hashed != tt.hashed {
				t.Errorf("running sum covers %d bytes, want %d", p.hashed, tt.hashed)
			}
			err = s.Commit(p)
			if tt.wantFail {
				if !errors.Is(err, ErrVerify) {
					t.Fatalf("Commit = %v, want ErrVerify", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if got, err := os.ReadFile(filepath.Join(dir, "ch/f")); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("final content wrong (%v)", err)
			}
		})
	}
}

// BenchmarkCommit measures the commit of a 16 MiB object, the time
// between its last chunk and its final name: written in order (the
// running digest covers it all) and with its first chunk last (the
// commit reads the file back to hash it).
func BenchmarkCommit(b *testing.B) {
	data := content(16<<20, 5)
	o, err := manifest.NewObject("ch", "f", uint64(len(data)), sha256.Sum256(data), 1400)
	if err != nil {
		b.Fatal(err)
	}
	for _, firstLast := range []bool{false, true} {
		name := "in-order"
		if firstLast {
			name = "first-chunk-last"
		}
		b.Run(name, func(b *testing.B) {
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			bufs := make([][]byte, o.Chunks)
			for i := range o.Chunks {
				off := o.Offset(i)
				bufs[i] = data[off : off+int64(o.ChunkLen(i))]
			}
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				b.StopTimer()
				p, err := s.OpenPartial("ch", o)
				if err != nil {
					b.Fatal(err)
				}
				write := func(first int, bufs [][]byte) {
					if _, err := p.WriteChunks(uint32(first), bufs); err != nil {
						b.Fatal(err)
					}
				}
				if firstLast {
					write(1, bufs[1:])
					write(0, bufs[:1])
				} else {
					for i := 0; i < len(bufs); i += 64 {
						write(i, bufs[i:min(i+64, len(bufs))])
					}
				}
				b.StartTimer()
				if err := s.Commit(p); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.RemoveFinal("ch", "f"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
