package sender

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/nackcast/nackcast/pkg/fec"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/pktauth"
	"github.com/nackcast/nackcast/pkg/scheduler"
	"github.com/nackcast/nackcast/pkg/vecio"
	"github.com/nackcast/nackcast/pkg/wire"
)

// transmitter is the data plane loop: it starts the jobs the scheduler
// hands out, round-robins batches of DATA packets among them under one
// shared pacer, sends END when a job finishes, and announces manifests.
type transmitter struct {
	s    *Sender
	sock *mcast.Sender
	// sendErrLogged is when a transient send failure was last logged.
	sendErrLogged time.Time
	limiter       *rate.Limiter
	active        []*jobRunner
	rr            int

	// frame holds one batch of DATA packets back to back, each in a slot of
	// HeaderLen+ChunkSize bytes; iov points at their payload slots.
	frame  []byte
	iov    [][]byte
	vec    vecio.Vec
	ctrl   []byte
	ctrlDg [][][]byte

	// ctrlPkts are control packets (END, ANNOUNCE) waiting to go out
	// together in one batch (a small object's END no longer costs a
	// system call of its own); ctrlArena backs them and ctrlAt is when
	// the first was queued.
	ctrlPkts  [][]byte
	ctrlArena []byte
	ctrlAt    time.Time

	// codec and shards compute parity: shards holds one block's data
	// shards then its parity shards, each of the chunk size; encFor and
	// encBlock name the block whose parity shards hold.
	codec    *fec.Codec
	shards   [][]byte
	encFor   *jobRunner
	encBlock uint32

	// over is the packet trailer's length (0 without packet keys); sealers
	// authenticate the packets of the last two sender epochs (jobs started
	// before a takeover finish under their epoch).
	over    int
	sealers [2]*pktauth.Sealer

	ends         []pendingEnd
	nextAnnounce time.Time
	rateAt       time.Time // last adaptive rate update
}

type pendingEnd struct {
	due   time.Time
	pkt   []byte
	sched *scheduler.Scheduler // of the job it ends
}

// jobRunner walks the chunk ranges of one job.
type jobRunner struct {
	job       scheduler.Job
	sched     *scheduler.Scheduler // that started the job: a backup standing by replaces its scheduler
	ch        *channel
	f         *os.File
	ri        int    // index of the current range
	next      uint32 // next chunk to send
	lastChunk uint32 // last chunk put in the frame
	pi        int    // index of the current block of job.Parity
	pj        uint8  // parity shards of that block already sent
	hdr       wire.Header
	sent      jobSent // bytes sent, for the channel's counters
}

// dataDone reports whether every chunk of the job has been sent; its
// parity shards follow.
func (r *jobRunner) dataDone() bool { return r.ri >= len(r.job.Ranges) }

func (r *jobRunner) done() bool { return r.dataDone() && r.pi >= len(r.job.Parity) }

func newTransmitter(s *Sender) (*transmitter, error) {
	sock, err := mcast.NewSender(s.cfg.Multicast)
	if err != nil {
		return nil, fmt.Errorf("multicast sender: %w", err)
	}
	t := &transmitter{
		s:      s,
		sock:   sock,
		frame:  make([]byte, mcast.MaxSegments*(wire.HeaderLen+wire.ParityFixedLen+s.cfg.ChunkSize+s.cfg.Packet.Mode.Overhead())),
		codec:  fec.NewCodec(),
		iov:    make([][]byte, 0, mcast.MaxSegments),
		ctrl:   make([]byte, 0, wire.HeaderLen+wire.AnnounceFixedLen+wire.MaxChannelName),
		ctrlDg: make([][][]byte, 0, ctrlBatch),
	}
	if s.keys != nil {
		t.over = s.cfg.Packet.Mode.Overhead()
	}
	if s.cfg.Rate > 0 {
		// A bucket of 2 ms of traffic (at least two batches): fine-grained
		// enough not to overrun receivers' socket buffers, coarse enough
		// that the transmitter sleeps a few hundred times a second rather
		// than once per batch (timer granularity caps the rate otherwise).
		batch := mcast.MaxSegments * (s.cfg.ChunkSize + wire.HeaderLen)
		burst := max(2*batch, int(s.cfg.Rate/500))
		t.limiter = rate.NewLimiter(rate.Limit(s.cfg.Rate), burst)
		s.mu.Lock()
		s.limiter = t.limiter
		s.mu.Unlock()
	}
	s.txLog.Info("multicast transmitter", "gso", sock.GSO())
	return t, nil
}

