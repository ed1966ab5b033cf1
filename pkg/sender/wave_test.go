package sender

import (
	"testing"
	"time"
)

// fetch is one manifest fetch of a version, at a time in milliseconds.
type fetch struct {
	version uint64
	at      int
}

// TestFetchWave: the first passes of a new manifest version may start
// once as many fetches of it came in as of the previous version's wave,
// and none for fetchQuiet.
func TestFetchWave(t *testing.T) {
	t0 := time.Unix(5_000_000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name    string
		fetches []fetch
		at      int // ms: when settled is asked
		want    bool
	}{
		{"first version: no previous wave", []fetch{{1, 0}, {1, 1}, {1, 2}}, 100, false},
		{"every receiver fetched the new version", []fetch{{1, 0}, {1, 1}, {1, 2}, {2, 5000}, {2, 5001}, {2, 5030}}, 5081, true},
		{"one receiver missing", []fetch{{1, 0}, {1, 1}, {1, 2}, {2, 5000}, {2, 5001}}, 5100, false},
		{"fetches still coming", []fetch{{1, 0}, {1, 1}, {1, 2}, {2, 5000}, {2, 5001}, {2, 5002}}, 5010, false},
		{"refreshes after the wave do not count", []fetch{{1, 0}, {1, 1}, {1, 2}, {1, 3000}, {1, 3001}, {2, 5000}, {2, 5001}, {2, 5002}}, 5053, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w fetchWave
			for _, f := range tt.fetches {
				w.note(f.version, ms(f.at))
			}
			if ok, _ := w.settled(ms(tt.at)); ok != tt.want {
				t.Errorf("settled = %v, want %v (wave %+v)", ok, tt.want, w)
			}
		})
	}
}
