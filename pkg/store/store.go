// Package store keeps a receiver's content on disk (seed Fig. 3, "content
// 320") so that a file under its final name is always whole and verified.
//
// Layout under the data directory:
//
//	<channel>/<path>                                  verified objects
//	.nackcast/partial/<channel>/<id>-<version>.part   chunks of a partial object
//	.nackcast/partial/<channel>/<id>-<version>.bitmap which chunks are durable
//	.nackcast/manifests/<channel>.pb                  last manifest fetched
//	.nackcast/lock                                    one receiver per directory
//
// A partial object is written with pwrite into a sparse file outside the
// final path. Its bitmap is persisted only after the data file is synced, so
// a persisted bitmap never claims a chunk that is not on disk and a restarted
// receiver resumes from it. Completion is: SHA-256 of the bytes on disk
// verified, fsync, rename to the final path, fsync of the directory.
//
// Every path is opened through an os.Root, so no manifest path and no
// symlink planted in the data directory can reach outside it.
package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/nackcast/nackcast/pkg/chunks"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/vecio"
)

// Sentinel errors.
var (
	// ErrVerify reports content whose SHA-256 does not match the manifest.
	ErrVerify = errors.New("content does not match its SHA-256")
	// ErrChunk reports a chunk of the wrong length or index.
	ErrChunk = errors.New("chunk does not fit the object")
	// ErrIncomplete reports a commit of an object that lacks chunks.
	ErrIncomplete = errors.New("object incomplete")
	// ErrLocked reports a data directory used by another receiver.
	ErrLocked = errors.New("data directory in use by another process")
)

const stateDir = manifest.ReservedPrefix

// Store is a receiver's data directory.
type Store struct {
	dir  string
	root *os.Root
	lock *os.File

	mu       sync.Mutex
	partDirs map[string]*os.Root // per channel: its partial directory
	madeDirs map[string]bool     // directories of final paths known to exist
}

// Open opens (creating if needed) the data directory dir and takes its lock.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	s := &Store{dir: dir, root: root, partDirs: map[string]*os.Root{}, madeDirs: map[string]bool{}}
	for _, d := range []string{stateDir, stateDir + "/partial", stateDir + "/manifests"} {
		if err := root.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			root.Close()
			return nil, fmt.Errorf("data directory %s: %w", d, err)
		}
	}
	lock, err := root.OpenFile(stateDir+"/lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		root.Close()
		return nil, fmt.Errorf("data directory lock: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		root.Close()
		return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
	}
	s.lock = lock
	return s, nil
}

// Dir returns the data directory.
func (s *Store) Dir() string { return s.dir }

// Close releases the lock and the directory.
func (s *Store) Close() error {
	err := s.lock.Close()
	s.mu.Lock()
	for _, r := range s.partDirs {
		err = errors.Join(err, r.Close())
	}
	clear(s.partDirs)
	s.mu.Unlock()
	return errors.Join(err, s.root.Close())
}

// partRoot returns the channel's partial directory, created and opened
// once: opening a partial is then a single openat(2) instead of a walk of
// every path component.
func (s *Store) partRoot(channel string) (*os.Root, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.partDirs[channel]; r != nil {
		return r, nil
	}
	dir := stateDir + "/partial/" + channel
	if err := s.root.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("partial directory: %w", err)
	}
	r, err := s.root.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("partial directory: %w", err)
	}
	s.partDirs[channel] = r
	return r, nil
}

// FinalPath returns the path of a verified object relative to the data
// directory.
func FinalPath(channel, p string) string { return channel + "/" + p }

func partialBase(channel string, o *manifest.Object) string {
	return fmt.Sprintf("%s/partial/%s/%016x-%016x", stateDir, channel, o.ID, o.Version)
}

