package fec

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestGeometry(t *testing.T) {
	tests := []struct {
		chunks uint32
		block  int
		blocks uint32
		last   int // data chunks of the last block
	}{
		{1, 32, 1, 1},
		{32, 32, 1, 32},
		{33, 32, 2, 1},
		{100, 32, 4, 4},
		{64, 1, 64, 1},
		{0, 32, 0, 0},
	}
	for _, tt := range tests {
		g := Geometry{Chunks: tt.chunks, Block: tt.block}
		if got := g.Blocks(); got != tt.blocks {
			t.Errorf("%+v: Blocks = %d, want %d", g, got, tt.blocks)
		}
		if tt.blocks == 0 {
			continue
		}
		first, n := g.Span(tt.blocks - 1)
		if n != tt.last || first != (tt.blocks-1)*uint32(tt.block) {
			t.Errorf("%+v: Span(last) = %d,%d, want %d,%d", g, first, n, (tt.blocks-1)*uint32(tt.block), tt.last)
		}
		if _, n := g.Span(tt.blocks); n != 0 {
			t.Errorf("%+v: Span past the end = %d chunks", g, n)
		}
		if b := g.BlockOf(tt.chunks - 1); b != tt.blocks-1 {
			t.Errorf("%+v: BlockOf(last chunk) = %d", g, b)
		}
	}
}

// block returns data shards of random bytes and room for parity.
func block(r *rand.Rand, data, parity, size int) [][]byte {
	shards := make([][]byte, data+parity)
	for i := range shards {
		shards[i] = make([]byte, size)
		if i < data {
			for j := range shards[i] {
				shards[i][j] = byte(r.Uint32())
			}
		}
	}
	return shards
}

func TestRebuild(t *testing.T) {
	tests := []struct {
		data, parity int
		lose         []int // shards lost
		wantErr      bool
	}{
		{32, 8, []int{0}, false},
		{32, 8, []int{3, 9, 17, 31, 32, 33, 34, 35}, false},
		{32, 8, []int{0, 1, 2, 3, 4, 5, 6, 7}, false},
		{32, 8, []int{0, 1, 2, 3, 4, 5, 6, 7, 8}, true},
		{1, 2, []int{0}, false},
		{3, 1, []int{2}, false},
		{200, 56, []int{0, 50, 199}, false},
	}
	c := NewCodec()
	r := rand.New(rand.NewPCG(1, 2))
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d+%d-lose%d", tt.data, tt.parity, len(tt.lose)), func(t *testing.T) {
			shards := block(r, tt.data, tt.parity, 1400)
			if err := c.Encode(tt.data, shards); err != nil {
				t.Fatal(err)
			}
			want := make([][]byte, len(shards))
			for i, s := range shards {
				want[i] = bytes.Clone(s)
			}
			for _, i := range tt.lose {
				shards[i] = shards[i][:0]
			}
			err := c.Rebuild(tt.data, shards)
			if tt.wantErr {
				if !errors.Is(err, ErrTooFew) {
					t.Fatalf("Rebuild err = %v, want ErrTooFew", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tt.data; i++ {
				if !bytes.Equal(shards[i], want[i]) {
					t.Fatalf("data shard %d differs after rebuild", i)
				}
			}
		})
	}
}

func TestRebuildReusesCapacity(t *testing.T) {
	c := NewCodec()
	r := rand.New(rand.NewPCG(3, 4))
	shards := block(r, 32, 4, 1400)
	if err := c.Encode(32, shards); err != nil {
		t.Fatal(err)
	}
	spare := make([]byte, 0, 1400)
	shards[5] = spare
	if err := c.Rebuild(32, shards); err != nil {
		t.Fatal(err)
	}
	if &shards[5][:1][0] != &spare[:1][0] {
		t.Error("rebuild allocated a shard although one with capacity was given")
	}
}

func TestShapeErrors(t *testing.T) {
	c := NewCodec()
	for _, shape := range [][2]int{{0, 4}, {32, 0}, {250, 7}} {
		shards := make([][]byte, shape[0]+shape[1])
		for i := range shards {
			shards[i] = make([]byte, 16)
		}
		if err := c.Encode(shape[0], shards); err == nil {
			t.Errorf("Encode shape %v: no error", shape)
		}
	}
}

// BenchmarkEncode measures computing 8 parity shards of a block of 32
// chunks of 1400 bytes (bytes/s counts the block's data).
func BenchmarkEncode(b *testing.B) {
	for _, p := range []int{2, 8} {
		b.Run(fmt.Sprintf("32+%d", p), func(b *testing.B) {
			c := NewCodec()
			shards := block(rand.New(rand.NewPCG(5, 6)), 32, p, 1400)
			b.SetBytes(32 * 1400)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Encode(32, shards); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRebuild measures rebuilding 1 and 4 lost data shards of a
// 32+8 block.
func BenchmarkRebuild(b *testing.B) {
	for _, lost := range []int{1, 4} {
		b.Run(fmt.Sprintf("lost%d", lost), func(b *testing.B) {
			c := NewCodec()
			shards := block(rand.New(rand.NewPCG(7, 8)), 32, 8, 1400)
			if err := c.Encode(32, shards); err != nil {
				b.Fatal(err)
			}
			work := make([][]byte, len(shards))
			b.SetBytes(32 * 1400)
			b.ReportAllocs()
			for b.Loop() {
				copy(work, shards)
				for i := 0; i < lost; i++ {
					work[i*7] = work[i*7][:0]
				}
				if err := c.Rebuild(32, work); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
