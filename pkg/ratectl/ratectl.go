// Package ratectl adapts the sender's multicast rate to its receivers, with
// no clock or sockets inside. Receivers count the datagrams their kernel
// dropped because their socket buffer was full (SO_RXQ_OVFL) and report
// them, with the datagrams they did read and how fast they drained their
// socket (a DrainMeter), in each NACK. Those drops mean the sender is
// faster than the slowest receiver can take, unlike random loss on the
// path, which slowing down does not cure. On overrun the controller cuts
// the rate in proportion to the fraction dropped (a few drops in a
// thousand cost a few percent, heavy overrun halves it) and at once to
// just under what the overrun receiver drained; it grows back by a
// fraction of the rate per second of sending without overrun, never
// above the configured rate. Time spent idle does not count as calm: a
// sender that learnt its receivers' pace keeps it for the next transfer.
//
// Reports are folded into one aggregate per interval: the controller keeps
// no per-receiver state.
package ratectl

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Config holds the controller's tunables.
type Config struct {
	// Ceiling is the configured rate in bytes per second: never exceeded.
	Ceiling float64
	// Floor is the lowest rate it backs off to.
	Floor float64
	// Threshold is the overrun fraction (drops / (drops + received)) in
	// one report above which the controller backs off.
	Threshold float64
	// Decrease is the deepest cut of one overrun (0.5: half as fast);
	// a report cuts the rate by Gain times the fraction of datagrams it
	// dropped, at most that deep.
	Decrease float64
	Gain     float64
	// Increase is the growth per second of sending without overrun, as
	// a fraction of the current rate, compounded (1: twice as fast each
	// calm second). Growth relative to the rate rather than to the
	// ceiling keeps a ceiling far above what receivers take (a 1 GB/s
	// ceiling, receivers taking 100 MB/s) from overshooting them by a
	// multiple of their capacity; receivers' feedback (Fill) stops the
	// growth when their buffers fill up, before they drop.
	Increase float64
	// Hold is the least time between two decreases, so that the reports
	// of one overrun episode (from many receivers) count once.
	Hold time.Duration
}

// DefaultConfig returns the defaults for a ceiling in bytes per second.
func DefaultConfig(ceiling float64) Config {
	return Config{
		Ceiling:   ceiling,
		Floor:     max(ceiling/100, 1e6),
		Threshold: 0.005,
		Decrease:  0.5,
		Gain:      4,
		Increase:  1,
		Hold:      500 * time.Millisecond,
	}
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if !(c.Ceiling > 0) {
		errs = append(errs, fmt.Errorf("ceiling %v: must be positive", c.Ceiling))
	}
	if !(c.Floor > 0) || c.Floor > c.Ceiling {
		errs = append(errs, fmt.Errorf("floor %v: must be positive and at most the ceiling", c.Floor))
	}
	if c.Threshold < 0 || c.Threshold >= 1 {
		errs = append(errs, fmt.Errorf("threshold %v: must be in [0,1)", c.Threshold))
	}
	if !(c.Decrease > 0 && c.Decrease < 1) {
		errs = append(errs, fmt.Errorf("decrease %v: must be in (0,1)", c.Decrease))
	}
	if c.Gain < 0 {
		errs = append(errs, fmt.Errorf("gain %v: must not be negative", c.Gain))
	}
	if c.Increase < 0 {
		errs = append(errs, fmt.Errorf("increase %v: must not be negative", c.Increase))
	}
	return errors.Join(errs...)
}

// Controller is the rate controller. It is not safe for concurrent use.
type Controller struct {
	cfg          Config
	rate         float64
	lastDecrease time.Time
	lastUpdate   time.Time
	decreases    uint64
	caps         uint64
	lastCap      time.Time
}

// New returns a controller starting at the ceiling.
func New(cfg Config, now time.Time) *Controller {
	return &Controller{cfg: cfg, rate: cfg.Ceiling, lastUpdate: now}
}

