package ratectl

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Unix(4_000_000, 0)

func TestBacksOffOnOverrunAndRecovers(t *testing.T) {
	cfg := DefaultConfig(1e9)
	c := New(cfg, t0)
	if got := c.Rate(t0); got != 1e9 {
		t.Fatalf("start = %v, want the ceiling", got)
	}
	// 2% of a receiver's datagrams dropped by its full socket buffer.
	got := c.Report(t0, 9800, 200, 0)
	if want := 0.5e9; math.Abs(got-want) > 1 {
		t.Fatalf("after overrun = %v, want %v", got, want)
	}
	// More reports of the same episode within the hold do not compound.
	if got := c.Report(t0.Add(100*time.Millisecond), 9800, 200, 0); got > 0.52e9 || got < 0.5e9 {
		t.Errorf("second report inside the hold = %v", got)
	}
	// After the hold another overrun backs off again.
	if got := c.Report(t0.Add(600*time.Millisecond), 9800, 200, 0); got > 0.4e9 {
		t.Errorf("after the hold = %v, want another back-off", got)
	}
	if c.Decreases() != 2 {
		t.Errorf("decreases = %d", c.Decreases())
	}
	// (0.5e9 grew 0.6 s at 25% per second, then times 0.5.) Without
	// overrun it grows 25% per second, compounded, up to the ceiling.
	r := c.Rate(t0.Add(600*time.Millisecond + 2*time.Second))
	if want := 0.5 * 0.5e9 * math.Pow(1.25, 0.6) * 1.25 * 1.25; math.Abs(r-want) > 1e3 {
		t.Errorf("after 2 s of calm = %v, want %v", r, want)
	}
	if r := c.Rate(t0.Add(time.Hour)); r != 1e9 {
		t.Errorf("after an hour = %v, want the ceiling", r)
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

func TestReadRateHint(t *testing.T) {
	c := New(DefaultConfig(1e9), t0)
	// An overrun receiver that managed 150 MB/s brings the rate down to
	// 112.5 MB/s in one step.
	if got := c.Report(t0, 1000, 500, 150e6); math.Abs(got-112.5e6) > 1 {
		t.Errorf("rate = %v, want 112.5e6", got)
	}
}

// TestClockJumpBack: after the clock jumps back the rate keeps growing
// and overruns still back it off.
func TestClockJumpBack(t *testing.T) {
	c := New(DefaultConfig(1e9), t0)
	later := t0.Add(time.Hour)
	c.Report(later, 9000, 1000, 0)
	r := c.Rate(t0)
	if got := c.Rate(t0.Add(time.Second)); got <= r {
		t.Errorf("no growth after the jump back: %v then %v", r, got)
	}
	c.Report(t0.Add(2*time.Second), 9000, 1000, 0)
	if c.Decreases() != 2 {
		t.Errorf("overrun after the jump back: %d decreases, want a second back-off", c.Decreases())
	}
}
