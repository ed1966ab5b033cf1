// Package manifest defines a channel's dataset (seed ¶42): the objects a
// receiver of the channel must hold, with their sizes and SHA-256 digests,
// and the identifiers carried in packets. It validates manifests from the
// network as hostile input, and builds them from a sender's origin
// directory.
package manifest

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/wire"
)

// Limits on manifests and their contents.
const (
	// MinChunkSize is the smallest chunk size accepted.
	MinChunkSize = 256
	// MaxChunkSize is the largest chunk size accepted: one packet's payload.
	MaxChunkSize = wire.MaxPayload
	// MaxPathLen is the longest object path in bytes.
	MaxPathLen = 1024
	// MaxElemLen is the longest path element in bytes.
	MaxElemLen = 255
	// MaxObjects is the largest number of objects in one channel.
	MaxObjects = 1 << 20
	// MaxChunks is the largest number of chunks in one object.
	MaxChunks = 1 << 31
	// ReservedPrefix starts names that nackcast keeps for itself (state
	// directories, upload temporaries); no path element may start with it.
	ReservedPrefix = ".nackcast"
)

// Sentinel errors. Errors from this package wrap one of them.
var (
	ErrInvalidName     = errors.New("invalid channel name")
	ErrInvalidPath     = errors.New("invalid object path")
	ErrInvalidManifest = errors.New("invalid manifest")
)

// ChannelID returns the identifier carried in packets of channel name.
func ChannelID(name string) uint32 {
	sum := sha256.Sum256([]byte("nackcast/channel/" + name))
	return binary.BigEndian.Uint32(sum[:4])
}

// ObjectID returns the identifier carried in packets of the object at path
// in channel. It does not depend on the object's content.
func ObjectID(channel, p string) uint64 {
	sum := sha256.Sum256([]byte("nackcast/object/" + channel + "/" + p))
	return binary.BigEndian.Uint64(sum[:8])
}

// VersionOf returns the object version for a content digest and chunk
// size: the first eight bytes of SHA-256("nackcast/version/" + digest +
// chunk size, big-endian). Chunks are addressed by (object, version,
// index), so the same content cut in other chunks is another version: a
// receiver never mixes chunks of two chunk sizes (a primary restarted with
// another -chunk-size, or a backup configured differently).
func VersionOf(sum [32]byte, chunkSize uint32) uint64 {
	h := sha256.New()
	h.Write([]byte("nackcast/version/"))
	h.Write(sum[:])
	var cs [4]byte
	binary.BigEndian.PutUint32(cs[:], chunkSize)
	h.Write(cs[:])
	var v [32]byte
	h.Sum(v[:0])
	return binary.BigEndian.Uint64(v[:8])
}

// ValidateChannelName checks a channel name: 1 to 128 bytes of letters,
// digits, '.', '_' and '-', starting with a letter or digit.
func ValidateChannelName(name string) error {
	if len(name) == 0 || len(name) > wire.MaxChannelName {
		return fmt.Errorf("%q: length %d not in [1,%d]: %w", name, len(name), wire.MaxChannelName, ErrInvalidName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return fmt.Errorf("%q: character %q at %d not allowed: %w", name, c, i, ErrInvalidName)
		}
	}
	return nil
}

// ValidatePath checks an object path from any source: a clean,
// slash-separated, relative path of valid UTF-8 without ".", ".." or empty
// elements, without backslashes or control characters, without elements
// starting with ReservedPrefix, and within the length limits.
func ValidatePath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%q: %s: %w", p, why, ErrInvalidPath) }
	switch {
	case p == "":
		return bad("empty")
	case len(p) > MaxPathLen:
		return bad(fmt.Sprintf("longer than %d bytes", MaxPathLen))
	case !utf8.ValidString(p):
		return bad("not UTF-8")
	case strings.HasPrefix(p, "/"):
		return bad("absolute")
	case strings.ContainsRune(p, '\\'):
		return bad("contains a backslash")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return bad("contains a control character")
		}
	}
	for _, elem := range strings.Split(p, "/") {
		switch {
		case elem == "":
			return bad("empty element")
		case elem == "." || elem == "..":
			return bad("dot element")
		case len(elem) > MaxElemLen:
			return bad(fmt.Sprintf("element longer than %d bytes", MaxElemLen))
		case strings.HasPrefix(elem, ReservedPrefix):
			return bad("element starts with reserved prefix " + ReservedPrefix)
		}
	}
	if path.Clean(p) != p {
		return bad("not clean")
	}
	return nil
}