// maxGrowStep is the most time one update counts as calm sending: the
// transmitter asks for the rate several times a second while it sends,
// so a longer gap was idle time.
const maxGrowStep = 250 * time.Millisecond

// Rate returns the current rate after growing it for the time since the
// last call, counted as sending without overrun (at most maxGrowStep).
// The transmitter calls it while it sends.
func (c *Controller) Rate(now time.Time) float64 {
	c.grow(now)
	return c.rate
}

// Decreases counts the back-offs so far.
func (c *Controller) Decreases() uint64 { return c.decreases }

// Report folds in a receiver's report: received datagrams read and drops
// lost to a full socket buffer since its previous report, and the rate in
// bytes per second at which it drained its socket lately (0 if unknown).
// On overrun the rate falls by Gain times the dropped fraction (at most to
// Decrease of itself), and at once to 90% of what the overrun receiver
// drained if that is lower: one report brings a blast down below what the
// slowest receiver takes, so that its full socket buffer drains before
// the rate grows back. Reports of one episode within Hold count once. It
// returns the rate afterwards.
func (c *Controller) Report(now time.Time, received, drops uint64, readRate float64) float64 {
	if drops == 0 || received+drops == 0 {
		return c.rate
	}
	frac := float64(drops) / float64(received+drops)
	if now.Before(c.lastDecrease) {
		c.lastDecrease = now.Add(-c.cfg.Hold) // the clock jumped back
	}
	if frac > c.cfg.Threshold && now.Sub(c.lastDecrease) >= c.cfg.Hold {
		r := c.rate * max(c.cfg.Decrease, 1-c.cfg.Gain*frac)
		if readRate > 0 {
			r = min(r, 0.9*readRate)
		}
		c.rate = max(r, c.cfg.Floor)
		c.lastDecrease = now
		c.lastUpdate = now // growth counts from the cut
		c.decreases++
	}
	return c.rate
}

// HighFill is the share of a receiver's socket buffer in use past which
// the rate is capped at what that receiver drains: it is falling behind
// and will drop if the sender keeps its pace. Lower, the stalls of a
// receiver sharing its CPU set off caps that slowed transfers without a
// single drop (make bench, 3 receivers: 0.5 gave 63.5 MB/s, 0.8 66.5).
const HighFill = 0.8

// capHold is the least time between two caps by buffer fill: a buffer
// drains slowly after a cap (at 5% of the rate), and the reports it sends
// meanwhile must not ratchet the rate down.
const capHold = 200 * time.Millisecond

// Fill folds in a receiver's socket-buffer fill (0 to 1) and drain rate
// (bytes per second, 0 if unknown), and the rate the sender actually
// sends at (0 if unknown; a sender held back by its CPU sends below its
// pacing rate): past HighFill the rate is capped at 95% of the drain
// rate, so that the buffer empties before anything is dropped, but at
// most a fifth below what is being sent: a drain rate measured over a
// stall is not the receiver's pace, and drops still cut the rate hard
// (Report). Once per capHold. It returns the rate afterwards.
func (c *Controller) Fill(now time.Time, fill, readRate, sendRate float64) float64 {
	if fill < HighFill || readRate <= 0 {
		return c.rate
	}
	if !c.lastCap.IsZero() && now.Sub(c.lastCap) < capHold && !now.Before(c.lastCap) {
		return c.rate
	}
	sending := c.rate
	if sendRate > 0 {
		sending = min(sending, sendRate)
	}
	if r := max(0.95*readRate, 0.8*sending, c.cfg.Floor); r < c.rate {
		c.rate = r
		c.lastUpdate = now // growth counts from the cap
		c.lastCap = now
		c.caps++
	}
	return c.rate
}

// Caps counts the times a receiver's fill capped the rate.
func (c *Controller) Caps() uint64 { return c.caps }

