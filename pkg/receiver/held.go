package receiver

import (
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/repair"
)

// This file holds back manifests that would remove too much of a channel
// (repair.HoldBack) until an operator confirms them.

// heldManifest is a manifest from the active sender that the receiver did
// not install.
type heldManifest struct {
	m        *manifest.Manifest
	p        *pb.Manifest
	src      repair.Source
	decision repair.AdoptDecision
	since    time.Time
}

// ErrNotHeld is returned by ConfirmManifest when the channel holds back no
// manifest of the version given.
var ErrNotHeld = errors.New("no such manifest held back")

// holdBack keeps the installed manifest, remembers m for an operator's
// confirmation and raises an alert.
func (r *Receiver) holdBack(ch *chanState, m *manifest.Manifest, p *pb.Manifest, src repair.Source, d repair.AdoptDecision) {
	now := r.now()
	r.mu.Lock()
	fresh := ch.held == nil || ch.held.m.Version != m.Version
	if fresh {
		ch.held = &heldManifest{m: m, p: p, src: src, decision: d, since: now}
	}
	r.mu.Unlock()
	if !fresh {
		return
	}
	msg := fmt.Sprintf("manifest %016x from %s held back: %s; the installed manifest stays in use. Confirm it to install it: nackctl confirm-manifest -channel %s -version %016x",
		m.Version, src.Sender, d.Reason, ch.name, m.Version)
	r.nackLog.Warn("manifest held back", "channel", ch.name, "version", fmt.Sprintf("%016x", m.Version), "sender", src.Sender,
		"removed", d.Removed, "removed_bytes", d.RemovedBytes, "reason", d.Reason)
	r.alerts.raise(now, "held/"+ch.name, &pb.Alert{
		Kind:       pb.AlertKind_ALERT_KIND_MANIFEST_MISMATCH,
		Source:     r.cfg.ID,
		ReceiverId: r.cfg.ID,
		Channel:    ch.name,
		Message:    msg,
	})
}

// ConfirmManifest installs the manifest of channel held back at version,
// as an operator asked, and returns how many objects it removed.
func (r *Receiver) ConfirmManifest(channel string, version uint64) (int, error) {
	r.mu.Lock()
	ch := r.channels[channel]
	r.mu.Unlock()
	if ch == nil {
		return 0, fmt.Errorf("channel %q: %w", channel, ErrNoChannel)
	}
	ch.installMu.Lock()
	defer ch.installMu.Unlock()
	r.mu.Lock()
	if ch.gone {
		// Unsubscribed while this call waited for the install lock.
		r.mu.Unlock()
		return 0, fmt.Errorf("channel %q: %w", channel, ErrNoChannel)
	}
	h := ch.held
	if h == nil || h.m.Version != version {
		held := "none"
		if h != nil {
			held = fmt.Sprintf("%016x", h.m.Version)
		}
		r.mu.Unlock()
		return 0, fmt.Errorf("channel %q: version %016x (held back: %s): %w", channel, version, held, ErrNotHeld)
	}
	ch.confirmed = version
	// Counted again against what is installed now.
	d := r.cfg.Adopt.Adopt(repair.Held{Manifest: ch.m, Sender: ch.from, Epoch: ch.fromEpoch}, h.m, h.src, version)
	r.mu.Unlock()
	if d.Adoption != repair.Install {
		return 0, fmt.Errorf("channel %q: manifest %016x can no longer be installed: %s", channel, version, d.Reason)
	}
	r.adopt(ch, h.m, h.p, h.src, d)
	return d.Removed, nil
}

// heldStatus describes ch's held-back manifest for status. Called with r.mu
// held.
func heldStatus(ch *chanState) *pb.HeldManifest {
	h := ch.held
	if h == nil {
		return nil
	}
	return &pb.HeldManifest{
		ManifestVersion: h.m.Version,
		ObjectsTotal:    uint32(len(h.m.Objects)),
		ObjectsRemoved:  uint32(h.decision.Removed),
		BytesRemoved:    h.decision.RemovedBytes,
		SenderId:        h.src.Sender,
		Since:           timestamppb.New(h.since),
	}
}
