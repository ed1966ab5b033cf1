package pktauth

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/nackcast/nackcast/pkg/wire"
)

const testEpoch = 0x0123456789ABCDEF

// testKey returns a key with a deterministic secret derived from seed.
func testKey(id uint8, seed byte) Key {
	s := make([]byte, MinSecretLen)
	for i := range s {
		s[i] = seed + byte(i)*7
	}
	return Key{ID: id, Secret: s}
}

var (
	k1      = testKey(1, 0x10)
	k2      = testKey(2, 0x20)
	k1other = testKey(1, 0x99) // same id as k1, another secret
)

func ring(t testing.TB, keys ...Key) *Keyring {
	t.Helper()
	kr, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func sealer(t testing.TB, kr *Keyring, m Mode) *Sealer {
	t.Helper()
	s, err := NewSealer(kr, m, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dataPacket returns a DATA datagram with a payload of n bytes and spare
// capacity for any trailer.
func dataPacket(t testing.TB, n int) []byte {
	t.Helper()
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i*31 + 5)
	}
	h := wire.Header{Flags: wire.FlagRepair, Epoch: testEpoch, Channel: 0xCAFE, Chunk: 7, Object: 42, ObjVersion: 43}
	buf := make([]byte, 0, wire.HeaderLen+n+SealTrailerLen)
	if n == 0 {
		h.Type = wire.TypeAnnounce
		h.Chunk, h.Object, h.ObjVersion = 0, 0, 0
		return wire.AppendHeader(buf, &h)
	}
	dg, err := wire.AppendData(buf, h, payload)
	if err != nil {
		t.Fatal(err)
	}
	return dg
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

var modes = []Mode{ModeAuth, ModeSeal}

// isExactly reports whether err is want itself (both nil, or the same
// sentinel), not an error wrapping it: Open returns its sentinels
// unwrapped, so that rejecting a datagram costs no allocation.
func isExactly(err, want error) bool {
	return errors.Is(err, want) && errors.Unwrap(err) == nil
}

func isSentinel(err error) bool {
	for _, s := range []error{ErrShort, ErrNoTrailer, ErrUnknownKey, ErrBadTag} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 16, wire.EndPayloadLen, 1400, 8192, wire.MaxPacket - wire.HeaderLen - SealTrailerLen}
	for _, m := range modes {
		for _, n := range sizes {
			t.Run(fmt.Sprintf("%v/%d", m, n), func(t *testing.T) {
				kr := ring(t, k1, k2)
				s := sealer(t, kr, m)
				plain := dataPacket(t, n)
				dg := clone(plain)
				dg = dg[:len(dg):len(dg)] // no spare capacity: Seal must grow
				sealed, err := s.Seal(dg)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(dg, plain) {
					t.Fatal("Seal modified a datagram it had to copy")
				}
				if len(sealed) != len(plain)+m.Overhead() || s.Overhead() != m.Overhead() {
					t.Fatalf("sealed %d bytes, want %d+%d", len(sealed), len(plain), m.Overhead())
				}
				flags := wire.Flags(binary.BigEndian.Uint16(sealed[4:]))
				wantFlags := wire.FlagRepair | wire.FlagAuth
				if m == ModeSeal {
					wantFlags |= wire.FlagSealed
				}
				if flags != wantFlags {
					t.Fatalf("flags %#x, want %#x", flags, wantFlags)
				}
				if sealed[len(plain)] != 1 {
					t.Fatalf("trailer key id %d, want 1", sealed[len(plain)])
				}
				payloadEq := bytes.Equal(sealed[wire.HeaderLen:len(plain)], plain[wire.HeaderLen:])
				if m == ModeAuth && !payloadEq {
					t.Fatal("auth mode changed the payload")
				}
				if m == ModeSeal && n >= 8 && payloadEq {
					t.Fatal("seal mode left the payload in clear")
				}
				if m == ModeSeal {
					if c := binary.BigEndian.Uint64(sealed[len(plain)+1:]); c != 1 {
						t.Fatalf("first counter %d, want 1", c)
					}
				}
				in := clone(sealed)
				out, err := NewOpener(kr).Open(in)
				if err != nil {
					t.Fatal(err)
				}
				if &out[0] != &in[0] {
					t.Fatal("Open did not work in place")
				}
				want := clone(plain)
				binary.BigEndian.PutUint16(want[4:], uint16(wantFlags))
				if !bytes.Equal(out, want) {
					t.Fatal("opened datagram differs from the sealed one")
				}
				h, p, err := wire.Parse(out)
				if err != nil {
					t.Fatalf("wire.Parse of opened datagram: %v", err)
				}
				if h.Epoch != testEpoch || len(p) != n {
					t.Fatalf("parsed epoch %#x payload %d", h.Epoch, len(p))
				}
			})
		}
	}
}

func TestSealInPlace(t *testing.T) {
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			s := sealer(t, ring(t, k1), m)
			dg := dataPacket(t, 100)
			sealed, err := s.Seal(dg)
			if err != nil {
				t.Fatal(err)
			}
			if &sealed[0] != &dg[0] {
				t.Fatal("Seal copied a datagram that had room for the trailer")
			}
		})
	}
}

