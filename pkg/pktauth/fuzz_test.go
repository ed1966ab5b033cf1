package pktauth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/nackcast/nackcast/pkg/wire"
)

// FuzzOpen checks that Open never panics, rejects with a sentinel error,
// and that whatever it accepts re-verifies: opening the same bytes again
// gives the same datagram, and sealing that datagram again with the key,
// epoch (and, in seal mode, counter) named in it reproduces the input
// byte for byte.
func FuzzOpen(f *testing.F) {
	kr := ring(f, k1, k2)
	for _, m := range modes {
		for _, sealBy := range [][]Key{{k1}, {k2}, {k1other}} {
			for _, n := range []int{0, 1, 24, 200} {
				s := sealer(f, ring(f, sealBy...), m)
				s.ctr.Store(uint64(n) * 1000)
				sealed, err := s.Seal(dataPacket(f, n))
				if err != nil {
					f.Fatal(err)
				}
				f.Add(sealed)
				f.Add(sealed[:len(sealed)-1])
			}
		}
	}
	f.Add([]byte{})
	f.Add(dataPacket(f, 10))
	hdr := dataPacket(f, 0)
	binary.BigEndian.PutUint16(hdr[4:], uint16(wire.FlagAuth|wire.FlagSealed))
	f.Add(hdr)

	o := NewOpener(kr)
	f.Fuzz(func(t *testing.T, data []byte) {
		in := clone(data)
		out, err := o.Open(in)
		if err != nil {
			if out != nil {
				t.Fatal("rejected datagram returned with an error")
			}
			if !errors.Is(err, ErrShort) && !errors.Is(err, ErrNoTrailer) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrBadTag) {
				t.Fatalf("error %v is no sentinel", err)
			}
			return
		}
		flags := wire.Flags(binary.BigEndian.Uint16(data[4:]))
		m := ModeAuth
		if flags&wire.FlagSealed != 0 {
			m = ModeSeal
		}
		if flags&wire.FlagAuth == 0 || len(out) != len(data)-m.Overhead() || &out[0] != &in[0] {
			t.Fatalf("accepted %d bytes with flags %#x as %d bytes", len(data), flags, len(out))
		}
		if m == ModeAuth && !bytes.Equal(out, data[:len(out)]) {
			t.Fatal("auth mode Open changed the datagram")
		}
		again, err := o.Open(clone(data))
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("second Open: %v", err)
		}

		// Seal it again as its sender would have.
		id := data[len(out)]
		var key Key
		for _, k := range kr.Keys() {
			if k.ID == id {
				key = k
			}
		}
		s, err := NewSealer(ring(t, key), m, binary.BigEndian.Uint64(data[8:]))
		if err != nil {
			t.Fatal(err)
		}
		if m == ModeSeal {
			ctr := binary.BigEndian.Uint64(data[len(out)+1:])
			if ctr == 0 {
				t.Fatal("accepted counter 0, which no Sealer uses")
			}
			s.ctr.Store(ctr - 1)
		}
		plain := clone(out)
		binary.BigEndian.PutUint16(plain[4:], uint16(flags&^(wire.FlagAuth|wire.FlagSealed)))
		resealed, err := s.Seal(plain)
		if err != nil {
			t.Fatalf("resealing an accepted datagram: %v", err)
		}
		if !bytes.Equal(resealed, data) {
			t.Fatal("resealing an accepted datagram gives other bytes")
		}
	})
}

// FuzzParseKeys checks that the key file parser never panics, and that a
// ring it accepts holds one or two keys whose Format parses back to the
// same keys.
func FuzzParseKeys(f *testing.F) {
	f.Add("1 " + string(bytes.Repeat([]byte("ab"), 32)) + "\n")
	f.Add("# rotation\n2 " + string(bytes.Repeat([]byte("01"), 40)) + "\n1 " + string(bytes.Repeat([]byte("fe"), 32)))
	f.Add("1 zz")
	f.Add("")
	f.Add("300 00;1 00")
	f.Fuzz(func(t *testing.T, text string) {
		kr, err := Parse(text)
		if err != nil {
			return
		}
		keys := kr.Keys()
		if len(keys) < 1 || len(keys) > MaxKeys {
			t.Fatalf("accepted a ring of %d keys", len(keys))
		}
		again, err := Parse(Format(keys...))
		if err != nil {
			t.Fatalf("Format of an accepted ring does not parse: %v", err)
		}
		for i, k := range again.Keys() {
			if k.ID != keys[i].ID || !bytes.Equal(k.Secret, keys[i].Secret) {
				t.Fatalf("key %d changed through Format/Parse", i)
			}
		}
	})
}
