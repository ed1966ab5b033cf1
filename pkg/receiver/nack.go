package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/client"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/repair"
	"github.com/nackcast/nackcast/pkg/scheduler"
)

// minRefetchGap is the least time between two manifest fetches that
// ANNOUNCE packets (or NACK replies) ask for.
const minRefetchGap = 100 * time.Millisecond

// nackLoop runs the seed's Figure 6 for one channel: fetch the manifest
// when there is none or a newer one was announced, compare it with what is
// held, NACK the primary and then the backup, act on the reply.
func (r *Receiver) nackLoop(ctx context.Context, ch *chanState) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	// Without a manifest every packet of a pass is lost, so the first
	// fetches are retried quickly; a sender that stays away is then
	// asked less and less often.
	const firstBackoff = 100 * time.Millisecond
	fetchBackoff := firstBackoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		r.mu.Lock()
		need := ch.m == nil || ch.refetch
		// A periodic refresh finds content published while no sender
		// announces it (the primary down, the backup standing by).
		since := r.now().Sub(ch.fetchedAt)
		refresh := !need && since >= r.cfg.ManifestRefresh
		// Refetches that ANNOUNCEs ask for are spaced: forged ones could
		// otherwise drive a fetch per packet (guarantee R1).
		wait := time.Duration(0)
		if ch.m != nil && ch.refetch && since >= 0 && since < minRefetchGap {
			wait = minRefetchGap - since
		}
		r.mu.Unlock()
		if wait > 0 {
			timer.Reset(wait)
			continue
		}
		if need || refresh {
			err := r.fetchManifest(ctx, ch)
			if err != nil && ctx.Err() != nil {
				return
			}
			if err != nil {
				kind, msg := classify(ch.name, "manifest fetch", err)
				r.mu.Lock()
				r.setProblem(ch, kind, msg)
				r.mu.Unlock()
			}
			switch {
			case err == nil:
				fetchBackoff = firstBackoff
			case status.Code(err) == codes.FailedPrecondition:
				// The sender cannot serve this channel's manifest (too
				// large for a message, say): no quick retry will help.
				r.manifestAlert(ch.name, fmt.Errorf("the sender cannot serve the manifest: %w", err))
				r.mu.Lock()
				held := ch.m != nil
				if held {
					// Keep repairing what the held manifest lists; the
					// periodic refresh asks again.
					ch.refetch, ch.declined, ch.fetchedAt = false, ch.announced, r.now()
				}
				r.mu.Unlock()
				if !held {
					timer.Reset(r.cfg.Repair.MaxBackoff)
					continue
				}
			case need:
				r.nackLog.Warn("manifest fetch failed", "channel", ch.name, "error", err, "retry_in", fetchBackoff)
				timer.Reset(fetchBackoff)
				fetchBackoff = min(fetchBackoff*3/2, 5*time.Second)
				continue
			default:
				r.nackLog.Debug("manifest refresh failed", "channel", ch.name, "error", err)
				r.mu.Lock()
				ch.fetchedAt = r.now() // try again at the next refresh
				r.mu.Unlock()
			}
		}
		now := r.now()
		r.mu.Lock()
		ch.core.Resync(now)
		due := ch.core.Due()
		r.mu.Unlock()
		if now.Before(due) {
			timer.Reset(due.Sub(now))
			continue
		}
		r.nackOnce(ctx, ch, now)
		r.mu.Lock()
		due = ch.core.Due()
		r.mu.Unlock()
		timer.Reset(max(due.Sub(r.now()), time.Millisecond))
	}
}

// holdings builds the scan's view of the channel (steps 600-605). Called
// with r.mu held.
func (r *Receiver) holdings(ch *chanState) []repair.Holding {
	hs := make([]repair.Holding, 0, len(ch.objs))
	for _, o := range ch.m.Objects {
		st := ch.objs[o.ID]
		h := repair.Holding{Object: st.obj, State: st.state, Busy: st.busy}
		if st.state == repair.Partial {
			if st.partial != nil {
				h.Missing = st.partial.Missing()
			} else {
				h.Missing = st.missing
			}
		}
		hs = append(hs, h)
	}
	return hs
}

