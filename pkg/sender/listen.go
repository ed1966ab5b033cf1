package sender

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/nackcast/nackcast/pkg/failover"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/pktauth"
	"github.com/nackcast/nackcast/pkg/wire"
)

// This file lets a sender hear the cloud's group (guarantee S3): a backup
// that hears the primary multicasting stands by at once, however large
// the objects in hand, and counts the primary alive even when its control
// plane does not answer; a primary that hears an active backup signals it
// without waiting for a liveness check. With packet keys only
// authenticated packets count; a replay of recorded ones still can make
// the backup believe the primary alive (authentication does not detect
// replays): receivers that cannot reach the primary are then served by
// the backup's unicast, so this denies multicast, never data.

// reclaimEvery is the least time between two signals a primary sends to a
// backup it hears on the group.
const reclaimEvery = 200 * time.Millisecond

// openListener joins the group to hear the other sender's control packets
// (END and ANNOUNCE; a socket filter drops the rest in the kernel).
func (s *Sender) openListener() (*mcast.Receiver, error) {
	c := s.cfg.Multicast
	c.NoOffload = true
	c.ReadBuffer = 1 << 20
	sock, err := mcast.NewReceiver(c, wire.MaxPacket)
	if err != nil {
		return nil, err
	}
	prog, err := wire.ControlFilter()
	if err == nil {
		err = sock.SetFilter(prog)
	}
	if err != nil {
		s.foLog.Warn("no socket filter on the group listener: it reads every packet", "error", err)
	}
	return sock, nil
}

// listenGroup reads the group until ctx is done and reports the other
// sender's packets.
func (s *Sender) listenGroup(ctx context.Context, sock *mcast.Receiver) {
	var opener *pktauth.Opener
	if s.keys != nil {
		opener = pktauth.NewOpener(s.keys)
	}
	var lastReclaim time.Time
	for {
		batch, err := sock.Read()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.foLog.Warn("reading the group failed; retrying", "error", err)
			select { // a persistent error (interface down) must not spin
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		heardPrimary, heardBackup := false, false
		epoch := s.Epoch()
		for _, b := range batch {
			if b == nil {
				continue
			}
			if opener != nil {
				if b, err = opener.Open(b); err != nil {
					continue
				}
			}
			h, _, err := wire.Parse(b)
			if err != nil || h.Epoch == epoch {
				continue // not nackcast's, or our own looped back
			}
			if h.Flags&wire.FlagBackup != 0 {
				heardBackup = true
			} else {
				heardPrimary = true
			}
		}
		now := s.now()
		switch {
		case heardPrimary && s.fo != nil:
			s.heardPrimary(now)
		case heardBackup && s.fo == nil && s.peer != nil && time.Since(lastReclaim) >= reclaimEvery:
			lastReclaim = time.Now()
			go s.reclaimHeardBackup(ctx)
		}
	}
}

// heardPrimary applies the primary heard on the group to the backup's
// Figure 5 core: an active or handing-back backup stands by at once and
// its transmitter drops the jobs in hand.
func (s *Sender) heardPrimary(now time.Time) {
	s.mu.Lock()
	before, _ := s.fo.State()
	st, abort := s.fo.HeardPrimary(now)
	s.applyBackupState(st, now)
	s.mu.Unlock()
	if abort {
		s.foLog.Warn("primary heard on the group: backup standing by at once", "primary", s.cfg.Peer, "was", before)
		s.poke(s.wake)
	}
}

// reclaimHeardBackup is a primary's signal to a backup it heard
// multicasting (it resumed after a pause, or a partition healed): the
// backup hands back without waiting for its next liveness check.
func (s *Sender) reclaimHeardBackup(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.HealthTimeout)
	defer cancel()
	resp, err := pb.NewSenderServiceClient(s.peer).Reclaim(cctx, &pb.ReclaimRequest{PrimaryId: s.cfg.ID, PrimaryEpoch: s.Epoch()})
	if err != nil {
		s.foLog.Debug("signal to a backup heard on the group failed", "backup", s.cfg.Peer, "error", err)
		return
	}
	s.foLog.Info("backup heard on the group signalled to hand back", "backup", s.cfg.Peer, "state", resp.GetState())
}

// handbackTick ends a hand-back that outlasted HandbackTimeout: the
// backup stands by and its transmitter drops what is left. A timer that
// fired before the core's deadline (another clock) checks again soon.
func (s *Sender) handbackTick() {
	now := s.now()
	s.mu.Lock()
	st, abort := s.fo.Tick(now)
	s.applyBackupState(st, now)
	s.mu.Unlock()
	switch {
	case abort:
		s.foLog.Info("hand-back time is up: backup standing by, jobs in hand aborted", "timeout", s.cfg.Failover.HandbackTimeout)
		s.poke(s.wake)
	case st == failover.HandingBack:
		time.AfterFunc(s.cfg.Failover.HandbackTimeout/4, s.handbackTick)
	}
}

// startHandback arms the end of a hand-back when st is HandingBack.
func (s *Sender) startHandback(st failover.State) {
	if st == failover.HandingBack {
		time.AfterFunc(s.cfg.Failover.HandbackTimeout, s.handbackTick)
	}
}
