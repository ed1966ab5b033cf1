package client

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

func chanStatus(name string, version uint64, complete bool, started time.Time, problem *pb.ChannelProblem) *pb.ReceiverChannelStatus {
	return &pb.ReceiverChannelStatus{Channel: name, ManifestVersion: version, Complete: complete,
		DistributionStarted: timestamppb.New(started), Problem: problem, BytesTotal: 10, ManifestSender: "primary"}
}

func TestAssemble(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	stuck := &pb.ChannelProblem{Kind: pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_SENDER_UNREACHABLE, Message: "cannot reach the senders"}
	statuses := []*pb.ReceiverStatus{
		{ReceiverId: "a", ActiveSender: "p:7001", Channels: []*pb.ReceiverChannelStatus{chanStatus("news", 2, true, t0.Add(time.Minute), nil), chanStatus("vod", 7, false, t0, nil)}},
		{ReceiverId: "b", Channels: []*pb.ReceiverChannelStatus{chanStatus("news", 1, true, t0, nil)}},
		nil,
		{ReceiverId: "d", Channels: []*pb.ReceiverChannelStatus{chanStatus("news", 2, false, t0.Add(2*time.Minute), stuck)}},
	}
	errs := []error{nil, nil, status.Error(codes.Unavailable, "connection refused"), nil}
	addrs := []string{"a:1", "b:1", "c:1", "d:1"}

	tests := []struct {
		name                                     string
		current                                  map[string]uint64
		newest                                   uint64
		complete, behind, inProgress, stuckCount uint32
	}{
		// Without a sender, the newest news is the version of the
		// receiver whose distribution started last among the healthy
		// ones (a's, 2; d started later but is stuck).
		{"from the receivers", nil, 2, 1, 1, 0, 1},
		// The sender says version 3 is current: nobody complete at it.
		{"from the sender", map[string]uint64{"news": 3}, 3, 0, 2, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := assemble(t0, addrs, statuses, errs, tt.current)
			if v.GetUnreachable() != 1 || v.GetReceivers()[2].GetReachable() || v.GetReceivers()[2].GetError() != "unavailable: connection refused" {
				t.Errorf("unreachable receiver row %v, count %d", v.GetReceivers()[2], v.GetUnreachable())
			}
			if names := []string{v.GetChannels()[0].GetChannel(), v.GetChannels()[1].GetChannel()}; !slices.Equal(names, []string{"news", "vod"}) {
				t.Fatalf("channels %v, want news, vod", names)
			}
			news := v.GetChannels()[0]
			if news.GetNewestVersion() != tt.newest || news.GetReceivers() != 3 || news.GetComplete() != tt.complete ||
				news.GetBehind() != tt.behind || news.GetInProgress() != tt.inProgress || news.GetStuck() != tt.stuckCount {
				t.Errorf("news = %v", news)
			}
			if vs := news.GetVersions(); len(vs) != 2 || vs[0].GetManifestVersion() != 2 || vs[0].GetReceivers() != 2 || vs[0].GetComplete() != 1 {
				t.Errorf("news versions = %v, want 2 (2 receivers, 1 complete) first", vs)
			}
			if d := v.GetReceivers()[3].GetChannels()[0]; d.GetState() != pb.FleetState_FLEET_STATE_STUCK || d.GetProblem().GetMessage() != stuck.GetMessage() {
				t.Errorf("stuck row = %v", d)
			}
			if vod := v.GetChannels()[1]; vod.GetInProgress() != 1 || vod.GetReceivers() != 1 {
				t.Errorf("vod = %v", vod)
			}
		})
	}
}

func TestResolveReceivers(t *testing.T) {
	got, err := ResolveReceivers(context.Background(), []string{"10.0.0.1:7003", "dns:localhost:7003", "10.0.0.1:7003"})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != "10.0.0.1:7003" || !slices.Contains(got, "127.0.0.1:7003") || len(got) < 2 {
		t.Errorf("resolved %v", got)
	}
	for _, bad := range []string{"dns:localhost", "dns:no-such-host.invalid:1"} {
		if _, err := ResolveReceivers(context.Background(), []string{bad}); err == nil {
			t.Errorf("%q resolved", bad)
		}
	}
}

// TestAssembleIgnoresRestartedStaleReceiver: a receiver restarted with an
// old manifest from its disk, unable to reach a sender, does not make the
// receivers complete at the new version look behind (found by review).
func TestAssembleIgnoresRestartedStaleReceiver(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	stale := chanStatus("news", 1, true, t0.Add(time.Hour), &pb.ChannelProblem{Kind: pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_SENDER_UNREACHABLE})
	stale.ManifestSender = ""
	statuses := []*pb.ReceiverStatus{
		{ReceiverId: "a", Channels: []*pb.ReceiverChannelStatus{chanStatus("news", 2, true, t0, nil)}},
		{ReceiverId: "b", Channels: []*pb.ReceiverChannelStatus{stale}},
		{ReceiverId: "c", Channels: []*pb.ReceiverChannelStatus{chanStatus("news", 2, true, t0, nil)}},
	}
	v := assemble(t0, []string{"a", "b", "c"}, statuses, make([]error, 3), nil)
	if news := v.GetChannels()[0]; news.GetNewestVersion() != 2 || news.GetComplete() != 2 || news.GetStuck() != 1 || news.GetBehind() != 0 {
		t.Errorf("news = %v, want newest 2, 2 complete, 1 stuck", news)
	}
}
