package chunks

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name string
		in   []Range
		want List
	}{
		{"empty", nil, nil},
		{"drops empty ranges", []Range{{5, 0}}, nil},
		{"single", []Range{{3, 2}}, List{{3, 2}}},
		{"sorts", []Range{{10, 1}, {1, 1}}, List{{1, 1}, {10, 1}}},
		{"merges overlap", []Range{{0, 5}, {3, 5}}, List{{0, 8}}},
		{"merges adjacent", []Range{{0, 5}, {5, 5}}, List{{0, 10}}},
		{"contained", []Range{{0, 10}, {2, 3}}, List{{0, 10}}},
		{"many", []Range{{20, 5}, {0, 1}, {1, 1}, {22, 10}, {40, 1}}, List{{0, 2}, {20, 12}, {40, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Normalize(slices.Clone(tt.in))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Normalize(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		in   []Range
		n    uint32
		ok   bool
	}{
		{"inside", []Range{{0, 10}}, 10, true},
		{"empty list", nil, 0, true},
		{"empty range", []Range{{0, 0}}, 10, false},
		{"past end", []Range{{5, 6}}, 10, false},
		{"overflow", []Range{{^uint32(0), 2}}, ^uint32(0), false},
		{"object without chunks", []Range{{0, 1}}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.in, tt.n)
			if (err == nil) != tt.ok {
				t.Errorf("Validate(%v, %d) = %v, want ok=%v", tt.in, tt.n, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidRange) {
				t.Errorf("err = %v, want ErrInvalidRange", err)
			}
		})
	}
}

func TestUnionLenContains(t *testing.T) {
	a := List{{0, 2}, {10, 5}}
	b := List{{1, 3}, {15, 1}, {30, 1}}
	u := a.Union(b)
	if want := (List{{0, 4}, {10, 6}, {30, 1}}); !slices.Equal(u, want) {
		t.Fatalf("Union = %v, want %v", u, want)
	}
	if got := u.Len(); got != 11 {
		t.Errorf("Len = %d, want 11", got)
	}
	for i := uint32(0); i < 40; i++ {
		want := i < 4 || (i >= 10 && i < 16) || i == 30
		if got := u.Contains(i); got != want {
			t.Errorf("Contains(%d) = %v, want %v", i, got, want)
		}
	}
	if !slices.Equal(a, List{{0, 2}, {10, 5}}) {
		t.Errorf("Union modified its receiver: %v", a)
	}
}

func TestCoalesce(t *testing.T) {
	l := List{{0, 1}, {2, 1}, {10, 1}, {11 + 5, 1}, {100, 1}}
	tests := []struct {
		max  int
		want List
	}{
		{10, l},
		{5, l},
		{4, List{{0, 3}, {10, 1}, {16, 1}, {100, 1}}},
		{3, List{{0, 3}, {10, 7}, {100, 1}}},
		{1, List{{0, 101}}},
		{0, List{{0, 101}}},
	}
	for _, tt := range tests {
		got := l.Coalesce(tt.max)
		if !slices.Equal(got, tt.want) {
			t.Errorf("Coalesce(%d) = %v, want %v", tt.max, got, tt.want)
		}
		for _, r := range l {
			for i := r.First; uint64(i) < r.End(); i++ {
				if !got.Contains(i) {
					t.Errorf("Coalesce(%d) lost chunk %d", tt.max, i)
				}
			}
		}
	}
}

func TestCoalesceBoundRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 200; iter++ {
		bm := NewBitmap(5000)
		for i := uint32(0); i < 5000; i++ {
			if r.IntN(10) != 0 {
				bm.Set(i)
			}
		}
		miss := bm.Missing()
		max := 1 + r.IntN(100)
		got := miss.Coalesce(max)
		if len(got) > max {
			t.Fatalf("Coalesce(%d) returned %d ranges", max, len(got))
		}
		if got.Len() < miss.Len() {
			t.Fatalf("Coalesce lost chunks")
		}
	}
}

func TestBitmap(t *testing.T) {
	for _, n := range []uint32{0, 1, 63, 64, 65, 1000} {
		b := NewBitmap(n)
		if got := b.Missing(); !slices.Equal(got, Whole(n)) {
			t.Errorf("n=%d: empty Missing = %v, want %v", n, got, Whole(n))
		}
		for i := uint32(0); i < n; i += 3 {
			if !b.Set(i) {
				t.Errorf("n=%d: Set(%d) not new", n, i)
			}
			if b.Set(i) {
				t.Errorf("n=%d: second Set(%d) new", n, i)
			}
		}
		if b.Set(n) || b.Has(n) {
			t.Errorf("n=%d: out of range index accepted", n)
		}
		miss := b.Missing()
		var want List
		for i := uint32(0); i < n; i++ {
			if i%3 != 0 {
				want = append(want, Range{i, 1})
			}
		}
		want = Normalize(want)
		if !slices.Equal(miss, want) {
			t.Errorf("n=%d: Missing = %v, want %v", n, miss, want)
		}
		if got, want := uint64(b.Count())+miss.Len(), uint64(n); got != want {
			t.Errorf("n=%d: count+missing = %d", n, got)
		}
		for i := uint32(0); i < n; i++ {
			b.Set(i)
		}
		if !b.Full() || len(b.Missing()) != 0 {
			t.Errorf("n=%d: not full after setting all", n)
		}
	}
}

func TestBitmapMarshal(t *testing.T) {
	b := NewBitmap(130)
	for _, i := range []uint32{0, 5, 64, 129} {
		b.Set(i)
	}
	data, _ := b.MarshalBinary()
	got, err := UnmarshalBitmap(data)
	if err != nil {
		t.Fatalf("UnmarshalBitmap: %v", err)
	}
	if got.Count() != 4 || got.Len() != 130 || !got.Has(129) || got.Has(1) {
		t.Errorf("round trip lost state: count=%d len=%d", got.Count(), got.Len())
	}
	bad := func(f func(d []byte) []byte) []byte { return f(append([]byte(nil), data...)) }
	for name, d := range map[string][]byte{
		"truncated":   data[:len(data)-1],
		"magic":       bad(func(d []byte) []byte { d[0] = 'X'; return d }),
		"flipped bit": bad(func(d []byte) []byte { d[9] ^= 1; return d }),
		"empty":       nil,
	} {
		if _, err := UnmarshalBitmap(d); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzUnmarshalBitmap(f *testing.F) {
	b := NewBitmap(100)
	b.Set(3)
	d, _ := b.MarshalBinary()
	f.Add(d)
	f.Add([]byte("NCBM"))
	f.Fuzz(func(t *testing.T, data []byte) {
		bm, err := UnmarshalBitmap(data)
		if err != nil {
			return
		}
		if uint64(bm.Count())+bm.Missing().Len() != uint64(bm.Len()) {
			t.Fatalf("count %d + missing %d != %d", bm.Count(), bm.Missing().Len(), bm.Len())
		}
	})
}

func FuzzNormalize(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 5})
	f.Fuzz(func(t *testing.T, data []byte) {
		var rs []Range
		for len(data) >= 4 {
			rs = append(rs, Range{First: uint32(data[0])<<8 | uint32(data[1]), Count: uint32(data[2])<<8 | uint32(data[3])})
			data = data[4:]
		}
		want := map[uint32]bool{}
		for _, r := range rs {
			for i := r.First; uint64(i) < r.End(); i++ {
				want[i] = true
			}
		}
		l := Normalize(slices.Clone(rs))
		if l.Len() != uint64(len(want)) {
			t.Fatalf("Len %d, want %d", l.Len(), len(want))
		}
		for i := 1; i < len(l); i++ {
			if uint64(l[i].First) <= l[i-1].End() {
				t.Fatalf("not normalized: %v", l)
			}
		}
		for i := range want {
			if !l.Contains(i) {
				t.Fatalf("lost %d", i)
			}
		}
	})
}

func BenchmarkMissing(b *testing.B) {
	bm := NewBitmap(1 << 20)
	r := rand.New(rand.NewPCG(1, 1))
	for i := uint32(0); i < 1<<20; i++ {
		if r.IntN(20) != 0 {
			bm.Set(i)
		}
	}
	for b.Loop() {
		_ = bm.Missing()
	}
}