func (t *transmitter) close() {
	for _, r := range t.active {
		r.f.Close()
	}
	t.sock.Close()
}

func (t *transmitter) run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := t.s.now()
		active := t.startJobs(now)
		t.dropStale()
		if err := t.sendControl(ctx, now, active); err != nil {
			return err
		}
		if len(t.active) == 0 {
			if err := t.flushCtrl(ctx); err != nil {
				return err
			}
			t.idle(ctx, timer, now, active)
			continue
		}
		if len(t.ctrlPkts) >= ctrlBatch || len(t.ctrlPkts) > 0 && time.Since(t.ctrlAt) >= ctrlDelay {
			if err := t.flushCtrl(ctx); err != nil {
				return err
			}
		}
		t.rr %= len(t.active)
		r := t.active[t.rr]
		if err := t.sendBatch(ctx, r); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, errSocket) {
				return err
			}
			t.s.txLog.Warn("multicast job aborted", "channel", r.ch.name, "path", r.job.Object.Path, "error", err)
			t.s.stats.JobsAborted.Add(1)
			t.remove(r, 0)
			continue
		}
		if r.done() {
			if err := t.finish(ctx, r); err != nil {
				return err
			}
			continue
		}
		t.rr++
	}
}

// idle waits for new work: a NACK, a manifest change, the scheduler's next
// eligible job, the next announce or END repeat.
func (t *transmitter) idle(ctx context.Context, timer *time.Timer, now time.Time, active bool) {
	next := now.Add(time.Second)
	if active {
		next = t.nextAnnounce
	}
	// Only an active sender starts pooled jobs: a handing-back backup
	// waking for them would spin (found by the simulator).
	t.s.mu.Lock()
	if w, ok := t.s.sched.Wake(); ok && active && w.Before(next) {
		next = w
	}
	t.s.mu.Unlock()
	for _, e := range t.ends {
		if e.due.Before(next) {
			next = e.due
		}
	}
	timer.Reset(max(next.Sub(now), 0))
	select {
	case <-ctx.Done():
	case <-t.s.wake:
	case <-t.s.announce:
		t.nextAnnounce = time.Time{}
	case <-timer.C:
	}
	if !timer.Stop() {
		select {
		case <-timer.C:
		default:
		}
	}
}

// startJobs asks the scheduler for jobs and opens their files. It returns
// whether the sender is active; a sender that is not active starts nothing.
func (t *transmitter) startJobs(now time.Time) bool {
	t.s.mu.Lock()
	if t.s.state != pb.SenderState_SENDER_STATE_ACTIVE {
		t.s.mu.Unlock()
		return false
	}
	sched := t.s.sched
	jobs := sched.Next(now)
	chans := make([]*channel, len(jobs))
	for i, j := range jobs {
		chans[i] = t.s.byID[j.Key.Channel]
	}
	epoch := t.s.epoch
	t.s.mu.Unlock()
	for i, j := range jobs {
		ch := chans[i]
		if ch == nil {
			t.abort(sched, j)
			continue
		}
		f, err := t.s.openObject(ch, &j.Object)
		if err != nil {
			t.s.txLog.Warn("cannot start multicast job", "channel", ch.name, "path", j.Object.Path, "error", err)
			t.s.stats.JobsAborted.Add(1)
			t.abort(sched, j)
			continue
		}
		if j.Pass == 1 && !j.Listed.IsZero() {
			t.s.firstPassWait.Store(int64(max(j.Started.Sub(j.Listed), 1)))
		}
		r := &jobRunner{job: j, sched: sched, ch: ch, f: f}
		if len(j.Ranges) > 0 {
			r.next = j.Ranges[0].First
		}
		r.hdr = wire.Header{
			Flags:      t.flags(j.Repair),
			Epoch:      epoch,
			Channel:    ch.id,
			Object:     j.Object.ID,
			ObjVersion: j.Object.Version,
		}
		t.active = append(t.active, r)
		t.s.txLog.Debug("multicast job started", "channel", ch.name, "path", j.Object.Path, "pass", j.Pass, "chunks", j.Ranges.Len())
	}
	return true
}

func (t *transmitter) flags(repair bool) wire.Flags {
	var f wire.Flags
	if t.s.cfg.Role == Backup {
		f |= wire.FlagBackup
	}
	if repair {
		f |= wire.FlagRepair
	}
	return f
}