// Partial is an object being received. It is safe for concurrent use.
type Partial struct {
	s       *Store
	channel string
	obj     manifest.Object
	base    string

	// ckMu is held by Checkpoint from start to end and by whatever closes
	// the partial (Close, CommitBatch), so that a checkpoint in flight ends
	// before the partial closes and none starts after: a bitmap is never
	// written for a partial already committed or discarded. Take it before
	// mu.
	ckMu sync.Mutex

	mu     sync.Mutex
	f      *os.File
	vec    vecio.Vec
	bm     *chunks.Bitmap
	dirty  bool
	closed bool
	// hasBitmap is set once a bitmap file may exist for the partial.
	hasBitmap bool
	// sum is the SHA-256 of the object's first hashed bytes, fed with
	// what WriteChunks wrote at that offset in the same call, so that an
	// object received in order is not read back to be verified. Only
	// bytes this partial wrote count: a chunk already held when its turn
	// comes (written out of order) stops the running sum, and the commit
	// reads the file from there.
	sum    hash.Hash
	hashed uint64
	// final is the identity of the committed file, set by CommitBatch.
	final manifest.FileIdentity
}

// Final returns the identity of the file a successful commit installed.
func (p *Partial) Final() manifest.FileIdentity { return p.final }

// OpenPartial opens the partial copy of obj, resuming from its persisted
// bitmap when one exists and matches the object; otherwise it starts empty.
func (s *Store) OpenPartial(channel string, obj manifest.Object) (*Partial, error) {
	if err := manifest.ValidateChannelName(channel); err != nil {
		return nil, err
	}
	pr, err := s.partRoot(channel)
	if err != nil {
		return nil, err
	}
	p := &Partial{s: s, channel: channel, obj: obj, base: partialBase(channel, &obj)}
	name := path.Base(p.base)
	// Most partials are new: create exclusively, and only an existing one
	// is worth looking for a bitmap of.
	f, err := pr.OpenFile(name+".part", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	fresh := err == nil
	if errors.Is(err, fs.ErrExist) {
		f, err = pr.OpenFile(name+".part", os.O_RDWR, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("open partial %s: %w", obj.Path, err)
	}
	p.f = f
	if !fresh {
		// A bitmap file may exist (even one that does not load): the
		// commit removes it.
		p.bm = p.loadBitmap(pr, name)
		p.hasBitmap = true
	}
	if p.bm == nil {
		p.bm = chunks.NewBitmap(obj.Chunks)
		if !fresh {
			if err := f.Truncate(0); err != nil {
				f.Close()
				return nil, fmt.Errorf("reset partial %s: %w", obj.Path, err)
			}
		}
	}
	// A new file grows to the object's size as its chunks are written
	// (every chunk is, before a commit): sizing it costs a system call
	// per object, which counts with many small ones.
	if !fresh {
		if err := f.Truncate(int64(obj.Size)); err != nil {
			f.Close()
			return nil, fmt.Errorf("size partial %s: %w", obj.Path, err)
		}
	}
	return p, nil
}

func (p *Partial) loadBitmap(pr *os.Root, name string) *chunks.Bitmap {
	data, err := pr.ReadFile(name + ".bitmap")
	if err != nil {
		return nil
	}
	bm, err := chunks.UnmarshalBitmap(data)
	if err != nil || bm.Len() != p.obj.Chunks {
		return nil
	}
	return bm
}

// Object returns the object being received.
func (p *Partial) Object() manifest.Object { return p.obj }

// Has reports whether chunk i is held.
func (p *Partial) Has(i uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bm.Has(i)
}

// Progress returns the number of chunks held and the bytes they make up.
func (p *Partial) Progress() (held uint32, bytes uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	held = p.bm.Count()
	bytes = uint64(held) * uint64(p.obj.ChunkSize)
	if held > 0 && p.bm.Has(p.obj.Chunks-1) {
		bytes -= uint64(p.obj.ChunkSize) - uint64(p.obj.ChunkLen(p.obj.Chunks-1))
	}
	return held, bytes
}

// HeldIn returns how many of the n chunks from first are held.
func (p *Partial) HeldIn(first uint32, n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	held := 0
	for i := range uint32(n) {
		if p.bm.Has(first + i) {
			held++
		}
	}
	return held
}

// ReadChunk reads held chunk i into buf, which must have the chunk's exact
// length.
func (p *Partial) ReadChunk(i uint32, buf []byte) error {
	if len(buf) != p.obj.ChunkLen(i) {
		return fmt.Errorf("read chunk %d of %s into %d bytes: %w", i, p.obj.Path, len(buf), ErrChunk)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fs.ErrClosed
	}
	if !p.bm.Has(i) {
		return fmt.Errorf("chunk %d of %s not held: %w", i, p.obj.Path, ErrChunk)
	}
	if _, err := p.f.ReadAt(buf, p.obj.Offset(i)); err != nil {
		return fmt.Errorf("read %s: %w", p.obj.Path, err)
	}
	return nil
}

// Full reports whether every chunk is held.
func (p *Partial) Full() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bm.Full()
}

// Missing returns the chunks not held.
func (p *Partial) Missing() chunks.List {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bm.Missing()
}

// WriteChunk stores chunk i. It reports whether the chunk was new; a chunk
// already held is not written again. data must have the chunk's exact
// length.
func (p *Partial) WriteChunk(i uint32, data []byte) (bool, error) {
	n, err := p.WriteChunks(i, [][]byte{data})
	return n > 0, err
}

// WriteChunks stores consecutive chunks first, first+1, ... carried in
// bufs (each with its chunk's exact length), skipping chunks already held,
// with one vectored write per run of new chunks. It returns the number of
// new bytes.
func (p *Partial) WriteChunks(first uint32, bufs [][]byte) (int, error) {
	if uint64(first)+uint64(len(bufs)) > uint64(p.obj.Chunks) {
		return 0, fmt.Errorf("chunks %d+%d of %s: %w", first, len(bufs), p.obj.Path, ErrChunk)
	}
	for i, b := range bufs {
		if len(b) != p.obj.ChunkLen(first+uint32(i)) {
			return 0, fmt.Errorf("chunk %d of %d bytes for %s: %w", first+uint32(i), len(b), p.obj.Path, ErrChunk)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, fs.ErrClosed
	}
	written := 0
	for i := 0; i < len(bufs); {
		if p.bm.Has(first + uint32(i)) {
			i++
			continue
		}
		j := i + 1
		for j < len(bufs) && !p.bm.Has(first+uint32(j)) {
			j++
		}
		crashPoint("write")
		n, err := p.vec.WriteAt(p.f, bufs[i:j], p.obj.Offset(first+uint32(i)))
		if err != nil {
			return written, fmt.Errorf("write %s: %w", p.obj.Path, err)
		}
		for k := i; k < j; k++ {
			p.bm.Set(first + uint32(k))
		}
		if off := p.obj.Offset(first + uint32(i)); uint64(off) == p.hashed {
			if p.sum == nil {
				p.sum = sha256.New()
			}
			for _, b := range bufs[i:j] {
				p.sum.Write(b)
			}
			p.hashed += uint64(n)
		}
		written += n
		p.dirty = true
		i = j
	}
	return written, nil
}

// WriteRun stores a run of whole chunks starting at byte offset off (a chunk
// boundary), as a unicast pull delivers them. It returns how many bytes
// belonged to chunks that were new.
func (p *Partial) WriteRun(off uint64, data []byte) (int, error) {
	cs := uint64(p.obj.ChunkSize)
	if off%cs != 0 || off >= p.obj.Size {
		return 0, fmt.Errorf("run at offset %d for %s: %w", off, p.obj.Path, ErrChunk)
	}
	first := uint32(off / cs)
	var bufs [][]byte
	for i := first; len(data) > 0; i++ {
		l := p.obj.ChunkLen(i)
		if l == 0 || len(data) < l {
			return 0, fmt.Errorf("run ends inside chunk %d of %s: %w", i, p.obj.Path, ErrChunk)
		}
		bufs = append(bufs, data[:l])
		data = data[l:]
	}
	return p.WriteChunks(first, bufs)
}

// Checkpoint makes the chunks written so far durable and persists the
// bitmap that describes them: data fsync first, then the bitmap through a
// synced temporary file and a rename.
func (p *Partial) Checkpoint() error {
	p.ckMu.Lock()
	defer p.ckMu.Unlock()
	return p.checkpoint()
}

// checkpoint is Checkpoint, called with p.ckMu held.
func (p *Partial) checkpoint() error {
	p.mu.Lock()
	if !p.dirty || p.closed {
		p.mu.Unlock()
		return nil
	}
	data, _ := p.bm.MarshalBinary()
	p.dirty = false
	p.mu.Unlock()
	if err := p.f.Sync(); err != nil {
		p.markDirty()
		return fmt.Errorf("sync %s: %w", p.obj.Path, err)
	}
	crashPoint("checkpoint")
	p.mu.Lock()
	p.hasBitmap = true
	p.mu.Unlock()
	if err := p.s.writeAtomic(p.base+".bitmap", data); err != nil {
		p.markDirty()
		return fmt.Errorf("bitmap of %s: %w", p.obj.Path, err)
	}
	return nil
}

func (p *Partial) markDirty() {
	p.mu.Lock()
	p.dirty = true
	p.mu.Unlock()
}

// Close checkpoints and closes the partial; it can be reopened with
// OpenPartial.
func (p *Partial) Close() error {
	p.ckMu.Lock()
	defer p.ckMu.Unlock()
	err := p.checkpoint()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return err
	}
	p.closed = true
	return errors.Join(err, p.f.Close())
}

// Commit verifies a full partial against its SHA-256, makes it durable and
// renames it to its final path. On ErrVerify the partial is reset to empty
// so that the object is fetched again. The partial is closed afterwards
// whatever the outcome, unless it is not full (ErrIncomplete).
func (s *Store) Commit(p *Partial) error {
	return s.CommitBatch([]*Partial{p})[0]
}

// CommitBatch commits several full partials as one group (group commit):
// each is verified against its SHA-256; then the data of all of them is
// made durable at once, they are renamed to their final paths, and the
// renames are made durable at once. With more than one partial the two
// flushes are syncfs(2) calls, so a batch of many small objects costs two
// journal commits instead of two per object; a single partial (or a
// platform without syncfs) uses fsync of the file and of its directory.
//
// Whatever happens, a file under a final name is whole and verified, and
// its data was durable before it got that name. The returned slice holds
// one error per partial, in order. Every partial is closed afterwards,
// except one that is not full (ErrIncomplete), which stays open.
func (s *Store) CommitBatch(ps []*Partial) []error {
	errs := make([]error, len(ps))
	ok := make([]bool, len(ps))
	live := 0
	for i, p := range ps {
		crashPoint("verify")
		if errs[i] = s.verify(p); errs[i] == nil {
			ok[i] = true
			live++
		}
	}
	if live == 0 {
		return errs
	}
	group := live > 1
	hadBitmap := make([]bool, len(ps))
	crashPoint("sync")
	if group {
		if err := s.syncAll(); err != nil {
			group = false // fall back to one fsync per file
		}
	}
	for i, p := range ps {
		if !ok[i] {
			continue
		}
		var err error
		if !group {
			if err = p.f.Sync(); err != nil {
				err = fmt.Errorf("sync %s: %w", p.obj.Path, err)
			}
		}
		p.ckMu.Lock()
		p.mu.Lock()
		p.closed, p.dirty = true, false
		hadBitmap[i] = p.hasBitmap
		p.mu.Unlock()
		p.ckMu.Unlock()
		if err == nil {
			crashPoint("rename")
			err = s.rename(p.base+".part", FinalPath(p.channel, p.obj.Path))
		}
		if err == nil {
			// The identity of the file under its final name (the rename
			// changed its ctime), from the descriptor: no path lookup.
			var fi fs.FileInfo
			if fi, err = p.f.Stat(); err == nil {
				p.final = manifest.IdentityOf(fi)
			}
		}
		if cerr := p.f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close %s: %w", p.obj.Path, cerr)
		}
		if err != nil {
			errs[i], ok[i] = err, false
			continue
		}
		crashPoint("sync-dir")
		if !group {
			if err := s.syncDir(path.Dir(FinalPath(p.channel, p.obj.Path))); err != nil {
				errs[i], ok[i] = fmt.Errorf("install %s: %w", p.obj.Path, err), false
			}
		}
	}
	if group {
		if err := s.syncAll(); err != nil {
			for i := range ps {
				if ok[i] {
					errs[i], ok[i] = fmt.Errorf("install %s: %w", ps[i].obj.Path, err), false
				}
			}
		}
	}
	for i, p := range ps {
		if ok[i] && hadBitmap[i] {
			_ = s.root.Remove(p.base + ".bitmap")
		}
	}
	return errs
}

