package sender

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nackcast/nackcast/pkg/app"
	"github.com/nackcast/nackcast/pkg/chunks"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/scheduler"
	"github.com/nackcast/nackcast/pkg/tlsconf"
)

// Limits on requests.
const (
	// MaxNackObjects is the most objects one NACK may name.
	MaxNackObjects = 4096
	// MaxNackRanges is the most ranges one object of a NACK may carry.
	MaxNackRanges = 65536
	// MaxPullMessage is the most object bytes in one Pull message.
	MaxPullMessage = 256 << 10
)

// Service implements nackcast.v1.SenderService over a Sender.
type Service struct {
	pb.UnimplementedSenderServiceServer
	s *Sender
}

// NewService returns the gRPC service of s.
func NewService(s *Sender) *Service { return &Service{s: s} }

// toStatus maps the package's errors to gRPC status codes: one place for
// the whole service.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, ErrUnknownChannel), errors.Is(err, ErrUnknownObject):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrVersion), errors.Is(err, ErrChanged), errors.Is(err, ErrNotChannel):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrManifestTooLarge):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrTooLarge), isNoSpace(err):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, ErrNotReady):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, manifest.ErrInvalidName), errors.Is(err, manifest.ErrInvalidPath),
		errors.Is(err, chunks.ErrInvalidRange), errors.Is(err, errInvalid), errors.Is(err, ErrChecksum):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

var errInvalid = errors.New("invalid request")

// Nack answers a NACK per object in the order of the seed's steps 420-450.
// The whole request is validated before anything changes: a request with
// one bad object changes nothing.
func (v *Service) Nack(ctx context.Context, req *pb.NackRequest) (*pb.NackResponse, error) {
	resp, err := v.s.Nack(ctx, req)
	return resp, toStatus(err)
}

// Feedback folds a receiver's socket report into the rate controller: an
// overrun cuts the rate like one reported in a NACK, a buffer past half
// full caps it at what that receiver drains. Only the active sender paces
// by it; the reply carries the rate afterwards.
func (s *Sender) Feedback(ctx context.Context, req *pb.FeedbackRequest) (*pb.FeedbackResponse, error) {
	if err := checkReceiverID(ctx, req.GetReceiverId()); err != nil {
		return nil, err
	}
	fill := float64(req.GetQueueFill())
	if math.IsNaN(fill) || fill < 0 || fill > 4 {
		return nil, status.Errorf(codes.InvalidArgument, "queue_fill %v: must be between 0 and 1", req.GetQueueFill())
	}
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != pb.SenderState_SENDER_STATE_ACTIVE || s.rateCtl == nil {
		return &pb.FeedbackResponse{}, nil
	}
	rate := float64(req.GetReceiveRate())
	s.adaptRate(now, req.GetReceived(), req.GetOverflowDrops(), rate)
	caps := s.rateCtl.Caps()
	r := s.rateCtl.Fill(now, fill, rate, float64(s.sent.Rate()))
	if s.rateCtl.Caps() != caps {
		s.txLog.Debug("receiver falling behind: rate capped at what it drains", "receiver", req.GetReceiverId(), "fill", fill, "rate", int64(r))
	}
	s.applyRate(r)
	return &pb.FeedbackResponse{Rate: uint64(r)}, nil
}

// Feedback folds a receiver's socket report into the pacing.
func (v *Service) Feedback(ctx context.Context, req *pb.FeedbackRequest) (*pb.FeedbackResponse, error) {
	resp, err := v.s.Feedback(ctx, req)
	return resp, toStatus(err)
}

// checkReceiverID refuses a request whose receiver_id is not the name of
// the verified client certificate of a receiver: under mutual TLS one
// receiver cannot speak for another (in the backup's alerts, the logs, the
// limits). Without TLS there is no name to check.
func checkReceiverID(ctx context.Context, id string) error {
	name, role, ok := tlsconf.PeerIdentity(ctx)
	if !ok || role != app.RoleReceiver || id == name {
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "receiver_id %q is not the name in this receiver's certificate (%q): run the receiver with -id %s, or give it a certificate of its own", id, name, name)
}

