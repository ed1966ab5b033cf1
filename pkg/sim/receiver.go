package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/repair"
)

// partial is a partial file with its chunk bitmap: have is what the file
// holds now, persisted what the last checkpoint saved (what a restart
// finds). tag is the bytes of the first chunk written; mixed is set when a
// chunk of other bytes joined it.
type partial struct {
	obj       manifest.Object
	have      *chunks.Bitmap
	persisted *chunks.Bitmap
	tag       uint64
	mixed     bool
}

func cloneBitmap(b *chunks.Bitmap) *chunks.Bitmap {
	data, err := b.MarshalBinary()
	if err != nil {
		panic(err)
	}
	c, err := chunks.UnmarshalBitmap(data)
	if err != nil {
		panic(err)
	}
	return c
}

func (p *partial) write(i uint32, tag uint64) bool {
	if p.have.Count() == 0 {
		p.tag = tag
	} else if tag != p.tag {
		p.mixed = true
	}
	return p.have.Set(i)
}

type pkey struct{ id, version uint64 }

// finalFile is a file under its final name: its bytes as (digest, size,
// chunk tag), or mixed.
type finalFile struct {
	sha   [32]byte
	size  uint64
	tag   uint64
	mixed bool
}

// cause is why a manifest was installed (for S2).
type cause struct {
	sender    string
	active    bool // the serving sender reported itself ACTIVE
	confirmed bool // an operator confirmed this version
	persisted bool
}

// disk is what survives a receiver's restart.
type disk struct {
	finals   map[string]finalFile
	partials map[pkey]*partial
	saved    *manifest.Manifest
	cause    cause
}

type objState struct {
	obj     manifest.Object
	state   repair.State
	busy    bool
	missing chunks.List
	partial *partial
}

type heldManifest struct {
	m     *manifest.Manifest
	src   repair.Source
	since time.Time // virtual
}

// receiverNode is a simulated receiver process (pkg/receiver): the real
// repair core and adoption policy inside a model of the glue in nack.go,
// data.go, receiver.go and held.go.
type receiverNode struct {
	s    *Sim
	h    *host
	idx  int
	disk disk
	// accepted is the checker's ledger: every (path, digest, size) of a
	// manifest this receiver installed, across restarts (S1).
	accepted map[string]map[[32]byte]uint64

	// Memory, lost when the process dies.
	m            *manifest.Manifest
	mcause       cause
	from         string
	fromEpoch    uint64
	held         *heldManifest
	confirmed    uint64
	refetch      bool
	announced    uint64
	fetchedAt    time.Time
	objs         map[uint64]*objState
	core         *repair.Core
	horizonEpoch uint64
	horizon      uint64
	epochs       repair.Epochs
	lastOverflow uint64
	loopGen      uint64
	loopBusy     bool
	poked        bool
	fetchBackoff time.Duration
	pullQ        []pullJob
	pullBusy     bool
	doneAt       time.Time // virtual; zero while incomplete
}

type pullJob struct {
	o    *objState
	from *senderNode
}

func newReceiver(s *Sim, h *host, idx int) *receiverNode {
	r := &receiverNode{s: s, h: h, idx: idx, accepted: map[string]map[[32]byte]uint64{}}
	r.disk = disk{finals: map[string]finalFile{}, partials: map[pkey]*partial{}}
	return r
}

func (r *receiverNode) now() time.Time { return r.s.clock(r.h) }

func (r *receiverNode) trace(what string, a, b uint64) { r.s.trace(r.h.name, what, a, b) }

// start is receiver.New + Run: memory from scratch, the persisted
// manifest installed (loadPersisted), partial files back at their last
// checkpoint, the NACK loop started.
func (r *receiverNode) start() {
	now := r.now()
	*r = receiverNode{s: r.s, h: r.h, idx: r.idx, disk: r.disk, accepted: r.accepted}
	r.objs = map[uint64]*objState{}
	r.core = repair.New(r.s.cfg.Repair, rand.New(rand.NewPCG(r.s.rng.Uint64(), r.s.rng.Uint64())), now)
	r.fetchBackoff = 100 * time.Millisecond
	r.lastOverflow = r.h.overflow
	for _, p := range r.disk.partials {
		p.have = cloneBitmap(p.persisted)
	}
	if m := r.disk.saved; m != nil {
		c := r.disk.cause
		c.persisted = true
		r.install(m, c)
		r.refetch = true
	}
	r.trace("start", 0, 0)
	r.loopTimer(0)
	r.s.after(r.s.cfg.CheckpointInterval, r.h, "checkpoint", r.checkpoint)
}

