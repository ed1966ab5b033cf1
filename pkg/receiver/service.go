package receiver

import (
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/repair"
	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/version"
)

// stamp is t as a Timestamp, or nil for the zero time.
func stamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// Status returns a snapshot of the receiver's state.
func (r *Receiver) Status(includeObjects bool) *pb.ReceiverStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &pb.ReceiverStatus{
		ReceiverId:   r.cfg.ID,
		ActiveSender: r.activeSender,
		Failovers:    r.failovers,
		Time:         timestamppb.New(r.now()),
		Complete:     true,
		DiskFull:     r.diskFull.Load(),
		Build:        version.Get().Proto(),
		Started:      timestamppb.New(r.started),
		Counters: &pb.ReceiverCounters{
			PacketsReceived:        r.stats.PacketsReceived.Load(),
			PacketsMalformed:       r.stats.PacketsMalformed.Load(),
			PacketsForeign:         r.stats.PacketsForeign.Load(),
			PacketsDuplicate:       r.stats.PacketsDuplicate.Load(),
			PacketsDroppedInjected: r.stats.PacketsInjected.Load(),
			MulticastBytes:         r.stats.MulticastBytes.Load(),
			UnicastBytes:           r.stats.UnicastBytes.Load(),
			NacksSent:              r.stats.NacksSent.Load(),
			RepliesWait:            r.stats.RepliesWait.Load(),
			RepliesUnicast:         r.stats.RepliesUnicast.Load(),
			RepliesNotFound:        r.stats.RepliesNotFound.Load(),
			RangesRequested:        r.stats.RangesRequested.Load(),
			Pulls:                  r.stats.Pulls.Load(),
			ObjectsCompleted:       r.stats.ObjectsCompleted.Load(),
			VerifyFailures:         r.stats.VerifyFailures.Load(),
			ObjectsLost:            r.stats.ObjectsLost.Load(),
			ManifestFetches:        r.stats.ManifestFetches.Load(),
			RepliesPrimaryActive:   r.stats.RepliesPrimaryActive.Load(),
			PacketsOverflow:        r.stats.PacketsOverflow.Load(),
			ParityReceived:         r.stats.ParityReceived.Load(),
			PacketsUnauthenticated: r.stats.PacketsUnauthenticated.Load(),
			PacketsPaused:          r.stats.PacketsPaused.Load(),
			ParityUnused:           r.stats.ParityUnused.Load(),
			ChunksRebuilt:          r.stats.ChunksRebuilt.Load(),
			FeedbackSent:           r.stats.FeedbackSent.Load(),
		},
	}
	st.Alerts, st.RecentAlerts = r.alerts.log.Snapshot()
	r.epochs.Each(func(epoch uint64, e repair.EpochStats) {
		st.Epochs = append(st.Epochs, &pb.EpochStats{
			Epoch:     epoch,
			Backup:    e.Backup,
			Packets:   e.Packets,
			FirstSeen: timestamppb.New(e.First),
			LastSeen:  timestamppb.New(e.Last),
		})
	})
	slices.SortFunc(st.Epochs, func(a, b *pb.EpochStats) int { return a.GetFirstSeen().AsTime().Compare(b.GetFirstSeen().AsTime()) })
	for _, name := range r.subs {
		ch := r.channels[name]
		cs := &pb.ReceiverChannelStatus{Channel: name, Problem: r.problemStatus(ch), ManifestSender: ch.from}
		cs.DistributionStarted = stamp(ch.distStart)
		cs.LastProgress = stamp(ch.lastProgress)
		cs.LastComplete = stamp(ch.lastDone)
		if ch.m == nil {
			st.Complete = false
			st.Channels = append(st.Channels, cs)
			continue
		}
		cs.ManifestVersion = ch.m.Version
		cs.HeldManifest = heldStatus(ch)
		cs.ObjectsTotal = uint32(len(ch.m.Objects))
		cs.BytesTotal = ch.m.TotalBytes()
		for _, obj := range ch.m.Objects {
			o := ch.objs[obj.ID]
			var have uint64
			var state pb.ObjectState
			switch {
			case o.state == repair.Complete:
				cs.ObjectsComplete++
				have, state = obj.Size, pb.ObjectState_OBJECT_STATE_COMPLETE
			case o.state == repair.Partial || o.held > 0:
				cs.ObjectsPartial++
				have, state = min(o.held, obj.Size), pb.ObjectState_OBJECT_STATE_PARTIAL
			default:
				cs.ObjectsMissing++
				state = pb.ObjectState_OBJECT_STATE_MISSING
			}
			cs.BytesHave += have
			if includeObjects {
				var percent float64
				switch {
				case state == pb.ObjectState_OBJECT_STATE_COMPLETE:
					percent = 100
				case obj.Size > 0:
					percent = 100 * float64(have) / float64(obj.Size)
				}
				cs.Objects = append(cs.Objects, &pb.ReceiverObjectStatus{
					ObjectId:  obj.ID,
					Path:      obj.Path,
					Size:      obj.Size,
					State:     state,
					BytesHave: have,
					Percent:   percent,
				})
			}
		}
		cs.Complete = cs.ObjectsComplete == cs.ObjectsTotal
		if cs.Complete && !ch.doneAt.IsZero() {
			cs.CompletionTime = durationpb.New(ch.doneAt.Sub(ch.distStart))
		}
		if !cs.Complete {
			st.Complete = false
		}
		st.Channels = append(st.Channels, cs)
	}
	return st
}