// Object is one entry of a manifest.
type Object struct {
	ID        uint64
	Path      string
	Size      uint64
	SHA256    [32]byte
	ChunkSize uint32
	Version   uint64
	Chunks    uint32
}

// NewObject builds a validated object entry of channel.
func NewObject(channel, p string, size uint64, sum [32]byte, chunkSize uint32) (Object, error) {
	if err := ValidatePath(p); err != nil {
		return Object{}, err
	}
	if chunkSize < MinChunkSize || chunkSize > MaxChunkSize {
		return Object{}, fmt.Errorf("%q: chunk size %d not in [%d,%d]: %w", p, chunkSize, MinChunkSize, MaxChunkSize, ErrInvalidManifest)
	}
	n := (size + uint64(chunkSize) - 1) / uint64(chunkSize)
	if n > MaxChunks {
		return Object{}, fmt.Errorf("%q: %d chunks, more than %d: %w", p, n, uint64(MaxChunks), ErrInvalidManifest)
	}
	return Object{
		ID:        ObjectID(channel, p),
		Path:      p,
		Size:      size,
		SHA256:    sum,
		ChunkSize: chunkSize,
		Version:   VersionOf(sum, chunkSize),
		Chunks:    uint32(n),
	}, nil
}

// ChunkLen returns the length of chunk i, or 0 if i is out of range.
func (o *Object) ChunkLen(i uint32) int {
	if i >= o.Chunks {
		return 0
	}
	off := uint64(i) * uint64(o.ChunkSize)
	return int(min(uint64(o.ChunkSize), o.Size-off))
}

// Offset returns the byte offset of chunk i.
func (o *Object) Offset(i uint32) int64 { return int64(i) * int64(o.ChunkSize) }

// Manifest is a channel's dataset. Build one with New or FromProto; treat it
// as immutable afterwards.
type Manifest struct {
	Channel     string
	ChannelID   uint32
	Version     uint64
	Objects     []Object // sorted by Path
	GeneratedAt time.Time
	byID        map[uint64]int
}

// New builds a manifest from objects: it sorts them, rejects duplicates and
// file/directory conflicts ("a" next to "a/b"), and computes the version.
func New(channel string, objects []Object, generatedAt time.Time) (*Manifest, error) {
	if err := ValidateChannelName(channel); err != nil {
		return nil, err
	}
	if len(objects) > MaxObjects {
		return nil, fmt.Errorf("channel %q: %d objects, more than %d: %w", channel, len(objects), MaxObjects, ErrInvalidManifest)
	}
	objs := slices.Clone(objects)
	slices.SortFunc(objs, func(a, b Object) int { return strings.Compare(a.Path, b.Path) })
	m := &Manifest{
		Channel:     channel,
		ChannelID:   ChannelID(channel),
		Objects:     objs,
		GeneratedAt: generatedAt,
		byID:        make(map[uint64]int, len(objs)),
	}
	paths := make(map[string]bool, len(objs))
	for i := range objs {
		o := &objs[i]
		if paths[o.Path] {
			return nil, fmt.Errorf("channel %q: duplicate path %q: %w", channel, o.Path, ErrInvalidManifest)
		}
		paths[o.Path] = true
		if _, dup := m.byID[o.ID]; dup {
			return nil, fmt.Errorf("channel %q: object id %016x collides (%q): %w", channel, o.ID, o.Path, ErrInvalidManifest)
		}
		m.byID[o.ID] = i
	}
	for _, o := range objs {
		for dir := path.Dir(o.Path); dir != "."; dir = path.Dir(dir) {
			if paths[dir] {
				return nil, fmt.Errorf("channel %q: %q is both a file and the directory of %q: %w", channel, dir, o.Path, ErrInvalidManifest)
			}
		}
	}
	m.Version = computeVersion(channel, objs)
	return m, nil
}

// computeVersion is the first eight bytes of the manifest's digest. Zero
// is reserved for "no manifest".
func computeVersion(channel string, objs []Object) uint64 {
	d := digest(channel, objs)
	v := binary.BigEndian.Uint64(d[:8])
	if v == 0 {
		v = 1
	}
	return v
}

