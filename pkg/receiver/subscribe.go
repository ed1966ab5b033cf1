package receiver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/repair"
)

// This file changes a receiver's channels at runtime, as a CDN manager
// assigns content servers to channels while demand moves (seed ¶5). The
// subscriptions are kept in the data directory: -channels is only the set
// a receiver starts from before any change was made.

// ErrNotRunning is returned by Subscribe and Unsubscribe before the
// receiver runs or after it stopped.
var ErrNotRunning = errors.New("receiver not running")

// ErrChannelID is returned by Subscribe for a channel whose identifier on
// the wire is that of a channel already subscribed.
var ErrChannelID = errors.New("channel identifier already in use")

// newChannel returns the state of a newly subscribed channel.
func (r *Receiver) newChannel(name string) *chanState {
	return &chanState{
		name:      name,
		id:        manifest.ChannelID(name),
		objs:      make(map[uint64]*objState),
		core:      repair.New(r.cfg.Repair, rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())), r.now()),
		wake:      make(chan struct{}, 1),
		installMu: r.installLock(name),
	}
}

// installLock returns the install lock of channel name, made once and
// kept: a later subscription to the name gets the same one.
func (r *Receiver) installLock(name string) *sync.Mutex {
	r.installMus.Lock()
	defer r.installMus.Unlock()
	if r.installLocks == nil {
		r.installLocks = map[string]*sync.Mutex{}
	}
	m := r.installLocks[name]
	if m == nil {
		m = new(sync.Mutex)
		r.installLocks[name] = m
	}
	return m
}

// initialChannels returns the channels to start with: the persisted
// subscriptions when a runtime change was ever made, else the
// configuration's.
func (r *Receiver) initialChannels() ([]string, error) {
	saved, ok, err := r.store.LoadSubscriptions()
	if err != nil {
		return nil, err
	}
	if !ok {
		return slices.Clone(r.cfg.Channels), nil
	}
	if !slices.Equal(saved, r.cfg.Channels) {
		r.log.Info("subscriptions changed at runtime are kept in the data directory; -channels is only the initial set",
			"subscribed", saved, "channels_flag", r.cfg.Channels)
	}
	return saved, nil
}

// Subscriptions returns the subscribed channels in order of subscription.
func (r *Receiver) Subscriptions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.subs)
}

// Subscribe adds channel to the subscriptions, persists them and starts
// fetching its manifest and repairing it. added is false when it was
// subscribed already.
func (r *Receiver) Subscribe(channel string) (subs []string, added bool, err error) {
	if err := manifest.ValidateChannelName(channel); err != nil {
		return nil, false, err
	}
	r.subMu.Lock()
	defer r.subMu.Unlock()
	r.mu.Lock()
	if !r.running {
		r.mu.Unlock()
		return nil, false, ErrNotRunning
	}
	if r.channels[channel] != nil {
		subs = slices.Clone(r.subs)
		r.mu.Unlock()
		return subs, false, nil
	}
	ch := r.newChannel(channel)
	if other := r.byID[ch.id]; other != nil {
		r.mu.Unlock()
		return nil, false, fmt.Errorf("channel %q has the identifier %08x of subscribed channel %q: %w", channel, ch.id, other.name, ErrChannelID)
	}
	next := append(slices.Clone(r.subs), channel)
	r.mu.Unlock()
	if err := r.store.SaveSubscriptions(next); err != nil {
		return nil, false, fmt.Errorf("persisting the subscriptions: %w", err)
	}
	// What an earlier subscription left on disk (kept content and its
	// manifest) is known before the first fetch.
	r.loadPersisted(ch)
	r.mu.Lock()
	if !r.running {
		// Run ended meanwhile: no loop may start after it returned.
		r.mu.Unlock()
		return nil, false, ErrNotRunning
	}
	r.channels[channel], r.byID[ch.id] = ch, ch
	r.subs = next
	r.startChannel(ch)
	r.mu.Unlock()
	r.log.Info("subscribed", "channel", channel, "channels", next)
	return next, true, nil
}

// Unsubscribe removes channel from the subscriptions and persists them; it
// stops the channel's repair and, when remove is set, deletes its content
// and manifest from the data directory, returning how many complete
// objects it deleted.
func (r *Receiver) Unsubscribe(channel string, remove bool) (subs []string, removed int, err error) {
	r.subMu.Lock()
	defer r.subMu.Unlock()
	r.mu.Lock()
	if !r.running {
		r.mu.Unlock()
		return nil, 0, ErrNotRunning
	}
	ch := r.channels[channel]
	if ch == nil {
		r.mu.Unlock()
		return nil, 0, fmt.Errorf("channel %q: %w", channel, ErrNoChannel)
	}
	next := slices.DeleteFunc(slices.Clone(r.subs), func(s string) bool { return s == channel })
	r.mu.Unlock()
	if err := r.store.SaveSubscriptions(next); err != nil {
		return nil, 0, fmt.Errorf("persisting the subscriptions: %w", err)
	}
	// Stop its NACK loop (and so its manifest fetches), then take the
	// install lock, which commits and an operator's ConfirmManifest hold:
	// from then on nothing installs into the channel (gone), and commits
	// that come later find it so. Kept content keeps its objects: commits
	// already queued still complete them on disk. Removed content forgets
	// them, so that those commits are dropped as stale, and is deleted
	// before the lock is released.
	ch.stop()
	ch.installMu.Lock()
	defer ch.installMu.Unlock()
	r.mu.Lock()
	ch.gone, ch.held = true, nil
	delete(r.channels, channel)
	delete(r.byID, ch.id)
	r.subs = next
	for _, o := range ch.objs {
		if o.state == repair.Complete {
			removed++
		}
		r.dropParity(o)
		if o.partial != nil {
			if err := o.partial.Close(); err != nil {
				r.log.Warn("closing partial", "channel", channel, "path", o.obj.Path, "error", err)
			}
			o.partial = nil
			r.openPartials--
		}
	}
	if remove {
		ch.objs = map[uint64]*objState{}
	}
	r.mu.Unlock()
	if !remove {
		r.log.Info("unsubscribed; content kept", "channel", channel, "channels", next)
		return next, 0, nil
	}
	if err := r.store.RemoveChannel(channel); err != nil {
		return next, 0, fmt.Errorf("unsubscribed, but removing the content of %q: %w", channel, err)
	}
	r.log.Info("unsubscribed; content removed", "channel", channel, "objects_removed", removed, "channels", next)
	return next, removed, nil
}

// startChannel starts ch's NACK loop under the receiver's run. Called with
// r.mu held, while running.
func (r *Receiver) startChannel(ch *chanState) {
	ctx, cancel := context.WithCancel(r.runCtx)
	ch.cancel, ch.done = cancel, make(chan struct{})
	r.loops.Add(1)
	go func() {
		defer r.loops.Done()
		defer close(ch.done)
		r.nackLoop(ctx, ch)
	}()
}

// stop ends ch's NACK loop and waits for it.
func (ch *chanState) stop() {
	if ch.cancel != nil {
		ch.cancel()
		<-ch.done
	}
}
