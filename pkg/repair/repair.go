// Package repair is the receiver's protocol core: the decisions of the
// seed's Figure 6 with no sockets, goroutines or clock inside. The caller
// scans (steps 600-605), asks Plan what to NACK, sends it to the primary
// and, when the primary does not answer, to the backup (610-625), and hands
// the answer to OnReply, which says what to do next (620).
//
// Timing follows the sender: every reply carries next_nack_after (¶45) and
// the core does not NACK again before it has passed, with jitter so that a
// large cloud does not NACK in lockstep. An END for an object the receiver
// lacks brings the next NACK forward to "promptly", but never before the
// interval the sender asked for.
package repair

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/scheduler"
)

// Config holds the receiver's NACK tunables.
type Config struct {
	// ScanInterval is how often the receiver compares its dataset with its
	// content and NACKs what is missing when nothing else prompts it.
	ScanInterval time.Duration
	// EndDelay is the most a receiver waits, at random, before NACKing
	// after an END packet, so that receivers do not NACK in the same
	// instant.
	EndDelay time.Duration
	// Jitter is the fraction by which the receiver varies next_nack_after
	// at random, both ways.
	Jitter float64
	// InitialInterval is the NACK interval followed before any reply.
	InitialInterval time.Duration
	// NotFoundBackoff is the first delay before an object answered
	// NOT_FOUND is asked for again; it doubles up to MaxBackoff.
	NotFoundBackoff time.Duration
	// FailureBackoff is the first delay after a NACK that no sender
	// answered; it doubles up to MaxBackoff.
	FailureBackoff time.Duration
	// MaxBackoff caps both backoffs.
	MaxBackoff time.Duration
	// MaxObjectsPerNack caps the objects in one NACK; the rest go in the
	// next ones, in turn.
	MaxObjectsPerNack int
	// MaxRangesPerObject caps the ranges per object; beyond it, ranges
	// separated by the smallest gaps are merged. The default is the most
	// a sender accepts: merged gaps ask for chunks the receiver holds,
	// which inflates repair passes and parity under scattered loss.
	MaxRangesPerObject int
}

// DefaultConfig returns the defaults used by the receiver service.
func DefaultConfig() Config {
	return Config{
		ScanInterval:       2 * time.Second,
		EndDelay:           50 * time.Millisecond,
		Jitter:             0.25,
		InitialInterval:    200 * time.Millisecond,
		NotFoundBackoff:    time.Second,
		FailureBackoff:     500 * time.Millisecond,
		MaxBackoff:         30 * time.Second,
		MaxObjectsPerNack:  4096,
		MaxRangesPerObject: 65536,
	}
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	pos := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s %v: must be positive", name, d))
		}
	}
	pos("scan-interval", c.ScanInterval)
	pos("nack-initial-interval", c.InitialInterval)
	pos("not-found backoff", c.NotFoundBackoff)
	pos("failure backoff", c.FailureBackoff)
	pos("max-backoff", c.MaxBackoff)
	if c.EndDelay < 0 {
		errs = append(errs, fmt.Errorf("end-delay %v: must not be negative", c.EndDelay))
	}
	if c.Jitter < 0 || c.Jitter >= 1 {
		errs = append(errs, fmt.Errorf("jitter %v: must be in [0,1)", c.Jitter))
	}
	if c.MaxObjectsPerNack < 1 || c.MaxObjectsPerNack > 4096 {
		errs = append(errs, fmt.Errorf("max objects per NACK %d: must be in [1,4096]", c.MaxObjectsPerNack))
	}
	if c.MaxRangesPerObject < 1 || c.MaxRangesPerObject > 65536 {
		errs = append(errs, fmt.Errorf("max ranges per object %d: must be in [1,65536]", c.MaxRangesPerObject))
	}
	return errors.Join(errs...)
}

// State is what a receiver holds of one object.
type State int

// Holding states.
const (
	Complete State = iota + 1
	Partial
	Missing
)

