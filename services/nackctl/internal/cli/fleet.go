package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"google.golang.org/grpc"

	"github.com/nackcast/nackcast/pkg/client"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// cmdFleet shows many receivers at once, per channel and per receiver.
func cmdFleet(ctx context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	sender := fs.String("sender", "", "also ask this sender for each channel's current manifest version (else: the version whose distribution started last)")
	file := fs.String("f", "", "read receiver addresses from this file, one per line (# comments)")
	parallel := fs.Int("parallel", 32, "receivers asked at once")
	specs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *file != "" {
		more, err := readAddrs(*file)
		if err != nil {
			return err
		}
		specs = append(specs, more...)
	}
	if len(specs) == 0 {
		return usagef("want receiver addresses: ADDR..., dns:HOST:PORT (every address of a headless Service) or -f FILE")
	}
	addrs, err := client.ResolveReceivers(ctx, specs)
	if err != nil {
		return err
	}
	v, err := client.Fleet(ctx, addrs, client.FleetOptions{
		Dial:     func(addr string) (*grpc.ClientConn, error) { return c.dial(addr) },
		Sender:   *sender,
		Timeout:  c.timeout,
		Parallel: *parallel,
	})
	if err != nil {
		return err
	}
	if c.json() {
		return c.printJSON(v)
	}
	printFleet(c, v)
	return nil
}

func printFleet(c *ctx, v *pb.FleetView) {
	w := c.env.Stdout
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tRECEIVERS\tCOMPLETE\tBEHIND\tIN PROGRESS\tSTUCK\tCURRENT\tVERSIONS HELD")
	for _, ch := range v.GetChannels() {
		var held []string
		for _, fv := range ch.GetVersions() {
			held = append(held, fmt.Sprintf("%016x: %d (%d complete)", fv.GetManifestVersion(), fv.GetReceivers(), fv.GetComplete()))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%016x\t%s\n", ch.GetChannel(), ch.GetReceivers(), ch.GetComplete(), ch.GetBehind(),
			ch.GetInProgress(), ch.GetStuck(), ch.GetNewestVersion(), strings.Join(held, ", "))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d receivers answered, %d unreachable\n\n", len(v.GetReceivers())-int(v.GetUnreachable()), v.GetUnreachable())
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVER\tADDRESS\tCHANNEL\tSTATE\tMANIFEST\tPROGRESS\tFOLLOWS\tPROBLEM")
	for _, r := range v.GetReceivers() {
		if !r.GetReachable() {
			fmt.Fprintf(tw, "-\t%s\t-\tUNREACHABLE\t-\t-\t-\t%s\n", r.GetAddress(), r.GetError())
			continue
		}
		if len(r.GetChannels()) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\tno channels\t-\t-\t-\t-\n", r.GetReceiverId(), r.GetAddress())
		}
		for _, ch := range r.GetChannels() {
			follows := r.GetActiveSender()
			if follows == "" {
				follows = orNone(ch.GetManifestSender())
			}
			problem := "-"
			if p := ch.GetProblem(); p != nil {
				problem = problemLine(p)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%016x\t%5.1f%%\t%s\t%s\n", r.GetReceiverId(), r.GetAddress(), ch.GetChannel(),
				strings.ReplaceAll(lower(ch.GetState(), "FLEET_STATE_"), "_", " "), ch.GetManifestVersion(),
				percent(ch.GetBytesHave(), ch.GetBytesTotal()), follows, problem)
		}
	}
	tw.Flush()
}

// readAddrs reads addresses, one per line, skipping blank lines and #
// comments.
func readAddrs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}
