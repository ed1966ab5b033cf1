// Command demo runs nackcast's main job on an embedded default: it
// generates a sample channel, starts a backup, a primary sender and
// receivers on lo, shows progress, prints a summary and checks every
// receiver's copy against the origin. With -failover it kills the primary
// with SIGKILL in the middle of the large transfer, shows the backup take
// over and the receivers complete, restarts the primary and shows the
// backup hand the role back. It exits 0 only when every receiver holds a
// verified copy, and removes its processes and files on the way out.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nackcast/nackcast/pkg/app"
	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

func main() { os.Exit(run()) }

type options struct {
	bin       string
	receivers int
	small     int
	large     int64
	loss      float64
	rate      int64
	timeout   time.Duration
	keep      bool
	failover  bool
	killAt    float64
}

func run() int {
	o := options{bin: "bin", receivers: 3, small: 300, large: 64 << 20, rate: 100_000_000, timeout: 3 * time.Minute, killAt: 0.35}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", o.bin, "directory holding the service binaries")
	fs.IntVar(&o.receivers, "receivers", o.receivers, "number of receivers")
	fs.IntVar(&o.small, "small", o.small, "number of small files (1 B to 64 KiB)")
	fs.Var(app.NewByteSize(&o.large), "large", "size of the large file, e.g. 64Mi")
	fs.Float64Var(&o.loss, "loss", o.loss, "loss injected on every receiver's packet path (0 to 0.5)")
	fs.Var(app.NewByteSize(&o.rate), "rate", "sender pacing rate in bytes/s")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "give up after this long")
	fs.BoolVar(&o.keep, "keep", o.keep, "keep the working directory and logs")
	fs.BoolVar(&o.failover, "failover", o.failover, "kill the primary mid-transfer, then restart it")
	fs.Float64Var(&o.killAt, "kill-at", o.killAt, "with -failover: kill the primary when the slowest receiver has this fraction")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := demo(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "demo FAILED:", err)
		return 1
	}
	return 0
}