// verify checks that p is full and matches its SHA-256. On a mismatch the
// partial is reset and removed; on any error it is closed.
func (s *Store) verify(p *Partial) error {
	p.mu.Lock()
	full := p.bm.Full()
	p.mu.Unlock()
	if !full {
		return fmt.Errorf("commit %s: %w", p.obj.Path, ErrIncomplete)
	}
	sum, err := p.digest()
	if err != nil {
		p.Close()
		return fmt.Errorf("verify %s: %w", p.obj.Path, err)
	}
	if sum != p.obj.SHA256 {
		p.mu.Lock()
		p.bm.Reset()
		p.sum, p.hashed = nil, 0
		p.dirty = true
		p.mu.Unlock()
		p.Close()
		s.removePartial(p.channel, &p.obj)
		return fmt.Errorf("%s: %w", p.obj.Path, ErrVerify)
	}
	return nil
}

// syncAll flushes the whole file system holding the data directory.
func (s *Store) syncAll() error {
	d, err := s.root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	return syncfs(d)
}

// rename moves a synced file to its final path, creating parent
// directories and replacing an empty directory in the way. The caller
// makes the rename durable (syncDir or syncAll).
func (s *Store) rename(from, to string) error {
	dir := path.Dir(to)
	s.mu.Lock()
	made := s.madeDirs[dir]
	s.mu.Unlock()
	if !made {
		if err := s.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		s.mu.Lock()
		s.madeDirs[dir] = true
		s.mu.Unlock()
	}
	err := s.root.Rename(from, to)
	if errors.Is(err, fs.ErrNotExist) && made {
		// The directory went away since: make it again.
		s.mu.Lock()
		delete(s.madeDirs, dir)
		s.mu.Unlock()
		return s.rename(from, to)
	}
	if err != nil {
		if fi, statErr := s.root.Lstat(to); statErr == nil && fi.IsDir() {
			if rmErr := s.root.Remove(to); rmErr == nil {
				err = s.root.Rename(from, to)
			}
		}
	}
	return err
}

