package receiver

import (
	"errors"
	"syscall"
	"time"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// isDiskFull reports whether err means the data directory's file system
// (or the receiver's quota on it) has no space left.
func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// pauseForDisk stops the receiver from filing multicast packets and from
// NACKing, because its disk is full: writing more would fail, and asking
// for repairs would make the sender resend what cannot be stored. What
// was written stays consistent (a chunk counts as held only once its
// write succeeded); the receiver resumes when space returns
// (checkDiskSpace).
func (r *Receiver) pauseForDisk(err error) {
	if r.diskFull.Swap(true) {
		return
	}
	r.diskFullSince.Store(r.now().UnixNano())
	r.alerts.raise(r.now(), "disk-full", &pb.Alert{
		Kind:       pb.AlertKind_ALERT_KIND_STORAGE,
		Source:     r.cfg.ID,
		ReceiverId: r.cfg.ID,
		Message:    "disk full: transfer paused until space returns: " + err.Error(),
	})
	r.log.Error("disk full: transfer paused until space returns", "data_dir", r.cfg.DataDir, "min_free", r.cfg.MinFreeBytes, "error", err)
}

// checkDiskSpace resumes a paused receiver once its data directory has
// MinFreeBytes free: NACKs go out at once for what was missed.
func (r *Receiver) checkDiskSpace() {
	if !r.diskFull.Load() {
		return
	}
	free, ok := freeBytes(r.cfg.DataDir)
	if ok && free < uint64(r.cfg.MinFreeBytes) {
		return
	}
	r.diskFull.Store(false)
	paused := time.Duration(r.now().UnixNano() - r.diskFullSince.Load())
	r.log.Info("disk space back: transfer resumed", "free", free, "paused", paused.Round(time.Millisecond))
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for _, ch := range r.channels {
		ch.core.Kick(now)
		r.poke(ch)
	}
}
