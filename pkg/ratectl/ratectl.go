// Package ratectl adapts the sender's multicast rate to its receivers, with
// no clock or sockets inside. Receivers count the datagrams their kernel
// dropped because their socket buffer was full (SO_RXQ_OVFL) and report
// them, with the datagrams they did read, in each NACK. Those drops mean
// the sender is faster than the slowest receiver can take, unlike random
// loss on the path, which slowing down does not cure. The controller
// backs off multiplicatively when a report shows overrun (and at once to
// what the overrun receiver managed to read) and grows back by a fraction
// of the rate per second while none does, never above the configured
// rate.
//
// Reports are folded into one aggregate per interval: the controller keeps
// no per-receiver state.
package ratectl

import (
	"errors"
	"fmt"
	"math"
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
	// Decrease multiplies the rate on overrun (0.5: half as fast).
	Decrease float64
	// Increase is the growth per second without overrun, as a fraction
	// of the current rate, compounded (0.25: 25% faster each calm
	// second). Growth relative to the rate rather than to the ceiling
	// keeps a ceiling far above what receivers take (a 1 GB/s ceiling,
	// receivers taking 100 MB/s) from overshooting them by half of their
	// capacity every second.
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
		Increase:  0.25,
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
}

// New returns a controller starting at the ceiling.
func New(cfg Config, now time.Time) *Controller {
	return &Controller{cfg: cfg, rate: cfg.Ceiling, lastUpdate: now}
}

// Rate returns the current rate after growing it for the time since the
// last update.
func (c *Controller) Rate(now time.Time) float64 {
	c.grow(now)
	return c.rate
}

// Decreases counts the back-offs so far.
func (c *Controller) Decreases() uint64 { return c.decreases }

// Report folds in a receiver's report: received datagrams read and drops
// lost to a full socket buffer since its previous report, and the rate in
// bytes per second at which it read them (0 if unknown). On overrun the
// rate falls by Decrease, and at once to three quarters of what the
// overrun receiver managed to read if that is lower: one report brings a
// blast down below what the slowest receiver takes, so that its full
// socket buffer drains (at a quarter of its reading rate) before the rate
// grows back to it. It returns the rate afterwards.
func (c *Controller) Report(now time.Time, received, drops uint64, readRate float64) float64 {
	c.grow(now)
	if drops == 0 || received+drops == 0 {
		return c.rate
	}
	frac := float64(drops) / float64(received+drops)
	if frac > c.cfg.Threshold && now.Sub(c.lastDecrease) >= c.cfg.Hold {
		r := c.rate * c.cfg.Decrease
		if readRate > 0 {
			r = min(r, 0.75*readRate)
		}
		c.rate = max(r, c.cfg.Floor)
		c.lastDecrease = now
		c.decreases++
	}
	return c.rate
}

func (c *Controller) grow(now time.Time) {
	if now.Before(c.lastUpdate) {
		// The clock jumped back: count from now.
		c.lastUpdate = now
		if now.Before(c.lastDecrease) {
			c.lastDecrease = now.Add(-c.cfg.Hold)
		}
		return
	}
	if d := now.Sub(c.lastUpdate); d > 0 {
		c.rate = min(c.rate*math.Pow(1+c.cfg.Increase, d.Seconds()), c.cfg.Ceiling)
		c.lastUpdate = now
	}
}
