package sim

import (
	"time"

	"github.com/nackcast/nackcast/pkg/manifest"
)

// This file holds the invariant checks. S1 and S2 are checked where a
// receiver's disk changes (the only events that can break them); S3 and
// R1 after every event (engine.check); L1 at the end of the heal phase.

// checkInstall checks S2 for a manifest about to be installed: one that
// removes content must come from a sender that reported itself ACTIVE (or
// be an operator's confirmation), must not be the product of an empty
// scan, and must not remove more than the policy's share unconfirmed.
func (s *Sim) checkInstall(r *receiverNode, old, m *manifest.Manifest, c cause) {
	if old == nil || c.persisted {
		return
	}
	removed, removedBytes, total := 0, uint64(0), uint64(0)
	for _, o := range old.Objects {
		total += o.Size
		if _, ok := m.Lookup(o.ID); !ok {
			removed++
			removedBytes += o.Size
		}
	}
	replaces := false
	for _, o := range m.Objects {
		if f, ok := r.disk.finals[o.Path]; ok && (f.sha != o.SHA256 || f.size != o.Size) {
			replaces = true
		}
	}
	if (removed > 0 || replaces) && !c.active && !c.confirmed {
		s.failf("S2: %s installs manifest %016x from %q, which did not report itself ACTIVE, removing %d objects", r.h.name, m.Version, c.sender, removed)
	}
	if removed > 0 && s.emptyVersions[m.Version] && !s.cfg.AllowEmptyScan {
		s.failf("S2: %s installs manifest %016x built from an empty scan", r.h.name, m.Version)
	}
	share := s.cfg.Adopt.MaxRemovalShare
	over := len(m.Objects) == 0 || float64(removed) > share*float64(len(old.Objects)) || total > 0 && float64(removedBytes) > share*float64(total)
	if removed > 0 && over && !c.confirmed {
		s.failf("S2: %s installs manifest %016x removing %d of %d objects (%d of %d bytes) without an operator's confirmation", r.h.name, m.Version, removed, len(old.Objects), removedBytes, total)
	}
}

// removeFinal deletes a file under its final name (install), checked
// against S2 by checkInstall.
func (r *receiverNode) removeFinal(path string, m *manifest.Manifest, c cause) {
	if _, ok := r.disk.finals[path]; !ok {
		return
	}
	if !c.active && !c.confirmed {
		r.s.failf("S2: %s deletes %s installing manifest %016x from a sender not ACTIVE", r.h.name, path, m.Version)
	}
	delete(r.disk.finals, path)
	r.s.m.removals++
	r.trace("removed "+path, m.Version, 0)
}

// writeFinal renames a verified file into place: S1 (its bytes are one
// version of an accepted manifest entry, never a mix) and S2 (replacing
// other bytes only under an authoritative manifest).
func (r *receiverNode) writeFinal(obj manifest.Object, f finalFile) {
	if f.mixed || f.tag != chunkTag(obj.SHA256, obj.ChunkSize) && obj.Chunks > 0 {
		r.s.failf("S1: %s: %s under its final name mixes chunks of two versions", r.h.name, obj.Path)
	}
	if size, ok := r.accepted[obj.Path][f.sha]; !ok || size != f.size {
		r.s.failf("S1: %s: %s holds content %x that no accepted manifest lists", r.h.name, obj.Path, f.sha[:8])
	}
	if old, ok := r.disk.finals[obj.Path]; ok && (old.sha != f.sha || old.size != f.size) {
		if !r.mcause.active && !r.mcause.confirmed {
			r.s.failf("S2: %s replaces %s under manifest %016x from %q, which did not report itself ACTIVE", r.h.name, obj.Path, r.m.Version, r.mcause.sender)
		}
		r.s.m.replacements++
	}
	r.disk.finals[obj.Path] = f
}

// observable reports whether the backup can observe the primary on one
// plane at least (S3 is measured only then: with both planes cut no
// protocol can tell two senders apart).
func (s *Sim) observable() bool {
	p, b := s.primary.h, s.backup.h
	return !p.cutData && !b.cutData || s.ctlReach(p, b)
}

