// Package fec is nackcast's forward error correction: Reed-Solomon parity
// over blocks of consecutive chunks of an object.
//
// An object of N chunks is cut into blocks of K chunks (the last block may
// be shorter). Each chunk is one data shard of ChunkSize bytes, the last
// chunk of the object zero-padded. For each block the sender can compute R
// parity shards (K+R ≤ 256); any K of the K+R shards of a block rebuild
// its data. Parity shard i of block b is the same bytes whichever sender
// computes it, so parity from the primary and from a backup mixes freely,
// as chunks do.
//
// The codes are github.com/klauspost/reedsolomon's; this package only
// adds the block geometry and a cache of encoders.
package fec

import (
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/reedsolomon"
)

// MaxShards is the most data plus parity shards of one block (GF(2^8)).
const MaxShards = 256

// ErrTooFew is returned when a block has too few shards to rebuild.
var ErrTooFew = errors.New("too few shards to rebuild the block")

// Geometry is the block layout of an object's chunks.
type Geometry struct {
	// Chunks is the object's chunk count.
	Chunks uint32
	// Block is K, the data chunks per block.
	Block int
}

// Blocks returns the number of blocks.
func (g Geometry) Blocks() uint32 {
	if g.Block <= 0 {
		return 0
	}
	return uint32((uint64(g.Chunks) + uint64(g.Block) - 1) / uint64(g.Block))
}

// Span returns the first chunk of block b and its data chunk count; the
// count is zero for a block past the end.
func (g Geometry) Span(b uint32) (first uint32, n int) {
	f := uint64(b) * uint64(g.Block)
	if g.Block <= 0 || f >= uint64(g.Chunks) {
		return 0, 0
	}
	return uint32(f), int(min(uint64(g.Block), uint64(g.Chunks)-f))
}

// BlockOf returns the block holding chunk i.
func (g Geometry) BlockOf(i uint32) uint32 { return i / uint32(g.Block) }

// Codec computes and consumes parity. It caches one Reed-Solomon encoder
// per shape (data, parity) and is safe for concurrent use.
type Codec struct {
	mu   sync.Mutex
	encs map[[2]int]reedsolomon.Encoder
}

// NewCodec returns an empty codec.
func NewCodec() *Codec { return &Codec{encs: make(map[[2]int]reedsolomon.Encoder)} }

func (c *Codec) encoder(data, parity int) (reedsolomon.Encoder, error) {
	if data < 1 || parity < 1 || data+parity > MaxShards {
		return nil, fmt.Errorf("fec shape %d+%d: need data ≥ 1, parity ≥ 1, sum ≤ %d", data, parity, MaxShards)
	}
	k := [2]int{data, parity}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.encs[k]; e != nil {
		return e, nil
	}
	e, err := reedsolomon.New(data, parity)
	if err != nil {
		return nil, fmt.Errorf("fec shape %d+%d: %w", data, parity, err)
	}
	c.encs[k] = e
	return e, nil
}

// Encode computes the parity shards of one block: shards holds the block's
// data shards followed by its parity shards, all of the same length (the
// shard size); the parity shards are overwritten.
func (c *Codec) Encode(data int, shards [][]byte) error {
	e, err := c.encoder(data, len(shards)-data)
	if err != nil {
		return err
	}
	return e.Encode(shards)
}

// Rebuild fills the missing data shards of one block. shards holds the
// block's data shards followed by its parity shards; a missing shard has
// length zero (with capacity for a shard, which is then used rather than
// allocating). It returns ErrTooFew when fewer than data shards are
// present.
func (c *Codec) Rebuild(data int, shards [][]byte) error {
	e, err := c.encoder(data, len(shards)-data)
	if err != nil {
		return err
	}
	have := 0
	for _, s := range shards {
		if len(s) > 0 {
			have++
		}
	}
	if have < data {
		return fmt.Errorf("%d of %d shards: %w", have, data, ErrTooFew)
	}
	if err := e.ReconstructData(shards); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	return nil
}
