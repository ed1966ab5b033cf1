// Package client is what a CDN manager needs besides the generated gRPC
// clients of package nackcastv1 (pkg/gen/nackcast/v1): dialing a service
// in plaintext or mutual TLS (Config, from the same NACKCAST_TLS_*
// variables as nackctl), publishing a file, following a receiver's
// progress on a channel, and the fleet view over many receivers (Fleet).
// Receivers' channels change at runtime with the generated client's
// Subscribe and Unsubscribe. examples/manager is a small manager program.
//
//	cfg := client.ConfigFromEnv(os.Getenv)
//	cc, err := cfg.Dial("sender.example:7001")
//	sc := nackcastv1.NewSenderServiceClient(cc)
//	resp, err := client.PublishFile(ctx, sc, "news", "2026/11/video.mp4", "/srv/video.mp4")
package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/rpc"
)

// Dial returns a connection to a nackcast service at addr (host:port). It
// is lazy: an unreachable address shows as an Unavailable error on the
// first call.
func Dial(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return rpc.Dial(addr, opts...)
}

// PublishOption changes the header of an upload.
type PublishOption func(*pb.PublishHeader)

// CreateChannel lets an upload create its channel when the sender does not
// have it; without it, publishing into an unknown channel fails with
// NOT_FOUND, so that a misspelt channel name is an error, not a new
// channel.
func CreateChannel() PublishOption { return func(h *pb.PublishHeader) { h.CreateChannel = true } }

// PublishFile uploads the file at local into channel as path: it hashes the
// file, then streams it with its size and SHA-256, which the sender checks
// before it renames the object into its origin.
func PublishFile(ctx context.Context, sc pb.SenderServiceClient, channel, path, local string, opts ...PublishOption) (*pb.PublishObjectResponse, error) {
	f, err := os.Open(local)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", local)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	hdr := &pb.PublishHeader{Channel: channel, Path: path, Size: uint64(st.Size()), Sha256: h.Sum(nil)}
	for _, o := range opts {
		o(hdr)
	}
	return Publish(ctx, sc, hdr, f)
}

// Publish streams content described by header to the sender.
func Publish(ctx context.Context, sc pb.SenderServiceClient, header *pb.PublishHeader, content io.Reader) (*pb.PublishObjectResponse, error) {
	stream, err := sc.PublishObject(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&pb.PublishObjectRequest{Part: &pb.PublishObjectRequest_Header{Header: header}}); err != nil {
		_, err = stream.CloseAndRecv()
		return nil, err
	}
	buf := make([]byte, 512<<10)
	for {
		n, rerr := content.Read(buf)
		if n > 0 {
			if err := stream.Send(&pb.PublishObjectRequest{Part: &pb.PublishObjectRequest_Data{Data: buf[:n]}}); err != nil {
				break // the sender stopped the upload; CloseAndRecv says why
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	return stream.CloseAndRecv()
}

// WatchChannel follows a receiver's progress on channel, calling fn with
// each snapshot of it (every interval) until fn returns false, the stream
// ends or ctx is done.
func WatchChannel(ctx context.Context, rc pb.ReceiverServiceClient, channel string, interval time.Duration, fn func(*pb.ReceiverChannelStatus) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := rc.WatchStatus(ctx, &pb.ReceiverServiceWatchStatusRequest{Interval: durationpb.New(interval)})
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			return err
		}
		for _, ch := range m.GetStatus().GetChannels() {
			if ch.GetChannel() == channel && !fn(ch) {
				return nil
			}
		}
	}
}
