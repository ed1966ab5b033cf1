package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nackcast/nackcast/pkg/client"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/version"
)

const (
	senderService   = "nackcast.v1.SenderService"
	receiverService = "nackcast.v1.ReceiverService"
)

// cmdStatus shows each address's state, whichever service it runs.
func cmdStatus(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	objects := fs.Bool("objects", false, "list every object")
	addrs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		addrs = []string{c.addr}
	}
	for i, addr := range addrs {
		if i > 0 && !c.json() {
			fmt.Fprintln(c.env.Stdout)
		}
		if err := c.status(addr, *objects); err != nil {
			return err
		}
	}
	return nil
}

func (c *ctx) status(addr string, objects bool) error {
	cc, err := c.dial(addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	cctx, cancel := c.call()
	defer cancel()
	rs, err := pb.NewReceiverServiceClient(cc).GetStatus(cctx, &pb.ReceiverServiceGetStatusRequest{IncludeObjects: objects})
	if err == nil {
		if c.json() {
			return c.printJSON(rs.GetStatus())
		}
		printReceiver(c.env.Stdout, addr, rs.GetStatus(), objects)
		return nil
	}
	if status.Code(err) != codes.Unimplemented {
		return explain(addr, receiverService, err)
	}
	ss, err := pb.NewSenderServiceClient(cc).GetStatus(cctx, &pb.SenderServiceGetStatusRequest{IncludeObjects: objects})
	if err != nil {
		if status.Code(err) == codes.Unimplemented {
			return fmt.Errorf("%s serves neither %s nor %s (is it a nackcast service?)", addr, senderService, receiverService)
		}
		return explain(addr, senderService, err)
	}
	if c.json() {
		return c.printJSON(ss.GetStatus())
	}
	printSender(c.env.Stdout, addr, ss.GetStatus(), objects)
	return nil
}

func lower(s fmt.Stringer, prefix string) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), prefix))
}

func printSender(w io.Writer, addr string, st *pb.SenderStatus, objects bool) {
	k := st.GetCounters()
	fmt.Fprintf(w, "%s %s at %s: %s since %s (epoch %d)\n", lower(st.GetRole(), "SENDER_ROLE_"), st.GetSenderId(), addr,
		lower(st.GetState(), "SENDER_STATE_"), st.GetStateSince().AsTime().Local().Format("2006-01-02 15:04:05"), st.GetEpoch())
	fmt.Fprintf(w, "  NACKs: %d answered (wait %d, unicast %d, not found %d), %.1f/s, interval %v\n",
		k.GetNacks(), k.GetRepliesWait(), k.GetRepliesUnicast(), k.GetRepliesNotFound(), st.GetNackRate(), st.GetNackInterval().AsDuration())
	fmt.Fprintf(w, "  jobs: %d in flight, %d pooled; passes %d (%d repair)\n", st.GetJobsInFlight(), st.GetJobsPooled(), k.GetPasses(), k.GetRepairPasses())
	fmt.Fprintf(w, "  sent: %s in %d packets (content %s); pulls %d (%s)\n", human(k.GetBytesSent()), k.GetPacketsSent(), human(k.GetDataBytesSent()), k.GetPulls(), human(k.GetPullBytes()))
	fmt.Fprintf(w, "  version %s; up since %s\n", buildString(st.GetBuild()), clock(st.GetStarted()))
	if st.GetPrimary() != "" {
		fmt.Fprintf(w, "  primary %s: %s; takeovers %d\n", st.GetPrimary(), primaryView(st), st.GetTakeovers())
	}
	fmt.Fprintf(w, "  alerts: %d\n", st.GetAlerts())
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CHANNEL\tOBJECTS\tBYTES\tMANIFEST")
	for _, ch := range st.GetChannels() {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%016x\n", ch.GetChannel(), ch.GetObjectCount(), human(ch.GetTotalBytes()), ch.GetManifestVersion())
	}
	tw.Flush()
	if objects {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  CHANNEL\tPATH\tSIZE\tPASSES\tSTATE")
		for _, ch := range st.GetChannels() {
			for _, o := range ch.GetObjects() {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", ch.GetChannel(), o.GetPath(), human(o.GetSize()), o.GetPasses(), lower(o.GetState(), "JOB_STATE_"))
			}
		}
		tw.Flush()
	}
}