// syncDir fsyncs a directory of the data directory.
func (s *Store) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// writeAtomic writes data to name through a synced temporary file and a
// rename.
func (s *Store) writeAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		crashPoint("bitmap-rename")
		err = s.root.Rename(tmp, name)
	}
	if err != nil {
		_ = s.root.Remove(tmp)
	}
	return err
}

// digest returns the SHA-256 of the partial's bytes: the running sum of
// what was written in order, continued with the rest read from the file.
func (p *Partial) digest() ([32]byte, error) {
	p.mu.Lock()
	h, from := p.sum, p.hashed
	p.mu.Unlock()
	if h == nil || from > p.obj.Size {
		h, from = sha256.New(), 0
	}
	if from < p.obj.Size {
		n, err := io.Copy(h, io.NewSectionReader(p.f, int64(from), int64(p.obj.Size-from)))
		if err != nil {
			return [32]byte{}, err
		}
		if uint64(n) != p.obj.Size-from {
			return [32]byte{}, fmt.Errorf("read %d of %d bytes: %w", n, p.obj.Size-from, io.ErrUnexpectedEOF)
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}

// hashReader hashes r, which must hold exactly size bytes.
func hashReader(r io.Reader, size uint64) ([32]byte, error) {
	var sum [32]byte
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return sum, err
	}
	if uint64(n) != size {
		return sum, fmt.Errorf("read %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// pacedReader reads r at most rate bytes per second on average, sleeping
// between reads, and stops when ctx is done.
type pacedReader struct {
	ctx   context.Context
	r     io.Reader
	rate  int64
	start time.Time
	n     int64
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	b = b[:min(len(b), int(max(p.rate/10, 4096)))] // about a tenth of a second at a time
	n, err := p.r.Read(b)
	p.n += int64(n)
	due := p.start.Add(time.Duration(float64(p.n) / float64(p.rate) * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-p.ctx.Done():
			return n, p.ctx.Err()
		case <-t.C:
		}
	}
	return n, err
}

// removePartial deletes the partial files of obj.
func (s *Store) removePartial(channel string, obj *manifest.Object) {
	base := partialBase(channel, obj)
	_ = s.root.Remove(base + ".part")
	_ = s.root.Remove(base + ".bitmap")
}

// DiscardPartial deletes the partial copy of obj, if any. p, if not nil, is
// closed first.
func (s *Store) DiscardPartial(channel string, obj manifest.Object, p *Partial) {
	if p != nil {
		p.mu.Lock()
		p.dirty = false
		p.mu.Unlock()
		p.Close()
	}
	s.removePartial(channel, &obj)
}

// HasPartial reports whether a partial copy of obj exists on disk.
func (s *Store) HasPartial(channel string, obj manifest.Object) bool {
	_, err := s.root.Lstat(partialBase(channel, &obj) + ".part")
	return err == nil
}

// CleanPartials removes partial files of channel that belong to no object
// of keep (objects removed from the manifest, or old versions).
func (s *Store) CleanPartials(channel string, keep []manifest.Object) error {
	dir := stateDir + "/partial/" + channel
	d, err := s.root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	want := make(map[string]bool, len(keep))
	for i := range keep {
		want[path.Base(partialBase(channel, &keep[i]))] = true
	}
	for _, n := range names {
		stem := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, ".tmp"), ".part"), ".bitmap")
		if !want[stem] {
			_ = s.root.Remove(dir + "/" + n)
		}
	}
	return nil
}

// StatFinal returns the identity of the final file of an object, or an
// error wrapping fs.ErrNotExist when there is no regular file there.
func (s *Store) StatFinal(channel, p string) (manifest.FileIdentity, error) {
	fi, err := s.root.Lstat(FinalPath(channel, p))
	if err != nil {
		return manifest.FileIdentity{}, err
	}
	if !fi.Mode().IsRegular() {
		return manifest.FileIdentity{}, fmt.Errorf("%s is not a regular file: %w", p, fs.ErrNotExist)
	}
	return manifest.IdentityOf(fi), nil
}

// VerifyFinal hashes the final file of obj and reports whether it matches.
// It returns the identity of the file it read.
func (s *Store) VerifyFinal(channel string, obj manifest.Object) (bool, manifest.FileIdentity, error) {
	return s.VerifyFinalPaced(context.Background(), channel, obj, 0)
}

// VerifyFinalPaced is VerifyFinal reading at most rate bytes per second
// (0: no limit), for low-priority scrubs; it stops with ctx's error when
// ctx is done.
func (s *Store) VerifyFinalPaced(ctx context.Context, channel string, obj manifest.Object, rate int64) (bool, manifest.FileIdentity, error) {
	f, err := s.root.Open(FinalPath(channel, obj.Path))
	if err != nil {
		return false, manifest.FileIdentity{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, manifest.FileIdentity{}, err
	}
	id := manifest.IdentityOf(fi)
	if !fi.Mode().IsRegular() || uint64(fi.Size()) != obj.Size {
		return false, id, nil
	}
	var r io.Reader = io.NewSectionReader(f, 0, int64(obj.Size))
	if rate > 0 {
		r = &pacedReader{ctx: ctx, r: r, rate: rate, start: time.Now()}
	}
	sum, err := hashReader(r, obj.Size)
	if err != nil {
		return false, id, err
	}
	return sum == obj.SHA256, id, nil
}

// RemoveFinal deletes the final file of an object that left the manifest,
// and then its parent directories up to the channel directory while they
// are empty.
func (s *Store) RemoveFinal(channel, p string) error {
	full := FinalPath(channel, p)
	if err := s.root.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s.pruneEmptyDirs(channel, path.Dir(full))
	return nil
}

// pruneEmptyDirs removes dir and then its parents, up to and excluding the
// channel directory, while they are empty. It is tidying, best effort: the
// first directory that cannot be removed ends it without an error, most
// often because it is not empty (other objects, or a partial being written
// there); a directory left behind is harmless and is reused, or pruned with
// a later removal.
func (s *Store) pruneEmptyDirs(channel, dir string) {
	for ; dir != channel && dir != "."; dir = path.Dir(dir) {
		if s.root.Remove(dir) != nil {
			return
		}
	}
}

// SaveManifest persists the last manifest fetched for its channel.
func (s *Store) SaveManifest(m *pb.Manifest) error {
	if err := manifest.ValidateChannelName(m.GetChannel()); err != nil {
		return err
	}
	data, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	return s.writeAtomic(stateDir+"/manifests/"+m.GetChannel()+".pb", data)
}

// LoadManifest returns the persisted manifest of channel, validated, or an
// error wrapping fs.ErrNotExist.
func (s *Store) LoadManifest(channel string) (*manifest.Manifest, error) {
	if err := manifest.ValidateChannelName(channel); err != nil {
		return nil, err
	}
	data, err := s.root.ReadFile(stateDir + "/manifests/" + channel + ".pb")
	if err != nil {
		return nil, err
	}
	var m pb.Manifest
	if err := proto.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("persisted manifest of %s: %w", channel, err)
	}
	if m.GetChannel() != channel {
		return nil, fmt.Errorf("persisted manifest of %s names channel %q: %w", channel, m.GetChannel(), manifest.ErrInvalidManifest)
	}
	return manifest.FromProto(&m)
}

// Listing is what a data directory held for one channel when it was
// listed: the regular files under the channel's directory and the partial
// files. A receiver installing a manifest of many objects consults it
// instead of looking each object up on disk.
type Listing struct {
	finals   map[string]bool
	partials map[string]bool
}

// List lists a channel's final files and partial files in one walk. A
// channel with nothing on disk yields an empty listing.
func (s *Store) List(channel string) (*Listing, error) {
	if err := manifest.ValidateChannelName(channel); err != nil {
		return nil, err
	}
	l := &Listing{finals: map[string]bool{}, partials: map[string]bool{}}
	err := fs.WalkDir(s.root.FS(), channel, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == channel {
				return fs.SkipAll
			}
			return err
		}
		if d.Type().IsRegular() {
			l.finals[strings.TrimPrefix(p, channel+"/")] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", channel, err)
	}
	d, err := s.root.Open(stateDir + "/partial/" + channel)
	if errors.Is(err, fs.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list partials of %s: %w", channel, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("list partials of %s: %w", channel, err)
	}
	for _, n := range names {
		if stem, ok := strings.CutSuffix(n, ".part"); ok {
			l.partials[stem] = true
		}
	}
	return l, nil
}

// MayHaveFinal reports whether the listing saw a regular file at the
// object path p (nil listing: maybe).
func (l *Listing) MayHaveFinal(p string) bool { return l == nil || l.finals[p] }

// MayHavePartial reports whether the listing saw a partial file of obj
// (nil listing: maybe).
func (l *Listing) MayHavePartial(channel string, obj manifest.Object) bool {
	return l == nil || l.partials[path.Base(partialBase(channel, &obj))]
}
