package receiver

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nackcast/nackcast/pkg/repair"
)

// ErrNoChannel reports a channel the receiver does not subscribe to.
var ErrNoChannel = fmt.Errorf("channel not subscribed")

// ScrubResult is what a scrub of a channel found.
type ScrubResult struct {
	// Checked and Bytes count the complete objects re-read.
	Checked int
	Bytes   uint64
	// Failed lists the paths whose content did not match the manifest or
	// could not be read; each is being fetched again.
	Failed  []string
	Elapsed time.Duration
}

// Scrub re-reads every complete object of channel and checks its SHA-256
// against the manifest, whatever the file's size and times say (silent
// corruption keeps them), and fetches again every object that fails. It
// stops early, with ctx's error, when ctx is done.
func (r *Receiver) Scrub(ctx context.Context, channel string) (ScrubResult, error) {
	return r.scrub(ctx, channel, 0)
}

// scrubLoop scrubs every channel each ScrubInterval, at most ScrubRate
// bytes per second, until ctx is done.
func (r *Receiver) scrubLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.ScrubInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, ch := range r.channelList() {
			if _, err := r.scrub(ctx, ch.name, r.cfg.ScrubRate); err != nil && ctx.Err() == nil {
				r.log.Warn("periodic scrub", "channel", ch.name, "error", err)
			}
		}
	}
}

// scrub is Scrub reading at most rate bytes per second (0: no cap).
func (r *Receiver) scrub(ctx context.Context, channel string, rate int64) (ScrubResult, error) {
	start := r.now()
	r.mu.Lock()
	ch := r.channels[channel]
	if ch == nil {
		r.mu.Unlock()
		return ScrubResult{}, fmt.Errorf("%q: %w", channel, ErrNoChannel)
	}
	var todo []*objState
	for _, o := range ch.objs {
		if o.state == repair.Complete {
			todo = append(todo, o)
		}
	}
	r.mu.Unlock()
	sort.Slice(todo, func(i, j int) bool { return todo[i].obj.Path < todo[j].obj.Path })
	var res ScrubResult
	for _, o := range todo {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		ok, id, err := r.store.VerifyFinalPaced(ctx, ch.name, o.obj, rate)
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Checked++
		res.Bytes += o.obj.Size
		r.mu.Lock()
		if ch.objs[o.obj.ID] == o && o.state == repair.Complete {
			if ok && err == nil {
				o.final = id
			} else {
				res.Failed = append(res.Failed, o.obj.Path)
				r.stats.VerifyFailures.Add(1)
				r.markLost(ch, o, "scrub: object does not match the manifest; fetching it again")
			}
		}
		r.mu.Unlock()
	}
	res.Elapsed = r.now().Sub(start)
	r.log.Info("scrub done", "channel", channel, "objects", res.Checked, "bytes", res.Bytes, "failed", len(res.Failed), "elapsed", res.Elapsed.Round(time.Millisecond))
	return res, nil
}
