package repair

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/manifest"
)

// mkManifest builds a manifest of channel "c" with the named objects,
// each of size bytes, generated at t.
func mkManifest(t *testing.T, at time.Time, size uint64, names ...string) *manifest.Manifest {
	t.Helper()
	var objs []manifest.Object
	for _, n := range names {
		o, err := manifest.NewObject("c", n, size, sha256.Sum256([]byte(n)), 1000)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	m, err := manifest.New("c", objs, at)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAdopt(t *testing.T) {
	t1 := time.Unix(1_000_000, 0)
	t2 := t1.Add(time.Minute)
	ten := make([]string, 10)
	for i := range ten {
		ten[i] = fmt.Sprintf("f%d", i)
	}
	held := mkManifest(t, t1, 100, ten...)
	primary := Source{Sender: "primary", Active: true}
	backupActive := Source{Sender: "backup", Active: true}
	backupStandby := Source{Sender: "backup", Active: false}
	grown := mkManifest(t, t2, 100, append(ten, "new")...)
	lessOne := mkManifest(t, t2, 100, ten[1:]...)
	lessSix := mkManifest(t, t2, 100, ten[6:]...)
	empty := mkManifest(t, t2, 100)
	tests := []struct {
		name      string
		held      Held
		next      *manifest.Manifest
		src       Source
		confirmed uint64
		want      Adoption
		removed   int
	}{
		{"nothing held: any sender's manifest", Held{}, lessOne, backupStandby, 0, Install, 0},
		{"nothing held: even an empty one", Held{}, empty, primary, 0, Install, 0},
		{"same version", Held{held, "primary", 0}, mkManifest(t, t2, 100, ten...), primary, 0, Ignore, 0},
		{"additions from the primary", Held{held, "primary", 0}, grown, primary, 0, Install, 0},
		{"one removal from the primary", Held{held, "primary", 0}, lessOne, primary, 0, Install, 1},
		// Failure 2: a standing-by backup whose origin lacks files.
		{"standby backup's manifest", Held{held, "primary", 0}, lessOne, backupStandby, 0, Ignore, 0},
		{"standby backup's additions too", Held{held, "primary", 0}, grown, backupStandby, 0, Ignore, 0},
		{"active backup after a takeover", Held{held, "primary", 0}, lessOne, backupActive, 0, Install, 1},
		{"older from the same sender (stale)", Held{held, "primary", 0}, mkManifest(t, t1.Add(-time.Second), 100, ten[1:]...), primary, 0, Ignore, 0},
		{"older from a restarted sender (clock set back)", Held{held, "primary", 0}, mkManifest(t, t1.Add(-time.Hour), 100, ten[1:]...), Source{Sender: "primary", Epoch: 2, Active: true}, 0, Install, 1},
		{"older clock of another active sender", Held{held, "primary", 0}, mkManifest(t, t1.Add(-time.Hour), 100, ten[1:]...), backupActive, 0, Install, 1},
		// Failure 4: an origin scan that saw nothing.
		{"empty channel", Held{held, "primary", 0}, empty, primary, 0, HoldBack, 10},
		{"empty channel, confirmed", Held{held, "primary", 0}, empty, primary, empty.Version, Install, 10},
		{"empty channel, another version confirmed", Held{held, "primary", 0}, empty, primary, lessSix.Version, HoldBack, 10},
		{"more than half removed", Held{held, "primary", 0}, lessSix, primary, 0, HoldBack, 6},
		{"more than half removed, confirmed", Held{held, "primary", 0}, lessSix, primary, lessSix.Version, Install, 6},
	}
	p := DefaultAdoptPolicy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Adopt(tt.held, tt.next, tt.src, tt.confirmed)
			if d.Adoption != tt.want || d.Removed != tt.removed {
				t.Errorf("Adopt = %v, removed %d (%s); want %v, removed %d", d.Adoption, d.Removed, d.Reason, tt.want, tt.removed)
			}
			if d.Reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

// TestAdoptRemovalShare: the limit counts objects and bytes; a share of 1
// allows any removal short of emptying the channel.
func TestAdoptRemovalShare(t *testing.T) {
	t1 := time.Unix(1_000_000, 0)
	held := mkManifest(t, t1, 100, "a", "b", "c", "d")
	big, err := manifest.NewObject("c", "big", 1000, sha256.Sum256([]byte("big")), 1000)
	if err != nil {
		t.Fatal(err)
	}
	heldBig, err := manifest.New("c", append(append([]manifest.Object(nil), held.Objects...), big), t1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		share float64
		held  *manifest.Manifest
		next  *manifest.Manifest
		want  Adoption
	}{
		{"2 of 4 at 0.5", 0.5, held, mkManifest(t, t1, 100, "a", "b"), Install},
		{"3 of 4 at 0.5", 0.5, held, mkManifest(t, t1, 100, "a"), HoldBack},
		{"3 of 4 at 1", 1, held, mkManifest(t, t1, 100, "a"), Install},
		{"all at 1", 1, held, mkManifest(t, t1, 100), HoldBack},
		{"1 of 5 objects but 1000 of 1400 bytes at 0.5", 0.5, heldBig, held, HoldBack},
		{"any removal at 0", 0, held, mkManifest(t, t1, 100, "a", "b", "c"), HoldBack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := AdoptPolicy{MaxRemovalShare: tt.share}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			d := p.Adopt(Held{tt.held, "p", 0}, tt.next, Source{Sender: "p", Active: true}, 0)
			if d.Adoption != tt.want {
				t.Errorf("Adopt = %v (%s), want %v", d.Adoption, d.Reason, tt.want)
			}
		})
	}
	for _, bad := range []float64{-0.1, 1.1} {
		if (AdoptPolicy{MaxRemovalShare: bad}).Validate() == nil {
			t.Errorf("share %v accepted", bad)
		}
	}
}
