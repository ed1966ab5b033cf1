package scheduler

import (
	"fmt"
	"maps"
	"slices"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/fec"
)

// FEC configures forward error correction. A zero Block disables it.
type FEC struct {
	// Block is K, the data chunks per Reed-Solomon block.
	Block int
	// Parity is R, the parity shards each block's code has; repair passes
	// and proactive parity draw distinct shards from them.
	Parity int
	// Proactive is the parity shards per block a first pass sends after
	// the object's chunks (shards 0 to Proactive−1), so that receivers
	// rebuild light losses without a NACK.
	Proactive int
}

// Enabled reports whether parity is in use.
func (f FEC) Enabled() bool { return f.Block > 0 }

// Validate reports every invalid field at once.
func (f FEC) Validate() []error {
	if f.Block == 0 && f.Parity == 0 && f.Proactive == 0 {
		return nil
	}
	var errs []error
	if f.Block < 1 || f.Parity < 1 || f.Block+f.Parity > fec.MaxShards {
		errs = append(errs, fmt.Errorf("fec-block %d, fec-parity %d: need both ≥ 1 and a sum ≤ %d (or both 0 to disable)", f.Block, f.Parity, fec.MaxShards))
	}
	if f.Proactive < 0 || f.Proactive > f.Parity {
		errs = append(errs, fmt.Errorf("fec-proactive %d: must be in [0, fec-parity %d]", f.Proactive, f.Parity))
	}
	return errs
}

// BlockParity asks for Count parity shards of block Block, from shard
// index First.
type BlockParity struct {
	Block uint32
	First uint8
	Count uint8
}

// byBlock calls fn for each piece of l cut at block boundaries, in
// order: the block and the piece's chunks. Chunks past the object end the
// walk (the caller validates ranges).
func byBlock(l chunks.List, g fec.Geometry, fn func(b uint32, piece chunks.Range)) {
	for _, r := range l {
		for i := uint64(r.First); i < r.End(); {
			b := g.BlockOf(uint32(i))
			first, n := g.Span(b)
			if n == 0 {
				return
			}
			end := min(r.End(), uint64(first)+uint64(n))
			fn(b, chunks.Range{First: uint32(i), Count: uint32(end - i)})
			i = end
		}
	}
}

// mergeParity records, per block, the most chunks one NACK lacks: a
// parity shard rebuilds any one lost chunk of its block, so that many
// shards serve every receiver whose NACK merged into the pass.
func (o *object) mergeParity(missing chunks.List, block int) {
	if o.blockMiss == nil {
		o.blockMiss = make(map[uint32]uint32)
	}
	lacks := make(map[uint32]uint32)
	byBlock(missing, fec.Geometry{Chunks: o.obj.Chunks, Block: block}, func(b uint32, p chunks.Range) { lacks[b] += p.Count })
	for b, n := range lacks {
		o.blockMiss[b] = max(o.blockMiss[b], n)
	}
}

// planParity splits a repair pass over ranges into the chunks to send as
// they are and the blocks to repair with parity instead: a block gets
// parity when fewer shards than the chunks asked of it serve every NACK
// and its code has that many shards left unsent. It records the shards
// used in o.parityNext. A block of one chunk never gets parity.
func (o *object) planParity(ranges chunks.List, cfg FEC) (chunks.List, []BlockParity) {
	if len(o.blockMiss) == 0 {
		return ranges, nil
	}
	g := fec.Geometry{Chunks: o.obj.Chunks, Block: cfg.Block}
	asked := make(map[uint32]uint32, len(o.blockMiss))
	byBlock(ranges, g, func(b uint32, p chunks.Range) { asked[b] += p.Count })
	var par []BlockParity
	use := make(map[uint32]bool)
	for _, b := range slices.Sorted(maps.Keys(o.blockMiss)) {
		m := o.blockMiss[b]
		next := uint32(cfg.Proactive)
		if o.parityNext != nil {
			if v, ok := o.parityNext[b]; ok {
				next = uint32(v)
			}
		}
		if m == 0 || m >= asked[b] || next+m > uint32(cfg.Parity) {
			continue
		}
		par = append(par, BlockParity{Block: b, First: uint8(next), Count: uint8(m)})
		use[b] = true
		if o.parityNext == nil {
			o.parityNext = make(map[uint32]uint8)
		}
		o.parityNext[b] = uint8(next + m)
	}
	if len(par) == 0 {
		return ranges, nil
	}
	var data []chunks.Range
	byBlock(ranges, g, func(b uint32, p chunks.Range) {
		if !use[b] {
			data = append(data, p)
		}
	})
	return chunks.Normalize(data), par
}

// proactive returns the parity a first pass of o sends: the first
// cfg.Proactive shards of every block of more than one chunk.
func proactive(o *object, cfg FEC) []BlockParity {
	if !cfg.Enabled() || cfg.Proactive == 0 {
		return nil
	}
	g := fec.Geometry{Chunks: o.obj.Chunks, Block: cfg.Block}
	nb := g.Blocks()
	par := make([]BlockParity, 0, nb)
	for b := uint32(0); b < nb; b++ {
		if _, n := g.Span(b); n > 1 {
			par = append(par, BlockParity{Block: b, Count: uint8(cfg.Proactive)})
		}
	}
	return par
}
