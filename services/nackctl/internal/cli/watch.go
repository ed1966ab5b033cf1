package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// progress is the last status of one receiver and its rates. err is set
// while the receiver cannot be reached (since lost); st then holds the
// last status it sent.
type progress struct {
	addr  string
	st    *pb.ReceiverStatus
	err   error
	lost  time.Time
	rates map[string]*rate // by channel
}

// rate smooths a byte counter into bytes per second.
type rate struct {
	have uint64
	at   time.Time
	bps  float64
}

func (r *rate) update(have uint64, at time.Time) {
	if !r.at.IsZero() && at.After(r.at) && have >= r.have {
		inst := float64(have-r.have) / at.Sub(r.at).Seconds()
		if r.bps == 0 {
			r.bps = inst
		} else {
			r.bps = 0.5*inst + 0.5*r.bps
		}
	}
	r.have, r.at = have, at
}

// cmdWatch shows live progress of receivers: a bar, percent, bytes, rate
// and ETA per receiver and channel.
func cmdWatch(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	dur := fs.Duration("for", 0, "stop after this long (0: until interrupted or complete)")
	every := fs.Duration("interval", time.Second, "time between updates (at least 100ms)")
	untilComplete := fs.Bool("until-complete", false, "exit 0 as soon as every receiver is complete")
	addrs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return usagef("want at least one receiver ADDR")
	}
	if *every < 100*time.Millisecond {
		return usagef("-interval %v: at least 100ms", *every)
	}
	wctx, cancel := withOptionalTimeout(*dur)
	defer cancel()

	var mu sync.Mutex
	rows := make([]*progress, len(addrs))
	updated := make(chan struct{}, 1)
	notify := func() {
		select {
		case updated <- struct{}{}:
		default:
		}
	}
	var (
		wg    sync.WaitGroup
		conns []*grpc.ClientConn
		fatal = make(chan error, len(addrs))
	)
	// The followers end before their connections close: a closing
	// connection is not a receiver going away.
	defer func() {
		cancel()
		wg.Wait()
		for _, cc := range conns {
			cc.Close()
		}
	}()
	for i, addr := range addrs {
		rows[i] = &progress{addr: addr, rates: map[string]*rate{}}
		cc, err := c.dial(addr)
		if err != nil {
			return err
		}
		conns = append(conns, cc)
		rc := pb.NewReceiverServiceClient(cc)
		wg.Add(1)
		// One goroutine per receiver follows its status stream and, when
		// the receiver goes away, marks its row and reconnects: one
		// receiver restarting does not end the watch of the others.
		go func(p *progress) {
			defer wg.Done()
			for {
				err := c.follow(wctx, rc, p, &mu, *every, notify)
				if wctx.Err() != nil {
					return
				}
				var we writeError
				if errors.As(err, &we) {
					fatal <- we.err // stdout is gone: the watch ends
					return
				}
				if err == nil {
					err = errors.New("the status stream ended")
				}
				mu.Lock()
				if p.err == nil {
					p.lost = time.Now()
					if c.json() {
						fmt.Fprintf(c.env.Stderr, "nackctl watch: %v\n", explain(p.addr, receiverService, err))
					}
				}
				p.err = explain(p.addr, receiverService, err)
				mu.Unlock()
				notify()
				select {
				case <-wctx.Done():
					return
				case <-time.After(*every):
				}
			}
		}(rows[i])
	}

	tick := time.NewTicker(*every)
	defer tick.Stop()
	drawn := 0
	for {
		select {
		case err := <-fatal:
			return err
		case <-wctx.Done():
			if *untilComplete {
				mu.Lock()
				defer mu.Unlock()
				if allComplete(rows) {
					return nil // completed since the last tick
				}
				// -for ran out first: the receivers are not complete.
				return fmt.Errorf("not every receiver complete after %v: %s", *dur, pending(rows))
			}
			return nil
		case <-tick.C:
		case <-updated:
			continue
		}
		mu.Lock()
		if !c.json() {
			drawn = c.draw(rows, drawn)
		}
		done := allComplete(rows)
		mu.Unlock()
		if done && *untilComplete {
			if !c.json() {
				fmt.Fprintln(c.env.Stdout, "every receiver is complete")
			}
			return nil
		}
	}
}

// allComplete reports whether every receiver of rows answers and is
// complete. Called with the rows' lock held.
func allComplete(rows []*progress) bool {
	for _, p := range rows {
		if p.err != nil || !p.st.GetComplete() {
			return false
		}
	}
	return true
}

// writeError is a failure to write to stdout: it ends the watch.
type writeError struct{ err error }

func (w writeError) Error() string { return w.err.Error() }

// pending lists the receivers of rows that are not complete, and why.
// Called with the rows' lock held.
func pending(rows []*progress) string {
	var out []string
	for _, p := range rows {
		switch {
		case p.err != nil:
			out = append(out, p.addr+" (unreachable)")
		case p.st == nil:
			out = append(out, p.addr+" (no status yet)")
		case !p.st.GetComplete():
			var have, total uint64
			for _, ch := range p.st.GetChannels() {
				have += ch.GetBytesHave()
				total += ch.GetBytesTotal()
			}
			out = append(out, fmt.Sprintf("%s %.0f%%", p.st.GetReceiverId(), percent(have, total)))
		}
	}
	return strings.Join(out, ", ")
}

