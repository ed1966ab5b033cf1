package repair

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/scheduler"
)

var t0 = time.Unix(2_000_000, 0)

func obj(t *testing.T, i int) manifest.Object {
	t.Helper()
	o, err := manifest.NewObject("c", fmt.Sprintf("f%05d", i), 10_000, sha256.Sum256([]byte{byte(i), byte(i >> 8)}), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func newCore(cfg Config) *Core { return New(cfg, rand.New(rand.NewPCG(1, 2)), t0) }

func TestPlanSelectsWhatIsMissing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxRangesPerObject = 2
	c := newCore(cfg)
	a, b, d, e := obj(t, 1), obj(t, 2), obj(t, 3), obj(t, 4)
	holdings := []Holding{
		{Object: a, State: Complete},
		{Object: b, State: Missing},
		{Object: d, State: Partial, Missing: chunks.List{{First: 1, Count: 1}, {First: 3, Count: 1}, {First: 9, Count: 1}}},
		{Object: e, State: Partial, Busy: true},
	}
	reqs := c.Plan(t0, holdings)
	if len(reqs) != 2 {
		t.Fatalf("Plan = %d requests, want 2 (missing and partial)", len(reqs))
	}
	if reqs[0].Object != b.ID || len(reqs[0].Missing) != 0 {
		t.Errorf("missing object request = %+v, want whole", reqs[0])
	}
	if want := (chunks.List{{First: 1, Count: 3}, {First: 9, Count: 1}}); reqs[1].Object != d.ID || !slices.Equal(reqs[1].Missing, want) {
		t.Errorf("partial request = %+v, want coalesced ranges %v", reqs[1], want)
	}
	if reqs[0].Version != b.Version {
		t.Errorf("version not carried")
	}
	if got := c.Plan(t0, holdings[:1]); got != nil {
		t.Errorf("Plan with everything complete = %v, want nil", got)
	}
	// The next scan is a jittered scan interval away.
	lo, hi := t0.Add(time.Duration(float64(cfg.ScanInterval)*(1-cfg.Jitter))), t0.Add(time.Duration(float64(cfg.ScanInterval)*(1+cfg.Jitter)))
	if d := c.Due(); d.Before(lo) || d.After(hi) {
		t.Errorf("Due = %v, want the next scan in [%v, %v]", d, lo, hi)
	}
}

// TestPlanScatteredLossExact: with the default configuration the ranges
// of a large object with scattered loss (every 20th chunk of 183,000, as
// 5% random loss leaves a 256 MB object) go out as they are. Merged, the
// gaps would ask for chunks the receiver holds: the repair pass and the
// parity sized from the most chunks one NACK lacks per block both grow.
func TestPlanScatteredLossExact(t *testing.T) {
	c := newCore(DefaultConfig())
	o := obj(t, 1)
	o.Chunks = 183_000
	var missing chunks.List
	for i := uint32(0); i < o.Chunks; i += 20 {
		missing = append(missing, chunks.Range{First: i, Count: 1})
	}
	reqs := c.Plan(t0, []Holding{{Object: o, State: Partial, Missing: missing}})
	if len(reqs) != 1 || !slices.Equal(reqs[0].Missing, missing) {
		t.Fatalf("Plan asked for %d ranges (%d chunks), want the %d missing chunks exactly", len(reqs[0].Missing), reqs[0].Missing.Len(), len(missing))
	}
}

func TestPlanRotatesLargeSets(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxObjectsPerNack = 3
	c := newCore(cfg)
	var hs []Holding
	for i := 0; i < 7; i++ {
		hs = append(hs, Holding{Object: obj(t, i), State: Missing})
	}
	seen := map[uint64]int{}
	for round := 0; round < 7; round++ {
		reqs := c.Plan(t0, hs)
		if len(reqs) != 3 {
			t.Fatalf("round %d: %d requests", round, len(reqs))
		}
		for _, r := range reqs {
			seen[r.Object]++
		}
	}
	for _, h := range hs {
		if seen[h.Object.ID] != 3 {
			t.Errorf("object %s asked %d times in 7 rounds of 3 of 7, want 3", h.Object.Path, seen[h.Object.ID])
		}
	}
}

func TestOnReplyActions(t *testing.T) {
	a, b, d := obj(t, 1), obj(t, 2), obj(t, 3)
	reqs := []Request{{Object: a.ID}, {Object: b.ID}, {Object: d.ID}}
	tests := []struct {
		name       string
		actions    []scheduler.Action
		version    uint64
		wantPull   []uint64
		wantNF     []uint64
		wantWait   int
		wantRefect bool
	}{
		{"all wait", []scheduler.Action{scheduler.Wait, scheduler.Wait, scheduler.Wait}, 5, nil, nil, 3, false},
		{"unicast pulls", []scheduler.Action{scheduler.Unicast, scheduler.Wait, scheduler.Unicast}, 5, []uint64{a.ID, d.ID}, nil, 1, false},
		{"not found", []scheduler.Action{scheduler.NotFound, scheduler.Wait, scheduler.Wait}, 5, nil, []uint64{a.ID}, 2, false},
		{"other manifest", []scheduler.Action{scheduler.NotFound, scheduler.NotFound, scheduler.NotFound}, 6, nil, []uint64{a.ID, b.ID, d.ID}, 0, true},
		{"short reply", []scheduler.Action{scheduler.Unicast}, 5, []uint64{a.ID}, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCore(DefaultConfig())
			got := c.OnReply(t0, reqs, Reply{Actions: tt.actions, NextNackAfter: time.Second, ManifestVersion: tt.version}, 5)
			if !slices.Equal(got.Pull, tt.wantPull) || !slices.Equal(got.NotFound, tt.wantNF) || got.Waiting != tt.wantWait || got.RefetchManifest != tt.wantRefect {
				t.Errorf("actions = %+v", got)
			}
		})
	}
}