func (r *receiverNode) checkpoint() {
	r.s.after(r.s.cfg.CheckpointInterval, r.h, "checkpoint", r.checkpoint)
	for _, o := range r.objs {
		if o.partial != nil {
			o.partial.persisted = cloneBitmap(o.partial.have)
		}
	}
}

// poke is the NACK loop's wake channel.
func (r *receiverNode) poke() {
	if r.loopBusy {
		r.poked = true
		return
	}
	r.loopTimer(0)
}

func (r *receiverNode) loopTimer(d time.Duration) {
	r.loopGen++
	g := r.loopGen
	r.s.after(d, r.h, "nackloop", func() {
		if g == r.loopGen {
			r.iterate()
		}
	})
}

func (r *receiverNode) loopDone(d time.Duration) {
	r.loopBusy = false
	if r.poked {
		r.poked = false
		d = 0
	}
	r.loopTimer(d)
}

// iterate is one turn of nackLoop: fetch the manifest when there is none,
// one was announced or the periodic refresh is due; then NACK when due.
func (r *receiverNode) iterate() {
	r.loopBusy, r.poked = true, false
	need := r.m == nil || r.refetch
	since := r.now().Sub(r.fetchedAt)
	refresh := !need && since >= r.s.cfg.ManifestRefresh
	// nackLoop: refetches that ANNOUNCEs (or NACK replies) ask for are
	// spaced by minRefetchGap.
	if r.m != nil && r.refetch && since >= 0 && since < minRefetchGap {
		r.loopDone(minRefetchGap - since)
		return
	}
	if !need && !refresh {
		r.afterFetch()
		return
	}
	r.fetchManifest(func(ok bool) {
		switch {
		case ok:
			r.fetchBackoff = 100 * time.Millisecond
		case need:
			d := r.fetchBackoff
			r.fetchBackoff = min(r.fetchBackoff*3/2, 5*time.Second)
			r.loopDone(d)
			return
		default:
			r.fetchedAt = r.now()
		}
		r.afterFetch()
	})
}

func (r *receiverNode) afterFetch() {
	now := r.now()
	r.core.Resync(now)
	due := r.core.Due()
	if now.Before(due) {
		r.loopDone(due.Sub(now))
		return
	}
	r.nackOnce(now, func() {
		r.loopDone(max(r.s.dur(r.h, r.core.Due()), time.Millisecond))
	})
}

func (r *receiverNode) holdings() []repair.Holding {
	hs := make([]repair.Holding, 0, len(r.m.Objects))
	for _, obj := range r.m.Objects {
		o := r.objs[obj.ID]
		h := repair.Holding{Object: o.obj, State: o.state, Busy: o.busy}
		if o.state == repair.Partial {
			if o.partial != nil {
				h.Missing = o.partial.have.Missing()
			} else {
				h.Missing = o.missing
			}
		}
		hs = append(hs, h)
	}
	return hs
}

// minRefetchGap mirrors pkg/receiver/nack.go's.
const minRefetchGap = 100 * time.Millisecond

