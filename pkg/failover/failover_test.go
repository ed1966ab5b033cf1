package failover

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Unix(3_000_000, 0)

func TestStandbyNackChecksPrimary(t *testing.T) {
	b := NewBackup(DefaultConfig(), t0)
	if st, since := b.State(); st != Standby || !since.Equal(t0) {
		t.Fatalf("initial state %v since %v", st, since)
	}
	if got := b.Nack(); got != CheckPrimary {
		t.Errorf("standby Nack() = %v, want CheckPrimary", got)
	}
}

// TestFigure5Branches walks steps 505-535 for a NACK arriving at a backup.
func TestFigure5Branches(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(b *Backup)
		receiver  string
		alive     bool
		want      Outcome
		wantState State
	}{
		{"525 primary alive: disregard", func(b *Backup) {}, "r1", true, Disregard, Standby},
		{"535 second NACK while alive: alert", func(b *Backup) { b.PrimaryChecked(t0, "r1", true) }, "r1", true, Alert, Standby},
		{"another receiver's first NACK: disregard", func(b *Backup) { b.PrimaryChecked(t0, "r1", true) }, "r2", true, Disregard, Standby},
		{"first NACK while the primary was starting (grace): disregard", func(b *Backup) {
			b.cfg.Grace = time.Hour
			b.PrimaryChecked(t0.Add(-time.Second), "r1", false)
		}, "r1", true, Disregard, Standby},
		{"second NACK after the primary became alive: alert", func(b *Backup) {
			b.cfg.Grace = time.Hour
			b.PrimaryChecked(t0.Add(-2*time.Second), "r1", false)
			b.PrimaryChecked(t0.Add(-time.Second), "r1", true)
		}, "r1", true, Alert, Standby},
		{"second NACK after the alert window: disregard", func(b *Backup) { b.PrimaryChecked(t0.Add(-2*time.Minute), "r1", true) }, "r1", true, Disregard, Standby},
		{"510 primary dead: take over", func(b *Backup) {}, "r1", false, TakeOver, Active},
		{"already active: serve", func(b *Backup) { b.PrimaryChecked(t0, "r9", false) }, "r1", true, ServeNow, Active},
		{"handing back: disregard", func(b *Backup) { b.PrimaryChecked(t0, "r9", false); b.Reclaim(t0, 2) }, "r1", false, Disregard, HandingBack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBackup(DefaultConfig(), t0.Add(-time.Hour))
			tt.setup(b)
			if got := b.PrimaryChecked(t0, tt.receiver, tt.alive); got != tt.want {
				t.Errorf("PrimaryChecked = %v, want %v", got, tt.want)
			}
			if st, _ := b.State(); st != tt.wantState {
				t.Errorf("state = %v, want %v", st, tt.wantState)
			}
		})
	}
}

func TestActiveServesAndHandsBack(t *testing.T) {
	b := NewBackup(DefaultConfig(), t0)
	b.PrimaryChecked(t0, "r1", false)
	if b.Nack() != Serve {
		t.Fatalf("active Nack() = %v, want Serve", b.Nack())
	}
	// 515: the primary's signal with two jobs in hand.
	if got := b.Reclaim(t0.Add(time.Second), 2); got != HandingBack {
		t.Fatalf("Reclaim with jobs = %v, want HandingBack", got)
	}
	if b.Nack() != HoldOff {
		t.Errorf("handing back Nack() = %v, want HoldOff", b.Nack())
	}
	// The signal repeats while the jobs finish.
	if got := b.Reclaim(t0.Add(2*time.Second), 1); got != HandingBack {
		t.Errorf("repeated Reclaim = %v", got)
	}
	// 520: the last job ends.
	if got := b.JobsDrained(t0.Add(3 * time.Second)); got != Standby {
		t.Fatalf("JobsDrained = %v, want Standby", got)
	}
	if st, since := b.State(); st != Standby || !since.Equal(t0.Add(3*time.Second)) {
		t.Errorf("state %v since %v", st, since)
	}
	if b.Nack() != CheckPrimary {
		t.Errorf("after hand-back Nack() = %v, want CheckPrimary", b.Nack())
	}
}

func TestReclaimWithNothingInHand(t *testing.T) {
	b := NewBackup(DefaultConfig(), t0)
	if got := b.Reclaim(t0, 0); got != Standby {
		t.Errorf("standby Reclaim = %v", got)
	}
	b.PrimaryChecked(t0, "r1", false)
	if got := b.Reclaim(t0, 0); got != Standby {
		t.Errorf("active Reclaim with no jobs = %v, want Standby at once", got)
	}
	if got := b.JobsDrained(t0); got != Standby {
		t.Errorf("JobsDrained on standby = %v", got)
	}
}