// Holding is the scan's finding for one object (steps 600-605).
type Holding struct {
	Object manifest.Object
	State  State
	// Missing lists the chunks not held of a Partial object.
	Missing chunks.List
	// Busy marks an object being pulled or verified: not NACKed now.
	Busy bool
}

// Request is one object of a NACK: empty Missing means the whole object.
type Request = scheduler.Request

// Reply is a sender's answer to a NACK.
type Reply struct {
	Actions         []scheduler.Action // one per request, in order
	NextNackAfter   time.Duration
	ManifestVersion uint64
}

// Actions is what the receiver must do after a reply.
type Actions struct {
	// Pull lists objects to fetch over unicast (step 445's advice).
	Pull []uint64
	// Waiting counts objects the sender will multicast.
	Waiting int
	// NotFound lists objects the sender does not hold.
	NotFound []uint64
	// RefetchManifest is set when the sender's manifest differs from the
	// receiver's.
	RefetchManifest bool
}

type backoff struct {
	until time.Time
	delay time.Duration
}

// Core is the Fig. 6 engine for one channel. It is not safe for concurrent
// use.
type Core struct {
	cfg      Config
	rnd      *rand.Rand
	interval time.Duration // last next_nack_after, 0 before any reply
	earliest time.Time     // no NACK before this
	due      time.Time     // next NACK cycle
	failures int
	notFound map[uint64]backoff
	rotate   int
}

// New returns a core whose first NACK is due at now. rnd supplies jitter;
// tests seed it.
func New(cfg Config, rnd *rand.Rand, now time.Time) *Core {
	return &Core{cfg: cfg, rnd: rnd, due: now, notFound: make(map[uint64]backoff)}
}

// Interval returns the NACK interval the receiver follows now: the last
// next_nack_after, or the initial interval before any reply.
func (c *Core) Interval() time.Duration {
	if c.interval == 0 {
		return c.cfg.InitialInterval
	}
	return c.interval
}

// Following returns the interval to report in NACKs: zero before any reply.
func (c *Core) Following() time.Duration { return c.interval }

// Resync bounds the times the core has scheduled by what it could have
// scheduled at now: after the clock jumped back, a NACK due "in two hours"
// under the earlier clock is due after at most the longest wait the core
// ever sets (the scan interval, the jittered NACK interval, or after
// failures the longest backoff). A clock that jumped forward needs nothing: what was due is
// simply due.
func (c *Core) Resync(now time.Time) {
	wait := max(c.cfg.ScanInterval, time.Duration(float64(c.Interval())*(1+c.cfg.Jitter)))
	if c.failures > 0 {
		wait = max(wait, c.cfg.MaxBackoff)
	}
	limit := now.Add(wait)
	if c.due.After(limit) {
		c.due = limit
	}
	if c.earliest.After(limit) {
		c.earliest = limit
	}
	for id, b := range c.notFound {
		if b.until.Sub(now) > b.delay {
			b.until = now.Add(b.delay)
			c.notFound[id] = b
		}
	}
}

// Due returns when the next NACK cycle should run.
func (c *Core) Due() time.Time {
	if c.due.Before(c.earliest) {
		return c.earliest
	}
	return c.due
}

// OnEnd tells the core that a multicast job for an object the receiver
// still lacks ended: NACK promptly, after a short random delay, but not
// before the sender's interval has passed.
func (c *Core) OnEnd(now time.Time) {
	at := now
	if c.cfg.EndDelay > 0 {
		at = now.Add(time.Duration(c.rnd.Int64N(int64(c.cfg.EndDelay) + 1)))
	}
	if at.Before(c.due) {
		c.due = at
	}
}

// Kick asks for a NACK cycle as soon as the interval allows (a new
// manifest, a file found missing by a scan).
func (c *Core) Kick(now time.Time) {
	if now.Before(c.due) {
		c.due = now
	}
}