// nackOnce mirrors Receiver.nackOnce.
func (r *receiverNode) nackOnce(now time.Time, done func()) {
	if r.m == nil {
		done()
		return
	}
	reqs := r.core.Plan(now, r.holdings())
	if len(reqs) == 0 {
		done()
		return
	}
	version := r.m.Version
	req := &nackReq{receiver: r.h.name, mversion: version, reqs: reqs, follow: r.core.Following(), horizonEpoch: r.horizonEpoch, horizon: r.horizon}
	r.trace("nack", uint64(len(reqs)), r.horizon)
	r.sendNack(req, func(resp *nackResp, from *senderNode) {
		if resp != nil && resp.primaryActive && len(resp.actions) == 0 {
			// The backup disregarded the NACK: the primary is alive but
			// did not answer; with objects, the backup serves this
			// receiver by unicast (failover.Alert) and the reply is acted
			// on like any other.
			resp = nil
		}
		if resp == nil {
			r.core.OnFailure(r.now())
			done()
			return
		}
		reply := repair.Reply{NextNackAfter: resp.next, ManifestVersion: resp.mversion, Actions: resp.actions}
		acts := r.core.OnReply(r.now(), reqs, reply, version)
		if acts.RefetchManifest && r.held != nil && r.held.m.Version == reply.ManifestVersion {
			acts.RefetchManifest = false
		}
		if acts.RefetchManifest {
			r.refetch = true
		}
		for _, id := range acts.Pull {
			if r.s.cfg.LightReceivers {
				break // a lightweight receiver pulls nothing
			}
			if o := r.objs[id]; o != nil && !o.busy && o.state != repair.Complete {
				o.busy = true
				r.pullQ = append(r.pullQ, pullJob{o: o, from: from})
			}
		}
		r.trace(fmt.Sprintf("nack reply from %s wait %d unicast %d notfound %d", from.id, acts.Waiting, len(acts.Pull), len(acts.NotFound)), uint64(resp.next), 0)
		if acts.RefetchManifest {
			r.poke()
		}
		r.pullNext()
		done()
	})
}

// sendNack mirrors Receiver.sendNack: the primary with a deadline, then
// the backup when the primary did not answer (repair.ShouldFailover).
func (r *receiverNode) sendNack(req *nackReq, cb func(*nackResp, *senderNode)) {
	p := r.s.primary
	r.s.call(r.h, p.h, "nack", r.s.cfg.NackTimeout, false, func(reply func(any, codes.Code)) { p.nack(req, reply) },
		func(resp any, code codes.Code) {
			if code == codes.OK {
				cb(resp.(*nackResp), p)
				return
			}
			b := r.s.backup
			if b == nil || !repair.ShouldFailover(code) {
				cb(nil, nil)
				return
			}
			r.s.call(r.h, b.h, "nack", r.s.cfg.NackTimeout, false, func(reply func(any, codes.Code)) { b.nack(req, reply) },
				func(resp any, code codes.Code) {
					if code != codes.OK {
						cb(nil, nil)
						return
					}
					cb(resp.(*nackResp), b)
				})
		})
}

// fetchManifest mirrors Receiver.fetchManifest: the primary (waiting for
// it when no manifest is held), the backup when the primary does not
// answer, then the real adoption rule, where only a sender reporting
// itself ACTIVE is authoritative.
func (r *receiverNode) fetchManifest(cb func(ok bool)) {
	first := r.m == nil
	get := func(n *senderNode, waitReady bool, next func(any, codes.Code)) {
		d := 5 * r.s.cfg.NackTimeout
		if waitReady {
			d = r.s.cfg.NackTimeout
		}
		r.s.call(r.h, n.h, "getmanifest", d, waitReady, func(reply func(any, codes.Code)) { n.getManifest(reply) }, next)
	}
	get(r.s.primary, first, func(resp any, code codes.Code) {
		if code != codes.OK && r.s.backup != nil && repair.ShouldFailover(code) {
			get(r.s.backup, false, func(resp any, code codes.Code) { r.gotManifest(resp, code, cb) })
			return
		}
		r.gotManifest(resp, code, cb)
	})
}