func (t *transmitter) abort(sched *scheduler.Scheduler, j scheduler.Job) {
	t.s.mu.Lock()
	sched.Abort(j)
	t.s.mu.Unlock()
}

// dropStale aborts every job in hand that a scheduler since replaced
// started: a backup that stood by while it had jobs (the primary's signal
// came and the hand-back time ran out, or the primary was heard on the
// group), whether or not it has taken over again since, under a new epoch.
// Receivers NACK the rest from the active sender. Their END repeats go too.
func (t *transmitter) dropStale() {
	if len(t.active) == 0 {
		return
	}
	t.s.mu.Lock()
	cur := t.s.sched
	t.s.mu.Unlock()
	n := 0
	for i := 0; i < len(t.active); {
		if r := t.active[i]; r.sched != cur {
			t.remove(r, 0)
			n++
			continue
		}
		i++
	}
	if n == 0 {
		return
	}
	kept := t.ends[:0]
	for _, e := range t.ends {
		if e.sched == cur {
			kept = append(kept, e)
		}
	}
	t.ends = kept
	t.s.stats.JobsAborted.Add(uint64(n))
	t.s.txLog.Info("scheduler replaced (standing by or a new epoch): jobs in hand aborted", "jobs", n)
}

var errSocket = errors.New("multicast socket failed")

// transientSendErrors are what a send returns while the network is down or
// a firewall drops the traffic: the packets are lost, as on a lossy link
// (receivers NACK them later), and the sender goes on. Anything else is a
// broken socket and ends the transmitter.
var transientSendErrors = []error{syscall.EPERM, syscall.EACCES, syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN,
	syscall.ENETDOWN, syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.EHOSTDOWN, syscall.ECONNREFUSED, syscall.EADDRNOTAVAIL}

// sendFailed handles a failed send: a transient error is counted and
// logged (at most once a second), and the transmitter pauses a moment
// before it goes on; any other is errSocket.
func (t *transmitter) sendFailed(ctx context.Context, err error) error {
	transient := false
	for _, e := range transientSendErrors {
		transient = transient || errors.Is(err, e)
	}
	if !transient {
		return fmt.Errorf("%w: %w", errSocket, err)
	}
	t.s.stats.SendErrors.Add(1)
	if now := time.Now(); now.Sub(t.sendErrLogged) >= time.Second {
		t.sendErrLogged = now
		t.s.txLog.Warn("multicast send failed; packets lost, going on", "error", err, "failed_sends", t.s.stats.SendErrors.Load())
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(50 * time.Millisecond):
	}
	return nil
}

// sendBatch sends the next batch of r's job as DATA packets, paced: the
// chunks are read from the file straight into their packets' payload
// slots (one preadv per run of consecutive chunks) and the packets go out
// back to back in one send (one system call with UDP segmentation
// offload). A batch ends at the end of the object, so only its last
// packet can be shorter than the others.
func (t *transmitter) sendBatch(ctx context.Context, r *jobRunner) error {
	if r.dataDone() {
		return t.sendParity(ctx, r)
	}
	k, data, err := t.fill(r)
	if err != nil || k == 0 {
		return err
	}
	seg := wire.HeaderLen + int(r.job.Object.ChunkSize) + t.over
	size := (k-1)*seg + wire.HeaderLen + r.job.Object.ChunkLen(r.lastChunk) + t.over
	if err := t.pace(ctx, size); err != nil {
		return err
	}
	if err := t.sock.SendSegments(t.frame[:size], seg); err != nil {
		return t.sendFailed(ctx, err)
	}
	t.s.sent.Add(time.Now(), size)
	t.s.stats.PacketsSent.Add(uint64(k))
	t.s.stats.BytesSent.Add(uint64(size))
	t.s.stats.DataBytesSent.Add(uint64(data))
	r.count(size, data)
	return nil
}

// sendParity sends the next batch of r's parity shards as PARITY packets,
// paced, in one offloaded send: every PARITY packet has the same length.
func (t *transmitter) sendParity(ctx context.Context, r *jobRunner) error {
	k, err := t.fillParity(r)
	if err != nil || k == 0 {
		return err
	}
	seg := wire.HeaderLen + wire.ParityFixedLen + int(r.job.Object.ChunkSize) + t.over
	size := k * seg
	if err := t.pace(ctx, size); err != nil {
		return err
	}
	if err := t.sock.SendSegments(t.frame[:size], seg); err != nil {
		return t.sendFailed(ctx, err)
	}
	t.s.sent.Add(time.Now(), size)
	t.s.stats.PacketsSent.Add(uint64(k))
	t.s.stats.ParityPacketsSent.Add(uint64(k))
	t.s.stats.BytesSent.Add(uint64(size))
	r.count(size, 0)
	return nil
}

