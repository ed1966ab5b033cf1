package pktauth

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"
	"sync/atomic"

	"github.com/nackcast/nackcast/pkg/wire"
)

// Trailer layout.
const (
	// TagLen is the length of the tag in both trailers.
	TagLen = 16
	// CounterLen is the length of the counter in a seal trailer.
	CounterLen = 8
	// AuthTrailerLen is the trailer of ModeAuth: key id and tag.
	AuthTrailerLen = 1 + TagLen
	// SealTrailerLen is the trailer of ModeSeal: key id, counter and tag.
	SealTrailerLen = 1 + CounterLen + TagLen
	// nonceLen is the GCM nonce: 4 bytes of epoch and the counter.
	nonceLen = 4 + CounterLen
)

// Header fields this package reads or writes.
const (
	flagsOff    = 4
	lengthOff   = 6
	epochOff    = 8
	epochLowOff = 12 // low 32 bits of the epoch: the nonce prefix
)

// Errors. Open returns exactly one of ErrShort, ErrNoTrailer, ErrUnknownKey
// and ErrBadTag when it rejects a datagram, unwrapped so that rejecting
// costs no allocation; Seal's errors wrap ErrShort, ErrEpoch, ErrExhausted,
// ErrAlreadySealed or wire.ErrLength / wire.ErrTooLarge.
var (
	// ErrShort: the datagram is shorter than a header and its trailer.
	ErrShort = errors.New("pktauth: datagram too short for header and trailer")
	// ErrNoTrailer: the datagram's FlagAuth is clear: it is not
	// authenticated, while a key is configured.
	ErrNoTrailer = errors.New("pktauth: datagram not authenticated")
	// ErrUnknownKey: the trailer names a key id that is not in the ring.
	ErrUnknownKey = errors.New("pktauth: unknown key id")
	// ErrBadTag: the tag does not verify: the datagram was altered, or
	// sealed under another secret with the same id.
	ErrBadTag = errors.New("pktauth: authentication failed")
	// ErrEpoch: the datagram's epoch is not the one the Sealer was made
	// for.
	ErrEpoch = errors.New("pktauth: datagram epoch is not the sealer's")
	// ErrExhausted: the Sealer has sealed 2^64-1 datagrams, and sealing
	// more would repeat a nonce.
	ErrExhausted = errors.New("pktauth: sealer counter exhausted")
	// ErrAlreadySealed: the datagram passed to Seal already has FlagAuth
	// or FlagSealed set.
	ErrAlreadySealed = errors.New("pktauth: datagram already carries a trailer")
)

// Mode is what a Sealer does to a datagram.
type Mode uint8

// Modes. The zero Mode is invalid.
const (
	// ModeAuth authenticates: HMAC-SHA-256 truncated to 16 bytes.
	ModeAuth Mode = 1
	// ModeSeal encrypts and authenticates: AES-256-GCM.
	ModeSeal Mode = 2
)

