// Package failover is the protocol core of the backup sender (the seed's
// Figure 5) and of the primary's start-up (¶40), with no sockets,
// goroutines or clock inside. The backup keeps no state synchronised with
// the primary: receivers' NACKs wake it, and what it multicasts comes from
// those NACKs.
//
// Backup, per NACK (step 500): standing by, it checks whether the primary
// is alive (505). Alive: the NACK is disregarded (525); a second NACK from
// the same receiver while the primary is alive raises a network alert
// (530-535). Dead: the backup takes the sender role under a new epoch and
// runs Figure 4 on this NACK and the ones that follow (510). While active
// it keeps checking the primary; when the recovered primary signals (515),
// or is seen alive and serving, it finishes the jobs in hand, starts no
// new ones, and returns to standby (520) — finishing them for at most
// HandbackTimeout, after which it aborts what is left (receivers NACK the
// rest from the primary), so that two senders never multicast together
// for longer than that, whatever the size of the objects.
//
// The backup also listens to the group. A primary heard multicasting after
// its health checks began to fail is alive whatever they say (its control
// plane is cut while its data plane works): the backup does not take over
// and serves the receivers that cannot reach it by unicast. An active
// backup that hears the primary hands back at once: two senders on the
// wire is the one state to end without waiting for any signal (guarantee
// S3). A primary that crashed or froze is heard no more after its checks
// fail, so the take-over is not delayed.
//
// Primary, at start-up: it signals the backup. A backup that does not
// answer, or stands by, lets the primary start at once; an active backup
// is waited for until it reports standby, at most a configured time.
package failover

import (
	"errors"
	"fmt"
	"time"
)

// State is the backup's state.
type State int

// Backup states.
const (
	Standby State = iota + 1
	Active
	HandingBack
)