// nackOnce runs one NACK cycle.
func (r *Receiver) nackOnce(ctx context.Context, ch *chanState, now time.Time) {
	if r.diskFull.Load() {
		return // paused: repairs could not be stored
	}
	r.mu.Lock()
	if ch.m == nil {
		r.mu.Unlock()
		return
	}
	reqs := ch.core.Plan(now, r.holdings(ch))
	version := ch.m.Version
	follow := ch.core.Following()
	horizonEpoch, horizon := r.horizonEpoch, r.horizon
	r.mu.Unlock()
	if len(reqs) == 0 {
		return
	}
	req := &pb.NackRequest{
		ReceiverId:      r.cfg.ID,
		Channel:         ch.name,
		ManifestVersion: version,
		Objects:         make([]*pb.ObjectNack, len(reqs)),
		HorizonEpoch:    horizonEpoch,
		Horizon:         horizon,
	}
	// What the socket saw since the previous NACK: the sender slows down
	// when the kernel had to drop datagrams.
	received, overflow := r.stats.PacketsReceived.Load(), r.stats.PacketsOverflow.Load()
	req.Received = received - min(r.stats.reportedReceived.Swap(received), received)
	req.OverflowDrops = overflow - min(r.stats.reportedOverflow.Swap(overflow), overflow)
	// How fast the socket was drained while data flowed (not since the
	// previous NACK: that counts idle time).
	req.ReceiveRate = r.drain.Rate()
	if follow > 0 {
		req.NackInterval = durationpb.New(follow)
	}
	var ranges uint64
	for i, q := range reqs {
		on := &pb.ObjectNack{ObjectId: q.Object, Version: q.Version}
		for _, m := range q.Missing {
			on.Missing = append(on.Missing, &pb.ChunkRange{First: m.First, Count: m.Count})
		}
		ranges += uint64(len(q.Missing))
		req.Objects[i] = on
	}
	resp, from, addr, err := r.sendNack(ctx, req)
	r.stats.NacksSent.Add(1)
	r.stats.RangesRequested.Add(ranges)
	if err == nil && resp.GetPrimaryActive() {
		r.stats.RepliesPrimaryActive.Add(1)
		if len(resp.GetObjects()) == 0 {
			// The backup disregarded the NACK: the primary is alive but
			// did not answer us. Keep trying the primary, backing off.
			err = fmt.Errorf("backup %s says the primary %s is alive, but the primary did not answer", addr, r.cfg.Primary)
		} else {
			// Asked again, the backup serves us by unicast (it raised a
			// network alert: we cannot reach a live primary).
			r.nackLog.Warn("primary alive but unreachable: the backup serves this receiver by unicast", "primary", r.cfg.Primary, "backup", addr)
		}
	}
	if err != nil {
		kind, msg := classify(ch.name, "NACK", err)
		r.mu.Lock()
		r.setProblem(ch, kind, msg)
		wait := ch.core.OnFailure(r.now())
		r.mu.Unlock()
		if ctx.Err() == nil {
			r.nackLog.Warn("nack unanswered", "channel", ch.name, "error", err, "retry_in", wait)
		}
		return
	}
	reply := repair.Reply{
		NextNackAfter:   resp.GetNextNackAfter().AsDuration(),
		ManifestVersion: resp.GetManifestVersion(),
		Actions:         make([]scheduler.Action, len(resp.GetObjects())),
	}
	for i, o := range resp.GetObjects() {
		if i < len(reqs) && o.GetObjectId() != reqs[i].Object {
			r.nackLog.Warn("nack reply out of order; ignoring it", "channel", ch.name, "sender", addr)
			return
		}
		switch o.GetAction() {
		case pb.NackAction_NACK_ACTION_WAIT:
			reply.Actions[i] = scheduler.Wait
		case pb.NackAction_NACK_ACTION_UNICAST:
			reply.Actions[i] = scheduler.Unicast
		case pb.NackAction_NACK_ACTION_NOT_FOUND:
			reply.Actions[i] = scheduler.NotFound
		}
	}
	r.setActive(addr)
	r.mu.Lock()
	clearProblem(ch, rpcProblems...)
	acts := ch.core.OnReply(r.now(), reqs, reply, version)
	if acts.RefetchManifest && ch.held != nil && ch.held.m.Version == reply.ManifestVersion {
		acts.RefetchManifest = false // already fetched and held back
	}
	if acts.RefetchManifest {
		ch.refetch = true
	}
	var pulls []*objState
	for _, id := range acts.Pull {
		if o := ch.objs[id]; o != nil && !o.busy && o.state != repair.Complete {
			o.busy = true
			pulls = append(pulls, o)
		}
	}
	r.mu.Unlock()
	r.stats.RepliesWait.Add(uint64(acts.Waiting))
	r.stats.RepliesUnicast.Add(uint64(len(acts.Pull)))
	r.stats.RepliesNotFound.Add(uint64(len(acts.NotFound)))
	if len(acts.NotFound) > 0 {
		r.nackLog.Info("sender does not hold objects; retrying later", "channel", ch.name, "sender", addr, "objects", len(acts.NotFound))
	}
	if acts.RefetchManifest {
		r.poke(ch)
	}
	for _, o := range pulls {
		select {
		case r.pulls <- pullJob{ch: ch, o: o, from: from, addr: addr}:
		case <-ctx.Done():
			return
		}
	}
}

