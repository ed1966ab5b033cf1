package sender

import (
	"context"
	"fmt"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nackcast/nackcast/pkg/failover"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/scheduler"
)

// This file is the runtime around package failover: the backup's liveness
// checks of the primary, its take-over and hand-back, alerts, and the
// primary's start-up signal to the backup.

// checkPrimary reports whether the primary answers its health check with
// SERVING within the timeout, retrying once. Concurrent callers share one
// check, and a result younger than a tenth of a second is reused: a burst
// of NACKs costs the primary one health check. The grace after the
// backup starts or stands by (-primary-grace) is the failover core's
// business, not this check's.
func (s *Sender) checkPrimary(ctx context.Context) (alive bool) {
	s.checkMu.Lock()
	defer s.checkMu.Unlock()
	s.mu.Lock()
	if time.Since(s.primaryCheckedAt) < 100*time.Millisecond {
		alive = s.primaryAlive
		s.mu.Unlock()
		return alive
	}
	s.mu.Unlock()
	for attempt := 0; attempt < 2 && !alive; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.HealthTimeout)
		resp, err := healthpb.NewHealthClient(s.peer).Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		alive = err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
	}
	s.mu.Lock()
	s.primaryAlive, s.primaryCheckedAt = alive, time.Now()
	s.mu.Unlock()
	return alive
}

// viewPrimary records the epoch and state the primary reports, for the
// backup's status.
func (s *Sender) viewPrimary(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.HealthTimeout)
	resp, err := pb.NewSenderServiceClient(s.peer).GetStatus(cctx, &pb.SenderServiceGetStatusRequest{})
	cancel()
	if err != nil {
		s.foLog.Debug("primary status", "primary", s.cfg.Peer, "error", err)
		return
	}
	s.mu.Lock()
	s.primarySeen = s.now()
	s.primaryEpoch, s.primaryState = resp.GetStatus().GetEpoch(), resp.GetStatus().GetState()
	s.mu.Unlock()
}

// backupNack runs the seed's Figure 5 for a NACK arriving at the backup. It
// returns a response when the NACK is not to be served by Figure 4.
func (s *Sender) backupNack(ctx context.Context, req *pb.NackRequest) *pb.NackResponse {
	s.mu.Lock()
	step := s.fo.Nack()
	s.mu.Unlock()
	switch step {
	case failover.Serve:
		return nil
	case failover.HoldOff:
		return s.holdOffReply(req)
	}
	serving := s.checkPrimary(ctx)
	now := s.now()
	s.mu.Lock()
	outcome := s.fo.PrimaryChecked(now, req.GetReceiverId(), serving)
	if outcome == failover.TakeOver {
		s.takeOver(now)
	}
	s.mu.Unlock()
	switch outcome {
	case failover.TakeOver:
		s.foLog.Warn("primary is down: backup taking over", "primary", s.cfg.Peer, "receiver", req.GetReceiverId(), "epoch", s.Epoch())
		s.poke(s.wake)
		s.poke(s.announce)
		return nil
	case failover.ServeNow:
		return nil
	case failover.Alert:
		s.raiseAlert(req)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &pb.NackResponse{
		Role:          roleProto(s.cfg.Role),
		Epoch:         s.epoch,
		SenderId:      s.cfg.ID,
		State:         s.state,
		PrimaryActive: true,
		NextNackAfter: duration(s.sched.ReplyInterval(now, req.GetNackInterval().AsDuration())),
	}
	if outcome == failover.Alert {
		// This receiver cannot reach the primary, which is alive (it may
		// even be multicasting): serve it without multicasting, so that
		// it completes and the group keeps one sender (L1, S3).
		s.unicastReplies(req, resp)
	}
	return resp
}

// unicastReplies answers every object of req UNICAST when this sender
// holds it in the version asked for, NOT_FOUND otherwise. Called with
// s.mu held.
func (s *Sender) unicastReplies(req *pb.NackRequest, resp *pb.NackResponse) {
	ch := s.channels[req.GetChannel()]
	for _, o := range req.GetObjects() {
		act := pb.NackAction_NACK_ACTION_NOT_FOUND
		if ch != nil {
			if obj, ok := ch.m.Lookup(o.GetObjectId()); ok && obj.Version == o.GetVersion() {
				act = pb.NackAction_NACK_ACTION_UNICAST
			}
		}
		resp.Objects = append(resp.Objects, &pb.ObjectReply{ObjectId: o.GetObjectId(), Action: act})
	}
	// No manifest version: a standing-by backup's would only send the
	// receiver to fetch a manifest it must not adopt.
}

// holdOffReply answers WAIT for every object while handing back: the
// primary is about to take the role back and will serve these objects.
func (s *Sender) holdOffReply(req *pb.NackRequest) *pb.NackResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := &pb.NackResponse{
		Role:          roleProto(s.cfg.Role),
		Epoch:         s.epoch,
		SenderId:      s.cfg.ID,
		State:         s.state,
		NextNackAfter: duration(s.sched.NackInterval(s.now())),
	}
	for _, o := range req.GetObjects() {
		resp.Objects = append(resp.Objects, &pb.ObjectReply{ObjectId: o.GetObjectId(), Action: pb.NackAction_NACK_ACTION_WAIT})
	}
	s.stats.RepliesWait.Add(uint64(len(resp.Objects)))
	return resp
}