// primaryView is a backup's view of its primary, in words.
func primaryView(st *pb.SenderStatus) string {
	if st.GetPrimaryCheckedAt() == nil {
		return "not checked yet"
	}
	checked := clock(st.GetPrimaryCheckedAt())
	if st.GetPrimaryAlive() {
		if st.GetPrimarySeenAt() != nil {
			return fmt.Sprintf("alive, %s, epoch %d (checked %s)", lower(st.GetPrimaryState(), "SENDER_STATE_"), st.GetPrimaryEpoch(), checked)
		}
		return fmt.Sprintf("alive (checked %s)", checked)
	}
	last := "never"
	if st.GetPrimarySeenAt() != nil {
		last = clock(st.GetPrimarySeenAt())
	}
	return fmt.Sprintf("DOWN (checked %s, last answered %s)", checked, last)
}

// clock formats a time of today as 15:04:05, an older one with its date,
// and none as "-".
func clock(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	t := ts.AsTime().Local()
	if t.Format(time.DateOnly) != time.Now().Format(time.DateOnly) {
		return t.Format(time.DateTime)
	}
	return t.Format(time.TimeOnly)
}

// buildString is a service's build in one line.
func buildString(b *pb.BuildInfo) string {
	if b == nil {
		return "unknown (a service older than this nackctl)"
	}
	return version.Info{Version: b.GetVersion(), Revision: b.GetRevision(), Modified: b.GetModified(), GoVersion: b.GetGoVersion()}.String()
}

// problemLine is a channel's problem in words, or "".
func problemLine(p *pb.ChannelProblem) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%s since %s: %s", strings.ReplaceAll(lower(p.GetKind(), "CHANNEL_PROBLEM_KIND_"), "_", " "), clock(p.GetSince()), p.GetMessage())
}

func printReceiver(w io.Writer, addr string, st *pb.ReceiverStatus, objects bool) {
	k := st.GetCounters()
	state := "incomplete"
	if st.GetComplete() {
		state = "complete"
	}
	active := st.GetActiveSender()
	if active == "" {
		active = "none yet"
	}
	fmt.Fprintf(w, "receiver %s at %s: %s; active sender %s; failovers %d; alerts %d\n", st.GetReceiverId(), addr, state, active, st.GetFailovers(), st.GetAlerts())
	fmt.Fprintf(w, "  version %s; up since %s\n", buildString(st.GetBuild()), clock(st.GetStarted()))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CHANNEL\tPROGRESS\tCOMPLETE\tPARTIAL\tMISSING\tBYTES\tMANIFEST\tTOOK")
	for _, ch := range st.GetChannels() {
		took := "-"
		if ch.GetCompletionTime() != nil {
			took = ch.GetCompletionTime().AsDuration().Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "  %s\t%5.1f%%\t%d\t%d\t%d\t%s / %s\t%016x\t%s\n", ch.GetChannel(), percent(ch.GetBytesHave(), ch.GetBytesTotal()),
			ch.GetObjectsComplete(), ch.GetObjectsPartial(), ch.GetObjectsMissing(), human(ch.GetBytesHave()), human(ch.GetBytesTotal()), ch.GetManifestVersion(), took)
	}
	tw.Flush()
	for _, ch := range st.GetChannels() {
		if p := problemLine(ch.GetProblem()); p != "" {
			fmt.Fprintf(w, "  STUCK on %s: %s\n", ch.GetChannel(), p)
		}
		if !ch.GetComplete() && ch.GetDistributionStarted() != nil {
			fmt.Fprintf(w, "  %s: distribution began %s; last progress %s; last complete %s\n", ch.GetChannel(),
				clock(ch.GetDistributionStarted()), clock(ch.GetLastProgress()), clock(ch.GetLastComplete()))
		}
		if h := ch.GetHeldManifest(); h != nil {
			fmt.Fprintf(w, "  HELD BACK on %s: manifest %016x from %s would remove %d objects (%s); install it with: nackctl confirm-manifest -channel %s -version %016x %s\n",
				ch.GetChannel(), h.GetManifestVersion(), h.GetSenderId(), h.GetObjectsRemoved(), human(h.GetBytesRemoved()), ch.GetChannel(), h.GetManifestVersion(), addr)
		}
	}
	fmt.Fprintf(w, "  received: multicast %s, unicast %s; packets %d (malformed %d, foreign %d, duplicate %d, dropped by test loss %d)\n",
		human(k.GetMulticastBytes()), human(k.GetUnicastBytes()), k.GetPacketsReceived(), k.GetPacketsMalformed(), k.GetPacketsForeign(), k.GetPacketsDuplicate(), k.GetPacketsDroppedInjected())
	fmt.Fprintf(w, "  NACKs: %d sent, %d ranges asked; replies wait %d, unicast %d, not found %d, primary active %d; pulls %d\n",
		k.GetNacksSent(), k.GetRangesRequested(), k.GetRepliesWait(), k.GetRepliesUnicast(), k.GetRepliesNotFound(), k.GetRepliesPrimaryActive(), k.GetPulls())
	for _, e := range st.GetEpochs() {
		role := "primary"
		if e.GetBackup() {
			role = "backup"
		}
		fmt.Fprintf(w, "  epoch %d (%s): %d packets, %s to %s\n", e.GetEpoch(), role, e.GetPackets(),
			e.GetFirstSeen().AsTime().Local().Format("15:04:05.000"), e.GetLastSeen().AsTime().Local().Format("15:04:05.000"))
	}
	if objects {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  CHANNEL\tPATH\tSIZE\tSTATE\tHELD")
		for _, ch := range st.GetChannels() {
			for _, o := range ch.GetObjects() {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%5.1f%%\n", ch.GetChannel(), o.GetPath(), human(o.GetSize()), lower(o.GetState(), "OBJECT_STATE_"), o.GetPercent())
			}
		}
		tw.Flush()
	}
}

