package sim

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/failover"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/scheduler"
)

const channelName = "sim"

// senderState mirrors pb.SenderState.
type senderState int

const (
	stStarting senderState = iota + 1
	stActive
	stStandby
	stHandingBack
)

func (st senderState) String() string {
	return [...]string{"?", "starting", "active", "standby", "handing_back"}[st]
}

// senderNode is a simulated sender process (pkg/sender): the real
// scheduler (and, on the backup, the real failover core) inside a model
// of the glue in sender.go, transmit.go, failover.go and service.go.
type senderNode struct {
	s      *Sim
	h      *host
	backup bool
	id     string
	origin *origin
	chunk  uint32

	// Memory, lost when the process dies.
	ready        bool
	state        senderState
	epoch        uint64
	sched        *scheduler.Scheduler
	fo           *failover.Backup
	m            *manifest.Manifest
	jobs         []*jobRun
	rr           int
	jobSeq       uint64
	ends         []pendingEnd
	nextAnnounce time.Time
	announceNow  bool
	txGen        uint64 // the idle timer's generation
	txBusy       bool   // a paced send is under way
	readyWaiters []func()
	// checkPrimary's shared result (failover.go); times are virtual, as
	// the real code's time.Since uses the monotonic clock.
	checking     bool
	checkWaiters []func(serving bool)
	checkedAt    time.Time
	alive        bool
	alerts       int
	// listening: the group listener runs (listen.go: opened after
	// markReady when a peer is configured); lastReclaim is when the
	// primary last signalled a backup it heard (virtual, as time.Since).
	listening   bool
	lastReclaim time.Time
	// divergence is the backup's A1 watch (failover.Divergence).
	divergence failover.Divergence

	// passes are the primary's pass records in its state directory: kept
	// across restarts (pkg/sender/passes.go); restored is what the
	// running process loaded at start, applied by its first scan.
	passes   map[uint64]passRec
	restored map[uint64]passRec
}

type passRec struct {
	version uint64
	passes  uint32
}

type jobRun struct {
	job   scheduler.Job
	sched *scheduler.Scheduler // that started the job (jobRunner.sched)
	tag   uint64
	ri    int
	next  uint32
}

func (r *jobRun) done() bool { return r.ri >= len(r.job.Ranges) }

type pendingEnd struct {
	due time.Time
	pkt packet
}

func newSender(s *Sim, h *host, backup bool) *senderNode {
	n := &senderNode{s: s, h: h, backup: backup, id: h.name, origin: s.primaryOrigin, chunk: s.cfg.ChunkSize, passes: map[uint64]passRec{}}
	if backup {
		n.origin, n.chunk = s.backupOrigin, s.cfg.BackupChunkSize
	}
	return n
}

func (n *senderNode) now() time.Time { return n.s.clock(n.h) }

func (n *senderNode) trace(what string, a, b uint64) { n.s.trace(n.h.name, what, a, b) }

// start is sender.New + Run: a new epoch, a scan, the primary's start-up
// signal to the backup, then ready.
func (n *senderNode) start() {
	now := n.now()
	*n = senderNode{s: n.s, h: n.h, backup: n.backup, id: n.id, origin: n.origin, chunk: n.chunk, passes: n.passes}
	n.state = stStarting
	n.restored = maps.Clone(n.passes)
	n.epoch = uint64(now.UnixNano())
	n.sched = scheduler.New(n.s.cfg.Scheduler, now)
	if n.backup {
		// sender.New: the grace is the failover core's (-primary-grace).
		fo := n.s.cfg.Failover
		fo.Grace = n.s.cfg.PrimaryGrace
		n.fo = failover.NewBackup(fo, now)
		// sender.New: two senders that rescan at different moments differ
		// for up to a rescan interval after each change.
		n.divergence.Grace = 2*n.s.cfg.RescanInterval + n.s.cfg.CompareInterval
	}
	n.trace("start", n.epoch, 0)
	n.scan()
	n.s.after(n.s.cfg.RescanInterval, n.h, "rescan", n.scanLoop)
	if !n.backup && n.s.backup != nil {
		n.signalBackup(n.s.now)
		return
	}
	n.markReady()
}

