package sim

import (
	"container/heap"
	"encoding/binary"
	"fmt"
	"hash"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// epoch0 is virtual time zero: every run starts at this instant, whatever
// the wall clock says.
var epoch0 = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

// maxEvents stops a run that livelocks.
const maxEvents = 20_000_000

// event is one entry of the event queue. An event bound to a host runs
// only in the incarnation it was scheduled for (a killed host loses its
// timers) and waits while the host is paused (SIGSTOP: timers fire late).
type event struct {
	at   time.Time
	seq  uint64
	h    *host // nil: the network or the harness, never paused
	inc  uint64
	name string
	fn   func()
}

type eventHeap []*event

func (q eventHeap) Len() int { return len(q) }
func (q eventHeap) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventHeap) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventHeap) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventHeap) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// host is one simulated machine: a process that can be killed, restarted
// and paused, a clock with its own skew, and its links.
type host struct {
	id     int
	name   string
	alive  bool
	paused bool
	inc    uint64
	skew   time.Duration
	// deferred holds the events that came due while paused.
	deferred []*event
	// cutData cuts the host's multicast both ways; cutCtl its gRPC with
	// every peer.
	cutData, cutCtl bool
	// sockQ is the multicast socket's receive buffer (bounded): packets
	// wait there while the process is paused or busy.
	sockQ      []packet
	sockCap    int
	readQueued bool
	overflow   uint64
	// lastArrive keeps each link FIFO: packets of one sender arrive in
	// order.
	lastArrive map[int]time.Time
	// inflight are the RPCs this host serves, failed when it dies.
	inflight []*rpcCall
}

// traceEntry is one line of the trace, formatted only when printed.
type traceEntry struct {
	at   time.Duration
	host string
	what string
	a, b uint64
}

func (e traceEntry) String() string {
	return fmt.Sprintf("%12v %-9s %s %d %d", e.at, e.host, e.what, e.a, e.b)
}

// engine is the event loop, the virtual clock, the seeded randomness and
// the trace. Nothing in it reads the wall clock or starts a goroutine.
type engine struct {
	now    time.Time
	rng    *rand.Rand
	q      eventHeap
	seq    uint64
	events uint64
	ring   []traceEntry // last traceLines events (at least 64)
	ringN  int
	hash   hash.Hash64
	hbuf   [24]byte
	fail   error
	failAt time.Duration
	// check runs after every event; it records the first violation.
	check func()
}

func newEngine(seed uint64) *engine {
	return &engine{
		now:  epoch0,
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		hash: fnv.New64a(),
	}
}

// elapsed is the virtual time since the start of the run.
func (e *engine) elapsed() time.Duration { return e.now.Sub(epoch0) }

// at schedules fn at virtual time t on host h (nil: the network or the
// harness).
func (e *engine) at(t time.Time, h *host, name string, fn func()) {
	if t.Before(e.now) {
		t = e.now
	}
	e.seq++
	ev := &event{at: t, seq: e.seq, h: h, name: name, fn: fn}
	if h != nil {
		ev.inc = h.inc
	}
	heap.Push(&e.q, ev)
}

// after schedules fn d of virtual time from now.
func (e *engine) after(d time.Duration, h *host, name string, fn func()) {
	e.at(e.now.Add(max(d, 0)), h, name, fn)
}

// trace records one line in the ring and folds it into the run's hash.
func (e *engine) trace(h string, what string, a, b uint64) {
	if e.ring == nil {
		e.ring = make([]traceEntry, max(64, traceLines))
	}
	e.ring[e.ringN%len(e.ring)] = traceEntry{at: e.elapsed(), host: h, what: what, a: a, b: b}
	e.ringN++
	binary.BigEndian.PutUint64(e.hbuf[0:], uint64(e.elapsed()))
	binary.BigEndian.PutUint64(e.hbuf[8:], a)
	binary.BigEndian.PutUint64(e.hbuf[16:], b)
	e.hash.Write(e.hbuf[:])
	e.hash.Write([]byte(h))
	e.hash.Write([]byte(what))
}

// failf records the first invariant violation; the run stops after the
// current event.
func (e *engine) failf(format string, args ...any) {
	if e.fail != nil {
		return
	}
	e.fail = fmt.Errorf(format, args...)
	e.failAt = e.elapsed()
	e.trace("check", "VIOLATION "+e.fail.Error(), 0, 0)
}

// lastTrace returns the last n trace lines, oldest first.
func (e *engine) lastTrace(n int) string {
	n = min(n, e.ringN, len(e.ring))
	var b strings.Builder
	for i := e.ringN - n; i < e.ringN; i++ {
		b.WriteString(e.ring[i%len(e.ring)].String())
		b.WriteByte('\n')
	}
	return b.String()
}

// runUntil processes events up to virtual time end (or the first
// violation).
func (e *engine) runUntil(end time.Time) {
	for e.fail == nil && e.q.Len() > 0 {
		ev := e.q[0]
		if ev.at.After(end) {
			break
		}
		heap.Pop(&e.q)
		e.now = ev.at
		if h := ev.h; h != nil {
			if !h.alive || h.inc != ev.inc {
				continue
			}
			if h.paused {
				h.deferred = append(h.deferred, ev)
				continue
			}
		}
		e.events++
		if e.events > maxEvents {
			e.failf("livelock: more than %d events", maxEvents)
			return
		}
		ev.fn()
		if e.check != nil {
			e.check()
		}
	}
	if e.fail == nil && e.now.Before(end) {
		e.now = end
		if e.check != nil {
			e.check()
		}
	}
}

// resume runs a paused host's deferred events now, in their order.
func (e *engine) resume(h *host) {
	h.paused = false
	d := h.deferred
	h.deferred = nil
	for _, ev := range d {
		e.seq++
		ev.at, ev.seq = e.now, e.seq
		heap.Push(&e.q, ev)
	}
}

// rpcCall is one gRPC call in flight.
type rpcCall struct {
	done bool
	cb   func(any, codes.Code)
}

func (c *rpcCall) finish(resp any, code codes.Code) {
	if c.done {
		return
	}
	c.done = true
	c.cb(resp, code)
}
