package sender

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
)

// Publishing errors, mapped to gRPC codes by the service.
var (
	ErrTooLarge   = errors.New("upload larger than allowed")
	ErrChecksum   = errors.New("upload does not match its size or SHA-256")
	ErrNotChannel = errors.New("channel not distributed by this sender")
)

// MaxPublishMessage bounds one data message of an upload.
const MaxPublishMessage = 1 << 20

// publishSource yields the parts of an upload.
type publishSource interface {
	Recv() (*pb.PublishObjectRequest, error)
}

// Publish writes an uploaded object into its channel of the origin: to a
// temporary file in the target directory, checked against the announced
// size and SHA-256, synced, renamed into place and its directory synced.
// The channel is then rescanned so the object gets its first pass. Paths
// are opened through an os.Root of the channel directory: nothing can be
// written outside it, through a symlink or otherwise.
func (s *Sender) Publish(ctx context.Context, src publishSource) (*pb.PublishObjectResponse, error) {
	first, err := src.Recv()
	if err != nil {
		return nil, err
	}
	h := first.GetHeader()
	if h == nil {
		return nil, fmt.Errorf("the first message must carry the header: %w", errInvalid)
	}
	if err := manifest.ValidateChannelName(h.GetChannel()); err != nil {
		return nil, err
	}
	if err := manifest.ValidatePath(h.GetPath()); err != nil {
		return nil, err
	}
	if len(h.GetSha256()) != sha256.Size {
		return nil, fmt.Errorf("sha256 of %d bytes, want %d: %w", len(h.GetSha256()), sha256.Size, errInvalid)
	}
	if h.GetSize() > uint64(s.cfg.MaxPublishSize) {
		return nil, fmt.Errorf("%d bytes, at most %d: %w", h.GetSize(), s.cfg.MaxPublishSize, ErrTooLarge)
	}
	if len(s.cfg.Channels) > 0 && !slices.Contains(s.cfg.Channels, h.GetChannel()) {
		return nil, fmt.Errorf("%q: %w", h.GetChannel(), ErrNotChannel)
	}
	if err := s.notReady(); err != nil {
		return nil, err
	}
	if !h.GetCreateChannel() && !slices.Contains(s.cfg.Channels, h.GetChannel()) {
		if _, err := s.lookup(h.GetChannel()); err != nil {
			return nil, fmt.Errorf("%w; to create it, publish with create_channel set (nackctl publish -create)", err)
		}
	}
	dir := filepath.Join(s.cfg.OriginDir, h.GetChannel())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()

	parent := path.Dir(h.GetPath())
	if err := noSymlinks(root, parent); err != nil {
		return nil, err
	}
	if err := root.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("directory of %s: %w", h.GetPath(), err)
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	tmp := path.Join(parent, manifest.ReservedPrefix+"-upload-"+hex.EncodeToString(nonce[:]))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
			// The upload has failed already; that error is the one to
			// return. A temporary file left behind is ignored by scans
			// (reserved prefix) but takes space: say so.
			if err := root.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("temporary upload file left behind", "channel", h.GetChannel(), "path", tmp, "error", err)
			}
		}
	}()

	sum := sha256.New()
	var n uint64
	if data := first.GetData(); data != nil {
		return nil, fmt.Errorf("the first message carries data instead of the header: %w", errInvalid)
	}
	for {
		msg, err := src.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		data := msg.GetData()
		if msg.GetHeader() != nil {
			return nil, fmt.Errorf("a second header: %w", errInvalid)
		}
		if len(data) > MaxPublishMessage {
			return nil, fmt.Errorf("message of %d bytes, at most %d: %w", len(data), MaxPublishMessage, errInvalid)
		}
		if n+uint64(len(data)) > h.GetSize() {
			return nil, fmt.Errorf("more than the announced %d bytes: %w", h.GetSize(), ErrChecksum)
		}
		if _, err := f.Write(data); err != nil {
			return nil, fmt.Errorf("write %s: %w", h.GetPath(), err)
		}
		sum.Write(data)
		n += uint64(len(data))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	var digest [32]byte
	copy(digest[:], sum.Sum(nil))
	if n != h.GetSize() || [32]byte(h.GetSha256()) != digest {
		return nil, fmt.Errorf("%s: got %d bytes with SHA-256 %x, announced %d bytes with %x: %w",
			h.GetPath(), n, digest[:8], h.GetSize(), h.GetSha256()[:8], ErrChecksum)
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if st, err := root.Lstat(h.GetPath()); err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s exists and is not a regular file: %w", h.GetPath(), errInvalid)
	}
	if err := root.Rename(tmp, h.GetPath()); err != nil {
		return nil, err
	}
	keep = true
	syncDir(root, parent)
	full := filepath.Join(dir, filepath.FromSlash(h.GetPath()))
	if st, err := os.Lstat(full); err == nil && manifest.IdentityOf(st).Size == fi.Size() {
		s.scanner.Remember(full, manifest.IdentityOf(st), digest)
	}
	s.log.Info("object published", "channel", h.GetChannel(), "path", h.GetPath(), "size", n)

	ch, err := s.rescanChannel(ctx, h.GetChannel())
	if err != nil {
		return nil, err
	}
	obj, ok := ch.m.Lookup(manifest.ObjectID(h.GetChannel(), h.GetPath()))
	if !ok || obj.SHA256 != digest {
		return nil, fmt.Errorf("%s changed on the origin during the publication: %w", h.GetPath(), ErrChanged)
	}
	return &pb.PublishObjectResponse{Object: obj.Proto(), ManifestVersion: ch.m.Version}, nil
}