// Plan builds the next NACK from the scan's holdings (steps 605-610). It
// returns nil when nothing needs asking for: every object is complete,
// busy, or backing off after NOT_FOUND. Partial objects are NACKed by
// their missing ranges, missing ones whole. At most MaxObjectsPerNack
// objects go in one NACK; successive calls take turns through the rest.
// Plan also schedules the next periodic cycle.
func (c *Core) Plan(now time.Time, holdings []Holding) []Request {
	// Jittered like the NACK interval: receivers started together must
	// not scan and NACK in lock-step for ever (found by the simulator).
	c.due = now.Add(c.jittered(c.cfg.ScanInterval))
	var want []int
	for i := range holdings {
		h := &holdings[i]
		if h.State == Complete || h.Busy {
			continue
		}
		if b, ok := c.notFound[h.Object.ID]; ok && now.Before(b.until) {
			continue
		}
		want = append(want, i)
	}
	if len(want) == 0 {
		return nil
	}
	max := c.cfg.MaxObjectsPerNack
	start := 0
	if len(want) > max {
		start = c.rotate % len(want)
		c.rotate = start + max
	}
	reqs := make([]Request, 0, min(len(want), max))
	for k := 0; k < len(want) && k < max; k++ {
		h := &holdings[want[(start+k)%len(want)]]
		r := Request{Object: h.Object.ID, Version: h.Object.Version}
		if h.State == Partial && len(h.Missing) > 0 {
			r.Missing = h.Missing.Coalesce(c.cfg.MaxRangesPerObject)
		}
		reqs = append(reqs, r)
	}
	return reqs
}

// OnReply applies a sender's answer to the NACK reqs (step 620) and returns
// what to do. The next NACK may not come before next_nack_after, varied by
// the jitter.
func (c *Core) OnReply(now time.Time, reqs []Request, r Reply, manifestVersion uint64) Actions {
	c.failures = 0
	if r.NextNackAfter > 0 {
		c.interval = r.NextNackAfter
	}
	c.earliest = now.Add(c.jittered(c.Interval()))
	var a Actions
	for i, act := range r.Actions {
		if i >= len(reqs) {
			break
		}
		id := reqs[i].Object
		switch act {
		case scheduler.Wait:
			a.Waiting++
			delete(c.notFound, id)
		case scheduler.Unicast:
			a.Pull = append(a.Pull, id)
			delete(c.notFound, id)
		case scheduler.NotFound:
			a.NotFound = append(a.NotFound, id)
			b := c.notFound[id]
			b.delay = min(max(2*b.delay, c.cfg.NotFoundBackoff), c.cfg.MaxBackoff)
			b.until = now.Add(b.delay)
			c.notFound[id] = b
		}
	}
	if r.ManifestVersion != 0 && r.ManifestVersion != manifestVersion {
		a.RefetchManifest = true
	}
	return a
}

// OnFailure records a NACK that neither the primary nor the backup
// answered: retry after a backoff that doubles with each failure.
func (c *Core) OnFailure(now time.Time) time.Duration {
	c.failures++
	d := c.cfg.FailureBackoff << min(c.failures-1, 16)
	d = min(d, c.cfg.MaxBackoff)
	c.earliest = now.Add(d)
	return d
}

// Forget drops per-object memory for objects no longer in the manifest.
func (c *Core) Forget(keep func(id uint64) bool) {
	for id := range c.notFound {
		if !keep(id) {
			delete(c.notFound, id)
		}
	}
}

func (c *Core) jittered(d time.Duration) time.Duration {
	if c.cfg.Jitter == 0 {
		return d
	}
	f := 1 - c.cfg.Jitter + 2*c.cfg.Jitter*c.rnd.Float64()
	return time.Duration(float64(d) * f)
}

// ShouldFailover reports whether a NACK that failed with code went
// unanswered (step 615 → 625): the sender is unreachable or did not answer
// within the deadline. Any other status is an answer from a live sender.
func ShouldFailover(code codes.Code) bool {
	return code == codes.Unavailable || code == codes.DeadlineExceeded
}
