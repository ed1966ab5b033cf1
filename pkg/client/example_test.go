package client_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nackcast/nackcast/pkg/client"
	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/sender"
)

// Example is a CDN manager's view of a cloud: list the sender's channels,
// publish a file, and follow a receiver until it holds the channel. (The
// first lines start a small cloud on lo for the example to talk to.)
func Example() {
	senderAddr, receiverAddr, stop := exampleCloud()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	sc, err := client.Dial(senderAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer sc.Close()
	senders := pb.NewSenderServiceClient(sc)
	list, err := senders.ListChannels(ctx, &pb.ListChannelsRequest{})
	if err != nil {
		log.Fatal(err)
	}
	for _, ch := range list.GetChannels() {
		fmt.Printf("channel %s: %d objects, %d bytes\n", ch.GetChannel(), ch.GetObjectCount(), ch.GetTotalBytes())
	}

	file := filepath.Join(os.TempDir(), "nackcast-example-notes.txt")
	if err := os.WriteFile(file, []byte("pre-positioned by nackcast\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	defer os.Remove(file)
	pub, err := client.PublishFile(ctx, senders, "news", "notes/today.txt", file)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("published %s (%d bytes)\n", pub.GetObject().GetPath(), pub.GetObject().GetSize())

	rc, err := client.Dial(receiverAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	err = client.WatchChannel(ctx, pb.NewReceiverServiceClient(rc), "news", 100*time.Millisecond, func(ch *pb.ReceiverChannelStatus) bool {
		if ch.GetComplete() && ch.GetManifestVersion() == pub.GetManifestVersion() {
			fmt.Printf("receiver holds news: %d of %d objects\n", ch.GetObjectsComplete(), ch.GetObjectsTotal())
			return false
		}
		return true
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// channel news: 2 objects, 12 bytes
	// published notes/today.txt (27 bytes)
	// receiver holds news: 3 of 3 objects
}

// exampleCloud starts a sender with a channel "news" of two small files and
// one receiver of it, in this process, on lo.
func exampleCloud() (senderAddr, receiverAddr string, stop func()) {
	dir, err := os.MkdirTemp("", "nackcast-example-")
	if err != nil {
		log.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "origin", "news"), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "origin", "news", "a.txt"), []byte("hello"), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "origin", "news", "b.txt"), []byte("world!!"), 0o644); err != nil {
		log.Fatal(err)
	}
	port, err := cloud.FreeUDPPort()
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	serve := func(engine interface{ Run(context.Context) error }, register func(*rpc.Server)) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		srv := rpc.NewServer(hclog.NewNullLogger())
		register(srv)
		srv.SetServing(true)
		// Both return nil once ctx is cancelled: any error is unexpected.
		go func() {
			if err := srv.Serve(ctx, lis, time.Second); err != nil {
				log.Print(err)
			}
		}()
		go func() {
			if err := engine.Run(ctx); err != nil {
				log.Print(err)
			}
			done <- struct{}{}
		}()
		return lis.Addr().String()
	}
	scfg := sender.DefaultConfig()
	scfg.OriginDir = filepath.Join(dir, "origin")
	scfg.Multicast.Port = port
	scfg.Scheduler.FirstPassDelay = 100 * time.Millisecond
	s, err := sender.New(scfg, hclog.NewNullLogger())
	if err != nil {
		log.Fatal(err)
	}
	senderAddr = serve(s, func(srv *rpc.Server) { pb.RegisterSenderServiceServer(srv.GRPC, sender.NewService(s)) })
	<-s.Ready()
	rcfg := receiver.DefaultConfig()
	rcfg.DataDir = filepath.Join(dir, "edge")
	rcfg.Channels = []string{"news"}
	rcfg.Primary = senderAddr
	rcfg.Multicast.Port = port
	r, err := receiver.New(rcfg, hclog.NewNullLogger())
	if err != nil {
		log.Fatal(err)
	}
	receiverAddr = serve(r, func(srv *rpc.Server) { pb.RegisterReceiverServiceServer(srv.GRPC, receiver.NewService(r)) })
	return senderAddr, receiverAddr, func() {
		cancel()
		<-done
		<-done
		os.RemoveAll(dir)
	}
}