func (n *senderNode) markReady() {
	n.ready = true
	if n.backup {
		n.state = stStandby
		n.s.after(n.s.cfg.CheckInterval, n.h, "watch", n.watchPrimary)
	} else {
		n.state = stActive
	}
	n.trace("ready "+n.state.String(), n.epoch, 0)
	// Sender.Run: the group listener (when a peer is configured) and, on
	// a backup, compareLoop start once ready.
	n.listening = n.backup || n.s.backup != nil
	if n.backup && n.s.cfg.CompareInterval > 0 {
		n.s.after(n.s.cfg.CompareInterval, n.h, "compare", n.compareLoop)
	}
	w := n.readyWaiters
	n.readyWaiters = nil
	for _, f := range w {
		f()
	}
	n.poke()
}

// signalBackup mirrors Sender.signalBackup: Reclaim, then
// failover.Startup decides; every 100 ms while the backup is busy.
func (n *senderNode) signalBackup(start time.Time) {
	b := n.s.backup
	n.s.call(n.h, b.h, "reclaim", n.s.cfg.HealthTimeout, false, func(reply func(any, codes.Code)) {
		reply(b.reclaim(), codes.OK)
	}, func(resp any, code codes.Code) {
		st := failover.Standby
		if code == codes.OK {
			switch resp.(senderState) {
			case stActive:
				st = failover.Active
			case stHandingBack:
				st = failover.HandingBack
			}
		}
		waited := n.s.now.Sub(start)
		switch failover.Startup(code == codes.OK, st, waited, n.s.cfg.MaxHandoverWait) {
		case failover.StartNow, failover.StartAnyway:
			n.markReady()
		default:
			n.s.after(100*time.Millisecond, n.h, "signal", func() { n.signalBackup(start) })
		}
	})
}

func (n *senderNode) scanLoop() {
	n.scan()
	n.s.after(n.s.cfg.RescanInterval, n.h, "rescan", n.scanLoop)
}

// scan mirrors Sender.scanChannel and apply: the origin into a manifest
// (real manifest.NewObject / manifest.New), the empty-scan guard, and
// SetObjects with a first pass when this sender is the primary or active.
func (n *senderNode) scan() {
	now := n.now()
	var objs []manifest.Object
	if n.origin.emptyScans > 0 {
		n.origin.emptyScans--
	} else {
		for _, p := range n.origin.paths() {
			c := n.origin.files[p]
			o, err := manifest.NewObject(channelName, p, c.size, c.sha, n.chunk)
			if err != nil {
				panic(err)
			}
			objs = append(objs, o)
		}
	}
	m, err := manifest.New(channelName, objs, now)
	if err != nil {
		panic(err)
	}
	if !n.s.cfg.AllowEmptyScan && len(m.Objects) == 0 && n.m != nil && len(n.m.Objects) > 0 {
		// Sender.emptyScan: keep the manifest, raise an alert.
		n.trace("empty scan kept", n.m.Version, 0)
		return
	}
	if len(m.Objects) == 0 && len(n.origin.files) > 0 {
		n.s.emptyVersions[m.Version] = true
	}
	if n.m != nil && n.m.Version == m.Version {
		return
	}
	if n.m != nil && !m.GeneratedAt.After(n.m.GeneratedAt) {
		// Sender.apply: the clock was set back; stamp manifests of one
		// incarnation in order all the same.
		m.GeneratedAt = n.m.GeneratedAt.Add(time.Millisecond)
	}
	n.m = m
	first := !n.backup || n.state == stActive
	added, changed, removed := n.sched.SetObjects(m.ChannelID, m.Objects, first, now)
	n.trace("manifest", m.Version, uint64(added<<32|changed<<16|removed))
	// restorePasses: objects known before a restart get no first pass.
	for id, rec := range n.restored {
		n.sched.Restore(scheduler.Key{Channel: m.ChannelID, Object: id}, rec.version, rec.passes)
	}
	n.restored = nil
	n.announceNow = true
	n.poke()
}

// fileOK is openObject's identity check: the origin still holds the
// object the manifest was built from.
func (n *senderNode) fileOK(o *manifest.Object) bool {
	c, ok := n.origin.files[o.Path]
	return ok && c.sha == o.SHA256 && c.size == o.Size
}