// fillParity lays the next parity shards of r's job into the frame as
// PARITY packets and returns how many. It computes each block's parity
// once, reading the block's chunks from the file.
func (t *transmitter) fillParity(r *jobRunner) (int, error) {
	obj := &r.job.Object
	cs := int(obj.ChunkSize)
	seg := wire.HeaderLen + wire.ParityFixedLen + cs + t.over
	maxK := min(mcast.MaxSegments, mcast.MaxSegmentBytes/seg, len(t.frame)/seg)
	fc := t.s.cfg.Scheduler.FEC
	g := fec.Geometry{Chunks: obj.Chunks, Block: fc.Block}
	k := 0
	for k < maxK && r.pi < len(r.job.Parity) {
		bp := r.job.Parity[r.pi]
		first, n := g.Span(bp.Block)
		if n < 1 || int(bp.First)+int(bp.Count) > fc.Parity {
			return 0, fmt.Errorf("parity %+v outside the code of %s: %w", bp, obj.Path, ErrChanged)
		}
		if t.encFor != r || t.encBlock != bp.Block {
			if err := t.encode(r, first, n, fc.Parity); err != nil {
				return 0, err
			}
		}
		hdr := r.hdr
		hdr.Type = wire.TypeParity
		hdr.Chunk = bp.Block
		hdr.PayloadLen = uint16(wire.ParityFixedLen + cs)
		for ; r.pj < bp.Count && k < maxK; r.pj++ {
			idx := bp.First + r.pj
			slot := t.frame[k*seg : (k+1)*seg]
			wire.PutHeader(slot, &hdr)
			wire.PutParity(slot[wire.HeaderLen:], wire.Parity{Block: uint8(fc.Block), Total: uint8(fc.Parity), Index: idx})
			copy(slot[wire.HeaderLen+wire.ParityFixedLen:], t.shards[n+int(idx)])
			if _, err := t.seal(slot[:seg-t.over]); err != nil {
				return 0, err
			}
			k++
		}
		if r.pj == bp.Count {
			r.pi++
			r.pj = 0
		}
	}
	return k, nil
}

// encode reads the n chunks of the block starting at chunk first into the
// shard buffers (the object's last chunk zero-padded) and computes the
// block's parity shards.
func (t *transmitter) encode(r *jobRunner, first uint32, n, parity int) error {
	t.encFor = nil // the shard buffers are about to change
	obj := &r.job.Object
	cs := int(obj.ChunkSize)
	if len(t.shards) < n+parity || (len(t.shards) > 0 && cap(t.shards[0]) < cs) {
		t.shards = make([][]byte, fec.MaxShards)
		for i := range t.shards {
			t.shards[i] = make([]byte, cs)
		}
	}
	shards := t.shards[:n+parity]
	t.iov = t.iov[:0]
	for i := range n {
		shards[i] = shards[i][:cs]
		l := obj.ChunkLen(first + uint32(i))
		clear(shards[i][l:])
		t.iov = append(t.iov, shards[i][:l])
	}
	for i := n; i < n+parity; i++ {
		shards[i] = shards[i][:cs]
	}
	if _, err := t.vec.ReadAt(r.f, t.iov, obj.Offset(first)); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("origin file shrank: %w", ErrChanged)
		}
		return err
	}
	if err := t.codec.Encode(n, shards); err != nil {
		return err
	}
	t.encFor, t.encBlock = r, first/uint32(t.s.cfg.Scheduler.FEC.Block)
	return nil
}

// seal appends the authentication trailer to the packet dg under the
// sealer of the packet's epoch, in place when dg's capacity has room for
// it (the frame's slots do), and returns the sealed datagram. It does
// nothing without packet keys.
func (t *transmitter) seal(dg []byte) ([]byte, error) {
	if t.over == 0 {
		return dg, nil
	}
	epoch := binary.BigEndian.Uint64(dg[8:16])
	var s *pktauth.Sealer
	for _, c := range t.sealers {
		if c != nil && c.Epoch() == epoch {
			s = c
		}
	}
	if s == nil {
		var err error
		if s, err = pktauth.NewSealer(t.s.keys, t.s.cfg.Packet.Mode, epoch); err != nil {
			return nil, err
		}
		t.sealers[1], t.sealers[0] = t.sealers[0], s
	}
	out, err := s.Seal(dg)
	if err != nil {
		return nil, fmt.Errorf("seal packet: %w", err)
	}
	return out, nil
}

