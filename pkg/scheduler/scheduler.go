// Package scheduler is the sender's protocol core: the decisions of the
// seed's Figure 4, with no sockets, goroutines or clock inside. Callers pass
// the current time in and act on what comes out; every branch is tested
// deterministically.
//
// Per object the scheduler keeps a pass counter (¶23, ¶41), and whether the
// object is idle, in the to-be-multicast pool, or in the being-multicast list
// (¶44). New or changed objects get a first pass without any NACK (step
// 400). Later passes happen only on NACK (¶41), no sooner than the multicast
// period after the previous pass ended, and carry the union of the chunk
// ranges asked for by every NACK merged while the object waited (¶22). A NACK
// is answered per object in the order of steps 420-450.
//
// The scheduler keeps no per-receiver state: memory grows with the number of
// objects, not with the number of receivers (¶11).
package scheduler

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/manifest"
)

// Config holds the scheduler's tunables.
type Config struct {
	// MaxPasses caps the multicast passes of one object (seed 220); a NACK
	// for an object that has had them all gets UNICAST.
	MaxPasses int
	// MaxJobs is N, the number of objects multicast at once (¶44).
	MaxJobs int
	// Period is the multicast period (seed 215): the least time between the
	// end of one pass of an object and the start of the next. NACKs that
	// arrive meanwhile merge into one pass.
	Period time.Duration
	// TargetNackRate is the NACK requests per second the sender aims to
	// receive; the NACK interval handed to receivers adapts to it (¶45).
	TargetNackRate float64
	// MinNackInterval and MaxNackInterval clamp the interval.
	MinNackInterval time.Duration
	MaxNackInterval time.Duration
	// RateWindow is the period over which the NACK rate is measured.
	RateWindow time.Duration
	// MergeWindow holds back a pass asked for by a NACK so that the NACKs
	// other receivers send about the same object at about the same time
	// merge into it (¶22), even when the object's last pass is long past.
	MergeWindow time.Duration
	// FirstPassDelay holds back the first pass of a new or changed object
	// so that receivers can fetch the manifest that lists it (the sender
	// announces a new manifest at once); chunks of an object a receiver
	// does not know yet are dropped. It is the longest wait: the sender
	// hurries the pass once the fetches of the new manifest stop
	// (Scheduler.Hurry).
	FirstPassDelay time.Duration
	// FEC configures Reed-Solomon parity for first and repair passes.
	FEC FEC
}

// DefaultConfig returns the defaults used by the services.
func DefaultConfig() Config {
	return Config{
		MaxPasses:       3,
		MaxJobs:         4,
		Period:          250 * time.Millisecond,
		TargetNackRate:  200,
		MinNackInterval: 200 * time.Millisecond,
		MaxNackInterval: 2 * time.Minute,
		RateWindow:      time.Second,
		FirstPassDelay:  500 * time.Millisecond,
		MergeWindow:     200 * time.Millisecond,
		FEC:             FEC{Block: 32, Parity: 16},
	}
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxPasses < 1 {
		errs = append(errs, fmt.Errorf("max-passes %d: must be at least 1", c.MaxPasses))
	}
	if c.MaxJobs < 1 {
		errs = append(errs, fmt.Errorf("max-jobs %d: must be at least 1", c.MaxJobs))
	}
	if c.Period < 0 {
		errs = append(errs, fmt.Errorf("period %v: must not be negative", c.Period))
	}
	if !(c.TargetNackRate > 0) || math.IsInf(c.TargetNackRate, 0) {
		errs = append(errs, fmt.Errorf("nack-target-rate %v: must be a positive number", c.TargetNackRate))
	}
	if c.MinNackInterval <= 0 || c.MaxNackInterval < c.MinNackInterval {
		errs = append(errs, fmt.Errorf("nack-min-interval %v, nack-max-interval %v: need 0 < min <= max", c.MinNackInterval, c.MaxNackInterval))
	}
	if c.RateWindow <= 0 {
		errs = append(errs, fmt.Errorf("rate window %v: must be positive", c.RateWindow))
	}
	if c.MergeWindow < 0 {
		errs = append(errs, fmt.Errorf("merge-window %v: must not be negative", c.MergeWindow))
	}
	if c.FirstPassDelay < 0 {
		errs = append(errs, fmt.Errorf("first-pass-delay %v: must not be negative", c.FirstPassDelay))
	}
	errs = append(errs, c.FEC.Validate()...)
	return errors.Join(errs...)
}