// transmitting reports whether the process is sending DATA now.
func (n *senderNode) transmitting() bool {
	return n.h.alive && !n.h.paused && len(n.jobs) > 0
}

// poke is the transmitter's wake channel: an idle transmitter runs now.
// The transmitter runs from markReady on (Sender.Run starts it after the
// scan and the start-up signal).
func (n *senderNode) poke() {
	if n.txBusy || !n.h.alive || !n.ready {
		return
	}
	n.txGen++
	gen := n.txGen
	n.s.after(0, n.h, "tx", func() {
		if gen == n.txGen {
			n.txRun()
		}
	})
}

// txRun is one turn of transmitter.run: start jobs, send control
// packets, send one paced batch of one job (round robin) or go idle.
func (n *senderNode) txRun() {
	n.txBusy = false
	now := n.now()
	active := n.startJobs(now)
	n.dropIfStandingBy()
	n.sendControl(now, active)
	if len(n.jobs) == 0 {
		// transmitter.idle: only an active sender wakes for pooled jobs.
		next := now.Add(time.Second)
		if active {
			next = n.nextAnnounce
		}
		if w, ok := n.sched.Wake(); ok && active && w.Before(next) {
			next = w
		}
		for _, e := range n.ends {
			if e.due.Before(next) {
				next = e.due
			}
		}
		d := n.s.dur(n.h, next)
		if d <= 0 {
			// A zero wait: the real loop would spin (timer reset to 0
			// until something changes). Virtual time must advance: count
			// it, one spin per ms. None is expected since 85318d9.
			d = time.Millisecond
			n.s.m.idleSpins++
		}
		n.txGen++
		gen := n.txGen
		n.s.after(d, n.h, "tx", func() {
			if gen == n.txGen {
				n.txRun()
			}
		})
		return
	}
	n.rr %= len(n.jobs)
	r := n.jobs[n.rr]
	bytes := n.sendBatch(r)
	if r.done() {
		n.finish(r)
	} else {
		n.rr++
	}
	n.txBusy = true
	n.s.after(secs(uint64(bytes), n.s.cfg.Rate), n.h, "tx", n.txRun)
}

// startJobs mirrors transmitter.startJobs: only an active sender starts
// jobs; a job whose origin file changed is aborted and a rescan asked for.
func (n *senderNode) startJobs(now time.Time) bool {
	if n.state != stActive {
		return false
	}
	for _, j := range n.sched.Next(now) {
		if !n.fileOK(&j.Object) {
			n.sched.Abort(j)
			n.trace("job aborted: origin changed", j.Object.ID, 0)
			n.s.after(0, n.h, "rescan", n.scan)
			continue
		}
		r := &jobRun{job: j, sched: n.sched, tag: chunkTag(j.Object.SHA256, j.Object.ChunkSize)}
		if len(j.Ranges) > 0 {
			r.next = j.Ranges[0].First
		}
		n.jobs = append(n.jobs, r)
		n.trace(fmt.Sprintf("job start pass %d", j.Pass), j.Object.ID, j.Ranges.Len())
	}
	return true
}

func (n *senderNode) sendBatch(r *jobRun) int {
	o := &r.job.Object
	pkts := make([]packet, 0, n.s.cfg.Batch)
	bytes := 0
	for len(pkts) < n.s.cfg.Batch && !r.done() {
		rg := r.job.Ranges[r.ri]
		l := o.ChunkLen(r.next)
		pkts = append(pkts, packet{typ: ptData, backup: n.backup, from: n.h.id, epoch: n.epoch, obj: o.ID, ver: o.Version, chunk: r.next, tag: r.tag, size: 40 + l})
		bytes += 40 + l
		r.next++
		if uint64(r.next) >= rg.End() {
			r.ri++
			if !r.done() {
				r.next = r.job.Ranges[r.ri].First
			}
		}
	}
	n.s.multicast(n.h, pkts)
	return bytes
}

