package repair

import (
	"fmt"

	"github.com/nackcast/nackcast/pkg/manifest"
)

// This file is the receiver's rule for adopting a fetched manifest
// (guarantee S2 in README.md): content is deleted or replaced only on an
// authoritative manifest — from the cloud's active sender, not older than
// the one held from the same sender incarnation — and never wholesale
// without an operator's word.

// Source says who served a manifest.
type Source struct {
	// Sender is the serving sender's identifier, Epoch its incarnation.
	Sender string
	Epoch  uint64
	// Active is set when the sender reported itself the cloud's active
	// sender. A standing-by (or starting, or handing-back) sender's
	// manifest may lag the origin the cloud distributes.
	Active bool
}

// Held is the manifest a receiver holds for a channel, and who served it.
type Held struct {
	Manifest *manifest.Manifest // nil when none is held
	Sender   string
	Epoch    uint64
}

// Adoption is what to do with a fetched manifest.
type Adoption int

// Adoptions.
const (
	// Install the manifest: it is authoritative (or the receiver holds
	// none, so it can remove nothing).
	Install Adoption = iota + 1
	// Ignore it and keep the held manifest (same version, stale, or not
	// authoritative).
	Ignore
	// HoldBack: authoritative, but it would remove more of the channel
	// than allowed; keep the held manifest, raise an alert, install only
	// once an operator confirms this version.
	HoldBack
)

func (a Adoption) String() string {
	switch a {
	case Install:
		return "install"
	case Ignore:
		return "ignore"
	case HoldBack:
		return "hold_back"
	}
	return fmt.Sprintf("Adoption(%d)", int(a))
}

// AdoptPolicy holds the receiver's limits on manifests.
type AdoptPolicy struct {
	// MaxRemovalShare is the largest share of the held manifest's objects
	// (or of its bytes) that a new manifest may remove without an
	// operator's confirmation; 1 allows any removal short of emptying
	// the channel. A manifest that empties a non-empty channel is
	// always held back: that is what an origin scan that saw nothing
	// looks like.
	MaxRemovalShare float64
}

// DefaultAdoptPolicy returns the receiver's default.
func DefaultAdoptPolicy() AdoptPolicy { return AdoptPolicy{MaxRemovalShare: 0.5} }

// Validate reports an invalid policy.
func (p AdoptPolicy) Validate() error {
	if !(p.MaxRemovalShare >= 0 && p.MaxRemovalShare <= 1) {
		return fmt.Errorf("max-removal %v: must be a share in [0,1]", p.MaxRemovalShare)
	}
	return nil
}

// AdoptDecision is the verdict on one fetched manifest.
type AdoptDecision struct {
	Adoption Adoption
	// Removed and RemovedBytes count the held manifest's objects that the
	// fetched one no longer lists.
	Removed      int
	RemovedBytes uint64
	// Reason says why, for logs and alerts.
	Reason string
}

// Adopt decides what to do with manifest next, served by src, for a
// receiver holding held. confirmed is the version an operator confirmed
// for installation despite the removal limit (0 for none).
func (p AdoptPolicy) Adopt(held Held, next *manifest.Manifest, src Source, confirmed uint64) AdoptDecision {
	cur := held.Manifest
	if cur == nil {
		// Nothing is held, so nothing can be removed: any sender's
		// manifest lets the receiver start.
		return AdoptDecision{Adoption: Install, Reason: "no manifest held"}
	}
	if next.Version == cur.Version {
		return AdoptDecision{Adoption: Ignore, Reason: "same version"}
	}
	if !src.Active {
		return AdoptDecision{Adoption: Ignore, Reason: fmt.Sprintf("sender %q is not the cloud's active sender", src.Sender)}
	}
	// Within one incarnation a sender stamps its manifests in order (it
	// never stamps one before the previous, whatever its clock does), so
	// an older stamp is a stale answer. Another incarnation's stamps come
	// from a clock that may have been set back meanwhile: not comparable.
	if src.Sender == held.Sender && src.Epoch == held.Epoch && next.GeneratedAt.Before(cur.GeneratedAt) {
		return AdoptDecision{Adoption: Ignore, Reason: fmt.Sprintf("older than the manifest held from %q (%v < %v)", src.Sender, next.GeneratedAt, cur.GeneratedAt)}
	}
	d := AdoptDecision{Adoption: Install}
	var total uint64
	for _, o := range cur.Objects {
		total += o.Size
		if _, ok := next.Lookup(o.ID); !ok {
			d.Removed++
			d.RemovedBytes += o.Size
		}
	}
	if d.Removed == 0 || next.Version == confirmed {
		d.Reason = "authoritative"
		if d.Removed > 0 {
			d.Reason = "confirmed by an operator"
		}
		return d
	}
	limit := p.MaxRemovalShare
	switch {
	case len(next.Objects) == 0:
		d.Adoption = HoldBack
		d.Reason = fmt.Sprintf("it would empty the channel (remove all %d objects)", len(cur.Objects))
	case float64(d.Removed) > limit*float64(len(cur.Objects)):
		d.Adoption = HoldBack
		d.Reason = fmt.Sprintf("it would remove %d of %d objects, more than the allowed share %.2f", d.Removed, len(cur.Objects), limit)
	case total > 0 && float64(d.RemovedBytes) > limit*float64(total):
		d.Adoption = HoldBack
		d.Reason = fmt.Sprintf("it would remove %d of %d bytes, more than the allowed share %.2f", d.RemovedBytes, total, limit)
	default:
		d.Reason = "authoritative"
	}
	return d
}