// Nack validates and applies a NACK: on a backup, Figure 5 first.
func (s *Sender) Nack(ctx context.Context, req *pb.NackRequest) (*pb.NackResponse, error) {
	if err := checkReceiverID(ctx, req.GetReceiverId()); err != nil {
		return nil, err
	}
	if err := manifest.ValidateChannelName(req.GetChannel()); err != nil {
		return nil, err
	}
	if n := len(req.GetObjects()); n > MaxNackObjects {
		return nil, fmt.Errorf("%d objects in one NACK, at most %d: %w", n, MaxNackObjects, errInvalid)
	}
	follow := time.Duration(0)
	if d := req.GetNackInterval(); d != nil {
		if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
			return nil, fmt.Errorf("nack_interval %v: %w", d, errInvalid)
		}
		follow = d.AsDuration()
	}
	ch, err := s.lookup(req.GetChannel())
	if err != nil {
		return nil, err
	}
	if s.fo != nil {
		if resp := s.backupNack(ctx, req); resp != nil {
			s.stats.Nacks.Add(1)
			ch.stats.nack(resp)
			return resp, nil
		}
	}
	reqs := make([]scheduler.Request, len(req.GetObjects()))
	for i, o := range req.GetObjects() {
		if n := len(o.GetMissing()); n > MaxNackRanges {
			return nil, fmt.Errorf("object %d: %d ranges, at most %d: %w", i, n, MaxNackRanges, errInvalid)
		}
		r := scheduler.Request{Object: o.GetObjectId(), Version: o.GetVersion()}
		if len(o.GetMissing()) > 0 {
			rs := make([]chunks.Range, len(o.GetMissing()))
			for j, m := range o.GetMissing() {
				rs[j] = chunks.Range{First: m.GetFirst(), Count: m.GetCount()}
			}
			if obj, ok := ch.m.Lookup(o.GetObjectId()); ok && obj.Version == o.GetVersion() {
				if err := chunks.Validate(rs, obj.Chunks); err != nil {
					return nil, fmt.Errorf("object %016x: %w", o.GetObjectId(), err)
				}
			}
			r.Missing = chunks.Normalize(rs)
		}
		reqs[i] = r
	}

	if err := ctx.Err(); err != nil {
		// The receiver gave up on this NACK (a sender paused, then
		// resumed, finds a backlog of them): it is not load to meter or
		// a pass to pool (found by the simulator).
		return nil, status.FromContextError(err).Err()
	}
	now := s.now()
	s.mu.Lock()
	info := scheduler.NackInfo{
		Follow:       follow,
		Horizon:      req.GetHorizon(),
		HorizonKnown: req.GetHorizonEpoch() != 0 && req.GetHorizonEpoch() == s.epoch,
	}
	decisions := s.sched.Nack(now, ch.id, info, reqs, make([]scheduler.Decision, 0, len(reqs)))
	s.adaptRate(now, req.GetReceived(), req.GetOverflowDrops(), float64(req.GetReceiveRate()))
	interval := s.sched.ReplyInterval(now, follow)
	version := ch.m.Version
	if cur := s.channels[ch.name]; cur != nil {
		version = cur.m.Version
	}
	resp := &pb.NackResponse{
		NextNackAfter:   durationpb.New(interval),
		Role:            roleProto(s.cfg.Role),
		Epoch:           s.epoch,
		ManifestVersion: version,
		SenderId:        s.cfg.ID,
		State:           s.state,
		Objects:         make([]*pb.ObjectReply, len(decisions)),
	}
	s.mu.Unlock()

	s.stats.Nacks.Add(1)
	var wait, unicast, notFound uint64
	for i, d := range decisions {
		resp.Objects[i] = &pb.ObjectReply{ObjectId: reqs[i].Object, Action: actionProto(d.Action), Passes: d.Passes}
		switch d.Action {
		case scheduler.Wait:
			wait++
		case scheduler.Unicast:
			unicast++
		case scheduler.NotFound:
			notFound++
		}
	}
	s.stats.RepliesWait.Add(wait)
	s.stats.RepliesUnicast.Add(unicast)
	s.stats.RepliesNotFound.Add(notFound)
	ch.stats.nack(resp)
	if wait > 0 {
		s.poke(s.wake)
	}
	s.log.Trace("nack", "receiver", req.GetReceiverId(), "channel", ch.name, "objects", len(reqs), "wait", wait, "unicast", unicast, "not_found", notFound)
	return resp, nil
}

// Pull streams an object, or ranges of its chunks, from the origin file
// the manifest was built from.
func (v *Service) Pull(req *pb.PullRequest, stream pb.SenderService_PullServer) error {
	return toStatus(v.s.pull(stream.Context(), req, stream.Send))
}

