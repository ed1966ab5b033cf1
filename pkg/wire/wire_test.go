package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func sampleHeader() Header {
	return Header{
		Flags:      FlagRepair,
		Epoch:      0x0102030405060708,
		Channel:    0xA1B2C3D4,
		Chunk:      77,
		Object:     0x1122334455667788,
		ObjVersion: 0x99AABBCCDDEEFF00,
	}
}

func TestDataRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		chunk []byte
	}{
		{"one byte", []byte{0x42}},
		{"typical", bytes.Repeat([]byte{7}, 1400)},
		{"max", bytes.Repeat([]byte{9}, MaxPayload)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := sampleHeader()
			pkt, err := AppendData(nil, want, tt.chunk)
			if err != nil {
				t.Fatalf("AppendData: %v", err)
			}
			if got, wantLen := len(pkt), HeaderLen+len(tt.chunk); got != wantLen {
				t.Fatalf("len = %d, want %d", got, wantLen)
			}
			h, p, err := Parse(pkt)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want.Type = TypeData
			want.PayloadLen = uint16(len(tt.chunk))
			if h != want {
				t.Errorf("header = %+v, want %+v", h, want)
			}
			if !bytes.Equal(p, tt.chunk) {
				t.Errorf("payload differs")
			}
		})
	}
}

func TestAppendDataRejects(t *testing.T) {
	for _, n := range []int{0, MaxPayload + 1} {
		if _, err := AppendData(nil, Header{}, make([]byte, n)); !errors.Is(err, ErrTooLarge) {
			t.Errorf("AppendData(%d bytes) err = %v, want ErrTooLarge", n, err)
		}
	}
}

func TestEndRoundTrip(t *testing.T) {
	want := End{ChunkCount: 123456, Pass: 3, Size: 1 << 40, Seq: 99}
	pkt := AppendEnd(nil, sampleHeader(), want)
	h, p, err := Parse(pkt)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if h.Type != TypeEnd || h.Chunk != 0 {
		t.Errorf("header = %+v", h)
	}
	got, err := ParseEnd(p)
	if err != nil {
		t.Fatalf("ParseEnd: %v", err)
	}
	if got != want {
		t.Errorf("End = %+v, want %+v", got, want)
	}
}

func TestAnnounceRoundTrip(t *testing.T) {
	want := Announce{ManifestVersion: 0xDEADBEEF, ObjectCount: 300, Seq: 12, Name: []byte("sample")}
	pkt, err := AppendAnnounce(nil, sampleHeader(), want)
	if err != nil {
		t.Fatalf("AppendAnnounce: %v", err)
	}
	h, p, err := Parse(pkt)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if h.Type != TypeAnnounce || h.Object != 0 || h.ObjVersion != 0 || h.Chunk != 0 {
		t.Errorf("header = %+v", h)
	}
	got, err := ParseAnnounce(p)
	if err != nil {
		t.Fatalf("ParseAnnounce: %v", err)
	}
	if got.ManifestVersion != want.ManifestVersion || got.ObjectCount != want.ObjectCount || got.Seq != want.Seq || string(got.Name) != "sample" {
		t.Errorf("Announce = %+v, want %+v", got, want)
	}
	for _, name := range [][]byte{nil, bytes.Repeat([]byte("x"), MaxChannelName+1)} {
		if _, err := AppendAnnounce(nil, Header{}, Announce{Name: name}); !errors.Is(err, ErrPayload) {
			t.Errorf("AppendAnnounce(name %d bytes) err = %v, want ErrPayload", len(name), err)
		}
	}
}

