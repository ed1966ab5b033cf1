package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Protocol constants.
const (
	// Magic opens every packet.
	Magic uint16 = 0x4E43
	// Version is the protocol version this package speaks. Version 2:
	// object versions cover the chunk size (manifest.VersionOf); a cloud
	// runs one version, and packets of another are dropped and counted.
	Version uint8 = 2
	// HeaderLen is the fixed header length in bytes.
	HeaderLen = 40
	// MaxPacket is the largest UDP payload over IPv4.
	MaxPacket = 65507
	// MaxPayload is the largest payload a packet can carry.
	MaxPayload = MaxPacket - HeaderLen
	// EndPayloadLen is the payload length of an END packet.
	EndPayloadLen = 24
	// AnnounceFixedLen is the payload length of an ANNOUNCE packet without
	// the channel name.
	AnnounceFixedLen = 22
	// MaxChannelName is the longest channel name an ANNOUNCE can carry.
	MaxChannelName = 128
	// ParityFixedLen is the length of a PARITY payload before its shard.
	ParityFixedLen = 4
)

// Type is the packet type.
type Type uint8

// Packet types.
const (
	TypeData     Type = 1
	TypeEnd      Type = 2
	TypeAnnounce Type = 3
	// TypeParity carries one Reed-Solomon parity shard of a block of
	// chunks (package fec).
	TypeParity Type = 4
)