// sendNack sends the NACK to the primary with a deadline and, when the
// primary does not answer, to the backup (steps 610-625). The next cycle
// starts at the primary again.
func (r *Receiver) sendNack(ctx context.Context, req *pb.NackRequest) (*pb.NackResponse, *grpc.ClientConn, string, error) {
	call := func(cc *grpc.ClientConn) (*pb.NackResponse, error) {
		cctx, cancel := context.WithTimeout(ctx, r.cfg.NackTimeout)
		defer cancel()
		return pb.NewSenderServiceClient(cc).Nack(cctx, req)
	}
	resp, err := call(r.primary)
	if err == nil {
		return resp, r.primary, r.cfg.Primary, nil
	}
	if r.backup == nil || !repair.ShouldFailover(status.Code(err)) {
		return nil, nil, "", status.Errorf(status.Code(err), "primary %s: %s", r.cfg.Primary, brief(err))
	}
	r.nackLog.Warn("primary did not answer; sending nack to backup", "primary", r.cfg.Primary, "backup", r.cfg.Backup, "error", status.Code(err))
	resp, err2 := call(r.backup)
	if err2 != nil {
		return nil, nil, "", status.Errorf(status.Code(err2), "primary %s: %s; backup %s: %s", r.cfg.Primary, brief(err), r.cfg.Backup, brief(err2))
	}
	return resp, r.backup, r.cfg.Backup, nil
}

// setActive records the sender that served the receiver's last NACK; a
// switch from the primary (or from none) to the backup counts a failover.
// A backup's "the primary is alive" bounce serves nothing and is not
// recorded.
func (r *Receiver) setActive(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if addr == r.cfg.Backup && r.activeSender != addr {
		r.failovers++
	}
	r.activeSender = addr
}

