package receiver

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/rpc"
)

// serveReceiver serves a receiver that is not running (no sockets)
// through the production server assembly on a bufconn.
func serveReceiver(t *testing.T) (*Receiver, pb.ReceiverServiceClient) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ID = "r1"
	cfg.DataDir = t.TempDir()
	cfg.Channels = []string{"news", "sports"}
	r, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	srv := rpc.NewServer(hclog.NewNullLogger())
	pb.RegisterReceiverServiceServer(srv.GRPC, NewService(r))
	lis := bufconn.Listen(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, lis, time.Second); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	cc, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); cancel(); <-done })
	return r, pb.NewReceiverServiceClient(cc)
}

func TestReceiverRPCs(t *testing.T) {
	r, c := serveReceiver(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.GetStatus(ctx, &pb.ReceiverServiceGetStatusRequest{IncludeObjects: true})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.GetStatus()
	if st.GetReceiverId() != "r1" || len(st.GetChannels()) != 2 || st.GetComplete() || st.GetChannels()[0].GetManifestVersion() != 0 {
		t.Errorf("status before any manifest = %v", st)
	}

	ws, err := c.WatchStatus(ctx, &pb.ReceiverServiceWatchStatusRequest{Interval: durationpb.New(100 * time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := ws.Recv(); err != nil {
			t.Fatalf("WatchStatus message %d: %v", i, err)
		}
	}
	for _, bad := range []*durationpb.Duration{durationpb.New(time.Millisecond), {Seconds: -1}, {Nanos: 2e9}} {
		s, err := c.WatchStatus(ctx, &pb.ReceiverServiceWatchStatusRequest{Interval: bad})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("WatchStatus interval %v: %v, want InvalidArgument", bad, err)
		}
	}

	r.manifestAlert("news", errors.New("manifest from sender rejected: test"))
	r.manifestAlert("news", errors.New("again, held back by the rate limit"))
	as, err := c.WatchAlerts(ctx, &pb.ReceiverServiceWatchAlertsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := as.Recv()
	if err != nil || m.GetAlert().GetKind() != pb.AlertKind_ALERT_KIND_MANIFEST_MISMATCH || m.GetAlert().GetChannel() != "news" {
		t.Fatalf("alert = %v, %v", m, err)
	}
	if n, _ := r.alerts.log.Snapshot(); n != 1 {
		t.Errorf("%d alerts raised, want 1 (the second within the rate limit)", n)
	}
}

func TestStuckAlert(t *testing.T) {
	r, _ := serveReceiver(t)
	now := time.Unix(5_000_000, 0)
	r.cfg.StuckAfter = time.Minute
	r.mu.Lock()
	r.checkStuck(now)
	r.checkStuck(now.Add(30 * time.Second))
	r.mu.Unlock()
	if n, _ := r.alerts.log.Snapshot(); n != 0 {
		t.Fatalf("alert before the threshold")
	}
	r.mu.Lock()
	r.checkStuck(now.Add(61 * time.Second))
	r.mu.Unlock()
	n, recent := r.alerts.log.Snapshot()
	if n != 2 || recent[0].GetKind() != pb.AlertKind_ALERT_KIND_RECEIVER_STUCK {
		t.Errorf("after a minute without a manifest: %d alerts %v, want one per channel", n, recent)
	}
}
