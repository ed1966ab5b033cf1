package receiver

import (
	"bytes"
	"context"
	"errors"
	"net"
	"time"

	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/ratectl"
	"github.com/nackcast/nackcast/pkg/repair"
	"github.com/nackcast/nackcast/pkg/wire"
)

// rxQueue is how many read batches may wait for the writer: the socket
// reader goes on reading while the writer waits on the disk or the lock
// (a few megabytes; 16 MiB with GRO's 64 KiB buffers).
const rxQueue = 16

// rxBatch is one read handed from recvLoop to fileLoop.
type rxBatch struct {
	b       *mcast.Batch
	overrun bool // the kernel dropped datagrams before this read
}

// recvLoop reads the multicast socket and hands each read to fileLoop,
// which files it. It never waits on the disk or on the receiver's lock:
// only on the socket, or on fileLoop when rxQueue reads wait already. It
// measures the drain rate and the buffers' fill (the socket's, or the
// queue's when that is fuller) and asks feedbackLoop to report them when
// the receiver falls behind.
func (r *Receiver) recvLoop(ctx context.Context, sock *mcast.Receiver) {
	free := make(chan *mcast.Batch, rxQueue)
	for range rxQueue {
		free <- sock.NewBatch()
	}
	work := make(chan rxBatch, rxQueue)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.fileLoop(work, free)
	}()
	defer func() {
		close(work)
		<-done
	}()
	var gate ratectl.FeedbackGate
	var fillAt time.Time
	for {
		var b *mcast.Batch
		select {
		case b = <-free:
		case <-ctx.Done():
			return
		}
		if err := sock.ReadInto(b); err != nil {
			free <- b
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			r.dataLog.Error("multicast read failed", "error", err)
			continue
		}
		batch := b.Datagrams
		r.stats.PacketsReceived.Add(uint64(len(batch)))
		overrun := false
		if d, ok := sock.Drops(); ok && uint64(d) != r.stats.PacketsOverflow.Load() {
			// The kernel dropped datagrams: tell the sender at once, so
			// that it slows down.
			r.stats.PacketsOverflow.Store(uint64(d))
			overrun = true
		}
		var read int
		for _, d := range batch {
			read += len(d)
		}
		r.stats.BytesRead.Add(uint64(read))
		now := time.Now()
		r.drain.Add(now, read)
		var sockFill, queueFill float64
		if now.Sub(fillAt) >= fillEvery || overrun {
			fillAt = now
			sockFill, _ = sock.QueueFill()
			queueFill = float64(len(work)) / rxQueue
		}
		if fill := max(sockFill, queueFill); gate.Due(now, fill, overrun) {
			// The stage that falls behind says what the receiver takes:
			// the reader, saturated while its socket holds a backlog, at
			// its pace; the filing goroutine at its pace while busy (a
			// stall of a few milliseconds is not its capacity).
			rate := r.drain.Rate()
			if queueFill > sockFill {
				rate = r.filed.Rate()
			}
			select {
			case r.feedback <- socketReport{fill: fill, rate: rate}:
			default: // a report is on its way
			}
		}
		work <- rxBatch{b: b, overrun: overrun}
	}
}

// fileLoop files the reads recvLoop hands it, then gives their batches
// back: DATA into its partial object, END as a prompt to NACK, ANNOUNCE
// as a prompt to refetch the manifest. Every packet that fails to parse
// or does not belong to a subscribed channel, a known object and its
// current version is counted and dropped.
func (r *Receiver) fileLoop(work <-chan rxBatch, free chan<- *mcast.Batch) {
	run := chunkRun{bufs: make([][]byte, 0, mcast.MaxBatch)}
	for rx := range work {
		busy := r.file(rx, &run)
		n := 0
		for _, d := range rx.b.Datagrams {
			n += len(d)
		}
		r.filed.Add(busy, n)
		free <- rx.b
	}
}

// file files one read and returns the time it worked on it, the wait for
// the lock left out (another goroutine's work is not this one's pace).
func (r *Receiver) file(rx rxBatch, run *chunkRun) time.Duration {
	batch := rx.b.Datagrams
	if r.diskFull.Load() {
		r.stats.PacketsPaused.Add(uint64(len(batch)))
		return 0
	}
	r.mu.Lock()
	start := time.Now()
	defer r.mu.Unlock()
	for _, b := range batch {
		if r.loss() {
			r.stats.PacketsInjected.Add(1)
			continue
		}
		if r.opener != nil {
			var err error
			if b, err = r.opener.Open(b); err != nil {
				r.stats.PacketsUnauthenticated.Add(1)
				continue
			}
		}
		r.handlePacket(b, run)
	}
	r.flush(run)
	if rx.overrun {
		now := r.now()
		for _, ch := range r.channels {
			ch.core.Kick(now)
			r.poke(ch)
		}
	}
	return time.Since(start)
}

// chunkRun collects consecutive chunks of one object from a batch, to be
// written with one vectored write. The payloads alias the batch's
// buffers: a run is flushed before the batch is given back.
type chunkRun struct {
	ch    *chanState
	o     *objState
	first uint32
	bufs  [][]byte
}

