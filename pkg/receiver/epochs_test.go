package receiver

import (
	"testing"

	"github.com/nackcast/nackcast/pkg/wire"
)

// TestEpochsBounded (guarantee R1): DATA packets naming a new sender epoch
// each, as a forger without packet keys could send, keep at most maxEpochs
// epochs in memory; the epochs seen most recently stay.
func TestEpochsBounded(t *testing.T) {
	r := newTestReceiver(t)
	r.mu.Lock()
	defer r.mu.Unlock()
	const n = 10_000
	for ep := uint64(1); ep <= n; ep++ {
		r.countEpoch(&wire.Header{Epoch: ep})
		r.countEpoch(&wire.Header{Epoch: 1}) // the real sender goes on
	}
	if len(r.epochs) > maxEpochs {
		t.Errorf("%d epochs kept, want at most %d", len(r.epochs), maxEpochs)
	}
	if _, ok := r.epochs[1]; !ok {
		t.Error("the epoch seen all along was forgotten")
	}
	if _, ok := r.epochs[n]; !ok {
		t.Error("the newest epoch was not kept")
	}
	if got := r.stats.EpochsForgotten.Load(); got != n-maxEpochs {
		t.Errorf("%d epochs forgotten, want %d", got, n-maxEpochs)
	}
}