func (r *receiverNode) gotManifest(resp any, code codes.Code, cb func(bool)) {
	if code != codes.OK {
		cb(false)
		return
	}
	mr := resp.(*manifestResp)
	r.fetchedAt = r.now()
	src := repair.Source{Sender: mr.sender, Epoch: mr.epoch, Active: mr.state == stActive}
	d := r.s.cfg.Adopt.Adopt(repair.Held{Manifest: r.m, Sender: r.from, Epoch: r.fromEpoch}, mr.m, src, r.confirmed)
	if d.Adoption != repair.Install {
		r.refetch = false
	}
	switch d.Adoption {
	case repair.Ignore:
		if r.m == nil || r.m.Version != mr.m.Version {
			r.trace("manifest ignored from "+mr.sender+": "+d.Reason, mr.m.Version, 0)
		}
	case repair.HoldBack:
		if r.held == nil || r.held.m.Version != mr.m.Version {
			r.held = &heldManifest{m: mr.m, src: src, since: r.s.now}
			r.s.m.holdbacks++
			r.s.m.alerts = append(r.s.m.alerts, fmt.Sprintf("%v %s: manifest held back: %s", r.s.elapsed(), r.h.name, d.Reason))
			r.trace("manifest held back: "+d.Reason, mr.m.Version, uint64(d.Removed))
		}
	case repair.Install:
		// Adopt installs a version an operator confirmed once whatever it
		// removes now (Receiver.confirmed is per version): the install is
		// by the operator's word.
		r.adopt(mr.m, src, cause{sender: mr.sender, active: src.Active, confirmed: r.confirmed != 0 && mr.m.Version == r.confirmed})
	}
	cb(true)
}

// adopt mirrors Receiver.adopt: persist, alert when another sender's
// manifest removes or changes objects (senderChanged), then install.
func (r *receiverNode) adopt(m *manifest.Manifest, src repair.Source, c cause) {
	r.disk.saved, r.disk.cause = m, c
	prev, prevFrom := r.m, r.from
	r.from, r.fromEpoch = src.Sender, src.Epoch
	r.held = nil
	if prev != nil && prevFrom != "" && prevFrom != src.Sender {
		r.senderChanged(prev, prevFrom, m, src.Sender)
	}
	r.install(m, c)
}

// senderChanged mirrors Receiver.senderChanged (A1).
func (r *receiverNode) senderChanged(prev *manifest.Manifest, prevFrom string, m *manifest.Manifest, sender string) {
	d := manifest.Compare(prev, m)
	if len(d.OnlyA) == 0 && len(d.Changed) == 0 {
		return
	}
	detail := fmt.Sprintf("now follows %s, whose manifest %016x removes %d and changes %d of the objects of %s's %016x", sender, m.Version, len(d.OnlyA), len(d.Changed), prevFrom, prev.Version)
	r.s.m.senderChangedAlerts = append(r.s.m.senderChangedAlerts, r.s.elapsed())
	r.s.m.alerts = append(r.s.m.alerts, fmt.Sprintf("%v %s: sender changed: %s", r.s.elapsed(), r.h.name, detail))
	r.trace("sender changed alert", m.Version, 0)
	if r.s.onSenderChanged != nil {
		r.s.onSenderChanged(r, detail)
	}
}

// confirm is an operator's nackctl confirm-manifest (ConfirmManifest).
func (r *receiverNode) confirm() {
	h := r.held
	r.confirmed = h.m.Version
	r.trace("operator confirms", h.m.Version, 0)
	r.adopt(h.m, h.src, cause{sender: h.src.Sender, active: true, confirmed: true})
}

// install mirrors Receiver.install: objects that keep their version keep
// their state; new or changed ones are probed on disk; objects that left
// the manifest are removed from disk (checked against S2).
func (r *receiverNode) install(m *manifest.Manifest, c cause) {
	old := r.m
	prev := r.objs
	r.s.checkInstall(r, old, m, c)
	for _, o := range m.Objects {
		a := r.accepted[o.Path]
		if a == nil {
			a = map[[32]byte]uint64{}
			r.accepted[o.Path] = a
		}
		a[o.SHA256] = o.Size
	}
	next := make(map[uint64]*objState, len(m.Objects))
	for _, obj := range m.Objects {
		if o, ok := prev[obj.ID]; ok && o.obj.Version == obj.Version {
			next[obj.ID] = o
			continue
		}
		next[obj.ID] = r.probe(obj)
	}
	if old != nil {
		for _, o := range old.Objects {
			if _, keep := m.Lookup(o.ID); keep {
				continue
			}
			r.removeFinal(o.Path, m, c)
		}
	}
	for id, o := range prev {
		if n, ok := next[id]; ok && n == o {
			continue
		}
		o.partial = nil
	}
	for k := range r.disk.partials {
		if o, ok := m.Lookup(k.id); !ok || o.Version != k.version {
			delete(r.disk.partials, k)
		}
	}
	if old == nil || old.Version != m.Version {
		r.doneAt = time.Time{}
	}
	r.m, r.mcause, r.objs = m, c, next
	r.refetch = false
	r.announced = m.Version
	r.trace("manifest installed", m.Version, uint64(len(m.Objects)))
	r.checkDone()
	r.core.Forget(func(id uint64) bool { _, ok := next[id]; return ok })
	r.core.Kick(r.now())
	r.poke()
}

