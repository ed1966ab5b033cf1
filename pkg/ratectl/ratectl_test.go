package ratectl

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Unix(4_000_000, 0)

// TestCutProportionalToDrops: one report cuts the rate by Gain times the
// fraction dropped, at most by half, and to 90% of the receiver's drain
// rate when it is lower.
func TestCutProportionalToDrops(t *testing.T) {
	tests := []struct {
		name            string
		received, drops uint64
		readRate        float64
		want            float64
	}{
		{"1% dropped", 9900, 100, 0, 0.96e9},
		{"5% dropped", 9500, 500, 0, 0.8e9},
		{"half dropped: at most halved", 5000, 5000, 0, 0.5e9},
		{"drained 150 MB/s", 9900, 100, 150e6, 135e6},
		{"drained more than the cut leaves", 9900, 100, 2e9, 0.96e9},
		{"below the threshold", 999_000, 1000, 150e6, 1e9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(DefaultConfig(1e9), t0)
			if got := c.Report(t0, tt.received, tt.drops, tt.readRate); math.Abs(got-tt.want) > 1 {
				t.Errorf("rate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHoldAndGrowth(t *testing.T) {
	cfg := DefaultConfig(1e9)
	c := New(cfg, t0)
	if got := c.Rate(t0); got != 1e9 {
		t.Fatalf("start = %v, want the ceiling", got)
	}
	c.Report(t0, 5000, 5000, 0)
	// More reports of the same episode within the hold do not compound.
	if got := c.Report(t0.Add(100*time.Millisecond), 5000, 5000, 0); got != 0.5e9 {
		t.Errorf("second report inside the hold = %v, want 0.5e9", got)
	}
	// After the hold another overrun backs off again.
	if got := c.Report(t0.Add(600*time.Millisecond), 5000, 5000, 0); got != 0.25e9 {
		t.Errorf("after the hold = %v, want 0.25e9", got)
	}
	if c.Decreases() != 2 {
		t.Errorf("decreases = %d", c.Decreases())
	}
	// Sending for 1 s without overrun (the transmitter asks every 100
	// ms) grows it by Increase (doubling), compounded.
	now := t0.Add(600 * time.Millisecond)
	c.Rate(now)
	for range 10 {
		now = now.Add(100 * time.Millisecond)
		c.Rate(now)
	}
	if got, want := c.Rate(now), 0.25e9*(1+cfg.Increase); math.Abs(got-want) > 1e3 {
		t.Errorf("after 1 s of calm sending = %v, want %v", got, want)
	}
	// An hour idle counts as one step at most: the learnt pace is kept.
	before := c.Rate(now)
	if got := c.Rate(now.Add(time.Hour)); got > before*math.Pow(1+cfg.Increase, maxGrowStep.Seconds())+1 {
		t.Errorf("after an idle hour = %v, was %v: idle time counted as calm", got, before)
	}
	// Sending long enough brings it back to the ceiling.
	for range 200 {
		now = now.Add(100 * time.Millisecond)
		c.Rate(now)
	}
	if got := c.Rate(now); got != 1e9 {
		t.Errorf("after 20 s of calm sending = %v, want the ceiling", got)
	}
}

func TestIgnoresSmallOrNoDrops(t *testing.T) {
	c := New(DefaultConfig(1e9), t0)
	for _, r := range []struct{ received, drops uint64 }{{1000, 0}, {0, 0}, {100000, 100}} {
		if got := c.Report(t0, r.received, r.drops, 5e8); got != 1e9 {
			t.Errorf("report %+v lowered the rate to %v", r, got)
		}
	}
}

func TestFloor(t *testing.T) {
	cfg := DefaultConfig(1e8)
	cfg.Increase = 0
	c := New(cfg, t0)
	now := t0
	for i := 0; i < 100; i++ {
		now = now.Add(time.Second)
		c.Report(now, 1, 1000, 0)
	}
	if got := c.Rate(now); got != cfg.Floor {
		t.Errorf("rate = %v, want about the floor %v", got, cfg.Floor)
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig(1e8).Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("zero config accepted")
	}
}

// TestClockJumpBack: after the clock jumps back the rate keeps growing
// and overruns still back it off.
func TestClockJumpBack(t *testing.T) {
	c := New(DefaultConfig(1e9), t0)
	later := t0.Add(time.Hour)
	c.Report(later, 9000, 1000, 0)
	r := c.Rate(t0)
	if got := c.Rate(t0.Add(100 * time.Millisecond)); got <= r {
		t.Errorf("no growth after the jump back: %v then %v", r, got)
	}
	c.Report(t0.Add(2*time.Second), 9000, 1000, 0)
	if c.Decreases() != 2 {
		t.Errorf("overrun after the jump back: %d decreases, want a second back-off", c.Decreases())
	}
}

// TestDrainMeter: the meter reports the rate while data flows, not an
// average over the idle time around it.
func TestDrainMeter(t *testing.T) {
	var m DrainMeter
	if m.Rate() != 0 {
		t.Fatal("a rate before any read")
	}
	now := t0
	read := func(d time.Duration, n, bytes int) {
		for range n {
			now = now.Add(d)
			m.Add(now, bytes)
		}
	}
	// 64 KB every ms: 64 MB/s, estimated after Publish already.
	read(time.Millisecond, 15, 64_000)
	if got := m.Rate(); got < 60e6 || got > 68e6 {
		t.Errorf("rate after 15 ms = %d, want about 64 MB/s", got)
	}
	read(time.Millisecond, 135, 64_000)
	if got := m.Rate(); got < 63e6 || got > 65e6 {
		t.Errorf("rate = %d, want 64 MB/s", got)
	}
	// Ten idle seconds, then a burst at twice the pace: the idle time
	// does not dilute it.
	now = now.Add(10 * time.Second)
	read(time.Millisecond, 150, 128_000)
	if got := m.Rate(); got < 126e6 || got > 130e6 {
		t.Errorf("rate after an idle gap = %d, want 128 MB/s", got)
	}
	// Reads further apart than Gap never make a window.
	var slow DrainMeter
	for range 100 {
		now = now.Add(Gap + time.Millisecond)
		slow.Add(now, 1_000_000)
	}
	if got := slow.Rate(); got != 0 {
		t.Errorf("rate of isolated reads = %d, want none", got)
	}
}

// TestFillCapsAtDrainRate: a receiver whose buffer is past HighFill caps
// the rate at 95% of what it drains (by at most a fifth), before it drops
// anything; a lower fill, or no drain rate, changes nothing.
func TestFillCapsAtDrainRate(t *testing.T) {
	tests := []struct {
		name           string
		fill, readRate float64
		want           float64
	}{
		{"past the threshold", 0.8, 280e6, 266e6},
		{"nearly full, drains a third: a fifth less", 0.95, 100e6, 240e6},
		{"below the threshold", 0.79, 100e6, 300e6},
		{"drain rate unknown", 0.9, 0, 300e6},
		{"drains faster than the rate", 0.9, 2e9, 300e6},
		{"drains next to nothing: a fifth less", 0.9, 1e3, 240e6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(DefaultConfig(300e6), t0)
			if got := c.Fill(t0, tt.fill, tt.readRate, 0); math.Abs(got-tt.want) > 1 {
				t.Errorf("rate = %v, want %v", got, tt.want)
			}
		})
	}
	// A sender held back below its pacing rate (1 GB/s paced, 120 MB/s
	// sent) is capped from what it sends: at 95% of a 100 MB/s drain.
	held := New(DefaultConfig(1e9), t0)
	if got := held.Fill(t0, 0.9, 100e6, 120e6); math.Abs(got-96e6) > 1 {
		t.Errorf("sending 120 MB/s paced at 1 GB/s: rate %v, want 96e6 (a fifth below what is sent)", got)
	}
	// Reports while the buffer drains after a cap do not ratchet it down.
	c := New(DefaultConfig(300e6), t0)
	c.Fill(t0, 0.9, 280e6, 0)
	if got := c.Fill(t0.Add(50*time.Millisecond), 0.9, 250e6, 0); got != 266e6 {
		t.Errorf("second cap within the hold: rate %v, want 266e6", got)
	}
	if got := c.Fill(t0.Add(capHold), 0.9, 250e6, 0); math.Abs(got-237.5e6) > 1 {
		t.Errorf("cap after the hold: rate %v, want 237.5e6", got)
	}
}

func TestFeedbackGate(t *testing.T) {
	var g FeedbackGate
	steps := []struct {
		after   time.Duration // since the previous step
		fill    float64
		dropped bool
		want    bool
	}{
		{0, 0.1, false, false},                    // calm
		{time.Millisecond, 0.85, false, true},     // filling up
		{10 * time.Millisecond, 0.7, true, false}, // within the gap
		{50 * time.Millisecond, 0.2, true, true},  // dropped
		{10 * time.Millisecond, 0.9, false, false},
		{40 * time.Millisecond, 0.9, false, true},
		{time.Second, 0.3, false, false},
		{-time.Hour, 0.9, false, true}, // the clock jumped back
	}
	now := t0
	for i, s := range steps {
		now = now.Add(s.after)
		if got := g.Due(now, s.fill, s.dropped); got != s.want {
			t.Errorf("step %d: Due = %v, want %v", i, got, s.want)
		}
	}
}

func TestBusyMeter(t *testing.T) {
	var m BusyMeter
	// 1 MB per ms of work, however long the waits between.
	for range 10 {
		m.Add(time.Millisecond, 1_000_000)
	}
	if m.Rate() != 0 {
		t.Fatalf("estimate before BusyWindow of work: %d", m.Rate())
	}
	for range 10 {
		m.Add(time.Millisecond, 1_000_000)
	}
	if got := m.Rate(); got < 999e6 || got > 1001e6 {
		t.Errorf("rate = %d, want 1 GB/s", got)
	}
}