// fetchManifest fetches and validates the channel's manifest from the
// primary, or the backup when the primary does not answer, persists it and
// installs it.
func (r *Receiver) fetchManifest(ctx context.Context, ch *chanState) error {
	r.mu.Lock()
	first := ch.m == nil
	r.mu.Unlock()
	get := func(cc *grpc.ClientConn, waitReady bool) (*pb.GetManifestResponse, error) {
		d := 5 * r.cfg.NackTimeout
		if waitReady {
			d = r.cfg.NackTimeout
		}
		// The deadline is the answer's; the objects of a large manifest
		// then stream for as long as the channel needs.
		return client.FetchManifest(ctx, pb.NewSenderServiceClient(cc), ch.name, client.FetchOptions{
			MaxObjects:  r.cfg.MaxManifestObjects,
			HeadTimeout: d,
			CallOptions: []grpc.CallOption{grpc.WaitForReady(waitReady)},
		})
	}
	// Without a manifest, every packet of a pass is lost: the first fetch
	// waits (up to the NACK timeout) for the connection to the primary
	// to come up instead of failing fast while gRPC backs off between
	// reconnection attempts, so it lands the moment the primary serves.
	resp, err := get(r.primary, first)
	if errors.Is(err, client.ErrManifestStream) {
		// A sender that streams a manifest that does not add up, or one
		// larger than this receiver takes: like a manifest the sender
		// cannot serve, no quick retry helps, and the held manifest is
		// still repaired (the NACK loop's FailedPrecondition case, which
		// raises the alert).
		return status.Errorf(codes.FailedPrecondition, "manifest from sender rejected: %v", err)
	}
	if err != nil && r.backup != nil && repair.ShouldFailover(status.Code(err)) {
		var errB error
		if resp, errB = get(r.backup, false); errB != nil {
			// The backup's code decides the retry (a backup that does
			// not know the channel: NotFound), the message names both.
			return status.Errorf(status.Code(errB), "primary %s: %s; backup %s: %s", r.cfg.Primary, brief(err), r.cfg.Backup, brief(errB))
		}
		err = nil
	}
	if err != nil {
		return status.Errorf(status.Code(err), "primary %s: %s", r.cfg.Primary, brief(err))
	}
	r.stats.ManifestFetches.Add(1)
	r.mu.Lock()
	ch.fetchedAt = r.now()
	clearProblem(ch, rpcProblems...)
	r.mu.Unlock()
	m, err := manifest.FromProto(resp.GetManifest())
	if err == nil && m.Channel != ch.name {
		err = fmt.Errorf("asked for channel %q, got %q: %w", ch.name, m.Channel, manifest.ErrInvalidManifest)
	}
	if err == nil && r.manifestPub != nil {
		err = manifest.Verify(m, resp.GetManifest().GetSignature(), r.manifestPub)
		r.mu.Lock()
		if cur := ch.m; err == nil && cur != nil && servesAsActive(resp.GetState()) && cur.Version != m.Version && m.GeneratedAt.Before(cur.GeneratedAt) {
			err = fmt.Errorf("signed manifest %016x of %v is older than the installed %016x of %v (rollback): %w",
				m.Version, m.GeneratedAt, cur.Version, cur.GeneratedAt, manifest.ErrSignature)
		}
		r.mu.Unlock()
	}
	if err != nil {
		err = fmt.Errorf("manifest from sender rejected: %w", err)
		r.manifestAlert(ch.name, err)
		return err
	}
	r.mu.Lock()
	clearProblem(ch, pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_MANIFEST_REJECTED)
	r.mu.Unlock()
	src := repair.Source{Sender: resp.GetSenderId(), Epoch: resp.GetEpoch(), Active: servesAsActive(resp.GetState())}
	// One adoption at a time per channel: ConfirmManifest installs too.
	ch.installMu.Lock()
	defer ch.installMu.Unlock()
	r.mu.Lock()
	d := r.cfg.Adopt.Adopt(repair.Held{Manifest: ch.m, Sender: ch.from, Epoch: ch.fromEpoch}, m, src, ch.confirmed)
	same := ch.m != nil && ch.m.Version == m.Version
	if d.Adoption != repair.Install {
		ch.refetch = false
	}
	switch {
	case same:
		ch.held = nil // the sender is back to what we hold
	case d.Adoption == repair.Ignore:
		// Not again on every ANNOUNCE of this version; the periodic
		// refresh and NACK replies still ask.
		ch.declined = m.Version
	}
	r.mu.Unlock()
	switch d.Adoption {
	case repair.Ignore:
		if !same {
			r.nackLog.Info("manifest not adopted", "channel", ch.name, "version", fmt.Sprintf("%016x", m.Version), "sender", src.Sender, "reason", d.Reason)
		}
		return nil
	case repair.HoldBack:
		r.holdBack(ch, m, resp.GetManifest(), src, d)
		return nil
	}
	r.adopt(ch, m, resp.GetManifest(), src, d)
	return nil
}

// senderChanged alerts when the manifest of another sender than the one
// that served the installed manifest (a backup that took over, or the
// primary back) removes or changes objects: the cloud's senders do not
// hold the same content, and the receivers follow the active one.
func (r *Receiver) senderChanged(ch *chanState, prev *manifest.Manifest, prevFrom string, m *manifest.Manifest, sender string) {
	d := manifest.Compare(prev, m)
	if len(d.OnlyA) == 0 && len(d.Changed) == 0 {
		return
	}
	msg := fmt.Sprintf("channel %q now follows sender %q, whose manifest %016x removes %d and changes %d of the objects of %q's %016x: the cloud's senders do not hold the same content",
		ch.name, sender, m.Version, len(d.OnlyA), len(d.Changed), prevFrom, prev.Version)
	r.nackLog.Warn("active sender's content differs from the previous sender's", "channel", ch.name, "sender", sender, "previous", prevFrom,
		"removed", len(d.OnlyA), "changed", len(d.Changed))
	r.alerts.raise(r.now(), "sender-changed/"+ch.name, &pb.Alert{
		Kind:       pb.AlertKind_ALERT_KIND_MANIFEST_MISMATCH,
		Source:     r.cfg.ID,
		ReceiverId: r.cfg.ID,
		Channel:    ch.name,
		Message:    msg,
	})
}