func (t Type) String() string {
	switch t {
	case TypeData:
		return "DATA"
	case TypeEnd:
		return "END"
	case TypeAnnounce:
		return "ANNOUNCE"
	case TypeParity:
		return "PARITY"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Flags are per-packet flag bits.
type Flags uint16

// Flag bits.
const (
	// FlagBackup marks packets sent by a backup sender.
	FlagBackup Flags = 1 << 0
	// FlagRepair marks packets of a pass after the first.
	FlagRepair Flags = 1 << 1
	// FlagAuth marks a datagram that carries an authentication trailer
	// after its payload (package pktauth); the trailer is checked and
	// stripped before Parse sees the packet.
	FlagAuth Flags = 1 << 2
	// FlagSealed marks a datagram whose payload is encrypted (with
	// FlagAuth also set); pktauth decrypts it in place before Parse.
	FlagSealed Flags = 1 << 3

	knownFlags = FlagBackup | FlagRepair | FlagAuth | FlagSealed
)

// Decoding errors. Every error returned by Parse wraps exactly one of them.
var (
	ErrShort     = errors.New("packet shorter than header")
	ErrMagic     = errors.New("bad magic")
	ErrVersion   = errors.New("unsupported protocol version")
	ErrType      = errors.New("unsupported packet type")
	ErrFlags     = errors.New("undefined flag bits set")
	ErrLength    = errors.New("payload length does not match datagram")
	ErrPayload   = errors.New("malformed payload")
	ErrTooLarge  = errors.New("payload too large")
	ErrBadHeader = errors.New("header fields invalid for packet type")
)

// Header is the decoded fixed header of a packet.
type Header struct {
	Type       Type
	Flags      Flags
	PayloadLen uint16
	Epoch      uint64
	Channel    uint32
	Chunk      uint32
	Object     uint64
	ObjVersion uint64
}

// PutHeader writes h into the first HeaderLen bytes of b, which must be at
// least HeaderLen long. It does not allocate.
func PutHeader(b []byte, h *Header) {
	_ = b[HeaderLen-1]
	binary.BigEndian.PutUint16(b[0:], Magic)
	b[2] = Version
	b[3] = byte(h.Type)
	binary.BigEndian.PutUint16(b[4:], uint16(h.Flags))
	binary.BigEndian.PutUint16(b[6:], h.PayloadLen)
	binary.BigEndian.PutUint64(b[8:], h.Epoch)
	binary.BigEndian.PutUint32(b[16:], h.Channel)
	binary.BigEndian.PutUint32(b[20:], h.Chunk)
	binary.BigEndian.PutUint64(b[24:], h.Object)
	binary.BigEndian.PutUint64(b[32:], h.ObjVersion)
}

// AppendHeader appends the encoding of h to dst.
func AppendHeader(dst []byte, h *Header) []byte {
	n := len(dst)
	dst = grow(dst, HeaderLen)
	PutHeader(dst[n:], h)
	return dst
}

// AppendData appends a complete DATA packet carrying chunk to dst. The
// header's Type and PayloadLen are set from the arguments.
func AppendData(dst []byte, h Header, chunk []byte) ([]byte, error) {
	if len(chunk) == 0 || len(chunk) > MaxPayload {
		return dst, fmt.Errorf("data payload of %d bytes: %w", len(chunk), ErrTooLarge)
	}
	h.Type = TypeData
	h.PayloadLen = uint16(len(chunk))
	dst = AppendHeader(dst, &h)
	return append(dst, chunk...), nil
}

// End is the payload of an END packet.
type End struct {
	ChunkCount uint32
	Pass       uint32
	Size       uint64
	// Seq numbers the jobs a sender epoch has finished, from 1.
	Seq uint64
}

// AppendEnd appends a complete END packet to dst.
func AppendEnd(dst []byte, h Header, e End) []byte {
	h.Type = TypeEnd
	h.Chunk = 0
	h.PayloadLen = EndPayloadLen
	dst = AppendHeader(dst, &h)
	dst = binary.BigEndian.AppendUint32(dst, e.ChunkCount)
	dst = binary.BigEndian.AppendUint32(dst, e.Pass)
	dst = binary.BigEndian.AppendUint64(dst, e.Size)
	return binary.BigEndian.AppendUint64(dst, e.Seq)
}

// ParseEnd decodes the payload of an END packet.
func ParseEnd(p []byte) (End, error) {
	if len(p) != EndPayloadLen {
		return End{}, fmt.Errorf("END payload of %d bytes, want %d: %w", len(p), EndPayloadLen, ErrPayload)
	}
	e := End{
		ChunkCount: binary.BigEndian.Uint32(p[0:]),
		Pass:       binary.BigEndian.Uint32(p[4:]),
		Size:       binary.BigEndian.Uint64(p[8:]),
		Seq:        binary.BigEndian.Uint64(p[16:]),
	}
	if e.Pass == 0 || e.Seq == 0 {
		return End{}, fmt.Errorf("END pass %d seq %d: %w", e.Pass, e.Seq, ErrPayload)
	}
	return e, nil
}

// Announce is the payload of an ANNOUNCE packet. Name aliases the packet
// buffer when decoded.
type Announce struct {
	ManifestVersion uint64
	ObjectCount     uint32
	// Seq is the sequence number of the last job the sender epoch
	// finished (0 before the first), as in END packets.
	Seq  uint64
	Name []byte
}

// AppendAnnounce appends a complete ANNOUNCE packet to dst.
func AppendAnnounce(dst []byte, h Header, a Announce) ([]byte, error) {
	if len(a.Name) == 0 || len(a.Name) > MaxChannelName {
		return dst, fmt.Errorf("channel name of %d bytes: %w", len(a.Name), ErrPayload)
	}
	h.Type = TypeAnnounce
	h.Chunk, h.Object, h.ObjVersion = 0, 0, 0
	h.PayloadLen = uint16(AnnounceFixedLen + len(a.Name))
	dst = AppendHeader(dst, &h)
	dst = binary.BigEndian.AppendUint64(dst, a.ManifestVersion)
	dst = binary.BigEndian.AppendUint32(dst, a.ObjectCount)
	dst = binary.BigEndian.AppendUint64(dst, a.Seq)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(a.Name)))
	return append(dst, a.Name...), nil
}

// ParseAnnounce decodes the payload of an ANNOUNCE packet. The returned Name
// aliases p.
func ParseAnnounce(p []byte) (Announce, error) {
	if len(p) < AnnounceFixedLen {
		return Announce{}, fmt.Errorf("ANNOUNCE payload of %d bytes: %w", len(p), ErrPayload)
	}
	a := Announce{
		ManifestVersion: binary.BigEndian.Uint64(p[0:]),
		ObjectCount:     binary.BigEndian.Uint32(p[8:]),
		Seq:             binary.BigEndian.Uint64(p[12:]),
	}
	n := int(binary.BigEndian.Uint16(p[20:]))
	if n == 0 || n > MaxChannelName || len(p) != AnnounceFixedLen+n {
		return Announce{}, fmt.Errorf("ANNOUNCE name length %d in %d-byte payload: %w", n, len(p), ErrPayload)
	}
	a.Name = p[AnnounceFixedLen:]
	return a, nil
}

// Parity is the fixed part of a PARITY payload: the shape of the block's
// code and which parity shard follows. The block index travels in the
// header's chunk index field.
type Parity struct {
	// Block is K, the sender's block size in chunks: block b covers chunks
	// b×K to min(b×K+K, chunk count)−1, and its code has that many data
	// shards.
	Block uint8
	// Total is the number of parity shards of the block's code (R).
	Total uint8
	// Index is this shard's index among the parity shards, below Total.
	Index uint8
}

