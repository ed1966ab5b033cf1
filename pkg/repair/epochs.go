package repair

import "time"

// MaxEpochs bounds the sender epochs a receiver keeps counts for. A cloud
// sees a few (the primary's restarts, the backup's take-overs); forged
// packets without packet keys could name a new one each (guarantee R1).
const MaxEpochs = 16

// EpochStats counts the DATA packets of one sender epoch.
type EpochStats struct {
	Backup      bool
	Packets     uint64
	First, Last time.Time
}

// Epochs counts accepted DATA packets per sender epoch, keeping at most
// MaxEpochs: past it the epoch seen least recently is forgotten. It is not
// safe for concurrent use.
type Epochs struct {
	m         map[uint64]*EpochStats
	forgotten uint64
}

// Count records one packet of epoch at now and reports whether the epoch
// is new to the table.
func (t *Epochs) Count(epoch uint64, backup bool, now time.Time) (isNew bool) {
	if t.m == nil {
		t.m = make(map[uint64]*EpochStats)
	}
	e := t.m[epoch]
	if e == nil {
		if len(t.m) >= MaxEpochs {
			t.forgetOldest()
		}
		e = &EpochStats{Backup: backup, First: now}
		t.m[epoch] = e
		isNew = true
	}
	e.Packets++
	e.Last = now
	return isNew
}

func (t *Epochs) forgetOldest() {
	var oldest uint64
	var at time.Time
	first := true
	for ep, e := range t.m {
		if first || e.Last.Before(at) {
			oldest, at, first = ep, e.Last, false
		}
	}
	delete(t.m, oldest)
	t.forgotten++
}

// Len returns the epochs held.
func (t *Epochs) Len() int { return len(t.m) }

// Forgotten returns how many epochs were dropped to keep the bound.
func (t *Epochs) Forgotten() uint64 { return t.forgotten }

// Each calls f for every epoch held, in no particular order.
func (t *Epochs) Each(f func(epoch uint64, s EpochStats)) {
	for ep, e := range t.m {
		f(ep, *e)
	}
}
