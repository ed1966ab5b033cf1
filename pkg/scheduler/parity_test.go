package scheduler

import (
	"slices"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/manifest"
)

func TestRepairPlansParity(t *testing.T) {
	// 100 chunks of 1000 bytes, blocks of 10: block b is chunks 10b..10b+9.
	tests := []struct {
		name       string
		nacks      []chunks.List
		proactive  int
		wantRanges chunks.List
		wantParity []BlockParity
	}{
		{
			name:       "one receiver: chunks, not parity",
			nacks:      []chunks.List{rl(3, 2)},
			wantRanges: rl(3, 2),
		},
		{
			name:       "different losses in one block: parity",
			nacks:      []chunks.List{rl(1, 1), rl(4, 1), rl(7, 2)},
			wantParity: []BlockParity{{Block: 0, First: 0, Count: 2}},
		},
		{
			name:       "parity after proactive shards",
			nacks:      []chunks.List{rl(1, 1), rl(4, 1)},
			proactive:  2,
			wantParity: []BlockParity{{Block: 0, First: 2, Count: 1}},
		},
		{
			name: "mixed blocks",
			// block 0: asked 1,2,5 (3 chunks), worst NACK 2 → parity;
			// block 2: asked 20..22, one NACK → chunks; block 9: one
			// receiver each lost a different chunk → 1 parity shard.
			nacks:      []chunks.List{rl(1, 2, 20, 3, 90, 1), rl(5, 1, 95, 1)},
			wantRanges: rl(20, 3),
			wantParity: []BlockParity{{Block: 0, First: 0, Count: 2}, {Block: 9, First: 0, Count: 1}},
		},
		{
			name:       "more lost than the code has shards: chunks",
			nacks:      []chunks.List{rl(0, 5, 9, 1), rl(5, 5)},
			proactive:  0,
			wantRanges: rl(0, 10),
			wantParity: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.FEC = FEC{Block: 10, Parity: 4, Proactive: tt.proactive}
			s := New(cfg, t0)
			o := mkObj(t, "a", 100_000, "a")
			s.SetObjects(ch, []manifest.Object{o}, true, t0)
			first := passOnce(t, s, t0)
			if tt.proactive > 0 && len(first.Parity) != 10 {
				t.Fatalf("first pass parity = %+v, want proactive shards for 10 blocks", first.Parity)
			}
			now := t0.Add(2 * time.Second)
			for _, m := range tt.nacks {
				s.Nack(now, ch, NackInfo{}, []Request{{Object: o.ID, Version: o.Version, Missing: m}}, nil)
			}
			jobs := s.Next(now)
			if len(jobs) != 1 {
				t.Fatalf("Next = %d jobs", len(jobs))
			}
			if !slices.Equal(jobs[0].Ranges, tt.wantRanges) {
				t.Errorf("ranges = %v, want %v", jobs[0].Ranges, tt.wantRanges)
			}
			if !slices.Equal(jobs[0].Parity, tt.wantParity) {
				t.Errorf("parity = %+v, want %+v", jobs[0].Parity, tt.wantParity)
			}
		})
	}
}

// TestRepairParityShardsAreNew checks that a later pass draws parity shards
// the earlier passes have not sent, and falls back to chunks when the code
// runs out.
func TestRepairParityShardsAreNew(t *testing.T) {
	cfg := testConfig()
	cfg.MaxPasses = 5
	cfg.FEC = FEC{Block: 10, Parity: 3}
	s := New(cfg, t0)
	o := mkObj(t, "a", 100_000, "a")
	s.SetObjects(ch, []manifest.Object{o}, true, t0)
	passOnce(t, s, t0)
	want := [][]BlockParity{
		{{Block: 0, First: 0, Count: 1}},
		{{Block: 0, First: 1, Count: 1}},
		{{Block: 0, First: 2, Count: 1}},
		nil, // the code's three shards are spent
	}
	now := t0
	for i, w := range want {
		now = now.Add(2 * time.Second)
		for _, m := range []chunks.List{rl(1, 1), rl(2, 1)} {
			s.Nack(now, ch, NackInfo{}, []Request{{Object: o.ID, Version: o.Version, Missing: m}}, nil)
		}
		jobs := s.Next(now)
		if len(jobs) != 1 {
			t.Fatalf("pass %d: Next = %d jobs", i+2, len(jobs))
		}
		if !slices.Equal(jobs[0].Parity, w) {
			t.Errorf("pass %d parity = %+v, want %+v", i+2, jobs[0].Parity, w)
		}
		if w == nil && !slices.Equal(jobs[0].Ranges, rl(1, 2)) {
			t.Errorf("pass %d ranges = %v, want chunks 1-2", i+2, jobs[0].Ranges)
		}
		s.Done(jobs[0], now, uint64(i+2))
	}
}

func TestFECValidate(t *testing.T) {
	tests := []struct {
		f  FEC
		ok bool
	}{
		{FEC{}, true},
		{FEC{Block: 32, Parity: 8}, true},
		{FEC{Block: 32, Parity: 8, Proactive: 8}, true},
		{FEC{Block: 32, Parity: 8, Proactive: 9}, false},
		{FEC{Block: 32}, false},
		{FEC{Block: 250, Parity: 7}, false},
		{FEC{Parity: 4}, false},
	}
	for _, tt := range tests {
		if errs := tt.f.Validate(); (len(errs) == 0) != tt.ok {
			t.Errorf("%+v: Validate = %v, want ok=%v", tt.f, errs, tt.ok)
		}
	}
}

// TestParityIgnoresChunksPastTheObject: ranges past the object's end (a
// NACK that raced a rescan) end the walk instead of looping.
func TestParityIgnoresChunksPastTheObject(t *testing.T) {
	o := &object{obj: manifest.Object{Chunks: 40}}
	o.mergeParity(rl(5, 2, 38, 10), 10)
	if o.blockMiss[0] != 2 || o.blockMiss[3] != 2 || len(o.blockMiss) != 2 {
		t.Errorf("blockMiss = %v, want blocks 0 and 3 lacking 2 each", o.blockMiss)
	}
}