// Key names an object across channels.
type Key struct {
	Channel uint32
	Object  uint64
}

// Action is the reply to one object of a NACK.
type Action int

// Actions, as in the seed's Figure 4.
const (
	// Wait: queued or being multicast (steps 435, 450).
	Wait Action = iota + 1
	// Unicast: passes used up; pull it (step 445).
	Unicast
	// NotFound: not held, or held in another version (step 425).
	NotFound
)

func (a Action) String() string {
	switch a {
	case Wait:
		return "wait"
	case Unicast:
		return "unicast"
	case NotFound:
		return "not_found"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// JobState is where an object stands.
type JobState int

// Job states.
const (
	Idle JobState = iota + 1
	Pooled
	InFlight
)

func (s JobState) String() string {
	switch s {
	case Idle:
		return "idle"
	case Pooled:
		return "pooled"
	case InFlight:
		return "in_flight"
	}
	return fmt.Sprintf("JobState(%d)", int(s))
}

// Request is one object of a NACK. Missing must be validated against the
// object and normalized by the caller; empty means the whole object.
type Request struct {
	Object  uint64
	Version uint64
	Missing chunks.List
}

// NackInfo is what a NACK says about its receiver as a whole.
type NackInfo struct {
	// Follow is the NACK interval the receiver follows (zero on its first
	// NACK).
	Follow time.Duration
	// Horizon is the sequence number of the last job of this sender epoch
	// whose END or ANNOUNCE the receiver has processed; HorizonKnown is
	// false when the receiver has seen nothing of this epoch.
	Horizon      uint64
	HorizonKnown bool
}

// Decision is the answer to one Request.
type Decision struct {
	Action Action
	Passes uint32
}

// Job is one multicast pass of one object.
type Job struct {
	Key    Key
	Object manifest.Object
	// Pass is the number of this pass, 1 for the first.
	Pass uint32
	// Ranges are the chunks to send, in order.
	Ranges chunks.List
	// Parity lists the parity shards to send after the chunks, by block,
	// in block order.
	Parity []BlockParity
	// Repair is true for passes after the first.
	Repair  bool
	Started time.Time
	// Listed is when the object (this version) entered the scheduler:
	// Started - Listed of a first pass is how long it took to begin.
	Listed time.Time
	gen    uint64
	owner  *Scheduler // that started it; Done and Abort of another one's job are ignored
}

type object struct {
	key         Key
	obj         manifest.Object
	passes      uint32
	state       JobState
	whole       bool              // next pass sends the whole object
	ranges      chunks.List       // else: the union of ranges asked for
	blockMiss   map[uint32]uint32 // with FEC: most chunks of a block one NACK lacks
	parityNext  map[uint32]uint8  // with FEC: next unsent parity shard per block
	lastPassEnd time.Time
	lastSeq     uint64    // job sequence number of the last pass
	eligible    time.Time // when a pooled object may start
	listed      time.Time // when this version entered the scheduler
	gen         uint64    // bumped when the record is replaced or removed
}

// ObjectState is a snapshot of one object for status reports.
type ObjectState struct {
	Key    Key
	Object manifest.Object
	Passes uint32
	State  JobState
}

// Scheduler is the Fig. 4 engine. It is not safe for concurrent use.
type Scheduler struct {
	cfg      Config
	objects  map[Key]*object
	pool     poolHeap
	running  int
	nextGen  uint64
	interval time.Duration
	meter    nackMeter
	// born is when the scheduler started measuring NACKs: a backup that
	// just took over, a primary that just started, or the first NACK
	// after a silence longer than the interval (a paused or cut-off
	// sender, a cloud that was complete).
	born time.Time
	// lastNack is when the last NACK was metered.
	lastNack time.Time
}

// New returns a scheduler with no objects. cfg must be valid.
func New(cfg Config, now time.Time) *Scheduler {
	return &Scheduler{
		cfg:      cfg,
		objects:  make(map[Key]*object),
		interval: cfg.MinNackInterval,
		meter:    newNackMeter(now, cfg.MaxNackInterval),
		born:     now,
		lastNack: now,
	}
}

// SetObjects reconciles the objects of channel with objs, the channel's new
// manifest. Objects that are new or whose version changed start over with
// a pass counter of zero; with firstPass set they enter the pool for their
// first multicast (step 400), eligible after FirstPassDelay; otherwise they
// wait for a NACK (a backup standing by). Objects no longer listed are forgotten; a job in flight for
// one finishes without counting.
func (s *Scheduler) SetObjects(channel uint32, objs []manifest.Object, firstPass bool, now time.Time) (added, changed, removed int) {
	listed := make(map[uint64]bool, len(objs))
	for _, o := range objs {
		listed[o.ID] = true
		k := Key{channel, o.ID}
		cur, ok := s.objects[k]
		if ok && cur.obj.Version == o.Version {
			cur.obj = o
			continue
		}
		if ok {
			changed++
		} else {
			added++
		}
		s.nextGen++
		rec := &object{key: k, obj: o, state: Idle, gen: s.nextGen, listed: now}
		s.objects[k] = rec
		if firstPass {
			rec.whole = true
			s.enqueue(rec, now.Add(s.cfg.FirstPassDelay))
		}
	}
	for k := range s.objects {
		if k.Channel == channel && !listed[k.Object] {
			delete(s.objects, k)
			removed++
		}
	}
	return added, changed, removed
}

// MaxHurry is the most first passes Hurry starts early: a publication or
// a small origin change. A bulk change (a channel loaded at start-up)
// keeps the whole FirstPassDelay, since receivers take longer to install
// a manifest with many new objects than to fetch it.
const MaxHurry = 64

// Hurry makes the first passes of channel that wait for FirstPassDelay
// eligible now, when there are at most MaxHurry of them: the sender saw
// receivers fetch the new manifest, and the wave of fetches end. It
// returns how many it moved.
func (s *Scheduler) Hurry(channel uint32, now time.Time) int {
	var pending []*object
	for _, rec := range s.objects {
		if rec.key.Channel != channel || rec.state != Pooled || rec.passes > 0 || !rec.eligible.After(now) {
			continue
		}
		if len(pending) == MaxHurry {
			return 0
		}
		pending = append(pending, rec)
	}
	for _, rec := range pending {
		rec.eligible = now
		heap.Push(&s.pool, poolEntry{rec: rec, gen: rec.gen, eligible: now, seq: s.nextSeq()})
	}
	return len(pending)
}

// RemoveChannel forgets every object of channel.
func (s *Scheduler) RemoveChannel(channel uint32) {
	for k := range s.objects {
		if k.Channel == channel {
			delete(s.objects, k)
		}
	}
}

// Nack answers a NACK for objects of channel, appending one Decision per
// request to out, and records the NACK for the adaptive interval. The
// decision order is the seed's: not held → NotFound (425); pooled or in
// flight → Wait (435), merging the ranges into a pooled pass; pass counter
// below the cap → pool and Wait (450); else → Unicast (445). Step 435
// covers one more case: a pass that ended after the receiver's horizon is
// still "being multicast" from the receiver's point of view (its packets
// sit in the receiver's socket buffer), so the answer is Wait — but only
// for HorizonGrace after the pass ended. A receiver that has still not
// read that pass's END by then did not get its packets (its multicast may
// be cut altogether): it is answered as if the pass were seen, so that it
// gets another pass or, at the cap, Unicast. Without the bound a receiver
// with no multicast at all would be told to wait for ever.
func (s *Scheduler) Nack(now time.Time, channel uint32, info NackInfo, reqs []Request, out []Decision) []Decision {
	if now.Sub(s.lastNack) > max(s.interval, s.cfg.RateWindow) {
		// After a silence the decayed interval says nothing about the
		// cloud: a primary resumed from a pause would hand the minimum
		// to every receiver at once. Start over from what receivers
		// follow, as a new sender does (L2).
		s.born = now
	}
	s.lastNack = now
	s.updateInterval(now)
	s.meter.add(now, s.metered(now, info.Follow))
	for _, r := range reqs {
		rec, ok := s.objects[Key{channel, r.Object}]
		switch {
		case !ok || rec.obj.Version != r.Version:
			out = append(out, Decision{Action: NotFound})
		case rec.state == InFlight:
			out = append(out, Decision{Action: Wait, Passes: rec.passes})
		case info.HorizonKnown && rec.lastSeq > info.Horizon && s.draining(rec, now):
			// The receiver has not read the END of the last pass yet: what
			// it lacks may still sit in its socket buffer. Merged into the
			// next pass, it repeated up to half an object that receivers
			// were still draining (found measuring 5% loss on lo).
			out = append(out, Decision{Action: Wait, Passes: rec.passes})
		case rec.state == Pooled:
			rec.merge(r.Missing, s.cfg.FEC)
			out = append(out, Decision{Action: Wait, Passes: rec.passes})
		case int(rec.passes) < s.cfg.MaxPasses:
			rec.whole, rec.ranges, rec.blockMiss = false, nil, nil
			rec.merge(r.Missing, s.cfg.FEC)
			s.enqueue(rec, now.Add(s.cfg.MergeWindow))
			out = append(out, Decision{Action: Wait, Passes: rec.passes})
		default:
			out = append(out, Decision{Action: Unicast, Passes: rec.passes})
		}
	}
	return out
}

// minDrain is the least time HorizonGrace allows a receiver to drain its
// socket buffer after a pass: tens of megabytes at its reading pace.
const minDrain = time.Second

// HorizonGrace is how long after a pass ended a receiver that has not yet
// read the pass's END is told to wait for its packets: the multicast
// period (at least minDrain) plus the merge window (1.2 s by default).
// The packets of a pass are in the receiver's socket buffer or lost well
// within it.
func (s *Scheduler) HorizonGrace() time.Duration {
	return max(s.cfg.Period, minDrain) + s.cfg.MergeWindow
}

// draining reports whether rec's last pass ended less than HorizonGrace
// ago. A pass end "in the future" (set under a clock that has since jumped
// back) counts as long past, like every other time the scheduler holds.
func (s *Scheduler) draining(rec *object, now time.Time) bool {
	since := now.Sub(rec.lastPassEnd)
	return since >= 0 && since < s.HorizonGrace()
}

// merge adds the chunks a NACK asked for to the object's next pass.
func (o *object) merge(missing chunks.List, f FEC) {
	if o.whole {
		return
	}
	if len(missing) == 0 || missing.Len() >= uint64(o.obj.Chunks) {
		o.whole, o.ranges, o.blockMiss = true, nil, nil
		return
	}
	o.ranges = o.ranges.Union(missing)
	if f.Enabled() {
		o.mergeParity(missing, f.Block)
	}
}

// enqueue pools rec, eligible at the later of at and the end of its
// multicast period.
func (s *Scheduler) enqueue(rec *object, at time.Time) {
	rec.state = Pooled
	rec.eligible = at
	if !rec.lastPassEnd.IsZero() {
		if e := rec.lastPassEnd.Add(s.cfg.Period); e.After(at) {
			rec.eligible = e
		}
	}
	heap.Push(&s.pool, poolEntry{rec: rec, gen: rec.gen, eligible: rec.eligible, seq: s.nextSeq()})
}

func (s *Scheduler) nextSeq() uint64 {
	s.nextGen++
	return s.nextGen
}

// Next moves pooled objects whose time has come into the being-multicast
// list, at most MaxJobs in flight in all, and returns their jobs.
func (s *Scheduler) Next(now time.Time) []Job {
	var jobs []Job
	for s.running < s.cfg.MaxJobs && s.pool.Len() > 0 {
		top := s.pool[0]
		if !s.live(top) {
			heap.Pop(&s.pool)
			continue
		}
		if top.eligible.After(now) && top.eligible.Sub(now) <= s.maxHold() {
			break
		}
		// Eligible, or further ahead than the scheduler ever holds a
		// pass back: set under a clock that has since jumped back.
		heap.Pop(&s.pool)
		rec := top.rec
		rec.state = InFlight
		s.running++
		j := Job{
			Key:     rec.key,
			Object:  rec.obj,
			Pass:    rec.passes + 1,
			Repair:  rec.passes > 0,
			Started: now,
			Listed:  rec.listed,
			gen:     rec.gen,
			owner:   s,
		}
		switch {
		case rec.whole:
			j.Ranges = chunks.Whole(rec.obj.Chunks)
			if rec.passes == 0 {
				j.Parity = proactive(rec, s.cfg.FEC)
			}
		case s.cfg.FEC.Enabled():
			j.Ranges, j.Parity = rec.planParity(rec.ranges, s.cfg.FEC)
		default:
			j.Ranges = rec.ranges
		}
		rec.whole, rec.ranges, rec.blockMiss = false, nil, nil
		jobs = append(jobs, j)
	}
	return jobs
}

// maxHold is the longest the scheduler holds a pooled pass back.
func (s *Scheduler) maxHold() time.Duration {
	return s.cfg.FirstPassDelay + s.cfg.MergeWindow + s.cfg.Period
}

// live reports whether a pool entry still refers to a pooled object.
func (s *Scheduler) live(e poolEntry) bool {
	cur, ok := s.objects[e.rec.key]
	return ok && cur == e.rec && e.rec.gen == e.gen && e.rec.state == Pooled && e.eligible.Equal(e.rec.eligible)
}

// Wake returns the earliest time at which Next could start a job, and false
// when nothing is pooled or every job slot is busy.
func (s *Scheduler) Wake() (time.Time, bool) {
	if s.running >= s.cfg.MaxJobs {
		return time.Time{}, false
	}
	for s.pool.Len() > 0 {
		if top := s.pool[0]; s.live(top) {
			return top.eligible, true
		}
		heap.Pop(&s.pool)
	}
	return time.Time{}, false
}

// Done records that job j finished at now as job number seq of this
// sender epoch: the object leaves the being-multicast list and its pass
// counter goes up by one (¶44). A job whose object was removed or changed
// meanwhile only frees its slot.
func (s *Scheduler) Done(j Job, now time.Time, seq uint64) {
	if j.owner != nil && j.owner != s {
		return // a replaced scheduler's job: its slot is not ours
	}
	s.running--
	rec, ok := s.objects[j.Key]
	if !ok || rec.gen != j.gen || rec.state != InFlight {
		return
	}
	rec.passes++
	rec.lastPassEnd = now
	rec.lastSeq = seq
	rec.state = Idle
}

// Abort records that job j could not be completed (its file vanished, say):
// the slot is freed and the pass does not count.
func (s *Scheduler) Abort(j Job) {
	if j.owner != nil && j.owner != s {
		return
	}
	s.running--
	if rec, ok := s.objects[j.Key]; ok && rec.gen == j.gen && rec.state == InFlight {
		rec.state = Idle
	}
}

// Restore applies a record kept across a restart of the sender: the
// object was known in that version, and had passes passes (possibly none:
// its first pass was cut short). It is not new, so its automatic first
// pass is cancelled; receivers that lack it NACK it. Restore applies only
// to an object of that version still waiting for its first pass, and
// reports whether it did.
func (s *Scheduler) Restore(k Key, version uint64, passes uint32) bool {
	rec, ok := s.objects[k]
	if !ok || rec.obj.Version != version || rec.passes != 0 || rec.state != Pooled || !rec.whole {
		return false
	}
	rec.passes = passes
	rec.state = Idle
	rec.whole = false
	return true
}

// Known returns every object with its version and pass count, for keeping
// across a restart.
func (s *Scheduler) Known() []ObjectState {
	out := make([]ObjectState, 0, len(s.objects))
	for k, rec := range s.objects {
		out = append(out, ObjectState{Key: k, Object: rec.obj, Passes: rec.passes, State: rec.state})
	}
	return out
}

// Lookup returns an object's entry and state.
func (s *Scheduler) Lookup(k Key) (ObjectState, bool) {
	rec, ok := s.objects[k]
	if !ok {
		return ObjectState{}, false
	}
	return ObjectState{Key: k, Object: rec.obj, Passes: rec.passes, State: rec.state}, true
}

// Objects returns a snapshot of every object of channel, in no order.
func (s *Scheduler) Objects(channel uint32) []ObjectState {
	var out []ObjectState
	for k, rec := range s.objects {
		if k.Channel == channel {
			out = append(out, ObjectState{Key: k, Object: rec.obj, Passes: rec.passes, State: rec.state})
		}
	}
	return out
}

// Load returns the number of jobs in flight and of objects pooled.
func (s *Scheduler) Load() (inFlight, pooled int) {
	for _, rec := range s.objects {
		if rec.state == Pooled {
			pooled++
		}
	}
	return s.running, pooled
}

// young reports whether the scheduler has measured NACKs for less than
// the interval follow that a receiver says it follows: it cannot have seen
// that receiver's rate yet (a backup that has just taken over, a primary
// just started). A start ahead of now (the clock jumped back) restarts
// the measure.
func (s *Scheduler) young(now time.Time, follow time.Duration) bool {
	if now.Before(s.born) {
		s.born = now
	}
	// A claim is worth at most MaxNackInterval: a receiver claiming
	// hours cannot keep the scheduler young for it for ever.
	return follow > 0 && now.Sub(s.born) < min(follow, s.cfg.MaxNackInterval)
}

// metered is the interval a NACK from a receiver following follow counts
// for in the rate meter. A receiver's claim above the current interval is
// normally capped at it, so that no receiver can inflate the population
// estimate and slow everyone; while the scheduler is younger than the
// claim it counts in full (up to MaxNackInterval), or a new sender would
// see a large cloud as a small one and hand out the minimum (L2).
func (s *Scheduler) metered(now time.Time, follow time.Duration) time.Duration {
	switch {
	case follow <= 0:
		return s.interval
	case s.young(now, follow):
		return min(follow, s.cfg.MaxNackInterval)
	}
	return min(follow, s.interval)
}

// ReplyInterval returns the next_nack_after for a NACK from a receiver
// following follow: NackInterval, except that a scheduler younger than
// follow never tells a receiver to NACK more often than it does, so that a
// new active sender starts from the interval receivers follow rather than
// from the minimum (guarantee L2).
func (s *Scheduler) ReplyInterval(now time.Time, follow time.Duration) time.Duration {
	iv := s.NackInterval(now)
	if s.young(now, follow) {
		iv = max(iv, min(follow, s.cfg.MaxNackInterval))
	}
	return iv
}

// NackInterval returns the interval to hand to receivers in NACK replies
// (¶45) as of now.
func (s *Scheduler) NackInterval(now time.Time) time.Duration {
	s.updateInterval(now)
	return s.interval
}

// NackRate returns the NACK arrival rate in requests per second, smoothed
// over the last few measurement windows.
func (s *Scheduler) NackRate(now time.Time) float64 {
	s.updateInterval(now)
	return s.meter.rate
}

// updateInterval recomputes the NACK interval once per measurement window.
//
// The sender keeps no per-receiver state, so it estimates how many receivers
// are NACKing from the NACKs themselves. Each NACK carries the interval I its
// receiver follows. Over the last span S (the current interval), a receiver
// following I <= S sends S/I NACKs; counting I per NACK and dividing the sum
// by S counts each receiver once, whatever its interval and however bursty
// the arrivals. The interval that brings the arrival rate to the target is
// that population divided by the target. It rises at once (to protect the
// sender from a NACK explosion) and falls by at most half per interval (so
// the silence between two rounds of NACKs does not invite an explosion).
func (s *Scheduler) updateInterval(now time.Time) {
	s.meter.advance(now)
	if now.Before(s.meter.lastEval.Add(s.cfg.RateWindow)) {
		return
	}
	elapsed := now.Sub(s.meter.lastEval)
	s.meter.lastEval = now
	span := max(s.interval, s.cfg.RateWindow)
	recent := float64(s.meter.count(s.cfg.RateWindow)) / s.cfg.RateWindow.Seconds()
	if elapsed > 2*s.cfg.RateWindow {
		s.meter.rate = recent
	} else {
		s.meter.rate = 0.5*recent + 0.5*s.meter.rate
	}
	population := s.meter.sum(span) / span.Seconds()
	want := time.Duration(population / s.cfg.TargetNackRate * float64(time.Second))
	floor := float64(s.interval) * math.Exp2(-elapsed.Seconds()/span.Seconds())
	want = max(want, time.Duration(floor))
	s.interval = min(max(want, s.cfg.MinNackInterval), s.cfg.MaxNackInterval)
}

// nackMeter keeps recent NACK arrivals in a fixed ring of time buckets that
// spans the longest interval: constant memory, however many receivers.
type nackMeter struct {
	width     time.Duration
	sums      []float64 // per bucket: Σ seconds of interval followed
	counts    []uint32  // per bucket: NACKs
	head      int       // bucket holding headStart
	headStart time.Time
	lastEval  time.Time
	rate      float64
}

func newNackMeter(now time.Time, maxSpan time.Duration) nackMeter {
	const width = 100 * time.Millisecond
	n := int(maxSpan/width) + 2
	return nackMeter{width: width, sums: make([]float64, n), counts: make([]uint32, n), headStart: now, lastEval: now}
}

// advance moves the head to the bucket holding now, clearing the buckets
// it passes.
func (m *nackMeter) advance(now time.Time) {
	if now.Before(m.headStart) {
		// The clock jumped back: start the ring over from now.
		clear(m.sums)
		clear(m.counts)
		m.headStart, m.lastEval = now, now
		return
	}
	steps := now.Sub(m.headStart) / m.width
	if steps <= 0 {
		return
	}
	if int(steps) >= len(m.sums) {
		clear(m.sums)
		clear(m.counts)
	} else {
		for i := 0; i < int(steps); i++ {
			m.head = (m.head + 1) % len(m.sums)
			m.sums[m.head], m.counts[m.head] = 0, 0
		}
	}
	m.headStart = m.headStart.Add(steps * m.width)
}

func (m *nackMeter) add(now time.Time, follow time.Duration) {
	m.advance(now)
	m.sums[m.head] += follow.Seconds()
	m.counts[m.head]++
}

func (m *nackMeter) buckets(span time.Duration) int {
	return min(int((span+m.width-1)/m.width), len(m.sums)-1)
}

// sum and count add up the complete buckets of the last span (the bucket
// being filled is left out).
func (m *nackMeter) sum(span time.Duration) float64 {
	var t float64
	for i, k := 1, m.buckets(span); i <= k; i++ {
		t += m.sums[(m.head-i+len(m.sums))%len(m.sums)]
	}
	return t
}

func (m *nackMeter) count(span time.Duration) uint64 {
	var t uint64
	for i, k := 1, m.buckets(span); i <= k; i++ {
		t += uint64(m.counts[(m.head-i+len(m.counts))%len(m.counts)])
	}
	return t
}

// poolHeap orders pooled objects by eligibility time, then by arrival.
type poolEntry struct {
	rec      *object
	gen      uint64
	eligible time.Time
	seq      uint64
}

type poolHeap []poolEntry

func (h poolHeap) Len() int { return len(h) }
func (h poolHeap) Less(i, j int) bool {
	if !h[i].eligible.Equal(h[j].eligible) {
		return h[i].eligible.Before(h[j].eligible)
	}
	return h[i].seq < h[j].seq
}
func (h poolHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *poolHeap) Push(x any)   { *h = append(*h, x.(poolEntry)) }
func (h *poolHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = poolEntry{}
	*h = old[:len(old)-1]
	return e
}