// checkAll runs after every event: S3's overlap and R1's bound.
func (s *Sim) checkAll() {
	if s.backup != nil {
		both := s.primary.transmitting() && s.backup.transmitting() && s.observable()
		switch {
		case both && s.m.overlapStart.IsZero():
			s.m.overlapStart = s.now
			s.trace("check", "two senders multicast", 0, 0)
		case both:
			d := s.now.Sub(s.m.overlapStart)
			s.m.maxOverlap = max(s.m.maxOverlap, d)
			if d > s.cfg.S3Bound() {
				s.failf("S3: two senders have multicast DATA for %v, more than the bound %v (HandbackTimeout %v + detection slack)", d, s.cfg.S3Bound(), s.cfg.Failover.HandbackTimeout)
			}
		case !s.m.overlapStart.IsZero():
			d := s.now.Sub(s.m.overlapStart)
			s.m.maxOverlap = max(s.m.maxOverlap, d)
			s.m.overlapTotal += d
			s.m.overlapStart = time.Time{}
		}
	}
	s.checkA1()
	s.trackActive()
	if s.m.maxEpochs > s.cfg.R1Bound {
		s.failf("R1: a receiver keeps state for %d sender epochs, more than %d", s.m.maxEpochs, s.cfg.R1Bound)
	}
}

// activeManifest is the manifest of the cloud's active sender at the end
// of the heal phase: the primary's when it is up and active, else an
// active backup's.
func (s *Sim) activeManifest() (*manifest.Manifest, string) {
	if p := s.primary; p.h.alive && p.ready && p.state == stActive {
		return p.m, p.id
	}
	if b := s.backup; b != nil && b.h.alive && b.state == stActive {
		return b.m, b.id
	}
	return nil, ""
}

// checkL1 checks at the end of the heal phase that every receiver holds
// the active sender's manifest, every object verified, and records how
// long after the heal began it completed.
func (s *Sim) checkL1(bound time.Duration) {
	m, who := s.activeManifest()
	if m == nil {
		s.failf("L1: no active sender at the end of the heal phase")
		return
	}
	for _, r := range s.recvs {
		if !r.complete(m) {
			have := uint64(0)
			if r.m != nil {
				have = r.m.Version
			}
			s.failf("L1: %s does not hold the manifest %016x of %s, every object verified, %v after the heal began (bound %v; it holds manifest %016x)", r.h.name, m.Version, who, s.now.Sub(s.healStart), bound, have)
			return
		}
		d := max(r.doneAt.Sub(s.healStart), 0)
		if r.doneAt.IsZero() {
			d = 0
		}
		s.m.l1Slowest = max(s.m.l1Slowest, d)
		s.m.l1Done++
	}
}

// checkA1: while the primary and the backup serve different manifests
// (one pair of versions) and both are up, not paused, reachable over gRPC
// and the backup's clock is not set back, the backup raises a divergence
// alert for that pair within Config.A1Bound.
func (s *Sim) checkA1() {
	b := s.backup
	if b == nil || s.cfg.CompareInterval <= 0 {
		return
	}
	p := s.primary
	if s.m.a1Inc != b.h.inc {
		s.m.a1Alerted, s.m.a1Inc = nil, b.h.inc
	}
	setBack := b.h.skew < s.m.a1Skew
	s.m.a1Skew = b.h.skew
	up := func(n *senderNode) bool { return n.h.alive && !n.h.paused && n.m != nil }
	if setBack || !up(p) || !up(b) || !b.ready || !s.ctlReach(p.h, b.h) || p.m.Version == b.m.Version {
		s.a1End()
		return
	}
	pair := [2]uint64{p.m.Version, b.m.Version}
	if s.m.a1Since.IsZero() || pair != s.m.a1Pair {
		s.a1End()
		s.m.a1Pair, s.m.a1Since = pair, s.now
		return
	}
	if d := s.now.Sub(s.m.a1Since); d > s.cfg.A1Bound() && !s.m.a1Alerted[pair] {
		s.failf("A1: the primary (%016x) and the backup (%016x) have served different manifests for %v, both up and reachable, and the backup raised no divergence alert (bound %v)", pair[0], pair[1], d, s.cfg.A1Bound())
	}
}

// a1End closes a stretch of divergence A1 watched.
func (s *Sim) a1End() {
	if s.m.a1Since.IsZero() {
		return
	}
	d := s.now.Sub(s.m.a1Since)
	if d > s.cfg.A1Bound() {
		s.m.a1Checked++
	}
	s.m.a1Max = max(s.m.a1Max, d)
	s.m.a1Since = time.Time{}
}