// finish mirrors transmitter.finish and remove: END with the job's
// sequence number (repeated), Done, and a handing-back backup whose last
// job ended stands by.
func (n *senderNode) finish(r *jobRun) {
	n.jobSeq++
	o := &r.job.Object
	end := packet{typ: ptEnd, backup: n.backup, from: n.h.id, epoch: n.epoch, obj: o.ID, ver: o.Version, seq: n.jobSeq, pass: r.job.Pass, nchunks: o.Chunks, size: 64}
	n.s.multicast(n.h, []packet{end})
	now := n.now()
	for i := 1; i < n.s.cfg.EndRepeats; i++ {
		n.ends = append(n.ends, pendingEnd{due: now.Add(time.Duration(i) * n.s.cfg.EndSpacing), pkt: end})
	}
	if !n.backup {
		n.passes[o.ID] = passRec{version: o.Version, passes: r.job.Pass}
	}
	n.trace("job done", o.ID, n.jobSeq)
	n.remove(r, n.jobSeq)
}

// remove mirrors transmitter.remove: a finished job (seq > 0) is Done, an
// aborted one Aborted, on the scheduler that started it; then jobsDrained.
func (n *senderNode) remove(r *jobRun, seq uint64) {
	if i := slices.Index(n.jobs, r); i >= 0 {
		n.jobs = slices.Delete(n.jobs, i, i+1)
	}
	now := n.now()
	if seq > 0 {
		r.sched.Done(r.job, now, seq)
	} else {
		r.sched.Abort(r.job)
	}
	n.jobsDrained(now)
}

// dropIfStandingBy mirrors transmitter.dropIfStandingBy: a backup that
// stood by with jobs in hand (the primary heard on the group, or the
// hand-back time ran out) aborts them all.
func (n *senderNode) dropIfStandingBy() {
	if len(n.jobs) == 0 || n.state != stStandby {
		return
	}
	k := len(n.jobs)
	for len(n.jobs) > 0 {
		n.remove(n.jobs[0], 0)
	}
	n.trace("standing by: jobs in hand aborted", uint64(k), 0)
}

func (n *senderNode) jobsDrained(now time.Time) {
	if n.fo == nil {
		return
	}
	if inFlight, _ := n.sched.Load(); inFlight == 0 {
		n.applyBackupState(n.fo.JobsDrained(now), now)
	}
}

// sendControl mirrors transmitter.sendControl: due END repeats, and when
// active the periodic ANNOUNCE with the last job sequence number.
func (n *senderNode) sendControl(now time.Time, active bool) {
	kept := n.ends[:0]
	var out []packet
	for _, e := range n.ends {
		if e.due.After(now) && e.due.Sub(now) <= time.Duration(n.s.cfg.EndRepeats)*n.s.cfg.EndSpacing {
			kept = append(kept, e)
			continue
		}
		out = append(out, e.pkt)
	}
	n.ends = kept
	if n.announceNow {
		n.announceNow = false
		n.nextAnnounce = time.Time{}
	}
	if n.nextAnnounce.Sub(now) > n.s.cfg.AnnounceInterval {
		n.nextAnnounce = now
	}
	if active && !now.Before(n.nextAnnounce) && n.m != nil {
		n.nextAnnounce = now.Add(n.s.cfg.AnnounceInterval)
		out = append(out, packet{typ: ptAnnounce, backup: n.backup, from: n.h.id, epoch: n.epoch, mver: n.m.Version, seq: n.jobSeq, size: 70})
	}
	n.s.multicast(n.h, out)
}

// applyBackupState mirrors Sender.applyBackupState.
func (n *senderNode) applyBackupState(st failover.State, now time.Time) {
	switch st {
	case failover.Active:
		n.setState(stActive)
	case failover.HandingBack:
		n.setState(stHandingBack)
	case failover.Standby:
		if n.state != stStandby {
			n.resetScheduler(now, false)
			n.trace("standing by", 0, 0)
			n.s.m.handbacks++
		}
		n.setState(stStandby)
	}
}

func (n *senderNode) setState(st senderState) { n.state = st }

func (n *senderNode) resetScheduler(now time.Time, firstPass bool) {
	n.sched = scheduler.New(n.s.cfg.Scheduler, now)
	if n.m != nil {
		n.sched.SetObjects(n.m.ChannelID, n.m.Objects, firstPass, now)
	}
}