func demo(ctx context.Context, o options) error {
	work, err := os.MkdirTemp("", "nackcast-demo-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("working directory:", work)
	} else {
		defer os.RemoveAll(work)
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	c, err := cloud.New(bin, work)
	if err != nil {
		return err
	}
	defer c.Close()

	origin := filepath.Join(work, "origin")
	sample := cloud.Sample{SmallFiles: o.small, MaxSmall: 64 << 10, LargeBytes: o.large, Empty: true, Seed: 2026}
	total, err := sample.Generate(filepath.Join(origin, "sample"))
	if err != nil {
		return fmt.Errorf("generate sample: %w", err)
	}
	files := o.small + 1
	if sample.Empty {
		files += 2
	}
	fmt.Printf("sample channel: %d files, %s, on lo group %s:%d\n", files, mb(total), c.Group, c.Port)

	senderArgs := []string{"-rate", fmt.Sprint(o.rate)}
	run, err := c.Distribute(ctx, cloud.Distribution{
		Origin:       origin,
		Channel:      "sample",
		Receivers:    o.receivers,
		Loss:         o.loss,
		Backup:       true,
		SenderArgs:   senderArgs,
		BackupArgs:   append(senderArgs, "-primary-grace", "1s"),
		ReceiverArgs: []string{"-nack-timeout", "500ms"},
	})
	if err != nil {
		return err
	}
	fmt.Printf("started a backup (pid %d, standing by), a primary (pid %d) and %d receivers; distributing...\n",
		run.Backup.PID(), run.Sender.PID(), len(run.Receivers))

	var watch func([]*pb.ReceiverStatus)
	var killed time.Time
	if o.failover {
		watch = killer(ctx, run, o.killAt, &killed)
	}
	final, err := run.Wait(ctx, o.timeout, 500*time.Millisecond, both(progress(run), watch))
	if err != nil {
		return err
	}
	elapsed := time.Since(run.Start)
	active := run.Sender
	if o.failover {
		if killed.IsZero() {
			return fmt.Errorf("the transfer ended before the primary could be killed; use a larger -large or a lower -rate")
		}
		active = run.Backup
		reportTakeover(final, killed)
	}
	st, err := active.SenderStatus(ctx)
	if err != nil {
		return fmt.Errorf("sender status: %w", err)
	}
	summary(total, files, elapsed, final, st)
	if err := run.Verify(); err != nil {
		return err
	}
	for _, p := range run.Receivers {
		fmt.Printf("verified %s: every file matches the origin's SHA-256\n", p.Name)
	}
	if o.failover {
		if err := handBack(ctx, run, origin); err != nil {
			return err
		}
	}
	fmt.Println("demo OK: every receiver holds a verified copy")
	return nil
}

func both(a, b func([]*pb.ReceiverStatus)) func([]*pb.ReceiverStatus) {
	return func(sts []*pb.ReceiverStatus) {
		a(sts)
		if b != nil {
			b(sts)
		}
	}
}

// killer returns a watcher that SIGKILLs the primary once the slowest
// receiver holds the given fraction, and then reports the backup's state
// as it changes.
func killer(ctx context.Context, run *cloud.Run, at float64, killed *time.Time) func([]*pb.ReceiverStatus) {
	var lastState pb.SenderState
	return func(sts []*pb.ReceiverStatus) {
		if killed.IsZero() {
			slowest := 1.0
			for _, st := range sts {
				slowest = min(slowest, fraction(st))
			}
			if slowest < at {
				return
			}
			*killed = time.Now()
			pid := run.Sender.PID()
			if err := run.Sender.Kill(syscall.SIGKILL); err != nil {
				fmt.Println("  !! killing the primary:", err)
			}
			fmt.Printf("  >> primary (pid %d) killed with SIGKILL at %.0f%%\n", pid, 100*slowest)
		}
		st, err := run.Backup.SenderStatus(ctx)
		if err != nil || st.GetState() == lastState {
			return
		}
		lastState = st.GetState()
		fmt.Printf("  >> backup is %s (epoch %d, takeovers %d)\n", stateName(lastState), st.GetEpoch(), st.GetTakeovers())
	}
}

func reportTakeover(sts []*pb.ReceiverStatus, killed time.Time) {
	var first time.Time
	for _, st := range sts {
		for _, e := range st.GetEpochs() {
			if seen := e.GetFirstSeen().AsTime(); e.GetBackup() && seen.After(killed) && (first.IsZero() || seen.Before(first)) {
				first = seen
			}
		}
	}
	if !first.IsZero() {
		fmt.Printf("\nfailover: first packet from the backup %v after the kill; all receivers complete %v after it\n",
			first.Sub(killed).Round(time.Millisecond), time.Since(killed).Round(100*time.Millisecond))
	}
}

// handBack restarts the primary, shows the backup handing the role back,
// and shows a file published afterwards arriving from the primary.
func handBack(ctx context.Context, run *cloud.Run, origin string) error {
	fmt.Println("\nrestarting the primary...")
	if err := run.Restart(run.Sender); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := run.Sender.WaitServing(wctx); err != nil {
		return err
	}
	bst, err := run.Backup.SenderStatus(ctx)
	if err != nil {
		return err
	}
	pst, err := run.Sender.SenderStatus(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("  >> backup is %s since %s; primary (pid %d) is %s under epoch %d\n",
		stateName(bst.GetState()), bst.GetStateSince().AsTime().Format("15:04:05.000"), run.Sender.PID(), stateName(pst.GetState()), pst.GetEpoch())
	if bst.GetState() != pb.SenderState_SENDER_STATE_STANDBY {
		return fmt.Errorf("backup did not hand back: %s", stateName(bst.GetState()))
	}
	name := filepath.Join(origin, "sample", "published-after-handback.bin")
	if err := os.WriteFile(name, []byte(strings.Repeat("nackcast ", 100_000)), 0o644); err != nil {
		return err
	}
	fmt.Println("  >> published a new file; waiting for it to arrive from the primary...")
	before := pst.GetChannels()[0].GetObjectCount()
	var sts []*pb.ReceiverStatus
	for deadline := time.Now().Add(time.Minute); ; {
		if sts, err = run.Statuses(ctx); err != nil {
			return err
		}
		done := true
		for _, st := range sts {
			done = done && st.GetComplete() && st.GetChannels()[0].GetObjectsTotal() > before
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the file published after the hand-back did not arrive")
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, st := range sts {
		var fromPrimary uint64
		for _, e := range st.GetEpochs() {
			if e.GetEpoch() == pst.GetEpoch() {
				fromPrimary = e.GetPackets()
			}
		}
		fmt.Printf("  >> %s: %d packets from the primary's new epoch\n", st.GetReceiverId(), fromPrimary)
	}
	return run.Verify()
}

func fraction(st *pb.ReceiverStatus) float64 {
	var have, total uint64
	for _, ch := range st.GetChannels() {
		have += ch.GetBytesHave()
		total += ch.GetBytesTotal()
	}
	if total == 0 {
		return 0
	}
	return float64(have) / float64(total)
}

func stateName(s pb.SenderState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "SENDER_STATE_"))
}

// progress returns a printer of one line per poll: per receiver a bar,
// percent, objects complete and rate.
func progress(run *cloud.Run) func([]*pb.ReceiverStatus) {
	last := make([]uint64, len(run.Receivers))
	lastT := run.Start
	return func(sts []*pb.ReceiverStatus) {
		now := time.Now()
		var line strings.Builder
		fmt.Fprintf(&line, "%6.1fs", now.Sub(run.Start).Seconds())
		for i, st := range sts {
			var have, total uint64
			var objs, objsTotal uint32
			for _, ch := range st.GetChannels() {
				have += ch.GetBytesHave()
				total += ch.GetBytesTotal()
				objs += ch.GetObjectsComplete()
				objsTotal += ch.GetObjectsTotal()
			}
			rate := float64(have-min(last[i], have)) / now.Sub(lastT).Seconds()
			last[i] = have
			fmt.Fprintf(&line, "  %s %s %3.0f%% %4d/%-4d %6.1f MB/s", short(st.GetReceiverId()), bar(have, total), pct(have, total), objs, objsTotal, rate/1e6)
		}
		lastT = now
		fmt.Println(line.String())
	}
}

func summary(total int64, files int, elapsed time.Duration, sts []*pb.ReceiverStatus, st *pb.SenderStatus) {
	c := st.GetCounters()
	fmt.Println()
	fmt.Printf("summary: %d objects, %s, all receivers complete in %.2fs\n", files, mb(total), elapsed.Seconds())
	fmt.Printf("%s: %d passes (%d repair), %d NACKs answered (wait %d, unicast %d, not found %d), %d unicast pulls (%s)\n",
		st.GetSenderId(), c.GetPasses(), c.GetRepairPasses(), c.GetNacks(), c.GetRepliesWait(), c.GetRepliesUnicast(), c.GetRepliesNotFound(), c.GetPulls(), mb(int64(c.GetPullBytes())))
	fmt.Printf("  %s on the wire for %s of content (%.3fx)\n", mb(int64(c.GetBytesSent())), mb(total), float64(c.GetBytesSent())/float64(max(total, 1)))
	for _, r := range sts {
		rc := r.GetCounters()
		took := cloud.CompletionTime(r)
		fmt.Printf("%-11s complete in %.2fs, goodput %.1f MB/s; multicast %s, unicast %s, NACKs %d, ranges asked %d, failovers %d, dropped (injected) %d\n",
			r.GetReceiverId(), took.Seconds(), float64(total)/max(took.Seconds(), 1e-9)/1e6,
			mb(int64(rc.GetMulticastBytes())), mb(int64(rc.GetUnicastBytes())), rc.GetNacksSent(), rc.GetRangesRequested(), r.GetFailovers(), rc.GetPacketsDroppedInjected())
	}
	fmt.Println()
}

func short(name string) string { return strings.Replace(name, "receiver-", "r", 1) }

func pct(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func bar(a, b uint64) string {
	const w = 16
	n := 0
	if b > 0 {
		n = int(w * a / b)
	}
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", w-n) + "]"
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
