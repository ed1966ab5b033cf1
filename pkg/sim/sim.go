package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
)

// content is what an origin file holds: the simulation never moves real
// bytes. Its digest stands for the SHA-256 of the bytes; a chunk carries
// a tag derived from the digest and the chunk size it was cut with.
type content struct {
	sha  [32]byte
	size uint64
}

func makeContent(path string, gen uint64, size uint64) content {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], gen)
	return content{sha: sha256.Sum256(append([]byte(path+"\x00"), b[:]...)), size: size}
}

// chunkTag identifies the bytes of a chunk: content digest and chunk size.
func chunkTag(sha [32]byte, chunkSize uint32) uint64 {
	return binary.BigEndian.Uint64(sha[:8]) ^ uint64(chunkSize)<<32
}

// origin is a sender's origin directory for the channel. emptyScans makes
// the next scans see an empty directory (an unmounted volume).
type origin struct {
	files      map[string]content
	emptyScans int
}

func (o *origin) clone() *origin {
	c := &origin{files: make(map[string]content, len(o.files))}
	for k, v := range o.files {
		c.files[k] = v
	}
	return c
}

func (o *origin) paths() []string {
	ps := make([]string, 0, len(o.files))
	for p := range o.files {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}

// Packet types, as in pkg/wire.
const (
	ptData = iota + 1
	ptEnd
	ptAnnounce
)

// packet is one multicast datagram: the fields of the pkg/wire header the
// protocol uses, and the END and ANNOUNCE payloads.
type packet struct {
	typ     uint8
	backup  bool // wire.FlagBackup
	from    int  // sending host (for the link's order and loss)
	epoch   uint64
	obj     uint64
	ver     uint64
	chunk   uint32
	tag     uint64 // DATA: the chunk's bytes
	size    int    // bytes on the wire
	seq     uint64 // END, ANNOUNCE: job sequence number
	pass    uint32 // END
	nchunks uint32 // END
	mver    uint64 // ANNOUNCE: manifest version
	forged  bool
}

// Sim is one simulated cloud.
type Sim struct {
	*engine
	cfg     Config
	hosts   []*host
	primary *senderNode
	backup  *senderNode
	recvs   []*receiverNode
	forger  *host
	// Origins outlive their senders' processes.
	primaryOrigin, backupOrigin *origin
	gen                         uint64
	// loss state per receiver: packets left in the current burst.
	burst []int

	healStart time.Time
	maxBytes  uint64
	// emptyVersions are manifest versions built from a scan that saw an
	// empty channel (ground truth for S2).
	emptyVersions map[uint64]bool
	m             metrics
	// Hooks, for scenarios: onDivergence runs when the backup raises an
	// A1 alert (compareLoop), onSenderChanged when a receiver does
	// (senderChanged).
	onDivergence    func(b *senderNode, detail string)
	onSenderChanged func(r *receiverNode, detail string)
}

// metrics are the measured maxima of a run.
type metrics struct {
	overlapStart time.Time
	maxOverlap   time.Duration
	overlapTotal time.Duration
	takeovers    int
	handbacks    int
	// nacks counts NACK arrivals per sender host per 1 s window; l2Segs
	// are the stretches each sender was the active one, l2Cur (-1: none)
	// the current one since l2From.
	nacks        map[int]map[int64]int
	l2Segs       []l2Segment
	l2Cur        int
	l2From       time.Time
	l1Slowest    time.Duration
	l1Done       int
	forged       uint64
	maxEpochs    int
	alerts       []string
	holdbacks    int
	removals     int
	replacements int
	verifyFails  int
	unicastPulls int
	idleSpins    int
	// unicastReplies counts the backup's UNICAST/NOT_FOUND answers to
	// receivers that cannot reach a live primary (failover.Alert).
	unicastReplies int
	// A1: when the backup raised divergence alerts, when receivers raised
	// sender-changed alerts.
	divergenceAlerts    []time.Duration
	senderChangedAlerts []time.Duration
	// A1's check: a1Pair are the primary's and the backup's manifest
	// versions, differing, since a1Since while both were up, not paused
	// and reachable over gRPC, the backup's clock not set back (zero: not
	// so); a1Alerted the pairs the backup's current incarnation alerted
	// on; a1Inc and a1Skew the backup's incarnation and skew last seen.
	a1Pair    [2]uint64
	a1Since   time.Time
	a1Alerted map[[2]uint64]bool
	a1Inc     uint64
	a1Skew    time.Duration
	a1Max     time.Duration
	a1Checked int
}

// New builds a cloud from cfg: hosts, origins, nodes. Nothing runs until
// Run.
func New(cfg Config) *Sim {
	s := &Sim{engine: newEngine(cfg.Seed), cfg: cfg, emptyVersions: map[uint64]bool{}}
	s.m.nacks = map[int]map[int64]int{}
	s.m.l2Cur = -1
	if cfg.BackupChunkSize == 0 {
		s.cfg.BackupChunkSize = cfg.ChunkSize
	}
	s.primaryOrigin = &origin{files: map[string]content{}}
	paths := make([]string, 0, len(cfg.Objects))
	for p := range cfg.Objects {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		s.gen++
		s.primaryOrigin.files[p] = makeContent(p, s.gen, cfg.Objects[p])
	}
	s.backupOrigin = s.primaryOrigin.clone()
	if d := cfg.BackupDiverge; d != nil {
		for _, p := range d.Changed {
			s.gen++
			s.backupOrigin.files[p] = makeContent(p, s.gen, s.backupOrigin.files[p].size+777)
		}
		for _, p := range d.Missing {
			delete(s.backupOrigin.files, p)
		}
		for _, p := range d.Extra {
			s.gen++
			s.backupOrigin.files[p] = makeContent(p, s.gen, 20_000)
		}
	}
	s.maxBytes = s.originBytes()
	newHost := func(name string) *host {
		h := &host{id: len(s.hosts), name: name, alive: true, inc: 1, sockCap: cfg.SockBuffer, lastArrive: map[int]time.Time{}}
		s.hosts = append(s.hosts, h)
		return h
	}
	s.primary = newSender(s, newHost("primary"), false)
	if cfg.Backup {
		s.backup = newSender(s, newHost("backup"), true)
	}
	for i := 0; i < cfg.Receivers; i++ {
		s.recvs = append(s.recvs, newReceiver(s, newHost(fmt.Sprintf("recv%d", i)), i))
		s.burst = append(s.burst, 0)
	}
	s.forger = newHost("forger")
	s.check = s.checkAll
	return s
}

func (s *Sim) originBytes() uint64 {
	var n, m uint64
	for _, c := range s.primaryOrigin.files {
		n += c.size
	}
	for _, c := range s.backupOrigin.files {
		m += c.size
	}
	return max(n, m)
}

// clock is host h's wall clock: virtual time plus its skew (jumps move
// the skew). The cores get these times, as the real services' clocks.
func (s *Sim) clock(h *host) time.Time { return s.now.Add(h.skew) }

// dur is the virtual delay until host time t on h (a timer set from h's
// clock).
func (s *Sim) dur(h *host, t time.Time) time.Duration { return t.Sub(s.clock(h)) }

func (s *Sim) jitter(base, j time.Duration) time.Duration {
	if j <= 0 {
		return base
	}
	return base + time.Duration(s.rng.Int64N(int64(j)+1))
}

// ctlReach reports whether a and b can talk over gRPC.
func (s *Sim) ctlReach(a, b *host) bool { return !a.cutCtl && !b.cutCtl }

// call is one unary gRPC call from a to b with a deadline. serve runs on
// b (late if b is paused) and replies through its callback; cb runs on a
// with the response or a status code: Unavailable when b is down (at
// once, unless waitReady), DeadlineExceeded when the deadline passes first
// (b partitioned from a, paused, or slow).
func (s *Sim) call(a, b *host, name string, timeout time.Duration, waitReady bool, serve func(reply func(any, codes.Code)), cb func(any, codes.Code)) {
	c := &rpcCall{cb: cb}
	s.after(timeout, a, name+" deadline", func() { c.finish(nil, codes.DeadlineExceeded) })
	if !s.ctlReach(a, b) {
		return
	}
	if !b.alive {
		if !waitReady {
			s.after(s.jitter(s.cfg.CtlLatency, s.cfg.CtlJitter), a, name+" refused", func() { c.finish(nil, codes.Unavailable) })
		}
		return
	}
	if len(b.inflight) > 32 {
		b.inflight = slices.DeleteFunc(b.inflight, func(c *rpcCall) bool { return c.done })
	}
	b.inflight = append(b.inflight, c)
	s.after(s.jitter(s.cfg.CtlLatency, s.cfg.CtlJitter), b, name, func() {
		if !s.ctlReach(a, b) {
			return
		}
		if c.done {
			// The caller gave up before the server got to it (a paused
			// server resumed): its context is done, and the real handlers
			// return at once (Sender.Nack checks ctx.Err() before it
			// meters or pools anything).
			return
		}
		serve(func(resp any, code codes.Code) {
			s.after(s.jitter(s.cfg.CtlLatency, s.cfg.CtlJitter), a, name+" reply", func() {
				if s.ctlReach(a, b) {
					c.finish(resp, code)
				}
			})
		})
	})
}

// multicast sends pkts from host h to the group: every other live host
// whose multicast is not cut gets them after the link's delay, in order,
// receivers with their loss.
func (s *Sim) multicast(h *host, pkts []packet) {
	if h.cutData || len(pkts) == 0 {
		return
	}
	for _, d := range s.hosts {
		if d == h || d == s.forger || !d.alive || d.cutData {
			continue
		}
		var got []packet
		ri := d.id - s.firstRecv()
		if ri >= 0 && ri < len(s.recvs) && s.cfg.LightReceivers {
			continue // a lightweight receiver does not join the group
		}
		if ri >= 0 && ri < len(s.recvs) {
			got = make([]packet, 0, len(pkts))
			loss := 0.0
			if ri < len(s.cfg.Loss) {
				loss = s.cfg.Loss[ri]
			}
			for _, p := range pkts {
				if s.burst[ri] > 0 {
					s.burst[ri]--
					continue
				}
				if s.cfg.BurstLoss > 0 && s.rng.Float64() < s.cfg.BurstLoss {
					s.burst[ri] = s.cfg.BurstLen - 1
					continue
				}
				if loss > 0 && s.rng.Float64() < loss {
					continue
				}
				got = append(got, p)
			}
		} else {
			got = slices.Clone(pkts)
		}
		if len(got) == 0 {
			continue
		}
		t := s.now.Add(s.jitter(s.cfg.DataLatency, s.cfg.DataJitter))
		if last := d.lastArrive[h.id]; t.Before(last) {
			t = last
		}
		d.lastArrive[h.id] = t
		dst, inc := d, d.inc
		s.at(t, nil, "deliver", func() { s.deliver(dst, inc, got) })
	}
}

// divergenceAlert records an A1 alert raised by backup b
// (reportDivergence).
func (s *Sim) divergenceAlert(b *senderNode, primary, backup uint64, detail string) {
	s.m.divergenceAlerts = append(s.m.divergenceAlerts, s.elapsed())
	if s.m.a1Alerted == nil || s.m.a1Inc != b.h.inc {
		s.m.a1Alerted, s.m.a1Inc = map[[2]uint64]bool{}, b.h.inc
	}
	s.m.a1Alerted[[2]uint64{primary, backup}] = true
	s.m.alerts = append(s.m.alerts, fmt.Sprintf("%v %s: channel differs from the primary: %s", s.elapsed(), b.id, detail))
	b.trace("divergence alert", 0, 0)
	if s.onDivergence != nil {
		s.onDivergence(b, detail)
	}
}

func (s *Sim) firstRecv() int {
	if len(s.recvs) == 0 {
		return len(s.hosts)
	}
	return s.recvs[0].h.id
}

// deliver puts packets in h's socket buffer (the kernel's, so it fills
// while the process is paused) and wakes its reader.
func (s *Sim) deliver(h *host, inc uint64, pkts []packet) {
	if !h.alive || h.inc != inc || h.cutData {
		return
	}
	room := h.sockCap - len(h.sockQ)
	if room < len(pkts) {
		h.overflow += uint64(len(pkts) - max(room, 0))
		pkts = pkts[:max(room, 0)]
	}
	h.sockQ = append(h.sockQ, pkts...)
	if !h.readQueued && len(h.sockQ) > 0 {
		h.readQueued = true
		s.after(0, h, "read", func() {
			h.readQueued = false
			q := h.sockQ
			h.sockQ = nil
			s.readPackets(h, q)
		})
	}
}

func (s *Sim) readPackets(h *host, q []packet) {
	if s.backup != nil && h == s.backup.h {
		s.backup.hear(q)
		return
	}
	if h == s.primary.h {
		s.primary.hear(q)
		return
	}
	for _, r := range s.recvs {
		if r.h == h {
			r.read(q)
			return
		}
	}
}

// kill stops h's process: its timers and memory go, the RPCs it serves
// fail with Unavailable, its socket buffer is lost.
func (s *Sim) kill(h *host) {
	if !h.alive {
		return
	}
	s.trace(h.name, "kill", h.inc, 0)
	h.alive, h.paused = false, false
	h.deferred, h.sockQ, h.readQueued = nil, nil, false
	for _, c := range h.inflight {
		c := c
		s.after(s.cfg.CtlLatency, nil, "reset", func() { c.finish(nil, codes.Unavailable) })
	}
	h.inflight = nil
}

// restart starts a new process on h.
func (s *Sim) restart(h *host) {
	if h.alive {
		return
	}
	h.alive = true
	h.inc++
	s.trace(h.name, "restart", h.inc, 0)
	switch {
	case h == s.primary.h:
		s.primary.start()
	case s.backup != nil && h == s.backup.h:
		s.backup.start()
	default:
		for _, r := range s.recvs {
			if r.h == h {
				r.start()
			}
		}
	}
}

func (s *Sim) pause(h *host) {
	if h.alive && !h.paused {
		h.paused = true
		s.trace(h.name, "pause", 0, 0)
	}
}

func (s *Sim) unpause(h *host) {
	if h.paused {
		s.trace(h.name, "resume", uint64(len(h.deferred)), 0)
		s.resume(h)
	}
}