func TestIntervalAndJitter(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Jitter = 0.25
	c := newCore(cfg)
	if c.Following() != 0 || c.Interval() != cfg.InitialInterval {
		t.Fatalf("before any reply: following %v, interval %v", c.Following(), c.Interval())
	}
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for i := 0; i < 500; i++ {
		c.OnReply(t0, nil, Reply{NextNackAfter: 4 * time.Second}, 0)
		d := c.Due().Sub(t0)
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 3*time.Second || hi > 5*time.Second || hi-lo < time.Second {
		t.Errorf("jittered delay range [%v,%v], want spread within [3s,5s]", lo, hi)
	}
	if c.Following() != 4*time.Second {
		t.Errorf("Following = %v", c.Following())
	}
}

func TestEndIsPromptButRespectsInterval(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Jitter = 0
	c := newCore(cfg)
	c.Plan(t0, []Holding{{Object: obj(t, 1), State: Missing}})
	c.OnReply(t0, nil, Reply{NextNackAfter: time.Second}, 0)

	c.OnEnd(t0.Add(100 * time.Millisecond))
	if got := c.Due(); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("END inside the interval: Due = %v, want the interval's end", got.Sub(t0))
	}
	// The cycle runs at +1s; the next reply asks for another second.
	now := t0.Add(time.Second)
	c.Plan(now, []Holding{{Object: obj(t, 1), State: Missing}})
	c.OnReply(now, nil, Reply{NextNackAfter: time.Second}, 0)
	if got := c.Due(); !got.Equal(now.Add(cfg.ScanInterval)) {
		t.Errorf("after reply: Due = +%v, want the next periodic scan", got.Sub(t0))
	}
	c.OnEnd(t0.Add(2500 * time.Millisecond))
	if got := c.Due().Sub(t0); got < 2500*time.Millisecond || got > 2500*time.Millisecond+cfg.EndDelay {
		t.Errorf("END after the interval: Due = +%v, want within EndDelay of +2.5s", got)
	}
	c.Kick(t0.Add(2200 * time.Millisecond))
	if got := c.Due(); !got.Equal(t0.Add(2200 * time.Millisecond)) {
		t.Errorf("Kick: Due = +%v, want +2.2s", got.Sub(t0))
	}
}