// hear mirrors Sender.listenGroup: both senders hear the group, END and
// ANNOUNCE only (wire.ControlFilter drops the rest), their own epoch
// skipped. The simulation has no packet keys, so forged packets count as
// they would in a cloud without them. A backup that hears the primary
// calls heardPrimary; a primary that hears a backup signals it (Reclaim),
// at most every reclaimEvery.
func (n *senderNode) hear(q []packet) {
	if !n.listening {
		return
	}
	heardPrimary, heardBackup := false, false
	for _, p := range q {
		if p.typ != ptEnd && p.typ != ptAnnounce || p.epoch == n.epoch {
			continue
		}
		if p.backup {
			heardBackup = true
		} else {
			heardPrimary = true
		}
	}
	now := n.now()
	switch {
	case heardPrimary && n.fo != nil:
		n.heardPrimary(now)
	case heardBackup && n.fo == nil && n.s.backup != nil && (n.lastReclaim.IsZero() || n.s.now.Sub(n.lastReclaim) >= reclaimEvery):
		n.lastReclaim = n.s.now
		n.reclaimHeardBackup()
	}
}

// reclaimEvery mirrors pkg/sender/listen.go's.
const reclaimEvery = 200 * time.Millisecond

// heardPrimary mirrors Sender.heardPrimary: an active or handing-back
// backup stands by at once; its transmitter drops the jobs in hand.
func (n *senderNode) heardPrimary(now time.Time) {
	st, abort := n.fo.HeardPrimary(now)
	n.applyBackupState(st, now)
	if abort {
		n.trace("primary heard on the group: standing by", 0, 0)
		n.poke()
	}
}

// reclaimHeardBackup mirrors Sender.reclaimHeardBackup: the primary's
// Reclaim to a backup it heard multicasting.
func (n *senderNode) reclaimHeardBackup() {
	b := n.s.backup
	n.trace("backup heard on the group: reclaim", 0, 0)
	n.s.call(n.h, b.h, "reclaim heard", n.s.cfg.HealthTimeout, false, func(reply func(any, codes.Code)) {
		reply(b.reclaim(), codes.OK)
	}, func(any, codes.Code) {})
}

// reclaim mirrors Sender.Reclaim on the backup: a hand-back started from
// Active arms handbackTick (startHandback).
func (n *senderNode) reclaim() senderState {
	// Not ready yet, it answers from the core all the same (standby).
	now := n.now()
	inFlight, _ := n.sched.Load()
	before, _ := n.fo.State()
	st := n.fo.Reclaim(now, inFlight)
	n.applyBackupState(st, now)
	if before == failover.Active {
		n.startHandback(st)
	}
	return n.state
}

// startHandback mirrors Sender.startHandback: time.AfterFunc(
// HandbackTimeout, handbackTick) when st is HandingBack.
func (n *senderNode) startHandback(st failover.State) {
	if st == failover.HandingBack {
		n.s.after(n.s.cfg.Failover.HandbackTimeout, n.h, "handback tick", n.handbackTick)
	}
}

// handbackTick mirrors Sender.handbackTick: failover.Tick, and a backup
// whose hand-back time is up stands by; the transmitter drops the rest.
func (n *senderNode) handbackTick() {
	now := n.now()
	st, abort := n.fo.Tick(now)
	n.applyBackupState(st, now)
	if abort {
		n.trace("hand-back time is up: standing by", 0, 0)
		n.poke()
	}
}

// checkPrimary mirrors Sender.checkPrimary: two health checks of
// HealthTimeout, a result shared by concurrent callers and reused for
// 100 ms. The grace is the failover core's.
func (n *senderNode) checkPrimary(cb func(serving bool)) {
	if !n.checkedAt.IsZero() && n.s.now.Sub(n.checkedAt) < 100*time.Millisecond {
		cb(n.alive)
		return
	}
	n.checkWaiters = append(n.checkWaiters, cb)
	if n.checking {
		return
	}
	n.checking = true
	var attempt func(i int)
	attempt = func(i int) {
		p := n.s.primary
		n.s.call(n.h, p.h, "health", n.s.cfg.HealthTimeout, false, func(reply func(any, codes.Code)) {
			reply(p.ready, codes.OK)
		}, func(resp any, code codes.Code) {
			alive := code == codes.OK && resp.(bool)
			if !alive && i == 0 {
				attempt(1)
				return
			}
			n.alive, n.checkedAt, n.checking = alive, n.s.now, false
			w := n.checkWaiters
			n.checkWaiters = nil
			for _, f := range w {
				f(alive)
			}
		})
	}
	attempt(0)
}