// fill lays the next packets of r's job into the frame and returns how
// many, with their content bytes. It does not allocate.
func (t *transmitter) fill(r *jobRunner) (k, data int, err error) {
	obj := &r.job.Object
	seg := wire.HeaderLen + int(obj.ChunkSize) + t.over
	maxK := min(mcast.MaxSegments, mcast.MaxSegmentBytes/seg, len(t.frame)/seg)
	for k < maxK && !r.dataDone() {
		rg := r.job.Ranges[r.ri]
		end := uint32(rg.End())
		n := min(uint32(maxK-k), end-r.next)
		t.iov = t.iov[:0]
		for i := uint32(0); i < n; i++ {
			idx := r.next + i
			l := obj.ChunkLen(idx)
			slot := t.frame[(k+int(i))*seg:]
			r.hdr.Type = wire.TypeData
			r.hdr.Chunk = idx
			r.hdr.PayloadLen = uint16(l)
			wire.PutHeader(slot, &r.hdr)
			t.iov = append(t.iov, slot[wire.HeaderLen:wire.HeaderLen+l])
			data += l
		}
		if _, err := t.vec.ReadAt(r.f, t.iov, obj.Offset(r.next)); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, 0, fmt.Errorf("origin file shrank: %w", ErrChanged)
			}
			return 0, 0, err
		}
		if t.over > 0 {
			for i := uint32(0); i < n; i++ {
				slot := t.frame[(k+int(i))*seg:]
				if _, err := t.seal(slot[:wire.HeaderLen+obj.ChunkLen(r.next+i)]); err != nil {
					return 0, 0, err
				}
			}
		}
		k += int(n)
		r.lastChunk = r.next + n - 1
		r.next += n
		if r.next >= end {
			r.ri++
			if !r.dataDone() {
				r.next = r.job.Ranges[r.ri].First
			}
		}
	}
	return k, data, nil
}

func (t *transmitter) pace(ctx context.Context, n int) error {
	if t.limiter == nil {
		return nil
	}
	if now := time.Now(); now.Sub(t.rateAt) >= 100*time.Millisecond {
		// Let the adaptive rate grow back while no overrun is reported.
		t.rateAt = now
		t.s.mu.Lock()
		if t.s.rateCtl != nil {
			t.s.applyRate(t.s.rateCtl.Rate(t.s.now()))
		}
		t.s.mu.Unlock()
	}
	return t.limiter.WaitN(ctx, min(n, t.limiter.Burst()))
}

// finish sends the END of a completed job, schedules its repeats, and
// tells the scheduler that the pass is done.
func (t *transmitter) finish(ctx context.Context, r *jobRunner) error {
	t.s.mu.Lock()
	t.s.jobSeq++
	seq := t.s.jobSeq
	t.s.mu.Unlock()
	pkt := wire.AppendEnd(nil, r.hdr, wire.End{ChunkCount: r.job.Object.Chunks, Pass: r.job.Pass, Size: r.job.Object.Size, Seq: seq})
	if err := t.sendCtrl(ctx, pkt); err != nil {
		return err
	}
	now := t.s.now()
	for i := 1; i < t.s.cfg.EndRepeats; i++ {
		t.ends = append(t.ends, pendingEnd{due: now.Add(time.Duration(i) * t.s.cfg.EndSpacing), pkt: pkt, sched: r.sched})
	}
	t.remove(r, seq)
	t.s.stats.Passes.Add(1)
	if r.job.Repair {
		t.s.stats.RepairPasses.Add(1)
	}
	t.s.txLog.Debug("multicast job done", "channel", r.ch.name, "path", r.job.Object.Path, "pass", r.job.Pass)
	return nil
}

// remove drops r from the active jobs. A job that finished has its END's
// sequence number seq and its pass counts; an aborted one has seq 0.
func (t *transmitter) remove(r *jobRunner, seq uint64) {
	r.f.Close()
	r.ended(seq > 0)
	if t.encFor == r {
		t.encFor = nil
	}
	for i, a := range t.active {
		if a == r {
			t.active = append(t.active[:i], t.active[i+1:]...)
			break
		}
	}
	t.s.mu.Lock()
	if seq > 0 {
		r.sched.Done(r.job, t.s.now(), seq)
		t.s.passesDirty = true
	} else {
		r.sched.Abort(r.job)
	}
	t.s.jobsDrained(t.s.now())
	t.s.mu.Unlock()
}