// follow reads one receiver's status stream into p until it fails or ctx
// ends; a status that arrives clears p's error.
func (c *ctx) follow(ctx context.Context, rc pb.ReceiverServiceClient, p *progress, mu *sync.Mutex, every time.Duration, notify func()) error {
	ctx, cancel := context.WithCancel(ctx) // the stream ends with this call
	defer cancel()
	stream, err := rc.WatchStatus(ctx, &pb.ReceiverServiceWatchStatusRequest{Interval: durationpb.New(every)})
	if err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		mu.Lock()
		p.st, p.err = m.GetStatus(), nil
		now := p.st.GetTime().AsTime()
		for _, ch := range p.st.GetChannels() {
			r := p.rates[ch.GetChannel()]
			if r == nil {
				r = &rate{}
				p.rates[ch.GetChannel()] = r
			}
			r.update(ch.GetBytesHave(), now)
		}
		var werr error
		if c.json() {
			werr = c.printJSON(m.GetStatus())
		}
		mu.Unlock()
		if werr != nil {
			// stdout is gone (a closed pipe, a full disk): nothing more
			// to show.
			return writeError{fmt.Errorf("write the status of %s: %w", p.addr, werr)}
		}
		notify()
	}
}

// draw prints one line per receiver and channel. On a terminal it redraws
// the previous block in place; elsewhere it appends.
func (c *ctx) draw(rows []*progress, drawn int) int {
	var b strings.Builder
	if c.env.TTY && drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", drawn)
	}
	lines := 0
	wipe := ""
	if c.env.TTY {
		wipe = "\x1b[2K"
	}
	for _, p := range rows {
		if p.err != nil {
			last := ""
			if p.st != nil {
				last = fmt.Sprintf(" (last status %s)", p.st.GetTime().AsTime().Local().Format(time.TimeOnly))
			}
			fmt.Fprintf(&b, "%s%-22s UNREACHABLE since %s%s: %v\n", wipe, p.addr, p.lost.Local().Format(time.TimeOnly), last, p.err)
			lines++
			continue
		}
		if p.st == nil {
			fmt.Fprintf(&b, "%s%-22s waiting for the first status\n", wipe, p.addr)
			lines++
			continue
		}
		for _, ch := range p.st.GetChannels() {
			r := p.rates[ch.GetChannel()]
			have, total := ch.GetBytesHave(), ch.GetBytesTotal()
			eta := "--:--"
			switch {
			case ch.GetComplete():
				eta = "done"
			case r != nil && r.bps > 0 && total > have:
				secs := int(float64(total-have) / r.bps)
				eta = fmt.Sprintf("%d:%02d", secs/60, secs%60)
			}
			bps := 0.0
			if r != nil {
				bps = r.bps
			}
			line := fmt.Sprintf("%-12s %-10s %s %5.1f%%  %9s / %-9s %8s/s  ETA %-6s %d/%d objects  via %s",
				p.st.GetReceiverId(), ch.GetChannel(), bar(have, total, 20), percent(have, total),
				human(have), human(total), human(uint64(bps)), eta, ch.GetObjectsComplete(), ch.GetObjectsTotal(), via(p.st, ch))
			if pr := ch.GetProblem(); pr != nil {
				line += "  STUCK: " + problemLine(pr)
			}
			if c.env.TTY {
				b.WriteString("\x1b[2K")
			}
			b.WriteString(line)
			b.WriteByte('\n')
			lines++
		}
	}
	if !c.env.TTY {
		b.WriteByte('\n')
	}
	fmt.Fprint(c.env.Stdout, b.String())
	return lines
}

func bar(have, total uint64, width int) string {
	n := 0
	if total > 0 {
		n = int(uint64(width) * have / total)
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// via names the sender a receiver's channel follows: the one that answered
// its last NACK or, when it never needed one, the one whose manifest it
// holds.
func via(st *pb.ReceiverStatus, ch *pb.ReceiverChannelStatus) string {
	if a := st.GetActiveSender(); a != "" {
		return a
	}
	if s := ch.GetManifestSender(); s != "" {
		return "manifest of " + s
	}
	return "-"
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cmdWait polls receivers until every one is complete and, with -objects,
// holds at least that many objects in each channel; it fails when the
// time runs out. Scripts and rollouts use it.
func cmdWait(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	dur := fs.Duration("for", 5*time.Minute, "give up after this long")
	objects := fs.Uint("objects", 0, "also wait until each channel lists at least this many objects")
	addrs, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return usagef("want at least one receiver ADDR")
	}
	deadline := time.Now().Add(*dur)
	clients := make([]pb.ReceiverServiceClient, len(addrs))
	for i, addr := range addrs {
		cc, err := c.dial(addr)
		if err != nil {
			return err
		}
		defer cc.Close()
		clients[i] = pb.NewReceiverServiceClient(cc)
	}
	for {
		var pending []string
		for i, rc := range clients {
			cctx, cancel := c.call()
			resp, err := rc.GetStatus(cctx, &pb.ReceiverServiceGetStatusRequest{})
			cancel()
			if err != nil {
				if time.Now().After(deadline) {
					return explain(addrs[i], receiverService, err)
				}
				pending = append(pending, addrs[i]+" (unreachable)")
				continue
			}
			st := resp.GetStatus()
			ok := st.GetComplete()
			var have, total uint64
			for _, ch := range st.GetChannels() {
				ok = ok && ch.GetObjectsTotal() >= uint32(*objects)
				have += ch.GetBytesHave()
				total += ch.GetBytesTotal()
			}
			if !ok {
				pending = append(pending, fmt.Sprintf("%s %.0f%%", st.GetReceiverId(), percent(have, total)))
			}
		}
		if len(pending) == 0 {
			if !c.json() {
				fmt.Fprintf(c.env.Stdout, "%d receivers complete\n", len(addrs))
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not complete after %v: %s", *dur, strings.Join(pending, ", "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}