// Delete removes an object from its channel of the origin and rescans the
// channel.
func (s *Sender) Delete(ctx context.Context, req *pb.DeleteObjectRequest) (*pb.DeleteObjectResponse, error) {
	if err := manifest.ValidateChannelName(req.GetChannel()); err != nil {
		return nil, err
	}
	if err := manifest.ValidatePath(req.GetPath()); err != nil {
		return nil, err
	}
	if _, err := s.lookup(req.GetChannel()); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(filepath.Join(s.cfg.OriginDir, req.GetChannel()))
	if err != nil {
		return nil, err
	}
	defer root.Close()
	st, err := root.Lstat(req.GetPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s in %q: %w", req.GetPath(), req.GetChannel(), ErrUnknownObject)
	}
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file: %w", req.GetPath(), errInvalid)
	}
	if err := root.Remove(req.GetPath()); err != nil {
		return nil, err
	}
	for dir := path.Dir(req.GetPath()); dir != "."; dir = path.Dir(dir) {
		if root.Remove(dir) != nil {
			break // not empty
		}
	}
	syncDir(root, path.Dir(req.GetPath()))
	s.log.Info("object deleted", "channel", req.GetChannel(), "path", req.GetPath())
	ch, err := s.rescanChannel(ctx, req.GetChannel())
	if err != nil {
		return nil, err
	}
	return &pb.DeleteObjectResponse{ManifestVersion: ch.m.Version}, nil
}

// rescanChannel scans one channel now and returns its new state.
func (s *Sender) rescanChannel(ctx context.Context, name string) (*channel, error) {
	s.scanMu.Lock()
	err := s.scanChannel(ctx, name)
	s.scanMu.Unlock()
	if err != nil {
		return nil, err
	}
	return s.lookup(name)
}

// noSymlinks refuses a directory path with a symlink in it: uploads go to
// real directories of the channel only.
func noSymlinks(root *os.Root, dir string) error {
	if dir == "." {
		return nil
	}
	for p := ""; ; {
		elem, rest, more := strings.Cut(dir, "/")
		p = path.Join(p, elem)
		st, err := root.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symlink: %w", p, errInvalid)
		}
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory: %w", p, errInvalid)
		}
		if !more {
			return nil
		}
		dir = rest
	}
}

func (s *Sender) notReady() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		return ErrNotReady
	}
	return nil
}

func syncDir(root *os.Root, dir string) {
	d, err := root.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}

// isNoSpace reports a full disk.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