// PutParity writes the fixed part of a PARITY payload into the first
// ParityFixedLen bytes of b.
func PutParity(b []byte, p Parity) {
	_ = b[ParityFixedLen-1]
	b[0], b[1], b[2], b[3] = p.Block, p.Total, p.Index, 0
}

// AppendParity appends a complete PARITY packet carrying shard, parity
// shard p.Index of block h.Chunk, to dst.
func AppendParity(dst []byte, h Header, p Parity, shard []byte) ([]byte, error) {
	if len(shard) == 0 || len(shard) > MaxPayload-ParityFixedLen {
		return dst, fmt.Errorf("parity shard of %d bytes: %w", len(shard), ErrTooLarge)
	}
	if err := p.check(); err != nil {
		return dst, err
	}
	h.Type = TypeParity
	h.PayloadLen = uint16(ParityFixedLen + len(shard))
	dst = AppendHeader(dst, &h)
	n := len(dst)
	dst = grow(dst, ParityFixedLen)
	PutParity(dst[n:], p)
	return append(dst, shard...), nil
}

func (p Parity) check() error {
	if p.Block == 0 || p.Total == 0 || p.Index >= p.Total || int(p.Block)+int(p.Total) > 256 {
		return fmt.Errorf("parity %d of %d over blocks of %d chunks: %w", p.Index, p.Total, p.Block, ErrPayload)
	}
	return nil
}

// ParseParity decodes the payload of a PARITY packet and returns its fixed
// part and the shard, which aliases payload.
func ParseParity(payload []byte) (Parity, []byte, error) {
	if len(payload) <= ParityFixedLen {
		return Parity{}, nil, fmt.Errorf("PARITY payload of %d bytes: %w", len(payload), ErrPayload)
	}
	p := Parity{Block: payload[0], Total: payload[1], Index: payload[2]}
	if payload[3] != 0 {
		return Parity{}, nil, fmt.Errorf("PARITY reserved byte %d: %w", payload[3], ErrPayload)
	}
	if err := p.check(); err != nil {
		return Parity{}, nil, err
	}
	return p, payload[ParityFixedLen:], nil
}

// Parse decodes the header of the datagram b and returns it with the
// payload, which aliases b. It checks everything the header alone can tell:
// magic, version, type, flags, that the payload length matches the datagram
// exactly, and the per-type invariants (DATA carries a non-empty payload,
// END and ANNOUNCE have chunk index zero, ANNOUNCE has no object). It does
// not allocate.
func Parse(b []byte) (Header, []byte, error) {
	var h Header
	if len(b) < HeaderLen {
		return h, nil, ErrShort
	}
	if binary.BigEndian.Uint16(b[0:]) != Magic {
		return h, nil, ErrMagic
	}
	if b[2] != Version {
		return h, nil, ErrVersion
	}
	h.Type = Type(b[3])
	h.Flags = Flags(binary.BigEndian.Uint16(b[4:]))
	h.PayloadLen = binary.BigEndian.Uint16(b[6:])
	h.Epoch = binary.BigEndian.Uint64(b[8:])
	h.Channel = binary.BigEndian.Uint32(b[16:])
	h.Chunk = binary.BigEndian.Uint32(b[20:])
	h.Object = binary.BigEndian.Uint64(b[24:])
	h.ObjVersion = binary.BigEndian.Uint64(b[32:])
	if h.Flags&^knownFlags != 0 {
		return h, nil, ErrFlags
	}
	if int(h.PayloadLen) != len(b)-HeaderLen {
		return h, nil, ErrLength
	}
	p := b[HeaderLen:]
	switch h.Type {
	case TypeData:
		if len(p) == 0 {
			return h, nil, ErrPayload
		}
	case TypeEnd:
		if h.Chunk != 0 || len(p) != EndPayloadLen {
			return h, nil, ErrBadHeader
		}
	case TypeAnnounce:
		if h.Chunk != 0 || h.Object != 0 || h.ObjVersion != 0 {
			return h, nil, ErrBadHeader
		}
	case TypeParity:
		if len(p) <= ParityFixedLen {
			return h, nil, ErrPayload
		}
	default:
		return h, nil, ErrType
	}
	return h, p, nil
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*cap(b)+n)
	copy(nb, b)
	return nb
}