// probe mirrors Receiver.probe: a final file that verifies, else a
// partial file (at its last checkpoint), else nothing.
func (r *receiverNode) probe(obj manifest.Object) *objState {
	o := &objState{obj: obj, state: repair.Missing}
	if f, ok := r.disk.finals[obj.Path]; ok && !f.mixed && f.sha == obj.SHA256 && f.size == obj.Size {
		o.state = repair.Complete
		return o
	}
	if p := r.disk.partials[pkey{obj.ID, obj.Version}]; p != nil && obj.Chunks > 0 {
		o.state = repair.Partial
		o.missing = p.persisted.Missing()
	}
	return o
}

func (r *receiverNode) ensurePartial(o *objState) *partial {
	if o.partial != nil {
		return o.partial
	}
	k := pkey{o.obj.ID, o.obj.Version}
	p := r.disk.partials[k]
	if p == nil {
		p = &partial{obj: o.obj, have: chunks.NewBitmap(o.obj.Chunks), persisted: chunks.NewBitmap(o.obj.Chunks)}
		r.disk.partials[k] = p
	}
	o.partial = p
	o.state = repair.Partial
	o.missing = nil
	return p
}

func (r *receiverNode) enqueueCommit(o *objState) {
	if o.busy || o.partial == nil {
		return
	}
	o.busy = true
	p := o.partial
	o.partial = nil
	r.s.after(r.s.cfg.CommitDelay, r.h, "commit", func() { r.commit(o, p) })
}

// commit verifies a full partial (the simulated SHA-256: every chunk of
// the object's bytes), renames it into place and records the outcome
// (Receiver.committed).
func (r *receiverNode) commit(o *objState, p *partial) {
	// Receiver.dropStaleCommits: a finished copy of a version the
	// installed manifest no longer holds is discarded, not renamed over
	// the current manifest's copy.
	if cur := r.objs[o.obj.ID]; cur == nil || cur.obj.Version != o.obj.Version {
		delete(r.disk.partials, pkey{o.obj.ID, o.obj.Version})
		r.trace("stale commit dropped", o.obj.ID, o.obj.Version)
		return
	}
	current := r.objs[o.obj.ID] == o
	want := chunkTag(o.obj.SHA256, o.obj.ChunkSize)
	if !p.have.Full() || p.mixed || p.tag != want && o.obj.Chunks > 0 {
		r.s.m.verifyFails++
		delete(r.disk.partials, pkey{o.obj.ID, o.obj.Version})
		r.trace("verify failed", o.obj.ID, 0)
		o.state, o.busy, o.missing = repair.Missing, false, nil
		r.core.Kick(r.now())
		r.poke()
		return
	}
	r.writeFinal(o.obj, finalFile{sha: o.obj.SHA256, size: o.obj.Size, tag: p.tag})
	delete(r.disk.partials, pkey{o.obj.ID, o.obj.Version})
	if current {
		o.state, o.busy, o.partial, o.missing = repair.Complete, false, nil, nil
		r.trace("object complete", o.obj.ID, 0)
		r.checkDone()
	}
}

func (r *receiverNode) checkDone() {
	if r.m == nil || !r.doneAt.IsZero() {
		return
	}
	for _, o := range r.objs {
		if o.state != repair.Complete {
			return
		}
	}
	r.doneAt = r.s.now
	r.trace("channel complete", r.m.Version, 0)
}