func (s State) String() string {
	switch s {
	case Standby:
		return "standby"
	case Active:
		return "active"
	case HandingBack:
		return "handing_back"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Config holds the backup's tunables.
type Config struct {
	// AlertWindow is how long a disregarded NACK is remembered: a second
	// NACK from the same receiver within it raises a network alert.
	AlertWindow time.Duration
	// HandbackTimeout is the most a handing-back backup goes on with the
	// jobs in hand after the primary's signal before it aborts them.
	HandbackTimeout time.Duration
	// HeardWindow is how long a primary heard on the group counts as
	// alive; more than the primary's ANNOUNCE interval, which is how
	// often an idle primary is heard.
	HeardWindow time.Duration
	// Grace is how long after the backup starts or stands by a primary
	// that fails its health check still counts as alive: one starting
	// with us, or reclaiming its role, is getting ready. A failing check
	// within the grace raises no alert.
	Grace time.Duration
	// MaxTracked bounds the receivers remembered (oldest forgotten first),
	// so that memory does not grow with the number of receivers.
	MaxTracked int
}

// DefaultConfig returns the defaults used by the backup service.
func DefaultConfig() Config {
	return Config{AlertWindow: time.Minute, MaxTracked: 10000, HandbackTimeout: 500 * time.Millisecond, HeardWindow: 2 * time.Second}
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.AlertWindow <= 0 {
		errs = append(errs, fmt.Errorf("alert-window %v: must be positive", c.AlertWindow))
	}
	if c.HandbackTimeout <= 0 {
		errs = append(errs, fmt.Errorf("handback-timeout %v: must be positive", c.HandbackTimeout))
	}
	if c.Grace < 0 {
		errs = append(errs, fmt.Errorf("primary-grace %v: must not be negative", c.Grace))
	}
	if c.HeardWindow <= 0 {
		errs = append(errs, fmt.Errorf("heard window %v: must be positive", c.HeardWindow))
	}
	if c.MaxTracked < 1 {
		errs = append(errs, fmt.Errorf("max tracked receivers %d: must be at least 1", c.MaxTracked))
	}
	return errors.Join(errs...)
}

// NackStep is what the backup must do with an incoming NACK.
type NackStep int

// Steps for a NACK.
const (
	// CheckPrimary: standing by, check the primary's liveness and report
	// the result with PrimaryChecked (step 505).
	CheckPrimary NackStep = iota + 1
	// Serve: active, run Figure 4 on the NACK.
	Serve
	// HoldOff: handing back; answer WAIT and start nothing.
	HoldOff
)

// Outcome is the result of a NACK after the primary's liveness is known.
type Outcome int

// Outcomes.
const (
	// Disregard: the primary is alive (step 525).
	Disregard Outcome = iota + 1
	// Alert: the primary is alive and this receiver NACKed the backup
	// before: raise a network alert (535). The receiver cannot reach the
	// primary, so the backup answers it without multicasting: UNICAST
	// for what it holds in the same version, NOT_FOUND otherwise.
	Alert
	// TakeOver: the primary is dead; this backup is now active under a new
	// epoch and serves the NACK (510).
	TakeOver
	// ServeNow: the backup became active meanwhile; serve the NACK.
	ServeNow
)

func (o Outcome) String() string {
	switch o {
	case Disregard:
		return "disregard"
	case Alert:
		return "alert"
	case TakeOver:
		return "take_over"
	case ServeNow:
		return "serve"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Backup is the Fig. 5 engine. It is not safe for concurrent use.
type Backup struct {
	cfg   Config
	state State
	since time.Time
	// handBy is when a handing-back backup aborts its jobs; heard is when
	// the primary was last heard on the group (zero: never); failing is
	// when its health checks began to fail (zero: the last one passed).
	handBy  time.Time
	heard   time.Time
	failing time.Time
	// aliveSince is when the current run of checks that found the
	// primary alive (SERVING, or heard on the group) began; zero after a
	// check that did not. A receiver's earlier NACK counts towards an
	// alert only if it came within this run: one that came while the
	// primary was starting, or down, says nothing about the network.
	aliveSince time.Time
	// graceFrom is when the grace began: the backup started or stood by.
	graceFrom time.Time
	// seen remembers receivers whose NACK was disregarded, with when, in
	// order of arrival for eviction.
	seen  map[string]time.Time
	order []string
}

// NewBackup returns a backup standing by since now.
func NewBackup(cfg Config, now time.Time) *Backup {
	return &Backup{cfg: cfg, state: Standby, since: now, graceFrom: now, seen: make(map[string]time.Time)}
}

// State returns the current state and since when.
func (b *Backup) State() (State, time.Time) { return b.state, b.since }

// Nack says what to do with a NACK that just arrived (step 500).
func (b *Backup) Nack() NackStep {
	switch b.state {
	case Active:
		return Serve
	case HandingBack:
		return HoldOff
	}
	return CheckPrimary
}

// PrimaryChecked applies the result of the liveness check made for a NACK
// from receiver (steps 505-535): serving is whether the primary answered
// its health check with SERVING. A primary that did not counts as alive
// when it was heard on the group since its checks began to fail, or
// within the grace; only a SERVING answer ends a run of failing checks,
// so the grace can never make a primary that multicasts with its control
// plane cut look dead again. The network alert needs two NACKs from the
// receiver while the primary was known alive throughout (not merely
// assumed alive within the grace): receivers that start before their
// primary, or NACKed it while it was getting ready, raise none.
func (b *Backup) PrimaryChecked(now time.Time, receiver string, serving bool) Outcome {
	switch b.state {
	case Active:
		return ServeNow
	case HandingBack:
		return Disregard
	}
	if serving {
		b.failing = time.Time{}
	} else if b.failing.IsZero() || b.failing.After(now) {
		b.failing = now
	}
	heard := !serving && b.heardSinceFailing(now)
	assumed := !serving && !heard && b.inGrace(now)
	if !serving && !heard && !assumed {
		b.set(Active, now)
		clear(b.seen)
		b.order = b.order[:0]
		b.aliveSince = time.Time{}
		return TakeOver
	}
	switch {
	case assumed:
		b.aliveSince = time.Time{}
	case b.aliveSince.IsZero() || b.aliveSince.After(now):
		b.aliveSince = now
	}
	b.expire(now)
	if prev, again := b.seen[receiver]; again && !assumed && !prev.Before(b.aliveSince) && now.Sub(prev) < b.cfg.AlertWindow {
		b.seen[receiver] = now
		return Alert
	}
	b.seen[receiver] = now
	b.order = append(b.order, receiver)
	for len(b.seen) > b.cfg.MaxTracked && len(b.order) > 0 {
		delete(b.seen, b.order[0])
		b.order = b.order[1:]
	}
	return Disregard
}

// expire forgets disregarded NACKs older than the alert window.
func (b *Backup) expire(now time.Time) {
	for len(b.order) > 0 {
		r := b.order[0]
		t, ok := b.seen[r]
		if ok && now.Sub(t) < b.cfg.AlertWindow {
			return
		}
		if ok {
			delete(b.seen, r)
		}
		b.order = b.order[1:]
	}
}

// Reclaim applies the recovered primary's signal (step 515). An active
// backup hands back: with jobs in hand it goes on with them for at most
// HandbackTimeout (Tick), with none it stands by at once (520). It returns
// the state to report to the primary.
func (b *Backup) Reclaim(now time.Time, jobsInHand int) State {
	if b.state == Active {
		b.set(HandingBack, now)
		b.handBy = now.Add(b.cfg.HandbackTimeout)
	}
	if b.state == HandingBack && jobsInHand == 0 {
		b.set(Standby, now)
	}
	return b.state
}

// Tick ends a hand-back whose time is up: a handing-back backup stands by
// once HandbackTimeout has passed since the primary's signal, and the
// caller aborts the jobs still in hand (abort is then set). A deadline set
// under a clock that has since jumped back counts as passed.
func (b *Backup) Tick(now time.Time) (st State, abort bool) {
	if b.state == HandingBack {
		left := b.handBy.Sub(now)
		if left <= 0 || left > b.cfg.HandbackTimeout {
			b.set(Standby, now)
			return b.state, true
		}
	}
	return b.state, false
}

// HeardPrimary records that the primary was heard multicasting on the
// group at now. An active or handing-back backup stands by at once and
// the caller aborts its jobs (abort is set): two senders must not share
// the wire. A standing-by backup counts a primary heard after its health
// checks began to fail alive for HeardWindow.
func (b *Backup) HeardPrimary(now time.Time) (st State, abort bool) {
	b.heard = now
	if b.state == Active || b.state == HandingBack {
		b.set(Standby, now)
		return b.state, true
	}
	return b.state, false
}

// heardSinceFailing reports whether the primary, whose health checks fail
// since b.failing, was heard on the group after that and less than
// HeardWindow ago: it multicasts, so it is alive (a time ahead of now, from
// a clock that jumped back, does not count).
func (b *Backup) heardSinceFailing(now time.Time) bool {
	if b.heard.IsZero() || b.heard.Before(b.failing) {
		return false
	}
	since := now.Sub(b.heard)
	return since >= 0 && since < b.cfg.HeardWindow
}

// JobsDrained tells a handing-back backup that its last job ended (520).
func (b *Backup) JobsDrained(now time.Time) State {
	if b.state == HandingBack {
		b.set(Standby, now)
	}
	return b.state
}

// PeriodicCheck applies the active backup's periodic check of the primary
// (¶39): a primary seen alive and serving is taken as its signal, in case
// the signal itself was lost.
func (b *Backup) PeriodicCheck(now time.Time, primaryServing bool, jobsInHand int) State {
	if b.state == Active && primaryServing {
		return b.Reclaim(now, jobsInHand)
	}
	return b.state
}

func (b *Backup) set(s State, now time.Time) {
	if b.state != s {
		b.state, b.since = s, now
		if s == Standby {
			b.graceFrom = now
		}
	}
}

// inGrace reports whether now is within the grace that began when the
// backup started or last stood by (a start ahead of now, from a clock that
// jumped back, does not count).
func (b *Backup) inGrace(now time.Time) bool {
	since := now.Sub(b.graceFrom)
	return since >= 0 && since < b.cfg.Grace
}

// StartupStep is what a starting primary does after signalling the backup.
type StartupStep int

// Start-up steps.
const (
	// StartNow: the backup stands by or did not answer.
	StartNow StartupStep = iota + 1
	// WaitForBackup: the backup still has jobs in hand; signal again soon.
	WaitForBackup
	// StartAnyway: the backup did not finish within the maximum wait.
	StartAnyway
)

func (s StartupStep) String() string {
	switch s {
	case StartNow:
		return "start_now"
	case WaitForBackup:
		return "wait_for_backup"
	case StartAnyway:
		return "start_anyway"
	}
	return fmt.Sprintf("StartupStep(%d)", int(s))
}

// Startup decides the primary's next step (¶40) from the backup's answer to
// its signal: answered says whether the backup answered at all, state what
// it reported, and waited how long the primary has waited so far.
func Startup(answered bool, state State, waited, maxWait time.Duration) StartupStep {
	switch {
	case !answered, state == Standby:
		return StartNow
	case waited >= maxWait:
		return StartAnyway
	}
	return WaitForBackup
}
