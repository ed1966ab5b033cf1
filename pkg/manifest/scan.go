package manifest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// FileIdentity is what a scan remembers about a file to know whether its
// digest is still valid without reading it again.
type FileIdentity struct {
	Size  int64
	MTime time.Time
	Ino   uint64 // inode number where the platform has one
	CTime int64  // status change time in ns where the platform has one
}

// IdentityOf returns the identity of a file from its FileInfo.
func IdentityOf(fi fs.FileInfo) FileIdentity {
	ino, ctime := sysIdentity(fi)
	return FileIdentity{Size: fi.Size(), MTime: fi.ModTime(), Ino: ino, CTime: ctime}
}

// Equal reports whether two identities describe the same file content.
func (a FileIdentity) Equal(b FileIdentity) bool {
	return a.Size == b.Size && a.MTime.Equal(b.MTime) && a.Ino == b.Ino && a.CTime == b.CTime
}

// Skipped is a file a scan left out of the manifest, and why.
type Skipped struct {
	Path   string
	Reason string
}

// ScanResult is the outcome of scanning one channel directory.
type ScanResult struct {
	Manifest *Manifest
	// Files holds the identity of each object's file as hashed, by path.
	Files map[string]FileIdentity
	// Skipped lists files that are not objects: symlinks, special files,
	// files with invalid names, files that changed while being hashed.
	Skipped []Skipped
	// Hashed counts files read this scan (the others came from the cache).
	Hashed int
}

// Scanner builds channel manifests from directories. It caches digests by
// file identity so that a rescan reads only new and changed files. It is
// safe for concurrent use.
type Scanner struct {
	chunkSize uint32
	mu        sync.Mutex
	cache     map[string]cached // by absolute file path
}

type cached struct {
	id  FileIdentity
	sum [32]byte
}

// NewScanner returns a Scanner that gives every object chunkSize.
func NewScanner(chunkSize uint32) (*Scanner, error) {
	if chunkSize < MinChunkSize || chunkSize > MaxChunkSize {
		return nil, fmt.Errorf("chunk size %d not in [%d,%d]: %w", chunkSize, MinChunkSize, MaxChunkSize, ErrInvalidManifest)
	}
	return &Scanner{chunkSize: chunkSize, cache: make(map[string]cached)}, nil
}

// Scan walks dir, the directory of channel, and returns its manifest. Only
// regular files become objects. Files whose names start with ReservedPrefix
// are in-progress uploads and are ignored silently; symlinks, special files
// and files with invalid paths are reported in Skipped. A file that changes
// while it is hashed is skipped this time and picked up by a later scan.
func (s *Scanner) Scan(ctx context.Context, dir, channel string, now time.Time) (*ScanResult, error) {
	if err := ValidateChannelName(channel); err != nil {
		return nil, err
	}
	// The channel directory itself may be a symlink (a volume mounted
	// elsewhere): walk what it points to. Links below it stay skipped.
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("scan channel %q in %s: %w", channel, dir, err)
	}
	dir = root
	res := &ScanResult{Files: make(map[string]FileIdentity)}
	var objs []Object
	seen := make(map[string]bool)
	// skip leaves a file that cannot be an object out of the manifest and
	// reports it in Skipped: that is not an error of the scan, which goes on.
	skip := func(rel string, err error) {
		res.Skipped = append(res.Skipped, Skipped{rel, err.Error()})
	}
	err = filepath.WalkDir(dir, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if full == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, full)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(d.Name(), ReservedPrefix) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			res.Skipped = append(res.Skipped, Skipped{rel, "not a regular file (" + d.Type().String() + ")"})
			return nil
		}
		if err := ValidatePath(rel); err != nil {
			skip(rel, err)
			return nil
		}
		sum, id, hashed, err := s.digest(full)
		if errors.Is(err, errUnstable) || errors.Is(err, fs.ErrNotExist) {
			res.Skipped = append(res.Skipped, Skipped{rel, "changed while being read; retried next scan"})
			return nil
		}
		if err != nil {
			return err
		}
		if hashed {
			res.Hashed++
		}
		o, err := NewObject(channel, rel, uint64(id.Size), sum, s.chunkSize)
		if err != nil {
			skip(rel, err)
			return nil
		}
		objs = append(objs, o)
		res.Files[rel] = id
		seen[full] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan channel %q in %s: %w", channel, dir, err)
	}
	s.forget(dir, seen)
	m, err := New(channel, objs, now)
	if err != nil {
		return nil, err
	}
	res.Manifest = m
	return res, nil
}

// Remember records the digest of the file at full (an absolute or
// origin-relative path as given to Scan's directory) with its identity, as
// when the caller has just written and hashed it, so that the next scan
// does not read it again.
func (s *Scanner) Remember(full string, id FileIdentity, sum [32]byte) {
	s.mu.Lock()
	s.cache[full] = cached{id: id, sum: sum}
	s.mu.Unlock()
}

var errUnstable = errors.New("file changed while being hashed")

// digest returns the SHA-256 of the file at full, from the cache when the
// file's identity is unchanged.
func (s *Scanner) digest(full string) (sum [32]byte, id FileIdentity, hashed bool, err error) {
	fi, err := os.Lstat(full)
	if err != nil {
		return sum, id, false, err
	}
	id = IdentityOf(fi)
	s.mu.Lock()
	c, ok := s.cache[full]
	s.mu.Unlock()
	if ok && c.id.Equal(id) {
		return c.sum, id, false, nil
	}
	f, err := os.Open(full)
	if err != nil {
		return sum, id, false, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return sum, id, false, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, id, false, err
	}
	after, err := f.Stat()
	if err != nil {
		return sum, id, false, err
	}
	if !IdentityOf(before).Equal(IdentityOf(after)) || !IdentityOf(after).Equal(id) {
		return sum, id, false, errUnstable
	}
	copy(sum[:], h.Sum(nil))
	s.mu.Lock()
	s.cache[full] = cached{id: id, sum: sum}
	s.mu.Unlock()
	return sum, id, true, nil
}

// forget drops cache entries under dir that the last scan did not see.
func (s *Scanner) forget(dir string, seen map[string]bool) {
	prefix := dir + string(filepath.Separator)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.cache {
		if strings.HasPrefix(k, prefix) && !seen[k] {
			delete(s.cache, k)
		}
	}
}
