package failover

import "time"

// Divergence watches, channel by channel, whether the primary and the
// backup serve the same manifest (guarantee A1): both scan their own
// origin, so they may differ, and a backup that takes over with other
// content would make receivers adopt it. A difference is reported once it
// has lasted Grace (two senders rescanning at different moments differ
// for a moment after every change) and again whenever either side's
// version changes while they still differ. It is not safe for concurrent
// use.
type Divergence struct {
	// Grace is how long a difference must last to be reported.
	Grace time.Duration
	seen  map[string]divergence
}

type divergence struct {
	primary, backup uint64
	since           time.Time
	reported        bool
}

// Observe records one comparison of channel at now and reports whether to
// raise an alert for it.
func (d *Divergence) Observe(now time.Time, channel string, primary, backup uint64) bool {
	if d.seen == nil {
		d.seen = make(map[string]divergence)
	}
	if primary == backup {
		delete(d.seen, channel)
		return false
	}
	cur, ok := d.seen[channel]
	if !ok || cur.primary != primary || cur.backup != backup || now.Before(cur.since) {
		d.seen[channel] = divergence{primary: primary, backup: backup, since: now}
		return d.Grace <= 0 && d.report(channel)
	}
	if cur.reported || now.Sub(cur.since) < d.Grace {
		return false
	}
	return d.report(channel)
}

func (d *Divergence) report(channel string) bool {
	cur := d.seen[channel]
	cur.reported = true
	d.seen[channel] = cur
	return true
}

// Diverged returns the channels whose difference was reported and lasts.
func (d *Divergence) Diverged() []string {
	var out []string
	for ch, cur := range d.seen {
		if cur.reported {
			out = append(out, ch)
		}
	}
	return out
}

// Forget drops a channel neither sender serves any more.
func (d *Divergence) Forget(channel string) { delete(d.seen, channel) }

// Keep forgets every channel for which keep is false.
func (d *Divergence) Keep(keep func(channel string) bool) {
	for ch := range d.seen {
		if !keep(ch) {
			delete(d.seen, ch)
		}
	}
}