// takeOver makes the backup the active sender under a new epoch, with a
// fresh scheduler: pass counters start from zero and nothing is multicast
// until NACKs ask for it. Called with s.mu held.
func (s *Sender) takeOver(now time.Time) {
	s.takeovers++
	s.epoch = uint64(now.UnixNano())
	s.jobSeq = 0
	s.resetScheduler(now, false)
	s.setState(pb.SenderState_SENDER_STATE_ACTIVE)
}

// resetScheduler replaces the scheduler with one that knows the current
// objects of every channel. Called with s.mu held.
func (s *Sender) resetScheduler(now time.Time, firstPass bool) {
	s.sched = scheduler.New(s.cfg.Scheduler, now)
	for _, ch := range s.channels {
		s.sched.SetObjects(ch.id, ch.m.Objects, firstPass, now)
	}
}

// raiseAlert raises the network alert of step 535.
func (s *Sender) raiseAlert(req *pb.NackRequest) {
	msg := fmt.Sprintf("receiver %q NACKed the backup again while the primary %s is alive: it cannot reach the primary", req.GetReceiverId(), s.cfg.Peer)
	s.foLog.Error("network alert", "receiver", req.GetReceiverId(), "channel", req.GetChannel(), "primary", s.cfg.Peer,
		"reason", "second NACK to the backup while the primary is alive")
	s.alerts.Raise(&pb.Alert{
		Time:       timestamppb.New(s.now()),
		Kind:       pb.AlertKind_ALERT_KIND_NETWORK,
		Source:     s.cfg.ID,
		ReceiverId: req.GetReceiverId(),
		Channel:    req.GetChannel(),
		Message:    msg,
	})
}