// Digest returns the SHA-256 of the manifest's content: the channel name
// and every object's path, size, SHA-256 and chunk size, in order. Two
// manifests with the same digest list the same content.
func (m *Manifest) Digest() [32]byte { return digest(m.Channel, m.Objects) }

// digest hashes the channel name and every object's path, size, digest and
// chunk size.
func digest(channel string, objs []Object) [32]byte {
	h := sha256.New()
	var buf [8]byte
	writeStr := func(s string) {
		binary.BigEndian.PutUint64(buf[:], uint64(len(s)))
		h.Write(buf[:])
		h.Write([]byte(s))
	}
	writeStr(channel)
	for _, o := range objs {
		writeStr(o.Path)
		binary.BigEndian.PutUint64(buf[:], o.Size)
		h.Write(buf[:])
		h.Write(o.SHA256[:])
		binary.BigEndian.PutUint64(buf[:], uint64(o.ChunkSize))
		h.Write(buf[:])
	}
	var d [32]byte
	h.Sum(d[:0])
	return d
}

// Lookup returns the object with identifier id.
func (m *Manifest) Lookup(id uint64) (*Object, bool) {
	i, ok := m.byID[id]
	if !ok {
		return nil, false
	}
	return &m.Objects[i], true
}

// TotalBytes returns the sum of object sizes.
func (m *Manifest) TotalBytes() uint64 {
	var n uint64
	for _, o := range m.Objects {
		n += o.Size
	}
	return n
}

// Proto converts m to its wire form.
func (m *Manifest) Proto() *pb.Manifest {
	out := &pb.Manifest{
		Channel:     m.Channel,
		ChannelId:   m.ChannelID,
		Version:     m.Version,
		Objects:     make([]*pb.ObjectEntry, len(m.Objects)),
		GeneratedAt: timestamppb.New(m.GeneratedAt),
	}
	for i := range m.Objects {
		out.Objects[i] = m.Objects[i].Proto()
	}
	return out
}

// Proto converts o to its wire form.
func (o *Object) Proto() *pb.ObjectEntry {
	return &pb.ObjectEntry{
		ObjectId:   o.ID,
		Path:       o.Path,
		Size:       o.Size,
		Sha256:     o.SHA256[:],
		ChunkSize:  o.ChunkSize,
		Version:    o.Version,
		ChunkCount: o.Chunks,
	}
}

// FromProto validates a manifest received from the network and converts it.
// Every derived field (channel id, object ids, versions, chunk counts, the
// manifest version) must match what this package computes, so a manifest
// cannot point packets of one object at another object's file.
func FromProto(p *pb.Manifest) (*Manifest, error) {
	if p == nil {
		return nil, fmt.Errorf("nil manifest: %w", ErrInvalidManifest)
	}
	if err := ValidateChannelName(p.GetChannel()); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("channel %q: %s: %w", p.GetChannel(), fmt.Sprintf(format, args...), ErrInvalidManifest)
	}
	if p.GetChannelId() != ChannelID(p.GetChannel()) {
		return nil, bad("channel id %08x does not match the name", p.GetChannelId())
	}
	if len(p.GetObjects()) > MaxObjects {
		return nil, bad("%d objects, more than %d", len(p.GetObjects()), MaxObjects)
	}
	objs := make([]Object, 0, len(p.GetObjects()))
	for i, e := range p.GetObjects() {
		if len(e.GetSha256()) != sha256.Size {
			return nil, bad("object %d: sha256 of %d bytes", i, len(e.GetSha256()))
		}
		o, err := NewObject(p.GetChannel(), e.GetPath(), e.GetSize(), [32]byte(e.GetSha256()), e.GetChunkSize())
		if err != nil {
			return nil, fmt.Errorf("object %d: %w", i, err)
		}
		if o.ID != e.GetObjectId() || o.Version != e.GetVersion() || o.Chunks != e.GetChunkCount() {
			return nil, bad("object %d (%q): id, version or chunk count does not match its path and digest", i, e.GetPath())
		}
		objs = append(objs, o)
	}
	m, err := New(p.GetChannel(), objs, p.GetGeneratedAt().AsTime())
	if err != nil {
		return nil, err
	}
	if m.Version != p.GetVersion() {
		return nil, bad("version %016x does not match its contents (%016x)", p.GetVersion(), m.Version)
	}
	return m, nil
}