// watchPrimary mirrors Sender.watchPrimary: the active backup's periodic
// check; a primary seen serving is taken as its signal.
func (n *senderNode) watchPrimary() {
	n.s.after(n.s.cfg.CheckInterval, n.h, "watch", n.watchPrimary)
	if st, _ := n.fo.State(); st != failover.Active {
		return
	}
	n.checkPrimary(func(serving bool) {
		now := n.now()
		inFlight, _ := n.sched.Load()
		next := n.fo.PeriodicCheck(now, serving, inFlight)
		n.applyBackupState(next, now)
		n.startHandback(next)
	})
}

// nackReq is a NACK request (pb.NackRequest).
type nackReq struct {
	receiver     string
	mversion     uint64
	reqs         []scheduler.Request
	follow       time.Duration
	horizonEpoch uint64
	horizon      uint64
}

// nackResp is a NACK reply (pb.NackResponse).
type nackResp struct {
	actions       []scheduler.Action
	next          time.Duration
	mversion      uint64
	sender        string
	state         senderState
	primaryActive bool
}

// nack mirrors Sender.Nack and backupNack: a sender not ready answers
// Unavailable; a backup runs Figure 5 first; then Figure 4.
func (n *senderNode) nack(req *nackReq, reply func(any, codes.Code)) {
	n.s.countNack(n)
	if !n.ready || n.m == nil {
		reply(nil, codes.Unavailable)
		return
	}
	if n.fo == nil {
		reply(n.serveNack(req), codes.OK)
		return
	}
	switch n.fo.Nack() {
	case failover.Serve:
		reply(n.serveNack(req), codes.OK)
		return
	case failover.HoldOff:
		resp := &nackResp{next: n.sched.NackInterval(n.now()), sender: n.id, state: n.state}
		for range req.reqs {
			resp.actions = append(resp.actions, scheduler.Wait)
		}
		reply(resp, codes.OK)
		return
	}
	n.checkPrimary(func(serving bool) {
		now := n.now()
		outcome := n.fo.PrimaryChecked(now, req.receiver, serving)
		switch outcome {
		case failover.TakeOver:
			// takeOver: a new epoch, a fresh scheduler without first passes.
			n.epoch = uint64(now.UnixNano())
			n.jobSeq = 0
			n.resetScheduler(now, false)
			n.setState(stActive)
			n.s.m.takeovers++
			n.trace("take over", n.epoch, 0)
			n.announceNow = true
			n.poke()
			reply(n.serveNack(req), codes.OK)
			return
		case failover.ServeNow:
			reply(n.serveNack(req), codes.OK)
			return
		case failover.Alert:
			n.alerts++
			n.s.m.alerts = append(n.s.m.alerts, fmt.Sprintf("%v network alert: %s cannot reach the primary", n.s.elapsed(), req.receiver))
		}
		resp := &nackResp{next: n.sched.ReplyInterval(now, req.follow), sender: n.id, state: n.state, primaryActive: true}
		if outcome == failover.Alert {
			n.unicastReplies(req, resp)
		}
		reply(resp, codes.OK)
	})
}

// unicastReplies mirrors Sender.unicastReplies: UNICAST for every object
// this sender holds in the version asked for, NOT_FOUND otherwise.
func (n *senderNode) unicastReplies(req *nackReq, resp *nackResp) {
	for _, q := range req.reqs {
		act := scheduler.NotFound
		if o, ok := n.m.Lookup(q.Object); ok && o.Version == q.Version {
			act = scheduler.Unicast
		}
		resp.actions = append(resp.actions, act)
	}
	// No manifest version: it would only send the receiver to fetch a
	// manifest it must not adopt.
	n.s.m.unicastReplies += len(resp.actions)
}