func (c *Controller) grow(now time.Time) {
	d := now.Sub(c.lastUpdate)
	c.lastUpdate = now
	if d <= 0 {
		return // the clock jumped back, or no time passed
	}
	d = min(d, maxGrowStep)
	c.rate = min(c.rate*math.Pow(1+c.cfg.Increase, d.Seconds()), c.cfg.Ceiling)
}

// DrainMeter measures how fast a receiver reads its multicast socket
// while data flows: bytes over the last Window of reading (published every
// Publish, so that a report early in a flow carries an estimate), a gap of
// more than Gap between reads starting a new window. An average since the
// previous NACK would count the idle time before and after a transfer
// and report a fraction of what the receiver drains (a controller that
// trusted it once fell from 1 GB/s to 26 MB/s). It is not safe for
// concurrent use except Rate.
type DrainMeter struct {
	start, last, published time.Time
	bytes                  uint64
	rate                   atomic.Uint64
}

// Window and Gap are the DrainMeter's measurement window and the pause
// between reads that ends one; Publish is the least span it reports.
const (
	Window  = 100 * time.Millisecond
	Gap     = 20 * time.Millisecond
	Publish = 10 * time.Millisecond
)

// Add counts n bytes read at now.
func (m *DrainMeter) Add(now time.Time, n int) {
	if m.start.IsZero() || now.Sub(m.last) > Gap || now.Before(m.last) {
		// A new flow: its first read's bytes arrived before now.
		m.start, m.bytes = now, 0
	} else {
		m.bytes += uint64(n)
	}
	m.last = now
	d := now.Sub(m.start)
	if d >= Publish && (d >= Window || m.published.Before(now.Add(-Publish))) {
		m.rate.Store(uint64(float64(m.bytes) / d.Seconds()))
		m.published = now
	}
	if d >= Window {
		m.start, m.bytes = now, 0
	}
}

// Rate returns the bytes per second read over the current window (at
// least Publish of it) or the last complete one, 0 before either. Safe
// for concurrent use.
func (m *DrainMeter) Rate() uint64 { return m.rate.Load() }

// MinFeedbackGap is the least time between two feedback reports of one
// receiver: at most twenty a second, and only while it is congested.
const MinFeedbackGap = 50 * time.Millisecond

// FeedbackGate decides when a receiver reports its socket to the sender
// between NACKs: when its buffer is past HighFill or it dropped
// datagrams, at most once per MinFeedbackGap. The zero value is ready.
type FeedbackGate struct{ last time.Time }

// Due reports whether to send a report now.
func (g *FeedbackGate) Due(now time.Time, fill float64, dropped bool) bool {
	if fill < HighFill && !dropped {
		return false
	}
	if !g.last.IsZero() && now.Sub(g.last) < MinFeedbackGap && !now.Before(g.last) {
		return false
	}
	g.last = now
	return true
}

// BusyMeter measures how fast a stage processes its input while it is
// busy: bytes over the time spent working on them (at least BusyWindow of
// it per estimate), not over wall time. A stage that keeps up spends most
// of its time waiting for input; its busy rate is what it could take.
// It is not safe for concurrent use except Rate.
type BusyMeter struct {
	busy  time.Duration
	bytes uint64
	rate  atomic.Uint64
}

// BusyWindow is the working time one BusyMeter estimate covers.
const BusyWindow = 20 * time.Millisecond

// Add counts n bytes processed in d of work.
func (m *BusyMeter) Add(d time.Duration, n int) {
	m.busy += max(d, 0)
	m.bytes += uint64(n)
	if m.busy >= BusyWindow {
		m.rate.Store(uint64(float64(m.bytes) / m.busy.Seconds()))
		m.busy, m.bytes = 0, 0
	}
}

// Rate returns the bytes per second of the last estimate, 0 before one.
// Safe for concurrent use.
func (m *BusyMeter) Rate() uint64 { return m.rate.Load() }