func (s *Sender) pull(ctx context.Context, req *pb.PullRequest, send func(*pb.PullResponse) error) error {
	if err := manifest.ValidateChannelName(req.GetChannel()); err != nil {
		return err
	}
	if n := len(req.GetRanges()); n > MaxNackRanges {
		return fmt.Errorf("%d ranges, at most %d: %w", n, MaxNackRanges, errInvalid)
	}
	ch, err := s.lookup(req.GetChannel())
	if err != nil {
		return err
	}
	obj, ok := ch.m.Lookup(req.GetObjectId())
	if !ok {
		return fmt.Errorf("object %016x in %q: %w", req.GetObjectId(), ch.name, ErrUnknownObject)
	}
	if obj.Version != req.GetVersion() {
		return fmt.Errorf("object %s: version %016x asked, %016x held: %w", obj.Path, req.GetVersion(), obj.Version, ErrVersion)
	}
	ranges := chunks.Whole(obj.Chunks)
	if len(req.GetRanges()) > 0 {
		rs := make([]chunks.Range, len(req.GetRanges()))
		for i, r := range req.GetRanges() {
			rs[i] = chunks.Range{First: r.GetFirst(), Count: r.GetCount()}
		}
		if err := chunks.Validate(rs, obj.Chunks); err != nil {
			return fmt.Errorf("object %s: %w", obj.Path, err)
		}
		ranges = chunks.Normalize(rs)
	}
	f, err := s.openObject(ch, obj)
	if err != nil {
		return err
	}
	defer f.Close()
	s.stats.Pulls.Add(1)
	ch.stats.pull()
	perMsg := max(1, MaxPullMessage/int(obj.ChunkSize))
	buf := make([]byte, perMsg*int(obj.ChunkSize))
	for _, r := range ranges {
		for first := r.First; uint64(first) < r.End(); {
			n := min(uint64(perMsg), r.End()-uint64(first))
			off := obj.Offset(first)
			l := int(min(n*uint64(obj.ChunkSize), obj.Size-uint64(off)))
			if _, err := f.ReadAt(buf[:l], off); err != nil {
				if errors.Is(err, io.EOF) {
					return fmt.Errorf("%s: origin file shrank: %w", obj.Path, ErrChanged)
				}
				return err
			}
			if err := send(&pb.PullResponse{Offset: uint64(off), Data: buf[:l]}); err != nil {
				return err
			}
			s.stats.PullBytes.Add(uint64(l))
			ch.stats.pulled(l)
			first += uint32(n)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	s.log.Debug("pull served", "receiver", req.GetReceiverId(), "channel", ch.name, "path", obj.Path, "chunks", ranges.Len())
	return nil
}

// Reclaim is the primary's start-up signal to the backup.
func (v *Service) Reclaim(_ context.Context, req *pb.ReclaimRequest) (*pb.ReclaimResponse, error) {
	resp, err := v.s.Reclaim(req)
	return resp, toStatus(err)
}

// WatchAlerts streams the recent alerts, then new ones as they are raised.
func (v *Service) WatchAlerts(_ *pb.WatchAlertsRequest, stream pb.SenderService_WatchAlertsServer) error {
	return v.s.alerts.Stream(stream.Context(), func(a *pb.Alert) error {
		return stream.Send(&pb.WatchAlertsResponse{Alert: a})
	})
}

// PublishObject uploads an object into the origin.
func (v *Service) PublishObject(stream pb.SenderService_PublishObjectServer) error {
	resp, err := v.s.Publish(stream.Context(), stream)
	if err != nil {
		return toStatus(err)
	}
	return stream.SendAndClose(resp)
}

// DeleteObject removes an object from the origin.
func (v *Service) DeleteObject(ctx context.Context, req *pb.DeleteObjectRequest) (*pb.DeleteObjectResponse, error) {
	resp, err := v.s.Delete(ctx, req)
	return resp, toStatus(err)
}

// GetManifest returns a channel's current manifest. A call that arrives
// while the sender is still scanning its origin at start-up waits for the
// scan (within its deadline) rather than failing: receivers started
// before their sender then hold the manifest before the first pass
// begins, instead of retrying and missing its start.
func (v *Service) GetManifest(ctx context.Context, req *pb.GetManifestRequest) (*pb.GetManifestResponse, error) {
	if err := manifest.ValidateChannelName(req.GetChannel()); err != nil {
		return nil, toStatus(err)
	}
	select {
	case <-v.s.Ready():
	case <-ctx.Done():
		// The caller's deadline, not "not ready": it asked to wait.
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	ch, err := v.s.lookup(req.GetChannel())
	if err != nil {
		return nil, toStatus(err)
	}
	if ch.tooLarge != nil {
		return nil, toStatus(ch.tooLarge)
	}
	resp := &pb.GetManifestResponse{Manifest: ch.proto}
	v.s.identify(resp)
	v.s.noteFetch(ch.id, ch.m.Version)
	return resp, nil
}

// Objects per message of a streamed manifest: the default, and the most a
// client may ask for (16,384 ordinary entries stay well inside a message).
const (
	defaultManifestBatch = 4096
	maxManifestBatch     = 16384
)

// StreamManifest streams a channel's manifest: the head (the manifest
// without its objects, and who serves it), then its objects in batches.
// It serves manifests of any size; the version streamed is the one
// current when the call began, whatever rescans happen meanwhile.
func (v *Service) StreamManifest(req *pb.StreamManifestRequest, stream pb.SenderService_StreamManifestServer) error {
	if err := manifest.ValidateChannelName(req.GetChannel()); err != nil {
		return toStatus(err)
	}
	batch := int(req.GetObjectsPerMessage())
	switch {
	case batch == 0:
		batch = defaultManifestBatch
	case batch > maxManifestBatch:
		return status.Errorf(codes.InvalidArgument, "objects_per_message %d: at most %d", batch, maxManifestBatch)
	}
	ctx := stream.Context()
	select {
	case <-v.s.Ready():
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
	ch, err := v.s.lookup(req.GetChannel())
	if err != nil {
		return toStatus(err)
	}
	// ch.proto is not changed once built: a rescan builds a new one.
	full := ch.proto
	// Every field but the objects (TestStreamManifest checks that the
	// assembled manifest equals GetManifest's).
	head := &pb.GetManifestResponse{Manifest: &pb.Manifest{
		Channel: full.GetChannel(), ChannelId: full.GetChannelId(), Version: full.GetVersion(),
		GeneratedAt: full.GetGeneratedAt(), Signature: full.GetSignature(),
	}}
	v.s.identify(head)
	objs := full.GetObjects()
	if err := stream.Send(&pb.StreamManifestResponse{Head: head, ObjectCount: uint32(len(objs)), Objects: objs[:min(batch, len(objs))]}); err != nil {
		return err
	}
	for i := min(batch, len(objs)); i < len(objs); i += batch {
		if err := stream.Send(&pb.StreamManifestResponse{Objects: objs[i:min(i+batch, len(objs))]}); err != nil {
			return err
		}
	}
	v.s.noteFetch(ch.id, ch.m.Version)
	return nil
}

// ListChannels lists the sender's channels.
func (v *Service) ListChannels(context.Context, *pb.ListChannelsRequest) (*pb.ListChannelsResponse, error) {
	resp := &pb.ListChannelsResponse{}
	for _, ch := range v.s.channelList() {
		resp.Channels = append(resp.Channels, &pb.ChannelSummary{
			Channel:         ch.name,
			ChannelId:       ch.id,
			ManifestVersion: ch.m.Version,
			ObjectCount:     uint32(len(ch.m.Objects)),
			TotalBytes:      ch.m.TotalBytes(),
		})
	}
	return resp, nil
}

// GetStatus returns a status snapshot.
func (v *Service) GetStatus(_ context.Context, req *pb.SenderServiceGetStatusRequest) (*pb.SenderServiceGetStatusResponse, error) {
	return &pb.SenderServiceGetStatusResponse{Status: v.s.Status(req.GetIncludeObjects())}, nil
}

// WatchStatus streams status snapshots until the client goes away.
func (v *Service) WatchStatus(req *pb.SenderServiceWatchStatusRequest, stream pb.SenderService_WatchStatusServer) error {
	every, err := rpc.WatchInterval(req.GetInterval())
	if err != nil {
		return err
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := stream.Send(&pb.SenderServiceWatchStatusResponse{Status: v.s.Status(req.GetIncludeObjects())}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-t.C:
		}
	}
}

func roleProto(r Role) pb.SenderRole {
	switch r {
	case Primary:
		return pb.SenderRole_SENDER_ROLE_PRIMARY
	case Backup:
		return pb.SenderRole_SENDER_ROLE_BACKUP
	}
	return pb.SenderRole_SENDER_ROLE_UNSPECIFIED
}

func actionProto(a scheduler.Action) pb.NackAction {
	switch a {
	case scheduler.Wait:
		return pb.NackAction_NACK_ACTION_WAIT
	case scheduler.Unicast:
		return pb.NackAction_NACK_ACTION_UNICAST
	case scheduler.NotFound:
		return pb.NackAction_NACK_ACTION_NOT_FOUND
	}
	return pb.NackAction_NACK_ACTION_UNSPECIFIED
}

func jobStateProto(s scheduler.JobState) pb.JobState {
	switch s {
	case scheduler.Idle:
		return pb.JobState_JOB_STATE_IDLE
	case scheduler.Pooled:
		return pb.JobState_JOB_STATE_POOLED
	case scheduler.InFlight:
		return pb.JobState_JOB_STATE_IN_FLIGHT
	}
	return pb.JobState_JOB_STATE_UNSPECIFIED
}

func timestamp(t time.Time) *timestamppb.Timestamp  { return timestamppb.New(t) }
func duration(d time.Duration) *durationpb.Duration { return durationpb.New(d) }