func TestPeriodicCheck(t *testing.T) {
	tests := []struct {
		name    string
		active  bool
		serving bool
		jobs    int
		want    State
	}{
		{"active, primary still down", true, false, 3, Active},
		{"active, primary back and serving", true, true, 3, HandingBack},
		{"active, primary back, no jobs", true, true, 0, Standby},
		{"standby, primary serving", false, true, 0, Standby},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBackup(DefaultConfig(), t0)
			if tt.active {
				b.PrimaryChecked(t0, "r", false)
			}
			if got := b.PeriodicCheck(t0, tt.serving, tt.jobs); got != tt.want {
				t.Errorf("PeriodicCheck = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTrackedReceiversBounded(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxTracked = 100
	b := NewBackup(cfg, t0)
	for i := 0; i < 1000; i++ {
		b.PrimaryChecked(t0, fmt.Sprintf("r%d", i), true)
	}
	if len(b.seen) > cfg.MaxTracked {
		t.Errorf("tracking %d receivers, bound %d", len(b.seen), cfg.MaxTracked)
	}
	if got := b.PrimaryChecked(t0, "r999", true); got != Alert {
		t.Errorf("recent receiver forgotten: %v", got)
	}
	if got := b.PrimaryChecked(t0, "r0", true); got != Disregard {
		t.Errorf("evicted receiver raised %v", got)
	}
}

// TestPrimaryStartup: the primary's start-up with an active, a standing-by
// and a silent backup (¶40).
func TestPrimaryStartup(t *testing.T) {
	const maxWait = 10 * time.Second
	tests := []struct {
		name     string
		answered bool
		state    State
		waited   time.Duration
		want     StartupStep
	}{
		{"backup silent", false, 0, 0, StartNow},
		{"backup standing by", true, Standby, 0, StartNow},
		{"backup active", true, Active, 0, WaitForBackup},
		{"backup handing back", true, HandingBack, 3 * time.Second, WaitForBackup},
		{"backup done after a wait", true, Standby, 4 * time.Second, StartNow},
		{"backup too slow", true, HandingBack, maxWait, StartAnyway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Startup(tt.answered, tt.state, tt.waited, maxWait); got != tt.want {
				t.Errorf("Startup = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("zero config accepted")
	}
}

// TestClockJumps: the backup's decisions follow liveness checks and the
// primary's signals, not the clock: with the clock jumping an hour back or
// forward between events it takes over only on a failed check, hands
// back on a live primary, and never reports two roles at once.
func TestClockJumps(t *testing.T) {
	for _, jump := range []time.Duration{-time.Hour, time.Hour, -24 * time.Hour} {
		t.Run(jump.String(), func(t *testing.T) {
			now := t0
			tick := func() time.Time { now = now.Add(jump); return now }
			b := NewBackup(DefaultConfig(), now)
			if got := b.PrimaryChecked(tick(), "r1", true); got != Disregard {
				t.Fatalf("alive primary after a jump: %v, want Disregard", got)
			}
			if st := b.PeriodicCheck(tick(), false, 0); st != Standby {
				t.Fatalf("periodic check of a standing-by backup after a jump: %v", st)
			}
			if got := b.PrimaryChecked(tick(), "r2", false); got != TakeOver {
				t.Fatalf("dead primary: %v, want TakeOver", got)
			}
			if st := b.PeriodicCheck(tick(), true, 2); st != HandingBack {
				t.Fatalf("live primary seen with jobs in hand: %v, want HandingBack", st)
			}
			if got := b.PrimaryChecked(tick(), "r3", false); got != Disregard {
				t.Fatalf("NACK while handing back: %v, want Disregard", got)
			}
			if st := b.JobsDrained(tick()); st != Standby {
				t.Fatalf("jobs drained: %v, want Standby", st)
			}
		})
	}
}

// TestHandbackBoundedAndHeardPrimary: a handing-back backup aborts its
// jobs once HandbackTimeout has passed (however large its objects); an
// active or handing-back backup that hears the primary on the group stands
// by at once; a standing-by backup counts a primary heard on the group
// alive although its health check fails (guarantee S3, issue 12 failure 5).
func TestHandbackBoundedAndHeardPrimary(t *testing.T) {
	cfg := DefaultConfig()
	active := func() *Backup {
		b := NewBackup(cfg, t0)
		b.PrimaryChecked(t0, "r1", false)
		return b
	}
	tests := []struct {
		name      string
		run       func(b *Backup) (State, bool)
		wantState State
		wantAbort bool
	}{
		{"signal, tick before the timeout", func(b *Backup) (State, bool) {
			b.Reclaim(t0, 3)
			return b.Tick(t0.Add(cfg.HandbackTimeout - time.Millisecond))
		}, HandingBack, false},
		{"signal, tick at the timeout", func(b *Backup) (State, bool) {
			b.Reclaim(t0, 3)
			return b.Tick(t0.Add(cfg.HandbackTimeout))
		}, Standby, true},
		{"signal, clock jumped back an hour", func(b *Backup) (State, bool) {
			b.Reclaim(t0, 3)
			return b.Tick(t0.Add(-time.Hour))
		}, Standby, true},
		{"active, primary heard", func(b *Backup) (State, bool) { return b.HeardPrimary(t0.Add(time.Second)) }, Standby, true},
		{"handing back, primary heard", func(b *Backup) (State, bool) {
			b.Reclaim(t0, 1)
			return b.HeardPrimary(t0.Add(time.Millisecond))
		}, Standby, true},
		{"active, tick does nothing", func(b *Backup) (State, bool) { return b.Tick(t0.Add(time.Hour)) }, Active, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, abort := tt.run(active())
			if st != tt.wantState || abort != tt.wantAbort {
				t.Errorf("state %v abort %v, want %v %v", st, abort, tt.wantState, tt.wantAbort)
			}
		})
	}

	// A standing-by backup: the primary crashed (heard last before its
	// checks failed) is taken over at once; a primary heard after its
	// checks began to fail is alive (control plane cut).
	b := NewBackup(cfg, t0)
	if st, abort := b.HeardPrimary(t0); st != Standby || abort {
		t.Fatalf("standby hearing the primary: %v %v", st, abort)
	}
	if got := b.PrimaryChecked(t0.Add(100*time.Millisecond), "r1", false); got != TakeOver {
		t.Errorf("primary heard only before its check failed (a crash): %v, want TakeOver", got)
	}
	b = NewBackup(cfg, t0)
	b.PrimaryChecked(t0, "r0", true)
	if got := b.PrimaryChecked(t0.Add(time.Second), "r1", false); got != TakeOver {
		t.Fatalf("first failing check, nothing heard since: %v, want TakeOver", got)
	}
	// The backup hears the primary go on multicasting: it stands by...
	if st, abort := b.HeardPrimary(t0.Add(1500 * time.Millisecond)); st != Standby || !abort {
		t.Fatalf("active backup hearing the primary: %v %v, want Standby, abort", st, abort)
	}
	// ...and does not take over again while it hears it.
	if got := b.PrimaryChecked(t0.Add(2*time.Second), "r1", false); got != Disregard {
		t.Errorf("checks failing, primary heard since: %v, want Disregard", got)
	}
	if got := b.PrimaryChecked(t0.Add(2*time.Second), "r1", false); got != Alert {
		t.Errorf("second NACK, primary heard since its checks failed: %v, want Alert", got)
	}
	if got := b.PrimaryChecked(t0.Add(1500*time.Millisecond+cfg.HeardWindow), "r2", false); got != TakeOver {
		t.Errorf("checks failing, primary last heard %v ago: %v, want TakeOver", cfg.HeardWindow, got)
	}
}

// TestControlPlaneCutDoesNotFlap: the primary's control plane is cut (every
// health check fails) while it multicasts, an ANNOUNCE a second; a
// receiver that cannot reach it NACKs the backup every 500 ms for a
// minute. The backup may take over once, before it has heard the primary
// since the checks began to fail; it hears it, stands by, and from then on
// answers with alerts (served by unicast), never taking over again — the
// grace it starts on standing by must not make the primary look dead
// again (found by review: 10 take-overs a minute).
func TestControlPlaneCutDoesNotFlap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Grace = 5 * time.Second
	b := NewBackup(cfg, t0.Add(-time.Hour)) // started long ago: no grace
	takeovers, alerts := 0, 0
	nextAnnounce := t0
	for now := t0; now.Before(t0.Add(time.Minute)); now = now.Add(500 * time.Millisecond) {
		for !nextAnnounce.After(now) {
			b.HeardPrimary(nextAnnounce)
			nextAnnounce = nextAnnounce.Add(time.Second)
		}
		if b.Nack() != CheckPrimary {
			continue
		}
		switch b.PrimaryChecked(now, "r1", false) {
		case TakeOver:
			takeovers++
		case Alert:
			alerts++
		}
	}
	if takeovers > 1 {
		t.Errorf("%d take-overs in a minute of a control-plane cut, want at most 1", takeovers)
	}
	if alerts < 50 {
		t.Errorf("%d alerts (each answered by unicast), want one for nearly every NACK", alerts)
	}
}

// TestAlertWindowPerReceiver: a receiver's earlier NACK older than the
// alert window raises no alert, even while another receiver's fresher
// entry keeps it from being expired (found by review).
func TestAlertWindowPerReceiver(t *testing.T) {
	b := NewBackup(DefaultConfig(), t0.Add(-time.Hour))
	b.PrimaryChecked(t0, "r1", true)
	b.PrimaryChecked(t0.Add(time.Second), "r2", true)
	if got := b.PrimaryChecked(t0.Add(50*time.Second), "r1", true); got != Alert {
		t.Fatalf("r1's second NACK within the window: %v, want Alert", got)
	}
	if got := b.PrimaryChecked(t0.Add(100*time.Second), "r2", true); got != Disregard {
		t.Errorf("r2's NACK 99 s after its first (window %v): %v, want Disregard", DefaultConfig().AlertWindow, got)
	}
}
