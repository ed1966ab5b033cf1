package repair

import (
	"testing"
	"time"
)

// TestEpochsBounded (guarantee R1): DATA packets naming a new sender epoch
// each, as a forger without packet keys could send, keep at most
// MaxEpochs epochs in memory; the epochs seen most recently stay.
func TestEpochsBounded(t *testing.T) {
	var e Epochs
	t0 := time.Unix(1_000_000, 0)
	const n = 10_000
	for ep := uint64(1); ep <= n; ep++ {
		now := t0.Add(time.Duration(ep) * time.Millisecond)
		if isNew := e.Count(ep, false, now); ep > 1 && !isNew {
			t.Fatalf("epoch %d not reported new", ep)
		}
		if isNew := e.Count(1, false, now); isNew && ep > 1 {
			t.Fatal("the real sender's epoch reported new again") // it goes on
		}
	}
	if e.Len() > MaxEpochs {
		t.Errorf("%d epochs kept, want at most %d", e.Len(), MaxEpochs)
	}
	kept := map[uint64]EpochStats{}
	e.Each(func(ep uint64, s EpochStats) { kept[ep] = s })
	if s, ok := kept[1]; !ok || s.Packets != n+1 {
		t.Errorf("the epoch seen all along: %+v, %v; want %d packets", s, ok, n+1)
	}
	if _, ok := kept[n]; !ok {
		t.Error("the newest epoch was not kept")
	}
	if got := e.Forgotten(); got != n-MaxEpochs {
		t.Errorf("%d epochs forgotten, want %d", got, n-MaxEpochs)
	}
}
