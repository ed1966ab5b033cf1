package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/nackcast/nackcast/pkg/client"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// Example is the core of a CDN manager: reach the cloud with the
// administrator's certificate named by NACKCAST_TLS_* (as nackctl does),
// publish a file, assign its channel to a receiver at runtime, follow the
// receiver until it holds it, and look at the fleet. The program under
// examples/manager does this over many receivers; make test runs it
// against real processes over mutual TLS.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := client.ConfigFromEnv(os.Getenv)

	sc, err := cfg.Dial("sender.example:7001")
	if err != nil {
		log.Fatal(err)
	}
	defer sc.Close()
	pub, err := client.PublishFile(ctx, pb.NewSenderServiceClient(sc), "news", "2026/12/today.mp4", "/srv/today.mp4")
	if err != nil {
		log.Fatal(err)
	}

	rc, err := cfg.Dial("edge-1.example:7003")
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	receiver := pb.NewReceiverServiceClient(rc)
	if _, err := receiver.Subscribe(ctx, &pb.SubscribeRequest{Channel: "news"}); err != nil {
		log.Fatal(err)
	}
	err = client.WatchChannel(ctx, receiver, "news", time.Second, func(ch *pb.ReceiverChannelStatus) bool {
		return !ch.GetComplete() || ch.GetManifestVersion() != pub.GetManifestVersion()
	})
	if err != nil {
		log.Fatal(err)
	}

	edges, err := client.ResolveReceivers(ctx, []string{"dns:nackcast-receivers.cdn.svc.cluster.local:7003"})
	if err != nil {
		log.Fatal(err)
	}
	fleet, err := client.Fleet(ctx, edges, client.FleetOptions{
		Dial:   func(addr string) (*grpc.ClientConn, error) { return cfg.Dial(addr) },
		Sender: "sender.example:7001",
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, ch := range fleet.GetChannels() {
		fmt.Printf("%s: %d of %d receivers complete, %d stuck\n", ch.GetChannel(), ch.GetComplete(), ch.GetReceivers(), ch.GetStuck())
	}
}
