package receiver

import (
	"github.com/nackcast/nackcast/pkg/fec"
	"github.com/nackcast/nackcast/pkg/repair"
	"github.com/nackcast/nackcast/pkg/wire"
)

// heldBlock is the parity a receiver holds for one block of an object
// until it has enough shards to rebuild the block's missing chunks.
type heldBlock struct {
	k, total uint8
	shards   [][]byte // by parity index; nil when not held
	count    int
}

// handleParity files one PARITY packet: it keeps the shard while the block
// lacks chunks and rebuilds them as soon as the chunks and shards held
// make up the block. Called with r.mu held, after the pending run of
// chunks was written.
func (r *Receiver) handleParity(ch *chanState, o *objState, h *wire.Header, payload []byte) {
	p, shard, err := wire.ParseParity(payload)
	if err != nil {
		r.stats.PacketsMalformed.Add(1)
		return
	}
	g := fec.Geometry{Chunks: o.obj.Chunks, Block: int(p.Block)}
	first, n := g.Span(h.Chunk)
	if n == 0 || len(shard) != int(o.obj.ChunkSize) {
		r.stats.PacketsForeign.Add(1)
		r.dataLog.Trace("parity outside the object", "path", o.obj.Path, "block", h.Chunk, "len", len(shard))
		return
	}
	if o.state == repair.Complete || o.busy {
		r.stats.ParityUnused.Add(1)
		return
	}
	part, err := r.ensurePartial(ch, o)
	if err != nil {
		r.storageError("open partial", ch.name, o.obj.Path, err)
		return
	}
	held := part.HeldIn(first, n)
	if held == n {
		r.stats.ParityUnused.Add(1)
		return
	}
	hb := o.parity[h.Chunk]
	if hb != nil && (hb.k != p.Block || hb.total != p.Total) {
		// Another code for the block (a sender configured otherwise):
		// shards of the two do not mix.
		r.dropBlock(o, h.Chunk)
		hb = nil
	}
	if hb != nil && hb.shards[p.Index] != nil {
		r.stats.ParityUnused.Add(1)
		return
	}
	if r.parityBytes+int64(len(shard)) > r.cfg.ParityMemory {
		r.stats.ParityUnused.Add(1)
		return
	}
	if hb == nil {
		hb = &heldBlock{k: p.Block, total: p.Total, shards: make([][]byte, p.Total)}
		if o.parity == nil {
			o.parity = make(map[uint32]*heldBlock)
		}
		o.parity[h.Chunk] = hb
	}
	buf := r.parityBuf(len(shard))
	copy(buf, shard)
	hb.shards[p.Index] = buf
	hb.count++
	r.parityBytes += int64(len(buf))
	r.stats.ParityReceived.Add(1)
	if held+hb.count >= n {
		r.rebuild(ch, o, h.Chunk)
	}
}

// rebuildTouched tries to rebuild the blocks with held parity among the n
// chunks from first, which were just written. Called with r.mu held.
func (r *Receiver) rebuildTouched(ch *chanState, o *objState, first uint32, n int) {
	if len(o.parity) == 0 || o.partial == nil {
		return
	}
	// Every block of an object has the sender's block size; a block held
	// under another one is left to its next parity packet.
	var k uint8
	for _, hb := range o.parity {
		k = hb.k
		break
	}
	g := fec.Geometry{Chunks: o.obj.Chunks, Block: int(k)}
	for b := g.BlockOf(first); b <= g.BlockOf(first+uint32(n)-1); b++ {
		hb := o.parity[b]
		if hb == nil || hb.k != k {
			continue
		}
		if o.partial == nil {
			return // committed by a rebuild
		}
		bf, bn := g.Span(b)
		if held := o.partial.HeldIn(bf, bn); held == bn {
			r.dropBlock(o, b)
		} else if held+hb.count >= bn {
			r.rebuild(ch, o, b)
		}
	}
}

// rebuild recovers the missing chunks of block b of o from the chunks held
// on disk and the parity held in memory, writes them, and frees the
// parity. Called with r.mu held and o's partial open.
func (r *Receiver) rebuild(ch *chanState, o *objState, b uint32) {
	hb := o.parity[b]
	part := o.partial
	g := fec.Geometry{Chunks: o.obj.Chunks, Block: int(hb.k)}
	first, n := g.Span(b)
	cs := int(o.obj.ChunkSize)
	if len(r.fecShards) < n || cap(r.fecShards[0]) < cs {
		r.fecShards = make([][]byte, fec.MaxShards)
		for i := range r.fecShards {
			r.fecShards[i] = make([]byte, cs)
		}
		r.fecWork = make([][]byte, fec.MaxShards)
	}
	// work holds the block's shards for the codec: the owned buffers of
	// fecShards for data (empty, with capacity, where a chunk is lost),
	// then the held parity.
	work := r.fecWork[:n+int(hb.total)]
	lost := 0
	for i := range n {
		idx := first + uint32(i)
		buf := r.fecShards[i][:cs]
		if !part.Has(idx) {
			work[i] = buf[:0]
			lost++
			continue
		}
		l := o.obj.ChunkLen(idx)
		clear(buf[l:])
		if err := part.ReadChunk(idx, buf[:l]); err != nil {
			r.storageError("read chunk for rebuild", ch.name, o.obj.Path, err)
			r.dropBlock(o, b)
			return
		}
		work[i] = buf
	}
	copy(work[n:], hb.shards)
	err := r.codec.Rebuild(n, work)
	clear(work[n:])
	if err != nil {
		r.dataLog.Warn("cannot rebuild block from parity", "path", o.obj.Path, "block", b, "error", err)
		r.dropBlock(o, b)
		return
	}
	one := r.oneBuf[:1]
	var wrote int
	for i := range n {
		idx := first + uint32(i)
		if part.Has(idx) {
			continue
		}
		one[0] = work[i][:o.obj.ChunkLen(idx)]
		w, err := part.WriteChunks(idx, one)
		if err != nil {
			r.storageError("write rebuilt chunk", ch.name, o.obj.Path, err)
			break
		}
		wrote += w
	}
	one[0] = nil
	r.dropBlock(o, b)
	r.stats.ChunksRebuilt.Add(uint64(lost))
	r.stats.MulticastBytes.Add(uint64(wrote))
	o.held += uint64(wrote)
	if part.Full() {
		r.enqueueCommit(ch, o)
	}
}

// parityBuf returns a buffer of n bytes for a parity shard, reusing a freed
// one when it fits.
func (r *Receiver) parityBuf(n int) []byte {
	if k := len(r.parityFree); k > 0 {
		b := r.parityFree[k-1]
		r.parityFree = r.parityFree[:k-1]
		if cap(b) >= n {
			return b[:n]
		}
	}
	return make([]byte, n)
}

// maxParityFree caps the freed parity buffers kept for reuse.
const maxParityFree = 1024

// dropBlock frees the parity held for block b of o.
func (r *Receiver) dropBlock(o *objState, b uint32) {
	hb := o.parity[b]
	if hb == nil {
		return
	}
	for _, s := range hb.shards {
		if s == nil {
			continue
		}
		r.parityBytes -= int64(len(s))
		if len(r.parityFree) < maxParityFree {
			r.parityFree = append(r.parityFree, s)
		}
	}
	delete(o.parity, b)
	if len(o.parity) == 0 {
		o.parity = nil
	}
}

// dropParity frees every block of parity held for o.
func (r *Receiver) dropParity(o *objState) {
	for b := range o.parity {
		r.dropBlock(o, b)
	}
}
