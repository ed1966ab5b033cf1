// Command manager is a small CDN manager built on package client: it
// assigns a channel to receivers at runtime, waits until each holds the
// channel's current manifest, takes the channel away from some of them
// (deleting it from their disks), and prints the fleet view.
//
//	export NACKCAST_TLS_CA=ca.pem NACKCAST_TLS_CERT=admin.pem NACKCAST_TLS_KEY=admin.key
//	manager -sender 10.0.0.1:7001 -channel news \
//	    -receivers 10.0.1.1:7003,10.0.1.2:7003 -drop 10.0.1.2:7003
//
// It speaks mutual TLS when the NACKCAST_TLS_* variables name a client
// certificate (role admin: subscriptions are an administrator's call), as
// nackctl does, and plaintext otherwise. make test runs it against real
// processes (pkg/e2e TestManagerProgram).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/nackcast/nackcast/pkg/client"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

func main() {
	sender := flag.String("sender", "127.0.0.1:7001", "the primary sender")
	channel := flag.String("channel", "", "channel to assign (required)")
	receivers := flag.String("receivers", "", "comma-separated receiver addresses, or dns:HOST:PORT (required)")
	drop := flag.String("drop", "", "comma-separated receivers to take the channel from once all hold it")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()
	if *channel == "" || *receivers == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := run(ctx, client.ConfigFromEnv(os.Getenv), *sender, *channel, strings.Split(*receivers, ","), split(*drop)); err != nil {
		log.Fatal(err)
	}
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func run(ctx context.Context, cfg client.Config, senderAddr, channel string, specs, drop []string) error {
	addrs, err := client.ResolveReceivers(ctx, specs)
	if err != nil {
		return err
	}
	// The channel's current manifest, as the sender has it.
	sc, err := cfg.Dial(senderAddr)
	if err != nil {
		return err
	}
	defer sc.Close()
	list, err := pb.NewSenderServiceClient(sc).ListChannels(ctx, &pb.ListChannelsRequest{})
	if err != nil {
		return fmt.Errorf("sender %s: %w", senderAddr, err)
	}
	var version uint64
	for _, ch := range list.GetChannels() {
		if ch.GetChannel() == channel {
			version = ch.GetManifestVersion()
		}
	}
	if version == 0 {
		return fmt.Errorf("sender %s does not distribute channel %q", senderAddr, channel)
	}

	conns := map[string]*grpc.ClientConn{}
	for _, addr := range addrs {
		cc, err := cfg.Dial(addr)
		if err != nil {
			return err
		}
		defer cc.Close()
		conns[addr] = cc
		resp, err := pb.NewReceiverServiceClient(cc).Subscribe(ctx, &pb.SubscribeRequest{Channel: channel})
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", addr, err)
		}
		fmt.Printf("%s: subscribed to %s (channels %s)\n", addr, channel, strings.Join(resp.GetChannels(), ","))
	}
	for _, addr := range addrs {
		start := time.Now()
		err := client.WatchChannel(ctx, pb.NewReceiverServiceClient(conns[addr]), channel, 200*time.Millisecond, func(ch *pb.ReceiverChannelStatus) bool {
			return !ch.GetComplete() || ch.GetManifestVersion() != version
		})
		if err != nil {
			return fmt.Errorf("watch %s: %w", addr, err)
		}
		fmt.Printf("%s: holds %s at manifest %016x (waited %v)\n", addr, channel, version, time.Since(start).Round(time.Millisecond))
	}
	for _, addr := range drop {
		cc := conns[addr]
		if cc == nil {
			return fmt.Errorf("-drop %s: not one of the receivers", addr)
		}
		resp, err := pb.NewReceiverServiceClient(cc).Unsubscribe(ctx, &pb.UnsubscribeRequest{Channel: channel, RemoveContent: true})
		if err != nil {
			return fmt.Errorf("unsubscribe %s: %w", addr, err)
		}
		fmt.Printf("%s: unsubscribed from %s, %d objects deleted\n", addr, channel, resp.GetObjectsRemoved())
	}

	v, err := client.Fleet(ctx, addrs, client.FleetOptions{Dial: func(a string) (*grpc.ClientConn, error) { return cfg.Dial(a) }, Sender: senderAddr})
	if err != nil {
		return err
	}
	for _, ch := range v.GetChannels() {
		fmt.Printf("fleet: channel %s: %d receivers, %d complete, %d behind, %d in progress, %d stuck\n",
			ch.GetChannel(), ch.GetReceivers(), ch.GetComplete(), ch.GetBehind(), ch.GetInProgress(), ch.GetStuck())
	}
	for _, r := range v.GetReceivers() {
		if !r.GetReachable() {
			fmt.Printf("fleet: %s unreachable: %s\n", r.GetAddress(), r.GetError())
			continue
		}
		var chs []string
		for _, ch := range r.GetChannels() {
			chs = append(chs, fmt.Sprintf("%s=%s", ch.GetChannel(), strings.ToLower(strings.TrimPrefix(ch.GetState().String(), "FLEET_STATE_"))))
		}
		fmt.Printf("fleet: %s (%s): %s\n", r.GetReceiverId(), r.GetAddress(), strings.Join(chs, " "))
	}
	return nil
}
