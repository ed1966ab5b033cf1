package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// ErrManifestStream reports a streamed manifest that does not add up: no
// head first, a second head, more or fewer objects than announced, or
// more than the caller allows.
var ErrManifestStream = errors.New("malformed manifest stream")

// FetchOptions tunes FetchManifest.
type FetchOptions struct {
	// MaxObjects refuses a manifest of more objects as soon as its head
	// says so (0: no limit): a receiver's bound on what a sender can make
	// it hold in memory.
	MaxObjects int
	// HeadTimeout bounds the wait for the sender's first message; the
	// objects then take as long as they take, within ctx. 0: only ctx.
	HeadTimeout time.Duration
	// IdleTimeout bounds the wait for each later message, so that a
	// sender stuck mid-stream does not hold the caller for ever (0: 30 s).
	IdleTimeout time.Duration
	// CallOptions are passed on (grpc.WaitForReady, for one).
	CallOptions []grpc.CallOption
	// ObjectsPerMessage asks the sender to cut the stream so (0: its
	// default, 4096).
	ObjectsPerMessage int
}

// FetchManifest fetches a channel's manifest of any size through
// StreamManifest and assembles it into one GetManifestResponse, as
// GetManifest would return it. A sender older than StreamManifest is asked
// with GetManifest instead.
func FetchManifest(ctx context.Context, sc pb.SenderServiceClient, channel string, o FetchOptions) (*pb.GetManifestResponse, error) {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timer *time.Timer
	if o.HeadTimeout > 0 {
		timer = time.AfterFunc(o.HeadTimeout, cancel)
	}
	// inTime stops the head's timer and reports whether it had not fired.
	inTime := func() bool { return timer == nil || timer.Stop() }
	late := func(err error) error {
		return status.Errorf(codes.DeadlineExceeded, "channel %q: no answer within %v (%v)", channel, o.HeadTimeout, err)
	}
	stream, err := sc.StreamManifest(ctx, &pb.StreamManifestRequest{Channel: channel, ObjectsPerMessage: uint32(o.ObjectsPerMessage)}, o.CallOptions...)
	if err != nil {
		if !inTime() {
			return nil, late(err)
		}
		return nil, err
	}
	first, err := stream.Recv()
	if !inTime() {
		return nil, late(err)
	}
	if status.Code(err) == codes.Unimplemented {
		gctx := parent
		if o.HeadTimeout > 0 {
			var gcancel context.CancelFunc
			gctx, gcancel = context.WithTimeout(parent, o.HeadTimeout)
			defer gcancel()
		}
		return sc.GetManifest(gctx, &pb.GetManifestRequest{Channel: channel}, o.CallOptions...)
	}
	if err != nil {
		return nil, err
	}
	idle := o.IdleTimeout
	if idle <= 0 {
		idle = 30 * time.Second
	}
	// Each later message must come within idle: the timer cancels the
	// stream, and Recv then fails.
	watchdog := time.AfterFunc(idle, cancel)
	defer watchdog.Stop()
	recv := func() (*pb.StreamManifestResponse, error) {
		watchdog.Reset(idle)
		m, err := stream.Recv()
		if err != nil && ctx.Err() != nil && parent.Err() == nil {
			return nil, status.Errorf(codes.DeadlineExceeded, "channel %q: the manifest stream stalled for %v", channel, idle)
		}
		return m, err
	}
	return assembleManifest(channel, first, recv, o.MaxObjects)
}

// assembleManifest completes a streamed manifest from its first message and the
// next ones recv returns.
func assembleManifest(channel string, first *pb.StreamManifestResponse, recv func() (*pb.StreamManifestResponse, error), maxObjects int) (*pb.GetManifestResponse, error) {
	resp := first.GetHead()
	if resp.GetManifest() == nil {
		return nil, fmt.Errorf("channel %q: the first message has no head: %w", channel, ErrManifestStream)
	}
	want := int(first.GetObjectCount())
	if maxObjects > 0 && want > maxObjects {
		return nil, fmt.Errorf("channel %q: the manifest lists %d objects, more than the %d allowed: %w", channel, want, maxObjects, ErrManifestStream)
	}
	// What the head announces is not trusted for memory: the slice grows
	// with what arrives.
	objs := make([]*pb.ObjectEntry, 0, min(want, 1<<16))
	objs = append(objs, first.GetObjects()...)
	for len(objs) <= want {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if m.GetHead() != nil {
			return nil, fmt.Errorf("channel %q: a second head: %w", channel, ErrManifestStream)
		}
		if len(m.GetObjects()) == 0 {
			// Every message after the head carries objects: a stream
			// of empty ones would never end.
			return nil, fmt.Errorf("channel %q: a message without objects: %w", channel, ErrManifestStream)
		}
		objs = append(objs, m.GetObjects()...)
	}
	if len(objs) != want {
		return nil, fmt.Errorf("channel %q: %d objects streamed, %d announced: %w", channel, len(objs), want, ErrManifestStream)
	}
	resp.Manifest.Objects = objs
	return resp, nil
}
