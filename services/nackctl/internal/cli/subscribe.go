package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// cmdSubscribe subscribes each receiver to a channel at runtime.
func cmdSubscribe(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("subscribe", flag.ContinueOnError)
	channel := fs.String("channel", "", "channel to subscribe to (required)")
	addrs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(addrs) == 0 || *channel == "" {
		return usagef("want -channel and at least one receiver ADDR")
	}
	return c.eachReceiver(addrs, func(ctx context.Context, addr string, rc pb.ReceiverServiceClient) error {
		resp, err := rc.Subscribe(ctx, &pb.SubscribeRequest{Channel: *channel})
		if err != nil {
			return explain(addr, receiverService, err)
		}
		if c.json() {
			return c.printJSON(resp)
		}
		what := "subscribed to"
		if !resp.GetAdded() {
			what = "already subscribed to"
		}
		fmt.Fprintf(c.env.Stdout, "%s: %s %s; channels %s\n", addr, what, *channel, strings.Join(resp.GetChannels(), ","))
		return nil
	})
}

// cmdUnsubscribe unsubscribes each receiver from a channel at runtime.
func cmdUnsubscribe(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("unsubscribe", flag.ContinueOnError)
	channel := fs.String("channel", "", "channel to unsubscribe from (required)")
	remove := fs.Bool("remove", false, "also delete the channel's files and manifest from the receivers' disks (default: keep them)")
	addrs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(addrs) == 0 || *channel == "" {
		return usagef("want -channel and at least one receiver ADDR")
	}
	return c.eachReceiver(addrs, func(ctx context.Context, addr string, rc pb.ReceiverServiceClient) error {
		resp, err := rc.Unsubscribe(ctx, &pb.UnsubscribeRequest{Channel: *channel, RemoveContent: *remove})
		if err != nil {
			return explain(addr, receiverService, err)
		}
		if c.json() {
			return c.printJSON(resp)
		}
		kept := "content kept"
		if *remove {
			kept = fmt.Sprintf("%d objects deleted", resp.GetObjectsRemoved())
		}
		fmt.Fprintf(c.env.Stdout, "%s: unsubscribed from %s (%s); channels %s\n", addr, *channel, kept, orNone(strings.Join(resp.GetChannels(), ",")))
		return nil
	})
}

// eachReceiver calls fn for each receiver address in turn, with a
// connection and the call deadline, and stops at the first error.
func (c *ctx) eachReceiver(addrs []string, fn func(ctx context.Context, addr string, rc pb.ReceiverServiceClient) error) error {
	for _, addr := range addrs {
		cc, err := c.dial(addr)
		if err != nil {
			return err
		}
		cctx, cancel := c.call()
		err = fn(cctx, addr, pb.NewReceiverServiceClient(cc))
		cancel()
		cc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