func (m Mode) String() string {
	switch m {
	case ModeAuth:
		return "auth"
	case ModeSeal:
		return "seal"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode returns the mode named "auth" or "seal" (as Mode.String
// writes them).
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auth":
		return ModeAuth, nil
	case "seal":
		return ModeSeal, nil
	}
	return 0, fmt.Errorf("pktauth: unknown mode %q (want auth or seal)", s)
}

// Overhead is the number of bytes the mode appends to a datagram, or 0 for
// an invalid mode.
func (m Mode) Overhead() int {
	switch m {
	case ModeAuth:
		return AuthTrailerLen
	case ModeSeal:
		return SealTrailerLen
	}
	return 0
}

// Sealer authenticates (ModeAuth) or encrypts and authenticates (ModeSeal)
// the datagrams of one sender epoch with the sealing key of a Keyring. It is
// not safe for concurrent use; see Clone.
type Sealer struct {
	mode  Mode
	id    uint8
	epoch uint64
	mk    []byte
	mac   hash.Hash
	aead  cipher.AEAD
	// ctr is the last counter used, shared by clones; 0 before the first.
	ctr   *atomic.Uint64
	nonce [nonceLen]byte
	sum   [sha256.Size]byte
}

// NewSealer returns a Sealer that seals datagrams of the given sender epoch
// with kr's first key. In ModeSeal there must be only one Sealer (and its
// clones) per key and epoch: a second one would repeat its nonces.
func NewSealer(kr *Keyring, mode Mode, epoch uint64) (*Sealer, error) {
	if kr == nil || len(kr.d) == 0 {
		return nil, errors.New("pktauth: NewSealer needs a key ring")
	}
	if mode.Overhead() == 0 {
		return nil, fmt.Errorf("pktauth: invalid %v", mode)
	}
	d := kr.d[0]
	return &Sealer{
		mode:  mode,
		id:    d.id,
		epoch: epoch,
		mk:    d.macKey,
		mac:   hmac.New(sha256.New, d.macKey),
		aead:  d.aead,
		ctr:   new(atomic.Uint64),
	}, nil
}

// Clone returns a Sealer for another goroutine: same key, mode and epoch,
// and the same counter, so that the two never use one nonce.
func (s *Sealer) Clone() *Sealer {
	return &Sealer{
		mode:  s.mode,
		id:    s.id,
		epoch: s.epoch,
		mk:    s.mk,
		mac:   hmac.New(sha256.New, s.mk),
		aead:  s.aead,
		ctr:   s.ctr,
	}
}

// Mode returns the Sealer's mode.
func (s *Sealer) Mode() Mode { return s.mode }

// Epoch returns the sender epoch the Sealer seals.
func (s *Sealer) Epoch() uint64 { return s.epoch }

// Overhead returns the length of the trailer Seal appends.
func (s *Sealer) Overhead() int { return s.mode.Overhead() }

// Seal seals the complete datagram dg (header and payload, the payload
// length field matching): it sets FlagAuth (and FlagSealed in ModeSeal) in
// the header, encrypts the payload in place in ModeSeal, appends the
// trailer and returns the extended slice. It appends in place, without
// allocating, when cap(dg)-len(dg) >= Overhead(); otherwise it copies dg to
// a new array and leaves dg unchanged. On error dg is unchanged.
func (s *Sealer) Seal(dg []byte) ([]byte, error) {
	if len(dg) < wire.HeaderLen {
		return dg, fmt.Errorf("pktauth: seal %d-byte datagram: %w", len(dg), ErrShort)
	}
	if pl := int(binary.BigEndian.Uint16(dg[lengthOff:])); pl != len(dg)-wire.HeaderLen {
		return dg, fmt.Errorf("pktauth: seal: payload length field %d, datagram carries %d: %w", pl, len(dg)-wire.HeaderLen, wire.ErrLength)
	}
	over := s.mode.Overhead()
	if len(dg)+over > wire.MaxPacket {
		return dg, fmt.Errorf("pktauth: seal: %d bytes with the trailer, more than %d: %w", len(dg)+over, wire.MaxPacket, wire.ErrTooLarge)
	}
	flags := wire.Flags(binary.BigEndian.Uint16(dg[flagsOff:]))
	if flags&(wire.FlagAuth|wire.FlagSealed) != 0 {
		return dg, ErrAlreadySealed
	}
	if e := binary.BigEndian.Uint64(dg[epochOff:]); e != s.epoch {
		return dg, fmt.Errorf("pktauth: seal: datagram epoch %d, sealer's %d: %w", e, s.epoch, ErrEpoch)
	}
	var ctr uint64
	if s.mode == ModeSeal {
		for {
			c := s.ctr.Load()
			if c == math.MaxUint64 {
				return dg, ErrExhausted
			}
			if s.ctr.CompareAndSwap(c, c+1) {
				ctr = c + 1
				break
			}
		}
	}
	n := len(dg)
	if cap(dg)-n < over {
		nb := make([]byte, n, n+over)
		copy(nb, dg)
		dg = nb
	}
	dg = dg[:n+over]
	if s.mode == ModeAuth {
		binary.BigEndian.PutUint16(dg[flagsOff:], uint16(flags|wire.FlagAuth))
		dg[n] = s.id
		s.mac.Reset()
		s.mac.Write(dg[:n+1])
		copy(dg[n+1:], s.mac.Sum(s.sum[:0])[:TagLen])
		return dg, nil
	}
	binary.BigEndian.PutUint16(dg[flagsOff:], uint16(flags|wire.FlagAuth|wire.FlagSealed))
	copy(s.nonce[:4], dg[epochLowOff:epochLowOff+4])
	binary.BigEndian.PutUint64(s.nonce[4:], ctr)
	// Seal writes the ciphertext over the payload and the tag right after
	// it, at dg[n:n+TagLen]; the tag then moves to the end of the trailer.
	s.aead.Seal(dg[wire.HeaderLen:wire.HeaderLen], s.nonce[:], dg[wire.HeaderLen:n], dg[:wire.HeaderLen])
	copy(dg[n+1+CounterLen:], dg[n:n+TagLen])
	dg[n] = s.id
	binary.BigEndian.PutUint64(dg[n+1:], ctr)
	return dg, nil
}

// Opener checks and strips the trailers of datagrams sealed with either key
// of a Keyring, in either mode. It is not safe for concurrent use: use one
// per goroutine.
type Opener struct {
	keys  [MaxKeys]openKey
	n     int
	nonce [nonceLen]byte
	sum   [sha256.Size]byte
}

type openKey struct {
	id   uint8
	mac  hash.Hash
	aead cipher.AEAD
}

// NewOpener returns an Opener for the keys of kr, which must not be nil.
func NewOpener(kr *Keyring) *Opener {
	o := &Opener{n: len(kr.d)}
	for i, d := range kr.d {
		o.keys[i] = openKey{id: d.id, mac: hmac.New(sha256.New, d.macKey), aead: d.aead}
	}
	return o
}

func (o *Opener) key(id uint8) *openKey {
	for i := range o.n {
		if o.keys[i].id == id {
			return &o.keys[i]
		}
	}
	return nil
}

// Open verifies the trailer of the datagram dg, in constant time, and
// returns dg without it, decrypting a sealed payload in place. The header's
// flags are left as received (FlagAuth, and FlagSealed for a datagram that
// was encrypted), so wire.Parse accepts the result. Open does not check the
// header otherwise, nor whether the datagram is a replay.
//
// A rejected datagram gets one of ErrShort, ErrNoTrailer, ErrUnknownKey and
// ErrBadTag; after a rejected sealed datagram the contents of dg are
// unspecified (its payload and trailer may have been overwritten).
func (o *Opener) Open(dg []byte) ([]byte, error) {
	if len(dg) < wire.HeaderLen {
		return nil, ErrShort
	}
	flags := wire.Flags(binary.BigEndian.Uint16(dg[flagsOff:]))
	if flags&wire.FlagAuth == 0 {
		return nil, ErrNoTrailer
	}
	if flags&wire.FlagSealed == 0 {
		if len(dg) < wire.HeaderLen+AuthTrailerLen {
			return nil, ErrShort
		}
		n := len(dg) - AuthTrailerLen
		k := o.key(dg[n])
		if k == nil {
			return nil, ErrUnknownKey
		}
		k.mac.Reset()
		k.mac.Write(dg[:n+1])
		sum := k.mac.Sum(o.sum[:0])
		if subtle.ConstantTimeCompare(sum[:TagLen], dg[n+1:]) != 1 {
			return nil, ErrBadTag
		}
		return dg[:n], nil
	}
	if len(dg) < wire.HeaderLen+SealTrailerLen {
		return nil, ErrShort
	}
	n := len(dg) - SealTrailerLen
	k := o.key(dg[n])
	if k == nil {
		return nil, ErrUnknownKey
	}
	copy(o.nonce[:4], dg[epochLowOff:epochLowOff+4])
	copy(o.nonce[4:], dg[n+1:n+1+CounterLen])
	// GCM wants the tag right after the ciphertext: move it there, over
	// the key id and counter, which the nonce now holds.
	copy(dg[n:n+TagLen], dg[n+1+CounterLen:])
	if _, err := k.aead.Open(dg[wire.HeaderLen:wire.HeaderLen], o.nonce[:], dg[wire.HeaderLen:n+TagLen], dg[:wire.HeaderLen]); err != nil {
		return nil, ErrBadTag
	}
	return dg[:n], nil
}