// servesAsActive reports whether a sender in state st speaks for the
// cloud: only an active one does.
func servesAsActive(st pb.SenderState) bool {
	return st == pb.SenderState_SENDER_STATE_ACTIVE
}

// adopt persists and installs manifest m (wire form p) served by src.
func (r *Receiver) adopt(ch *chanState, m *manifest.Manifest, p *pb.Manifest, src repair.Source, d repair.AdoptDecision) {
	sender := src.Sender
	if err := r.store.SaveManifest(p); err != nil {
		r.nackLog.Warn("cannot persist manifest", "channel", ch.name, "error", err)
	}
	r.mu.Lock()
	prev, prevFrom := ch.m, ch.from
	ch.from, ch.fromEpoch = sender, src.Epoch
	ch.held, ch.declined = nil, 0
	r.mu.Unlock()
	if prev != nil && prevFrom != "" && prevFrom != sender {
		r.senderChanged(ch, prev, prevFrom, m, sender)
	}
	r.install(ch, m)
	r.nackLog.Info("manifest installed", "channel", ch.name, "version", fmt.Sprintf("%016x", m.Version), "objects", len(m.Objects), "bytes", m.TotalBytes(),
		"sender", sender, "removed", d.Removed, "reason", d.Reason)
}

func (r *Receiver) pullLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-r.pulls:
			if err := r.pull(ctx, j); err != nil && ctx.Err() == nil {
				r.nackLog.Warn("unicast pull failed; will NACK again", "channel", j.ch.name, "path", j.o.obj.Path, "sender", j.addr, "error", err)
			}
		}
	}
}

// pull fetches the missing chunks of an object over unicast (step 445's
// advice) and commits it when complete.
func (r *Receiver) pull(ctx context.Context, j pullJob) error {
	r.mu.Lock()
	if j.ch.objs[j.o.obj.ID] != j.o {
		r.mu.Unlock()
		return nil
	}
	p, err := r.ensurePartial(j.ch, j.o)
	if err != nil {
		j.o.busy = false
		r.mu.Unlock()
		return err
	}
	missing := p.Missing()
	r.mu.Unlock()
	r.stats.Pulls.Add(1)

	err = r.pullRanges(ctx, j, p, missing)

	r.mu.Lock()
	defer r.mu.Unlock()
	j.o.busy = false
	if j.ch.objs[j.o.obj.ID] != j.o {
		return nil
	}
	if j.o.partial != nil {
		_, j.o.held = j.o.partial.Progress()
		if j.o.partial.Full() {
			r.enqueueCommit(j.ch, j.o)
		}
	}
	return err
}

func (r *Receiver) pullRanges(ctx context.Context, j pullJob, p interface {
	WriteRun(uint64, []byte) (int, error)
}, missing chunks.List) error {
	req := &pb.PullRequest{
		Channel:    j.ch.name,
		ObjectId:   j.o.obj.ID,
		Version:    j.o.obj.Version,
		ReceiverId: r.cfg.ID,
	}
	if missing.Len() < uint64(j.o.obj.Chunks) {
		for _, m := range missing.Coalesce(4096) {
			req.Ranges = append(req.Ranges, &pb.ChunkRange{First: m.First, Count: m.Count})
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := pb.NewSenderServiceClient(j.from).Pull(cctx, req)
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if status.Code(err) == codes.FailedPrecondition || status.Code(err) == codes.NotFound {
				r.mu.Lock()
				j.ch.refetch = true
				r.mu.Unlock()
				r.poke(j.ch)
			}
			return err
		}
		n, err := p.WriteRun(msg.GetOffset(), msg.GetData())
		if err != nil {
			return fmt.Errorf("pulled data rejected: %w", err)
		}
		r.stats.UnicastBytes.Add(uint64(n))
	}
}