func TestParityRoundTrip(t *testing.T) {
	want := Parity{Block: 32, Total: 8, Index: 5}
	shard := bytes.Repeat([]byte{3}, 1400)
	h := sampleHeader()
	pkt, err := AppendParity(nil, h, want, shard)
	if err != nil {
		t.Fatal(err)
	}
	gh, p, err := Parse(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if gh.Type != TypeParity || gh.Chunk != h.Chunk || int(gh.PayloadLen) != ParityFixedLen+len(shard) {
		t.Errorf("header = %+v", gh)
	}
	got, gs, err := ParseParity(p)
	if err != nil {
		t.Fatal(err)
	}
	if got != want || !bytes.Equal(gs, shard) {
		t.Errorf("parity = %+v (%d bytes), want %+v", got, len(gs), want)
	}
	for _, bad := range []Parity{{Block: 0, Total: 1}, {Block: 1, Total: 1, Index: 1}} {
		if _, err := AppendParity(nil, h, bad, shard); !errors.Is(err, ErrPayload) {
			t.Errorf("AppendParity(%+v) err = %v, want ErrPayload", bad, err)
		}
	}
	if _, err := AppendParity(nil, h, want, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("AppendParity(empty shard) err = %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := AppendData(nil, sampleHeader(), []byte("abc"))
	end := AppendEnd(nil, sampleHeader(), End{ChunkCount: 1, Pass: 1, Size: 3, Seq: 1})
	ann, _ := AppendAnnounce(nil, Header{Channel: 1}, Announce{ManifestVersion: 1, Name: []byte("c")})
	mut := func(b []byte, f func(b []byte)) []byte {
		c := append([]byte(nil), b...)
		f(c)
		return c
	}
	tests := []struct {
		name string
		pkt  []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"short", good[:HeaderLen-1], ErrShort},
		{"magic", mut(good, func(b []byte) { b[0] = 'X' }), ErrMagic},
		{"version", mut(good, func(b []byte) { b[2] = Version + 1 }), ErrVersion},
		{"version 1 (digest-prefix object versions)", mut(good, func(b []byte) { b[2] = 1 }), ErrVersion},
		{"type zero", mut(good, func(b []byte) { b[3] = 0 }), ErrType},
		{"parity without shard", mut(good[:HeaderLen+ParityFixedLen], func(b []byte) {
			b[3] = byte(TypeParity)
			binary.BigEndian.PutUint16(b[6:], ParityFixedLen)
		}), ErrPayload},
		{"type unknown", mut(good, func(b []byte) { b[3] = 200 }), ErrType},
		{"undefined flag", mut(good, func(b []byte) { b[5] |= 0x80 }), ErrFlags},
		{"truncated payload", good[:len(good)-1], ErrLength},
		{"trailing bytes", append(append([]byte(nil), good...), 0), ErrLength},
		{"data empty payload", mut(good[:HeaderLen], func(b []byte) { binary.BigEndian.PutUint16(b[6:], 0) }), ErrPayload},
		{"end with chunk index", mut(end, func(b []byte) { b[23] = 1 }), ErrBadHeader},
		{"end short payload", mut(end[:len(end)-1], func(b []byte) { binary.BigEndian.PutUint16(b[6:], EndPayloadLen-1) }), ErrBadHeader},
		{"announce with object", mut(ann, func(b []byte) { b[31] = 1 }), ErrBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Parse(tt.pkt)
			if !errors.Is(err, tt.want) {
				t.Errorf("Parse err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParsePayloadRejects(t *testing.T) {
	tests := []struct {
		name string
		f    func() error
	}{
		{"end pass zero", func() error { _, err := ParseEnd(make([]byte, EndPayloadLen)); return err }},
		{"end seq zero", func() error {
			p := AppendEnd(nil, Header{}, End{Pass: 1, Seq: 0})[HeaderLen:]
			_, err := ParseEnd(p)
			return err
		}},
		{"end long", func() error { _, err := ParseEnd(make([]byte, EndPayloadLen+1)); return err }},
		{"announce short", func() error { _, err := ParseAnnounce(make([]byte, AnnounceFixedLen-1)); return err }},
		{"announce empty name", func() error { _, err := ParseAnnounce(make([]byte, AnnounceFixedLen)); return err }},
		{"announce name overruns", func() error {
			p := make([]byte, AnnounceFixedLen+2)
			binary.BigEndian.PutUint16(p[20:], 3)
			_, err := ParseAnnounce(p)
			return err
		}},
		{"parity short", func() error { _, _, err := ParseParity(make([]byte, ParityFixedLen)); return err }},
		{"parity zero block", func() error { _, _, err := ParseParity([]byte{0, 1, 0, 0, 9}); return err }},
		{"parity zero total", func() error { _, _, err := ParseParity([]byte{1, 0, 0, 0, 9}); return err }},
		{"parity index past total", func() error { _, _, err := ParseParity([]byte{4, 2, 2, 0, 9}); return err }},
		{"parity shape over 256", func() error { _, _, err := ParseParity([]byte{200, 57, 0, 0, 9}); return err }},
		{"parity reserved byte", func() error { _, _, err := ParseParity([]byte{4, 2, 1, 1, 9}); return err }},
		{"announce name too long", func() error {
			p := make([]byte, AnnounceFixedLen+MaxChannelName+1)
			binary.BigEndian.PutUint16(p[20:], MaxChannelName+1)
			_, err := ParseAnnounce(p)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.f(); !errors.Is(err, ErrPayload) {
				t.Errorf("err = %v, want ErrPayload", err)
			}
		})
	}
}

func TestTypeString(t *testing.T) {
	for typ, want := range map[Type]string{TypeData: "DATA", TypeEnd: "END", TypeAnnounce: "ANNOUNCE", TypeParity: "PARITY", 9: "Type(9)"} {
		if got := typ.String(); got != want {
			t.Errorf("Type(%d).String() = %q, want %q", uint8(typ), got, want)
		}
	}
}

func TestZeroAllocs(t *testing.T) {
	pkt, _ := AppendData(nil, sampleHeader(), make([]byte, 1400))
	buf := make([]byte, 0, 2048)
	h := sampleHeader()
	chunk := make([]byte, 1400)
	if n := testing.AllocsPerRun(1000, func() {
		if _, _, err := Parse(pkt); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Parse allocs = %v, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		var err error
		if _, err = AppendData(buf[:0], h, chunk); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("AppendData allocs = %v, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() { PutHeader(buf[:HeaderLen], &h) }); n != 0 {
		t.Errorf("PutHeader allocs = %v, want 0", n)
	}
}

// FuzzParse checks that Parse never panics, that whatever it accepts
// re-encodes to the same bytes, and that the per-type payload decoders
// accept or reject without panicking.
func FuzzParse(f *testing.F) {
	d, _ := AppendData(nil, sampleHeader(), []byte("chunk"))
	e := AppendEnd(nil, sampleHeader(), End{ChunkCount: 2, Pass: 1, Size: 10, Seq: 7})
	a, _ := AppendAnnounce(nil, sampleHeader(), Announce{ManifestVersion: 5, ObjectCount: 2, Name: []byte("news")})
	pa, _ := AppendParity(nil, sampleHeader(), Parity{Block: 3, Total: 2, Index: 1}, []byte("shard"))
	for _, s := range [][]byte{d, e, a, pa, nil, d[:10], []byte("NC\x01\x01")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, p, err := Parse(b)
		if err != nil {
			return
		}
		if len(p) != int(h.PayloadLen) {
			t.Fatalf("payload %d bytes, header says %d", len(p), h.PayloadLen)
		}
		re := AppendHeader(nil, &h)
		re = append(re, p...)
		if !bytes.Equal(re, b) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", re, b)
		}
		switch h.Type {
		case TypeEnd:
			if en, err := ParseEnd(p); err == nil {
				if got := AppendEnd(nil, h, en); !bytes.Equal(got, b) {
					t.Fatalf("END re-encoding differs")
				}
			}
		case TypeParity:
			if pp, shard, err := ParseParity(p); err == nil {
				if got, err := AppendParity(nil, h, pp, shard); err != nil || !bytes.Equal(got, b) {
					t.Fatalf("PARITY re-encoding differs: %v", err)
				}
			}
		case TypeAnnounce:
			if an, err := ParseAnnounce(p); err == nil {
				got, err := AppendAnnounce(nil, h, an)
				if err != nil || !bytes.Equal(got, b) {
					t.Fatalf("ANNOUNCE re-encoding differs: %v", err)
				}
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	pkt, _ := AppendData(nil, sampleHeader(), make([]byte, 1400))
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if _, _, err := Parse(pkt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendData(b *testing.B) {
	buf := make([]byte, 0, 2048)
	h := sampleHeader()
	chunk := make([]byte, 1400)
	b.SetBytes(int64(HeaderLen + len(chunk)))
	for b.Loop() {
		if _, err := AppendData(buf[:0], h, chunk); err != nil {
			b.Fatal(err)
		}
	}
}
