package receiver

import (
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nackcast/nackcast/pkg/alerts"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/repair"
)

// alertEvery is the least time between two alerts with the same key: a
// full disk fails every write, and the operator needs one line, not
// thousands.
const alertEvery = 30 * time.Second

// alerter raises the receiver's alerts, at most one per key per
// alertEvery, counting the ones it holds back.
type alerter struct {
	log        alerts.Log
	mu         sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// raise records an alert unless one with the same key was raised less than
// alertEvery ago; it reports whether it did, and how many were held back
// since the last one.
func (a *alerter) raise(now time.Time, key string, al *pb.Alert) (bool, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		a.last, a.suppressed = make(map[string]time.Time), make(map[string]int)
	}
	if t, ok := a.last[key]; ok && now.Sub(t) < alertEvery {
		a.suppressed[key]++
		return false, 0
	}
	held := a.suppressed[key]
	a.last[key], a.suppressed[key] = now, 0
	al.Time = timestamppb.New(now)
	a.log.Raise(al)
	return true, held
}

// storageError counts and reports a failure to write to the data
// directory (disk full, I/O error): an ERROR line and a STORAGE alert, at
// most once per alertEvery. The bitmap only records chunks that were
// written, so nothing is lost; the chunks are fetched again later.
func (r *Receiver) storageError(op, channel, path string, err error) {
	r.stats.WriteErrors.Add(1)
	if isDiskFull(err) {
		r.pauseForDisk(err)
	}
	raised, held := r.alerts.raise(r.now(), "storage/"+op, &pb.Alert{
		Kind:       pb.AlertKind_ALERT_KIND_STORAGE,
		Source:     r.cfg.ID,
		ReceiverId: r.cfg.ID,
		Channel:    channel,
		Message:    fmt.Sprintf("%s %s: %v", op, path, err),
	})
	if raised {
		r.log.Error("storage failure; will retry", "op", op, "channel", channel, "path", path, "error", err, "similar_since_last", held)
	}
}

// manifestAlert reports a manifest the receiver cannot use.
func (r *Receiver) manifestAlert(channel string, err error) {
	raised, _ := r.alerts.raise(r.now(), "manifest/"+channel, &pb.Alert{
		Kind:       pb.AlertKind_ALERT_KIND_MANIFEST_MISMATCH,
		Source:     r.cfg.ID,
		ReceiverId: r.cfg.ID,
		Channel:    channel,
		Message:    err.Error(),
	})
	if raised {
		r.log.Error("manifest problem", "channel", channel, "error", err)
	}
}

// checkStuck raises an alert for each incomplete channel that made no
// progress for StuckAfter. Called with r.mu held.
func (r *Receiver) checkStuck(now time.Time) {
	for _, ch := range r.channels {
		if ch.m != nil && !ch.doneAt.IsZero() {
			ch.progressAt = now
			continue
		}
		var have uint64
		for _, o := range ch.objs {
			if o.state == repair.Complete {
				have += o.obj.Size
			} else {
				have += o.held
			}
		}
		if have != ch.progressHave || ch.progressAt.IsZero() {
			if have > ch.progressHave {
				ch.lastProgress = now
			}
			ch.progressHave, ch.progressAt = have, now
			continue
		}
		if stalled := now.Sub(ch.progressAt); stalled >= r.cfg.StuckAfter {
			msg := fmt.Sprintf("channel %q: no progress for %v (%d bytes held)", ch.name, stalled.Round(time.Second), have)
			if ch.m == nil {
				msg = fmt.Sprintf("channel %q: no manifest after %v", ch.name, stalled.Round(time.Second))
			}
			if raised, _ := r.alerts.raise(now, "stuck/"+ch.name, &pb.Alert{
				Kind:       pb.AlertKind_ALERT_KIND_RECEIVER_STUCK,
				Source:     r.cfg.ID,
				ReceiverId: r.cfg.ID,
				Channel:    ch.name,
				Message:    msg,
			}); raised {
				r.log.Error("receiver stuck", "channel", ch.name, "stalled", stalled.Round(time.Second), "bytes", have)
			}
		}
	}
}