func percent(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func cmdChannels(_ context.Context, c *ctx, args []string) error {
	args, err := parse(flag.NewFlagSet("channels", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	cc, err := c.dial(c.addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	cctx, cancel := c.call()
	defer cancel()
	resp, err := pb.NewSenderServiceClient(cc).ListChannels(cctx, &pb.ListChannelsRequest{})
	if err != nil {
		return explain(c.addr, senderService, err)
	}
	if c.json() {
		return c.printJSON(resp)
	}
	tw := tabwriter.NewWriter(c.env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tOBJECTS\tBYTES\tMANIFEST")
	for _, ch := range resp.GetChannels() {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%016x\n", ch.GetChannel(), ch.GetObjectCount(), human(ch.GetTotalBytes()), ch.GetManifestVersion())
	}
	return tw.Flush()
}

func cmdManifest(_ context.Context, c *ctx, args []string) error {
	args, err := parse(flag.NewFlagSet("manifest", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usagef("want one channel name")
	}
	cc, err := c.dial(c.addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	cctx, cancel := c.call()
	defer cancel()
	resp, err := client.FetchManifest(cctx, pb.NewSenderServiceClient(cc), args[0], client.FetchOptions{})
	if err != nil {
		return explain(c.addr, senderService, err)
	}
	m := resp.GetManifest()
	if c.json() {
		return c.printJSON(m)
	}
	var total uint64
	for _, o := range m.GetObjects() {
		total += o.GetSize()
	}
	fmt.Fprintf(c.env.Stdout, "channel %s: manifest %016x, %d objects, %s, built %s\n", m.GetChannel(), m.GetVersion(), len(m.GetObjects()), human(total),
		m.GetGeneratedAt().AsTime().Local().Format("2006-01-02 15:04:05"))
	tw := tabwriter.NewWriter(c.env.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PATH\tSIZE\tCHUNKS\tSHA-256")
	for _, o := range m.GetObjects() {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%x\n", o.GetPath(), o.GetSize(), o.GetChunkCount(), o.GetSha256())
	}
	return tw.Flush()
}

func cmdPublish(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	channel := fs.String("channel", "", "channel to publish into (required)")
	path := fs.String("path", "", "path of the object in the channel (default: the file's name)")
	create := fs.Bool("create", false, "create the channel if the sender does not have it (without it, an unknown channel is an error)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *channel == "" {
		return usagef("want one FILE and -channel")
	}
	file := pos[0]
	if *path == "" {
		*path = filepath.Base(file)
	}
	cc, err := c.dial(c.addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	// Uploads take as long as they take: no deadline on the call.
	var opts []client.PublishOption
	if *create {
		opts = append(opts, client.CreateChannel())
	}
	resp, err := client.PublishFile(context.Background(), pb.NewSenderServiceClient(cc), *channel, *path, file, opts...)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return explain(c.addr, senderService, err)
		}
		return err
	}
	if c.json() {
		return c.printJSON(resp)
	}
	fmt.Fprintf(c.env.Stdout, "published %s to %s/%s (%s, sha256 %x); manifest %016x\n", file, *channel, resp.GetObject().GetPath(),
		human(resp.GetObject().GetSize()), resp.GetObject().GetSha256()[:8], resp.GetManifestVersion())
	return nil
}

func cmdDelete(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	channel := fs.String("channel", "", "channel of the object (required)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *channel == "" {
		return usagef("want one PATH and -channel")
	}
	cc, err := c.dial(c.addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	cctx, cancel := c.call()
	defer cancel()
	resp, err := pb.NewSenderServiceClient(cc).DeleteObject(cctx, &pb.DeleteObjectRequest{Channel: *channel, Path: pos[0]})
	if err != nil {
		return explain(c.addr, senderService, err)
	}
	if c.json() {
		return c.printJSON(resp)
	}
	fmt.Fprintf(c.env.Stdout, "deleted %s/%s; manifest %016x\n", *channel, pos[0], resp.GetManifestVersion())
	return nil
}

func cmdAlerts(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("alerts", flag.ContinueOnError)
	dur := fs.Duration("for", 0, "stop after this long (0: until interrupted)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	addr := c.addr
	switch len(pos) {
	case 0:
	case 1:
		addr = pos[0]
	default:
		return usagef("want at most one ADDR")
	}
	cc, err := c.dial(addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	sctx, cancel := withOptionalTimeout(*dur)
	defer cancel()
	if !c.json() {
		// The stream sends nothing until there is an alert: say that it
		// is open, on stderr so that stdout stays the alerts alone.
		until := "Ctrl-C to stop"
		if *dur > 0 {
			until = fmt.Sprintf("for %v", *dur)
		}
		fmt.Fprintf(c.env.Stderr, "following the alerts of %s (the recent ones first, then new ones as they are raised; %s)\n", addr, until)
	}
	recv, service, err := openAlerts(sctx, cc, addr)
	if err != nil {
		if sctx.Err() != nil && *dur > 0 {
			return nil // the time asked for ran out
		}
		return err
	}
	for {
		a, err := recv()
		if err != nil {
			// The stream ends with the time asked for; the server may see
			// the deadline first and end the stream (EOF) or report it.
			if sctx.Err() != nil || errors.Is(err, io.EOF) || (*dur > 0 && status.Code(err) == codes.DeadlineExceeded) {
				return nil
			}
			return explain(addr, service, err)
		}
		if c.json() {
			if err := c.printJSON(a); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(c.env.Stdout, "%s %s %s receiver=%s channel=%s: %s\n", a.GetTime().AsTime().Local().Format("15:04:05.000"),
			lower(a.GetKind(), "ALERT_KIND_"), a.GetSource(), a.GetReceiverId(), a.GetChannel(), a.GetMessage())
	}
}

// openAlerts opens the alert stream of whichever service runs at addr: a
// receiver's, else a sender's or backup's. The first alert may be the
// first thing either stream returns, so it is read here and handed back
// by the first call of recv.
func openAlerts(ctx context.Context, cc *grpc.ClientConn, addr string) (recv func() (*pb.Alert, error), service string, err error) {
	rs, err := pb.NewReceiverServiceClient(cc).WatchAlerts(ctx, &pb.ReceiverServiceWatchAlertsRequest{})
	if err != nil {
		return nil, receiverService, explain(addr, receiverService, err)
	}
	first, err := rs.Recv()
	if err == nil || status.Code(err) != codes.Unimplemented {
		pending, perr := first, err
		return func() (*pb.Alert, error) {
			if pending != nil || perr != nil {
				m, e := pending, perr
				pending, perr = nil, nil
				return m.GetAlert(), e
			}
			m, err := rs.Recv()
			return m.GetAlert(), err
		}, receiverService, nil
	}
	ss, err := pb.NewSenderServiceClient(cc).WatchAlerts(ctx, &pb.WatchAlertsRequest{})
	if err != nil {
		return nil, senderService, explain(addr, senderService, err)
	}
	return func() (*pb.Alert, error) {
		m, err := ss.Recv()
		return m.GetAlert(), err
	}, senderService, nil
}

func withOptionalTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		return context.WithTimeout(context.Background(), d)
	}
	return context.WithCancel(context.Background())
}

// errVerifyFailed makes nackctl verify exit 1 when a scrub found damage.
var errVerifyFailed = errors.New("some objects did not match their manifest and are being fetched again")

// cmdVerify scrubs a channel on each receiver: every complete object is
// re-read and checked against the manifest's SHA-256; damaged ones are
// fetched again.
func cmdVerify(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	channel := fs.String("channel", "", "channel to scrub (required)")
	dur := fs.Duration("for", 10*time.Minute, "deadline of each receiver's scrub")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || *channel == "" {
		return usagef("want -channel and at least one receiver ADDR")
	}
	damaged := false
	for _, addr := range pos {
		cc, err := c.dial(addr)
		if err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(context.Background(), *dur)
		resp, err := pb.NewReceiverServiceClient(cc).VerifyChannel(cctx, &pb.VerifyChannelRequest{Channel: *channel})
		cancel()
		cc.Close()
		if err != nil {
			return explain(addr, receiverService, err)
		}
		damaged = damaged || len(resp.GetFailed()) > 0
		if c.json() {
			if err := c.printJSON(resp); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(c.env.Stdout, "%s: %d objects, %s re-read in %v; %d damaged\n", addr, resp.GetObjectsChecked(),
			human(resp.GetBytesChecked()), resp.GetElapsed().AsDuration().Round(time.Millisecond), len(resp.GetFailed()))
		for _, p := range resp.GetFailed() {
			fmt.Fprintf(c.env.Stdout, "  damaged, fetching again: %s\n", p)
		}
	}
	if damaged {
		return errVerifyFailed
	}
	return nil
}

// cmdConfirmManifest confirms, on each receiver, the manifest of a channel
// held back because it would remove more than the receiver allows.
func cmdConfirmManifest(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("confirm-manifest", flag.ContinueOnError)
	channel := fs.String("channel", "", "channel (required)")
	version := fs.String("version", "", "held-back manifest version in hex, as status shows it (required)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 || *channel == "" || *version == "" {
		return usagef("want -channel, -version and at least one receiver ADDR")
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(*version, "0x"), 16, 64)
	if err != nil {
		return usagef("-version %q: want the manifest version in hex", *version)
	}
	for _, addr := range pos {
		cc, err := c.dial(addr)
		if err != nil {
			return err
		}
		cctx, cancel := c.call()
		resp, err := pb.NewReceiverServiceClient(cc).ConfirmManifest(cctx, &pb.ConfirmManifestRequest{Channel: *channel, ManifestVersion: v})
		cancel()
		cc.Close()
		if err != nil {
			return explain(addr, receiverService, err)
		}
		if c.json() {
			if err := c.printJSON(resp); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(c.env.Stdout, "%s: manifest %016x of %s installed; %d objects removed\n", addr, v, *channel, resp.GetObjectsRemoved())
	}
	return nil
}

// cmdVersion prints nackctl's build.
func cmdVersion(_ context.Context, c *ctx, args []string) error {
	args, err := parse(flag.NewFlagSet("version", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	if c.json() {
		return c.printJSON(version.Get().Proto())
	}
	fmt.Fprintln(c.env.Stdout, "nackctl", version.Get())
	return nil
}