// flush writes the pending run. Called with r.mu held.
func (r *Receiver) flush(run *chunkRun) {
	if len(run.bufs) == 0 {
		return
	}
	o := run.o
	defer func() { run.bufs = run.bufs[:0] }()
	if o.state == repair.Complete || o.busy || run.ch.objs[o.obj.ID] != o {
		// Completed (or replaced) by an earlier run of this batch.
		r.stats.PacketsDuplicate.Add(uint64(len(run.bufs)))
		return
	}
	p, err := r.ensurePartial(run.ch, o)
	if err != nil {
		r.storageError("open partial", run.ch.name, o.obj.Path, err)
		return
	}
	n, err := p.WriteChunks(run.first, run.bufs)
	if err != nil {
		r.storageError("write chunks", run.ch.name, o.obj.Path, err)
	}
	var sum int
	for _, b := range run.bufs {
		sum += len(b)
	}
	if dup := sum - n; dup > 0 {
		// Held already: count whole duplicate chunks.
		r.stats.PacketsDuplicate.Add(uint64(dup / int(o.obj.ChunkSize)))
	}
	r.stats.MulticastBytes.Add(uint64(n))
	o.held += uint64(n)
	if n > 0 && p.Full() {
		r.enqueueCommit(run.ch, o)
		return
	}
	if n > 0 && o.parity != nil {
		r.rebuildTouched(run.ch, o, run.first, len(run.bufs))
	}
}

// handlePacket files one datagram. Called with r.mu held.
func (r *Receiver) handlePacket(b []byte, run *chunkRun) {
	h, payload, err := wire.Parse(b)
	if err != nil {
		r.stats.PacketsMalformed.Add(1)
		r.dataLog.Trace("malformed packet", "error", err, "len", len(b))
		return
	}
	ch := r.byID[h.Channel]
	if ch == nil {
		r.stats.PacketsForeign.Add(1)
		return
	}
	if h.Type != wire.TypeData {
		r.flush(run)
	}
	switch h.Type {
	case wire.TypeAnnounce:
		a, err := wire.ParseAnnounce(payload)
		if err != nil {
			r.stats.PacketsMalformed.Add(1)
			return
		}
		if !bytes.Equal(a.Name, []byte(ch.name)) {
			r.stats.PacketsForeign.Add(1)
			return
		}
		r.advanceHorizon(h.Epoch, a.Seq)
		if (ch.m == nil || a.ManifestVersion != ch.m.Version) && (ch.held == nil || ch.held.m.Version != a.ManifestVersion) && a.ManifestVersion != ch.declined {
			if !ch.refetch || ch.announced != a.ManifestVersion {
				ch.refetch = true
				ch.announced = a.ManifestVersion
				r.poke(ch)
			}
		}
	case wire.TypeData:
		o := r.objectOf(ch, &h)
		if o == nil {
			return
		}
		r.countEpoch(&h)
		if o.state == repair.Complete || o.busy {
			r.stats.PacketsDuplicate.Add(1)
			return
		}
		if len(payload) != o.obj.ChunkLen(h.Chunk) {
			r.stats.PacketsForeign.Add(1)
			r.dataLog.Trace("chunk of the wrong length", "path", o.obj.Path, "chunk", h.Chunk, "len", len(payload))
			return
		}
		if len(run.bufs) > 0 && (run.o != o || run.first+uint32(len(run.bufs)) != h.Chunk) {
			r.flush(run)
		}
		if len(run.bufs) == 0 {
			run.ch, run.o, run.first = ch, o, h.Chunk
		}
		run.bufs = append(run.bufs, payload)
	case wire.TypeParity:
		o := r.objectOf(ch, &h)
		if o == nil {
			return
		}
		r.countEpoch(&h)
		r.handleParity(ch, o, &h, payload)
	case wire.TypeEnd:
		e, err := wire.ParseEnd(payload)
		if err != nil {
			r.stats.PacketsMalformed.Add(1)
			return
		}
		r.advanceHorizon(h.Epoch, e.Seq)
		o := r.objectOf(ch, &h)
		if o == nil || o.state == repair.Complete || o.busy {
			return
		}
		ch.core.OnEnd(r.now())
		r.poke(ch)
	}
}

// objectOf returns the object a DATA or END packet is for, or nil (counted
// as foreign) when the channel has no manifest yet, the object is unknown,
// or the version is not the manifest's.
func (r *Receiver) objectOf(ch *chanState, h *wire.Header) *objState {
	if ch.m == nil {
		// A pass is under way and this receiver cannot file it yet:
		// fetch the manifest now rather than at the next retry.
		r.stats.PacketsForeign.Add(1)
		if !ch.refetch {
			ch.refetch = true
			r.poke(ch)
		}
		return nil
	}
	o := ch.objs[h.Object]
	if o == nil || o.obj.Version != h.ObjVersion {
		r.stats.PacketsForeign.Add(1)
		return nil
	}
	return o
}

// advanceHorizon records that every job of epoch up to seq has been read.
// Packets from another epoch (a backup taking over, a restarted primary)
// start the horizon over. Called with r.mu held.
func (r *Receiver) advanceHorizon(epoch, seq uint64) {
	if epoch != r.horizonEpoch {
		r.horizonEpoch, r.horizon = epoch, seq
		return
	}
	r.horizon = max(r.horizon, seq)
}

// countEpoch counts an accepted DATA packet under its sender epoch, in a
// table bounded by repair.MaxEpochs (guarantee R1). Called with r.mu held.
func (r *Receiver) countEpoch(h *wire.Header) {
	backup := h.Flags&wire.FlagBackup != 0
	before := r.epochs.Forgotten()
	if !r.epochs.Count(h.Epoch, backup, r.now()) {
		return
	}
	if r.epochs.Forgotten() > before {
		r.stats.EpochsForgotten.Add(1)
		r.dataLog.Debug("packets from a new sender epoch", "epoch", h.Epoch, "backup", backup)
		return
	}
	r.dataLog.Info("packets from a new sender epoch", "epoch", h.Epoch, "backup", backup)
}