func TestNotFoundBackoff(t *testing.T) {
	cfg := DefaultConfig()
	cfg.NotFoundBackoff = time.Second
	cfg.MaxBackoff = 4 * time.Second
	c := newCore(cfg)
	a := obj(t, 1)
	hs := []Holding{{Object: a, State: Missing}}
	now := t0
	var delays []time.Duration
	for i := 0; i < 4; i++ {
		reqs := c.Plan(now, hs)
		if len(reqs) != 1 {
			t.Fatalf("round %d: object not asked for after its backoff", i)
		}
		c.OnReply(now, reqs, Reply{Actions: []scheduler.Action{scheduler.NotFound}}, 0)
		b := c.notFound[a.ID]
		delays = append(delays, b.delay)
		if reqs := c.Plan(now.Add(b.delay-time.Millisecond), hs); reqs != nil {
			t.Fatalf("round %d: asked again during backoff", i)
		}
		now = now.Add(b.delay)
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}; !slices.Equal(delays, want) {
		t.Errorf("backoffs = %v, want %v", delays, want)
	}
	reqs := c.Plan(now, hs)
	c.OnReply(now, reqs, Reply{Actions: []scheduler.Action{scheduler.Wait}}, 0)
	if _, ok := c.notFound[a.ID]; ok {
		t.Errorf("backoff kept after a WAIT")
	}
	c.OnReply(now, reqs, Reply{Actions: []scheduler.Action{scheduler.NotFound}}, 0)
	c.Forget(func(uint64) bool { return false })
	if len(c.notFound) != 0 {
		t.Errorf("Forget kept entries")
	}
}

func TestOnFailureBacksOff(t *testing.T) {
	cfg := DefaultConfig()
	cfg.FailureBackoff = 100 * time.Millisecond
	cfg.MaxBackoff = time.Second
	c := newCore(cfg)
	var got []time.Duration
	for i := 0; i < 6; i++ {
		got = append(got, c.OnFailure(t0))
	}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) {
		t.Errorf("backoffs = %v, want %v", got, want)
	}
	if !c.Due().Equal(t0.Add(time.Second)) {
		t.Errorf("Due = %v", c.Due().Sub(t0))
	}
	c.OnReply(t0, nil, Reply{NextNackAfter: time.Second}, 0)
	if c.OnFailure(t0) != 100*time.Millisecond {
		t.Errorf("a reply did not reset the failure backoff")
	}
}

func TestShouldFailover(t *testing.T) {
	for code, want := range map[codes.Code]bool{
		codes.Unavailable:       true,
		codes.DeadlineExceeded:  true,
		codes.OK:                false,
		codes.NotFound:          false,
		codes.InvalidArgument:   false,
		codes.ResourceExhausted: false,
		codes.Internal:          false,
	} {
		if got := ShouldFailover(code); got != want {
			t.Errorf("ShouldFailover(%v) = %v, want %v", code, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if err := (Config{Jitter: 1, MaxObjectsPerNack: 0}).Validate(); err == nil {
		t.Fatal("zero config accepted")
	}
}

// TestResyncAfterClockJumpsBack: times scheduled under a clock that later
// jumped back an hour are brought within the core's longest wait.
func TestResyncAfterClockJumpsBack(t *testing.T) {
	cfg := DefaultConfig()
	c := New(cfg, rand.New(rand.NewPCG(1, 2)), t0)
	later := t0.Add(time.Hour)
	c.Plan(later, nil)
	c.OnReply(later, nil, Reply{NextNackAfter: time.Second}, 0)
	c.Resync(t0)
	if d := c.Due().Sub(t0); d > max(cfg.ScanInterval, time.Duration(1.25*float64(time.Second))) {
		t.Errorf("after the jump back the next NACK is %v away", d)
	}
	// A forward jump leaves what was scheduled alone: it is simply due.
	due := c.Due()
	c.Resync(t0.Add(2 * time.Hour))
	if !c.Due().Equal(due) {
		t.Errorf("a forward jump moved the next NACK from %v to %v", due, c.Due())
	}
}