func TestSealCounter(t *testing.T) {
	s := sealer(t, ring(t, k1), ModeSeal)
	c := s.Clone()
	var prev []byte
	for i := 1; i <= 4; i++ {
		sl := s
		if i%2 == 0 {
			sl = c // a clone shares the counter
		}
		sealed, err := sl.Seal(dataPacket(t, 64))
		if err != nil {
			t.Fatal(err)
		}
		n := len(sealed) - SealTrailerLen
		if got := binary.BigEndian.Uint64(sealed[n+1:]); got != uint64(i) {
			t.Fatalf("seal %d: counter %d", i, got)
		}
		if prev != nil && bytes.Equal(prev[wire.HeaderLen:n], sealed[wire.HeaderLen:n]) {
			t.Fatal("same payload sealed twice to the same ciphertext")
		}
		prev = sealed
	}

	s.ctr.Store(math.MaxUint64 - 1)
	sealed, err := s.Seal(dataPacket(t, 64))
	if err != nil {
		t.Fatalf("last counter: %v", err)
	}
	if got := binary.BigEndian.Uint64(sealed[len(sealed)-SealTrailerLen+1:]); got != math.MaxUint64 {
		t.Fatalf("last counter %d", got)
	}
	if _, err := NewOpener(ring(t, k1)).Open(sealed); err != nil {
		t.Fatal(err)
	}
	for _, sl := range []*Sealer{s, c} {
		dg := dataPacket(t, 64)
		orig := clone(dg)
		if _, err := sl.Seal(dg); !errors.Is(err, ErrExhausted) {
			t.Fatalf("after 2^64-1 seals: %v, want ErrExhausted", err)
		}
		if !bytes.Equal(dg, orig) {
			t.Fatal("failed Seal modified the datagram")
		}
	}
	// Auth mode has no counter and no such limit.
	a := sealer(t, ring(t, k1), ModeAuth)
	a.ctr.Store(math.MaxUint64)
	if _, err := a.Seal(dataPacket(t, 64)); err != nil {
		t.Fatal(err)
	}
}

func TestSealErrors(t *testing.T) {
	withFlags := func(f wire.Flags) []byte {
		dg := dataPacket(t, 10)
		binary.BigEndian.PutUint16(dg[4:], uint16(f))
		return dg
	}
	withEpoch := func(e uint64) []byte {
		dg := dataPacket(t, 10)
		binary.BigEndian.PutUint64(dg[8:], e)
		return dg
	}
	tests := []struct {
		name string
		dg   []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"short header", dataPacket(t, 10)[:wire.HeaderLen-1], ErrShort},
		{"length field too large", dataPacket(t, 10)[:wire.HeaderLen+9], wire.ErrLength},
		{"length field too small", append(dataPacket(t, 10), 0), wire.ErrLength},
		{"already auth", withFlags(wire.FlagAuth), ErrAlreadySealed},
		{"already sealed", withFlags(wire.FlagSealed), ErrAlreadySealed},
		{"other epoch", withEpoch(testEpoch + 1), ErrEpoch},
		{"other epoch, same low bits", withEpoch(testEpoch + 1<<32), ErrEpoch},
	}
	big := make([]byte, wire.HeaderLen+math.MaxUint16)
	binary.BigEndian.PutUint16(big[6:], math.MaxUint16)
	binary.BigEndian.PutUint64(big[8:], testEpoch)
	tests = append(tests, struct {
		name string
		dg   []byte
		want error
	}{"too large", big, wire.ErrTooLarge})
	for _, m := range modes {
		for _, tc := range tests {
			t.Run(m.String()+"/"+tc.name, func(t *testing.T) {
				s := sealer(t, ring(t, k1), m)
				orig := clone(tc.dg)
				_, err := s.Seal(tc.dg)
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				if !bytes.Equal(tc.dg, orig) {
					t.Fatal("failed Seal modified the datagram")
				}
			})
		}
	}
}

func TestNewSealerErrors(t *testing.T) {
	s := sealer(t, ring(t, k2, k1), ModeSeal)
	if s.Mode() != ModeSeal || s.Epoch() != testEpoch || s.Overhead() != SealTrailerLen {
		t.Error("sealer accessors")
	}
	if _, err := NewSealer(nil, ModeAuth, 1); err == nil {
		t.Error("nil key ring accepted")
	}
	for _, m := range []Mode{0, 3, 255} {
		if _, err := NewSealer(ring(t, k1), m, 1); err == nil {
			t.Errorf("%v accepted", m)
		}
	}
}