// sendControl sends END repeats that are due and, when active, the
// periodic ANNOUNCE of every channel.
func (t *transmitter) sendControl(ctx context.Context, now time.Time, active bool) error {
	kept := t.ends[:0]
	for _, e := range t.ends {
		// An END repeat further ahead than any is ever scheduled was set
		// under a clock that has since jumped back: send it now.
		if e.due.After(now) && e.due.Sub(now) <= time.Duration(t.s.cfg.EndRepeats)*t.s.cfg.EndSpacing {
			kept = append(kept, e)
			continue
		}
		if err := t.sendCtrl(ctx, e.pkt); err != nil {
			return err
		}
	}
	clear(t.ends[len(kept):])
	t.ends = kept
	select {
	case <-t.s.announce:
		t.nextAnnounce = time.Time{}
	default:
	}
	if t.nextAnnounce.Sub(now) > t.s.cfg.AnnounceInterval {
		t.nextAnnounce = now // the clock jumped back
	}
	if !active || now.Before(t.nextAnnounce) {
		return nil
	}
	t.nextAnnounce = now.Add(t.s.cfg.AnnounceInterval)
	t.s.mu.Lock()
	epoch, seq := t.s.epoch, t.s.jobSeq
	t.s.mu.Unlock()
	for _, ch := range t.s.channelList() {
		h := wire.Header{Flags: t.flags(false), Epoch: epoch, Channel: ch.id}
		pkt, err := wire.AppendAnnounce(t.ctrl[:0], h, wire.Announce{ManifestVersion: ch.m.Version, ObjectCount: uint32(len(ch.m.Objects)), Seq: seq, Name: []byte(ch.name)})
		if err != nil {
			return err
		}
		if err := t.sendCtrl(ctx, pkt); err != nil {
			return err
		}
	}
	return nil
}

// ctrlBatch and ctrlDelay bound how many control packets wait to go out
// together, and for how long.
const (
	ctrlBatch = 64
	ctrlDelay = time.Millisecond
)

// sendCtrl queues a control packet (sealed with packet keys); flushCtrl
// sends the queue. Nothing in pkt is kept.
func (t *transmitter) sendCtrl(_ context.Context, pkt []byte) error {
	start := len(t.ctrlArena)
	t.ctrlArena = append(t.ctrlArena, pkt...)
	if t.over > 0 {
		out, err := t.seal(t.ctrlArena[start:])
		if err != nil {
			t.ctrlArena = t.ctrlArena[:start]
			return err
		}
		// Sealing appends the trailer, in place when there is room.
		t.ctrlArena = append(t.ctrlArena[:start], out...)
	}
	if len(t.ctrlPkts) == 0 {
		t.ctrlAt = time.Now()
	}
	// A later append may move the arena: the packets queued so far keep
	// the array they were written to.
	t.ctrlPkts = append(t.ctrlPkts, t.ctrlArena[start:len(t.ctrlArena):len(t.ctrlArena)])
	return nil
}

// flushCtrl sends the queued control packets, paced, in one batch.
func (t *transmitter) flushCtrl(ctx context.Context) error {
	if len(t.ctrlPkts) == 0 {
		return nil
	}
	n := 0
	for _, p := range t.ctrlPkts {
		n += len(p)
	}
	if err := t.pace(ctx, n); err != nil {
		return err
	}
	t.ctrlDg = t.ctrlDg[:0]
	for i := range t.ctrlPkts {
		t.ctrlDg = append(t.ctrlDg, t.ctrlPkts[i:i+1])
	}
	sent, err := t.sock.Send(t.ctrlDg)
	for _, p := range t.ctrlPkts[:sent] {
		t.s.stats.PacketsSent.Add(1)
		t.s.stats.BytesSent.Add(uint64(len(p)))
	}
	clear(t.ctrlDg)
	clear(t.ctrlPkts)
	t.ctrlDg, t.ctrlPkts, t.ctrlArena = t.ctrlDg[:0], t.ctrlPkts[:0], t.ctrlArena[:0]
	if err != nil {
		return t.sendFailed(ctx, err)
	}
	return nil
}