// pullNext runs the pull worker (pullLoop): one pull at a time.
func (r *receiverNode) pullNext() {
	if r.pullBusy || len(r.pullQ) == 0 {
		return
	}
	j := r.pullQ[0]
	r.pullQ = r.pullQ[1:]
	if r.objs[j.o.obj.ID] != j.o {
		r.pullNext()
		return
	}
	r.pullBusy = true
	o := j.o
	p := r.ensurePartial(o)
	missing := p.have.Missing()
	if len(missing) == 0 {
		missing = chunks.Whole(o.obj.Chunks)
	}
	n := j.from
	deadline := secs(missing.Len()*uint64(o.obj.ChunkSize), r.s.cfg.PullRate) + 4*(r.s.cfg.CtlLatency+r.s.cfg.CtlJitter) + r.s.cfg.Keepalive
	r.trace("pull from "+n.id, o.obj.ID, missing.Len())
	r.s.call(r.h, n.h, "pull", deadline, false, func(reply func(any, codes.Code)) {
		n.pull(o.obj.ID, o.obj.Version, missing, reply)
	}, func(resp any, code codes.Code) {
		r.pullBusy = false
		defer r.pullNext()
		o.busy = false
		if r.objs[o.obj.ID] != o {
			return
		}
		switch code {
		case codes.OK:
			pr := resp.(*pullResp)
			p := r.ensurePartial(o)
			for _, rg := range pr.ranges {
				for i := rg.First; uint64(i) < rg.End(); i++ {
					p.write(i, pr.tag)
				}
			}
		case codes.FailedPrecondition, codes.NotFound:
			r.refetch = true
			r.poke()
		}
		if o.partial != nil && o.partial.have.Full() {
			r.enqueueCommit(o)
		}
	})
}

// read files the packets read from the socket (recvLoop).
func (r *receiverNode) read(q []packet) {
	if r.h.overflow != r.lastOverflow {
		r.lastOverflow = r.h.overflow
		r.core.Kick(r.now())
		r.poke()
	}
	for i := range q {
		r.handlePacket(&q[i])
	}
	if n := r.epochs.Len(); n > r.s.m.maxEpochs {
		r.s.m.maxEpochs = n
	}
}

// handlePacket mirrors Receiver.handlePacket.
func (r *receiverNode) handlePacket(p *packet) {
	switch p.typ {
	case ptAnnounce:
		r.advanceHorizon(p.epoch, p.seq)
		if (r.m == nil || p.mver != r.m.Version) && (r.held == nil || r.held.m.Version != p.mver) {
			if !r.refetch || r.announced != p.mver {
				r.refetch = true
				r.announced = p.mver
				r.poke()
			}
		}
	case ptData:
		o := r.objectOf(p)
		if o == nil {
			return
		}
		// countEpoch: the bounded table of repair.Epochs (R1).
		r.epochs.Count(p.epoch, p.backup, r.now())
		if o.state == repair.Complete || o.busy {
			return
		}
		part := r.ensurePartial(o)
		if part.write(p.chunk, p.tag) && part.have.Full() {
			r.enqueueCommit(o)
		}
	case ptEnd:
		r.advanceHorizon(p.epoch, p.seq)
		o := r.objectOf(p)
		if o == nil || o.state == repair.Complete || o.busy {
			return
		}
		r.core.OnEnd(r.now())
		r.poke()
	}
}

func (r *receiverNode) objectOf(p *packet) *objState {
	if r.m == nil {
		if !r.refetch {
			r.refetch = true
			r.poke()
		}
		return nil
	}
	o := r.objs[p.obj]
	if o == nil || o.obj.Version != p.ver || p.chunk >= max(o.obj.Chunks, 1) && p.typ == ptData {
		return nil
	}
	return o
}

func (r *receiverNode) advanceHorizon(epoch, seq uint64) {
	if epoch != r.horizonEpoch {
		r.horizonEpoch, r.horizon = epoch, seq
		return
	}
	r.horizon = max(r.horizon, seq)
}

// complete reports whether the receiver holds every object of m,
// verified, under m.
func (r *receiverNode) complete(m *manifest.Manifest) bool {
	if r.m == nil || r.m.Version != m.Version {
		return false
	}
	for _, o := range m.Objects {
		f, ok := r.disk.finals[o.Path]
		if !ok || f.mixed || f.sha != o.SHA256 || f.size != o.Size {
			return false
		}
	}
	return true
}
