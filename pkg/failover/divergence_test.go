package failover

import (
	"testing"
	"time"
)

func TestDivergence(t *testing.T) {
	type obs struct {
		after           time.Duration
		primary, backup uint64
		want            bool
	}
	tests := []struct {
		name string
		obs  []obs
	}{
		{"same content never", []obs{{0, 1, 1, false}, {time.Minute, 1, 1, false}}},
		{"brief difference while rescanning", []obs{{0, 1, 2, false}, {time.Second, 2, 2, false}, {time.Minute, 2, 2, false}}},
		{"lasting difference, once", []obs{{0, 1, 2, false}, {5 * time.Second, 1, 2, false}, {10 * time.Second, 1, 2, true}, {time.Minute, 1, 2, false}}},
		{"a new difference is reported again", []obs{{0, 1, 2, false}, {10 * time.Second, 1, 2, true}, {11 * time.Second, 1, 3, false}, {21 * time.Second, 1, 3, true}}},
		{"healed then diverged again", []obs{{0, 1, 2, false}, {10 * time.Second, 1, 2, true}, {11 * time.Second, 2, 2, false}, {12 * time.Second, 1, 2, false}, {22 * time.Second, 1, 2, true}}},
		{"clock jumped back", []obs{{0, 1, 2, false}, {-time.Hour, 1, 2, false}, {-time.Hour + 10*time.Second, 1, 2, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Divergence{Grace: 10 * time.Second}
			for i, o := range tt.obs {
				if got := d.Observe(t0.Add(o.after), "c", o.primary, o.backup); got != o.want {
					t.Fatalf("observation %d (%+v): %v, want %v", i, o, got, o.want)
				}
			}
		})
	}
	d := Divergence{}
	if !d.Observe(t0, "c", 1, 2) || len(d.Diverged()) != 1 {
		t.Error("with no grace a difference is reported at once")
	}
	d.Forget("c")
	if len(d.Diverged()) != 0 {
		t.Error("Forget kept the channel")
	}
}