// serveNack is Figure 4 on a NACK (the second half of Sender.Nack).
func (n *senderNode) serveNack(req *nackReq) *nackResp {
	now := n.now()
	info := scheduler.NackInfo{Follow: req.follow, Horizon: req.horizon, HorizonKnown: req.horizonEpoch != 0 && req.horizonEpoch == n.epoch}
	ds := n.sched.Nack(now, n.m.ChannelID, info, req.reqs, nil)
	// Sender.Nack: ReplyInterval, so that a scheduler younger than the
	// receiver's interval never tells it to NACK faster (L2).
	resp := &nackResp{next: n.sched.ReplyInterval(now, req.follow), mversion: n.m.Version, sender: n.id, state: n.state}
	wait := false
	for _, d := range ds {
		resp.actions = append(resp.actions, d.Action)
		wait = wait || d.Action == scheduler.Wait
	}
	if wait {
		n.poke()
	}
	return resp
}

// manifestResp is a GetManifest reply: the manifest and who serves it.
type manifestResp struct {
	m      *manifest.Manifest
	sender string
	epoch  uint64
	state  senderState
}

// getManifest mirrors Service.GetManifest: it waits for the sender to be
// ready (within the caller's deadline), then identifies the sender.
func (n *senderNode) getManifest(reply func(any, codes.Code)) {
	if !n.ready {
		n.readyWaiters = append(n.readyWaiters, func() { n.getManifest(reply) })
		return
	}
	reply(&manifestResp{m: n.m, sender: n.id, epoch: n.epoch, state: n.state}, codes.OK)
}

// listChannels mirrors Service.ListChannels: the channel's manifest
// version (0 before the first scan), ready or not.
func (n *senderNode) listChannels() uint64 {
	if n.m == nil {
		return 0
	}
	return n.m.Version
}

// compareLoop mirrors Sender.compareLoop (A1): every CompareInterval the
// backup asks the primary's versions (ListChannels, 5 × HealthTimeout)
// and feeds failover.Divergence; a report fetches the primary's manifest
// to name the paths (reportDivergence) and raises the alert.
func (n *senderNode) compareLoop() {
	n.s.after(n.s.cfg.CompareInterval, n.h, "compare", n.compareLoop)
	p := n.s.primary
	d := 5 * n.s.cfg.HealthTimeout
	n.s.call(n.h, p.h, "listchannels", d, false, func(reply func(any, codes.Code)) {
		reply(p.listChannels(), codes.OK)
	}, func(resp any, code codes.Code) {
		if code != codes.OK || n.m == nil {
			return
		}
		pv := resp.(uint64)
		if !n.divergence.Observe(n.now(), channelName, pv, n.m.Version) {
			return
		}
		mine := n.m
		bv := mine.Version
		n.s.call(n.h, p.h, "getmanifest", d, false, func(reply func(any, codes.Code)) { p.getManifest(reply) }, func(resp any, code codes.Code) {
			detail := "the primary does not serve this channel"
			if pv != 0 {
				detail = "the primary's manifest could not be fetched to name the paths"
				if code == codes.OK {
					df := manifest.Compare(resp.(*manifestResp).m, mine)
					detail = fmt.Sprintf("%d changed %v, %d only on the primary %v, %d only on the backup %v", len(df.Changed), df.Changed, len(df.OnlyA), df.OnlyA, len(df.OnlyB), df.OnlyB)
				}
			}
			n.s.divergenceAlert(n, pv, bv, detail)
		})
	})
}

// pullResp is the outcome of a Pull: the chunks' bytes as a tag.
type pullResp struct {
	tag    uint64
	ranges chunks.List
}

// pull mirrors Sender.pull: the object in the same version, read from an
// origin file that still matches; the data takes size/PullRate.
func (n *senderNode) pull(id, version uint64, ranges chunks.List, reply func(any, codes.Code)) {
	if !n.ready {
		reply(nil, codes.Unavailable)
		return
	}
	o, ok := n.m.Lookup(id)
	switch {
	case !ok:
		reply(nil, codes.NotFound)
		return
	case o.Version != version || !n.fileOK(o):
		if !n.fileOK(o) {
			n.s.after(0, n.h, "rescan", n.scan)
		}
		reply(nil, codes.FailedPrecondition)
		return
	}
	bytes := ranges.Len() * uint64(o.ChunkSize)
	tag := chunkTag(o.SHA256, o.ChunkSize)
	n.s.m.unicastPulls++
	n.s.after(secs(bytes, n.s.cfg.PullRate), n.h, "pull served", func() {
		reply(&pullResp{tag: tag, ranges: ranges}, codes.OK)
	})
}