func TestModeNames(t *testing.T) {
	for _, m := range modes {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("none"); err == nil {
		t.Error("ParseMode(none) accepted")
	}
	if Mode(0).Overhead() != 0 || ModeAuth.Overhead() != 17 || ModeSeal.Overhead() != 25 {
		t.Error("overheads")
	}
}

// TestTamper flips each bit position class of every byte of a sealed
// datagram and expects Open to reject it.
func TestTamper(t *testing.T) {
	kr := ring(t, k1, k2)
	for _, m := range modes {
		sealed, err := sealer(t, kr, m).Seal(dataPacket(t, 1400))
		if err != nil {
			t.Fatal(err)
		}
		trailer := len(sealed) - m.Overhead()
		regions := []struct {
			name     string
			from, to int
		}{
			{"header", 0, wire.HeaderLen},
			{"payload", wire.HeaderLen, trailer},
			{"trailer", trailer, len(sealed)},
		}
		o := NewOpener(kr)
		for _, r := range regions {
			t.Run(m.String()+"/"+r.name, func(t *testing.T) {
				for i := r.from; i < r.to; i++ {
					for _, mask := range []byte{0x01, 0x80, 0xFF} {
						dg := clone(sealed)
						dg[i] ^= mask
						if out, err := o.Open(dg); err == nil {
							t.Fatalf("byte %d ^ %#x accepted (%d bytes)", i, mask, len(out))
						} else if !isSentinel(err) {
							t.Fatalf("byte %d: error %v is no sentinel", i, err)
						}
					}
				}
			})
		}
		// The untouched datagram still opens.
		if _, err := o.Open(clone(sealed)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTruncatedAndExtended(t *testing.T) {
	kr := ring(t, k1)
	o := NewOpener(kr)
	for _, m := range modes {
		sealed, err := sealer(t, kr, m).Seal(dataPacket(t, 100))
		if err != nil {
			t.Fatal(err)
		}
		t.Run(m.String(), func(t *testing.T) {
			for n := 0; n < len(sealed); n++ {
				_, err := o.Open(clone(sealed[:n]))
				switch {
				case err == nil:
					t.Fatalf("truncated to %d bytes accepted", n)
				case n < wire.HeaderLen+m.Overhead() && !errors.Is(err, ErrShort):
					t.Fatalf("truncated to %d bytes: %v, want ErrShort", n, err)
				case !isSentinel(err):
					t.Fatalf("truncated to %d bytes: %v", n, err)
				}
			}
			for _, extra := range [][]byte{{0}, {1}, make([]byte, 17), make([]byte, 25)} {
				if _, err := o.Open(append(clone(sealed), extra...)); err == nil {
					t.Fatalf("datagram with %d extra bytes accepted", len(extra))
				}
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	o := NewOpener(ring(t, k1))
	plain := dataPacket(t, 10)
	onlySealed := clone(plain)
	binary.BigEndian.PutUint16(onlySealed[4:], uint16(wire.FlagSealed))
	tests := []struct {
		name string
		dg   []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"half header", plain[:20], ErrShort},
		{"unauthenticated", plain, ErrNoTrailer},
		{"FlagSealed without FlagAuth", onlySealed, ErrNoTrailer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := o.Open(clone(tc.dg)); !isExactly(err, tc.want) {
				t.Fatalf("got %v, want exactly %v", err, tc.want)
			}
		})
	}
}

// TestKeys covers wrong keys and the rotation of a ring.
func TestKeys(t *testing.T) {
	tests := []struct {
		name   string
		sealBy []Key
		openBy []Key
		want   error
	}{
		{"same key", []Key{k1}, []Key{k1}, nil},
		{"other id", []Key{k1}, []Key{k2}, ErrUnknownKey},
		{"same id, other secret", []Key{k1}, []Key{k1other}, ErrBadTag},
		{"same id, other secret, in a ring", []Key{k1}, []Key{k2, k1other}, ErrBadTag},
		// Rollover: receivers first get [old, new], then senders [new, old].
		{"receiver rolled first", []Key{k1}, []Key{k1, k2}, nil},
		{"receiver rolled first, new key second", []Key{k1}, []Key{k2, k1}, nil},
		{"sender rolled", []Key{k2, k1}, []Key{k1, k2}, nil},
		{"sender rolled, receiver done", []Key{k2, k1}, []Key{k2}, nil},
		{"sender rolled, receiver late", []Key{k2, k1}, []Key{k1}, ErrUnknownKey},
		{"sender not rolled, receiver done", []Key{k1, k2}, []Key{k2}, ErrUnknownKey},
		{"sender not rolled, receiver old", []Key{k1, k2}, []Key{k1}, nil},
	}
	for _, m := range modes {
		for _, tc := range tests {
			t.Run(m.String()+"/"+tc.name, func(t *testing.T) {
				sealed, err := sealer(t, ring(t, tc.sealBy...), m).Seal(dataPacket(t, 300))
				if err != nil {
					t.Fatal(err)
				}
				_, err = NewOpener(ring(t, tc.openBy...)).Open(sealed)
				if !isExactly(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
			})
		}
	}
}

// TestKeySeparation checks that the secret is used for nothing but
// deriving two distinct keys, and that a datagram of one mode relabelled as
// the other fails.
func TestKeySeparation(t *testing.T) {
	macKey, err := hkdf.Key(sha256.New, k1.Secret, nil, infoMAC, 32)
	if err != nil {
		t.Fatal(err)
	}
	sealKey, err := hkdf.Key(sha256.New, k1.Secret, nil, infoSeal, 32)
	if err != nil {
		t.Fatal(err)
	}
	d := ring(t, k1).d[0]
	if !bytes.Equal(d.macKey, macKey) || bytes.Equal(macKey, sealKey) ||
		bytes.Equal(macKey, k1.Secret) || bytes.Equal(sealKey, k1.Secret) {
		t.Fatal("keys are not derived apart")
	}
	if bytes.Equal(ring(t, k1other).d[0].macKey, macKey) {
		t.Fatal("HMAC key does not depend on the secret")
	}
	kr := ring(t, k1)
	o := NewOpener(kr)
	for _, m := range modes {
		sealed, err := sealer(t, kr, m).Seal(dataPacket(t, 200))
		if err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint16(sealed[4:], binary.BigEndian.Uint16(sealed[4:])^uint16(wire.FlagSealed))
		if _, err := o.Open(sealed); err == nil {
			t.Fatalf("%v datagram relabelled accepted", m)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	kr := ring(t, k2, k1)
	o := NewOpener(kr)
	for _, m := range modes {
		t.Run(m.String(), func(t *testing.T) {
			s := sealer(t, kr, m)
			plain := dataPacket(t, 1400)
			buf := make([]byte, len(plain), len(plain)+SealTrailerLen)
			sealed, err := s.Seal(clone(plain))
			if err != nil {
				t.Fatal(err)
			}
			in := make([]byte, len(sealed))
			if a := testing.AllocsPerRun(100, func() {
				copy(buf, plain)
				if _, err := s.Seal(buf[:len(plain)]); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("Seal: %v allocations", a)
			}
			if a := testing.AllocsPerRun(100, func() {
				copy(in, sealed)
				if _, err := o.Open(in); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("Open: %v allocations", a)
			}
			bad := clone(sealed)
			bad[50] ^= 1
			if a := testing.AllocsPerRun(100, func() {
				copy(in, bad)
				if _, err := o.Open(in); !isExactly(err, ErrBadTag) {
					t.Fatal(err)
				}
				if _, err := o.Open(plain); !isExactly(err, ErrNoTrailer) {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("rejecting Open: %v allocations", a)
			}
		})
	}
}

func benchPacket(b *testing.B) []byte {
	// A 1440-byte datagram: header and 1400 bytes of payload.
	return dataPacket(b, 1440-wire.HeaderLen)
}

// BenchmarkSeal seals a 1440-byte datagram in place. In seal mode it
// encrypts the previous ciphertext again, which costs the same.
func BenchmarkSeal(b *testing.B) {
	for _, m := range modes {
		b.Run(m.String(), func(b *testing.B) {
			s := sealer(b, ring(b, k1), m)
			dg := benchPacket(b)
			n := len(dg)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				dg = dg[:n]
				dg[5] &^= byte(wire.FlagAuth | wire.FlagSealed)
				if _, err := s.Seal(dg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpen opens a sealed 1440-byte datagram (1440 bytes before the
// trailer). In seal mode every iteration first copies the sealed datagram
// back, since Open decrypts in place; the copy is part of the figure.
func BenchmarkOpen(b *testing.B) {
	for _, m := range modes {
		b.Run(m.String(), func(b *testing.B) {
			kr := ring(b, k1)
			sealed, err := sealer(b, kr, m).Seal(benchPacket(b))
			if err != nil {
				b.Fatal(err)
			}
			o := NewOpener(kr)
			in := clone(sealed)
			b.SetBytes(int64(len(sealed) - m.Overhead()))
			b.ReportAllocs()
			for b.Loop() {
				if m == ModeSeal {
					copy(in, sealed)
				}
				if _, err := o.Open(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