// Reclaim applies the primary's signal to this backup (steps 515-520).
func (s *Sender) Reclaim(req *pb.ReclaimRequest) (*pb.ReclaimResponse, error) {
	if s.cfg.Role != Backup {
		return nil, fmt.Errorf("reclaim sent to a primary: %w", errInvalid)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	inFlight, _ := s.sched.Load()
	before, _ := s.fo.State()
	st := s.fo.Reclaim(now, inFlight)
	s.applyBackupState(st, now)
	if before == failover.Active {
		s.startHandback(st)
	}
	if before != failover.Standby {
		s.foLog.Info("primary reclaimed the sender role", "primary", req.GetPrimaryId(), "jobs_in_hand", inFlight, "state", st)
	}
	return &pb.ReclaimResponse{State: s.state, JobsInFlight: uint32(inFlight), Epoch: s.epoch}, nil
}

// applyBackupState mirrors the failover core's state in the sender's.
// Called with s.mu held.
func (s *Sender) applyBackupState(st failover.State, now time.Time) {
	switch st {
	case failover.Active:
		s.setState(pb.SenderState_SENDER_STATE_ACTIVE)
	case failover.HandingBack:
		s.setState(pb.SenderState_SENDER_STATE_HANDING_BACK)
	case failover.Standby:
		if s.state != pb.SenderState_SENDER_STATE_STANDBY {
			s.resetScheduler(now, false)
			s.foLog.Info("backup standing by")
		}
		s.setState(pb.SenderState_SENDER_STATE_STANDBY)
	}
}

// jobsDrained is called by the transmitter after each job ends: a
// handing-back backup whose last job ended stands by. Called with s.mu held.
func (s *Sender) jobsDrained(now time.Time) {
	if s.fo == nil {
		return
	}
	if inFlight, _ := s.sched.Load(); inFlight == 0 {
		s.applyBackupState(s.fo.JobsDrained(now), now)
	}
}

// watchPrimary checks the primary every CheckInterval. For an active
// backup this is the periodic check of ¶39: a primary seen serving again
// is taken as its signal. A standing-by backup checks only to keep its
// view of the primary current for operators (status, metrics); taking
// over stays the business of receivers' NACKs (Figure 5).
func (s *Sender) watchPrimary(ctx context.Context) {
	t := time.NewTicker(s.cfg.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		serving := s.checkPrimary(ctx)
		if serving {
			s.viewPrimary(ctx)
		}
		s.mu.Lock()
		st, _ := s.fo.State()
		s.mu.Unlock()
		if st != failover.Active {
			continue
		}
		now := s.now()
		s.mu.Lock()
		inFlight, _ := s.sched.Load()
		next := s.fo.PeriodicCheck(now, serving, inFlight)
		s.applyBackupState(next, now)
		s.startHandback(next)
		s.mu.Unlock()
		if next != failover.Active {
			s.foLog.Info("primary is serving again: backup handing back", "primary", s.cfg.Peer, "state", next)
		}
	}
}

// signalBackup is the primary's start-up (¶40): signal the backup and, if
// it is active, wait for it to finish its jobs, at most MaxHandoverWait.
func (s *Sender) signalBackup(ctx context.Context) {
	start := time.Now()
	c := pb.NewSenderServiceClient(s.peer)
	waitedForBackup := false
	for {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.HealthTimeout)
		resp, err := c.Reclaim(cctx, &pb.ReclaimRequest{PrimaryId: s.cfg.ID, PrimaryEpoch: s.Epoch()})
		cancel()
		st := failover.Standby
		switch resp.GetState() {
		case pb.SenderState_SENDER_STATE_ACTIVE:
			st = failover.Active
		case pb.SenderState_SENDER_STATE_HANDING_BACK:
			st = failover.HandingBack
		}
		waited := time.Since(start)
		switch failover.Startup(err == nil, st, waited, s.cfg.MaxHandoverWait) {
		case failover.StartNow:
			switch {
			case err != nil:
				s.foLog.Info("backup did not answer the start-up signal; starting", "backup", s.cfg.Peer, "error", err)
			case waitedForBackup:
				s.foLog.Info("backup handed the role back; starting", "backup", s.cfg.Peer, "waited", waited.Round(time.Millisecond))
			}
			return
		case failover.StartAnyway:
			s.foLog.Warn("backup still busy after the longest wait; starting anyway", "backup", s.cfg.Peer, "waited", waited.Round(time.Millisecond), "jobs", resp.GetJobsInFlight())
			return
		}
		if !waitedForBackup {
			s.foLog.Info("backup is active; waiting for it to finish its jobs", "backup", s.cfg.Peer, "jobs", resp.GetJobsInFlight())
		}
		waitedForBackup = true
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}