// Service implements nackcast.v1.ReceiverService over a Receiver.
type Service struct {
	pb.UnimplementedReceiverServiceServer
	r *Receiver
}

// NewService returns the gRPC service of r.
func NewService(r *Receiver) *Service { return &Service{r: r} }

// VerifyChannel scrubs a channel (Receiver.Scrub).
func (v *Service) VerifyChannel(ctx context.Context, req *pb.VerifyChannelRequest) (*pb.VerifyChannelResponse, error) {
	res, err := v.r.Scrub(ctx, req.GetChannel())
	switch {
	case errors.Is(err, ErrNoChannel):
		return nil, status.Errorf(codes.NotFound, "%v", err)
	case err != nil:
		return nil, status.FromContextError(err).Err()
	}
	return &pb.VerifyChannelResponse{
		ObjectsChecked: uint32(res.Checked),
		BytesChecked:   res.Bytes,
		Failed:         res.Failed,
		Elapsed:        durationpb.New(res.Elapsed),
	}, nil
}

// ConfirmManifest installs a held-back manifest (Receiver.ConfirmManifest).
func (v *Service) ConfirmManifest(_ context.Context, req *pb.ConfirmManifestRequest) (*pb.ConfirmManifestResponse, error) {
	n, err := v.r.ConfirmManifest(req.GetChannel(), req.GetManifestVersion())
	switch {
	case errors.Is(err, ErrNoChannel):
		return nil, status.Errorf(codes.NotFound, "%v", err)
	case errors.Is(err, ErrNotHeld):
		return nil, status.Errorf(codes.FailedPrecondition, "%v", err)
	case err != nil:
		return nil, status.Errorf(codes.Internal, "%v", err)
	}
	return &pb.ConfirmManifestResponse{ObjectsRemoved: uint32(n)}, nil
}

// Subscribe adds a channel at runtime (Receiver.Subscribe).
func (v *Service) Subscribe(_ context.Context, req *pb.SubscribeRequest) (*pb.SubscribeResponse, error) {
	subs, added, err := v.r.Subscribe(req.GetChannel())
	if err != nil {
		return nil, subscriptionStatus(err)
	}
	return &pb.SubscribeResponse{Channels: subs, Added: added}, nil
}

// Unsubscribe removes a channel at runtime (Receiver.Unsubscribe).
func (v *Service) Unsubscribe(_ context.Context, req *pb.UnsubscribeRequest) (*pb.UnsubscribeResponse, error) {
	subs, n, err := v.r.Unsubscribe(req.GetChannel(), req.GetRemoveContent())
	if err != nil {
		return nil, subscriptionStatus(err)
	}
	return &pb.UnsubscribeResponse{Channels: subs, ObjectsRemoved: uint32(n)}, nil
}

// subscriptionStatus maps the errors of Subscribe and Unsubscribe to gRPC
// codes.
func subscriptionStatus(err error) error {
	switch {
	case errors.Is(err, manifest.ErrInvalidName):
		return status.Errorf(codes.InvalidArgument, "%v", err)
	case errors.Is(err, ErrNoChannel):
		return status.Errorf(codes.NotFound, "%v", err)
	case errors.Is(err, ErrChannelID):
		return status.Errorf(codes.FailedPrecondition, "%v", err)
	case errors.Is(err, ErrNotRunning):
		return status.Errorf(codes.Unavailable, "%v", err)
	}
	return status.Errorf(codes.Internal, "%v", err)
}

// GetStatus returns a status snapshot.
func (v *Service) GetStatus(_ context.Context, req *pb.ReceiverServiceGetStatusRequest) (*pb.ReceiverServiceGetStatusResponse, error) {
	return &pb.ReceiverServiceGetStatusResponse{Status: v.r.Status(req.GetIncludeObjects())}, nil
}

// WatchStatus streams status snapshots until the client goes away.
func (v *Service) WatchStatus(req *pb.ReceiverServiceWatchStatusRequest, stream pb.ReceiverService_WatchStatusServer) error {
	every, err := rpc.WatchInterval(req.GetInterval())
	if err != nil {
		return err
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := stream.Send(&pb.ReceiverServiceWatchStatusResponse{Status: v.r.Status(req.GetIncludeObjects())}); err != nil {
			return err
		}
		select {
		case <-stream.Context().Done():
			return nil
		case <-t.C:
		}
	}
}

// WatchAlerts streams the recent alerts, then new ones as they are raised.
func (v *Service) WatchAlerts(_ *pb.ReceiverServiceWatchAlertsRequest, stream pb.ReceiverService_WatchAlertsServer) error {
	return v.r.alerts.log.Stream(stream.Context(), func(a *pb.Alert) error {
		return stream.Send(&pb.ReceiverServiceWatchAlertsResponse{Alert: a})
	})
}
