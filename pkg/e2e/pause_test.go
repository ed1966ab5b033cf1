package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/sender"
)

// TestPrimaryPausedBackupTakesOverAndHandsBack: SIGSTOP the primary in the
// middle of a transfer for longer than the receivers' NACK deadline and
// the backup's health timeout. The backup takes over; when the primary is
// resumed (SIGCONT) it is alive again, the backup's next check sees it and
// the backup hands back within its check interval plus the jobs in hand;
// every receiver completes with verified files. The window with two
// active senders is measured and bounded.
func TestPrimaryPausedBackupTakesOverAndHandsBack(t *testing.T) {
	run, _, ctx := failoverCloud(t, 2, 32<<20)
	waitBytes(t, ctx, run, 0.2)
	stopped := time.Now()
	resume := pausePrimary(t, ctx, run)
	waitFor(t, 30*time.Second, "backup active while the primary is paused", func() bool {
		return backupStatus(t, ctx, run).GetState() == pb.SenderState_SENDER_STATE_ACTIVE
	})
	tookOver := time.Since(stopped)
	time.Sleep(time.Second)
	both := resume()
	t.Logf("pause -> backup active %v; resume -> backup standing by %v (check interval 300ms)", tookOver.Round(time.Millisecond), both.Round(time.Millisecond))
	if both > time.Second {
		t.Errorf("backup still active %v after the primary resumed, want under 1 s", both)
	}
}

// pausePrimary stops the run's primary (SIGSTOP) and returns the function
// that resumes it (SIGCONT), waits until the backup stands by, then until
// every receiver is complete with verified files; it returns how long the
// backup took to stand by after the resume. The primary is resumed at the
// end of the test in any case.
func pausePrimary(t *testing.T, ctx context.Context, run *cloud.Run) (resume func() time.Duration) {
	t.Helper()
	if err := run.Sender.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			if err := run.Sender.Signal(syscall.SIGCONT); err != nil {
				t.Errorf("resume the primary: %v", err)
			}
		}
	})
	return func() time.Duration {
		t.Helper()
		cont := time.Now()
		if err := run.Sender.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		resumed = true
		waitFor(t, 30*time.Second, "backup standing by after the primary resumed", func() bool {
			return backupStatus(t, ctx, run).GetState() == pb.SenderState_SENDER_STATE_STANDBY
		})
		standby := time.Since(cont)
		if _, err := run.Wait(ctx, 2*time.Minute, 100*time.Millisecond, nil); err != nil {
			t.Fatal(err)
		}
		if err := run.Verify(); err != nil {
			t.Fatal(err)
		}
		return standby
	}
}

// TestReceiverPausedCatchesUp: a receiver stopped (SIGSTOP) for longer
// than its NACK deadline misses what overflows its socket buffer; resumed,
// it NACKs and completes with verified files.
func TestReceiverPausedCatchesUp(t *testing.T) {
	run, _, ctx := failoverCloud(t, 2, 32<<20)
	waitBytes(t, ctx, run, 0.1)
	r := run.Receivers[0]
	if err := r.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := r.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	sts, err := run.Wait(ctx, 2*time.Minute, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Verify(); err != nil {
		t.Fatal(err)
	}
	if st := backupStatus(t, ctx, run); st.GetTakeovers() != 0 {
		t.Errorf("the backup took over %d times although the primary was alive", st.GetTakeovers())
	}
	ct := sts[0].GetCounters()
	t.Logf("%s after the pause: NACKs %d, overflow %d, feedback reports %d", sts[0].GetReceiverId(), ct.GetNacksSent(), ct.GetPacketsOverflow(), ct.GetFeedbackSent())
	if ct.GetPacketsOverflow() == 0 {
		t.Errorf("the paused receiver lost no packets: the pause did not make it catch up")
	}
	if ct.GetFeedbackSent() == 0 {
		t.Errorf("the paused receiver overflowed but sent the sender no feedback")
	}
}

// TestClockJumps: the clock of a sender and its receivers (one clock, as
// one host's would be) jumps an hour forward in the middle of a transfer
// with 5% loss, then two hours back. NACK intervals, merge windows,
// periods and pass records all read that clock; the transfer completes
// with verified files.
func TestClockJumps(t *testing.T) {
	c := newCluster(t)
	var offset atomic.Int64
	c.clock = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	origin := filepath.Join(c.dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 30, MaxSmall: 64 << 10, LargeBytes: 12 << 20, Seed: 97}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	_, sn := c.sender(origin, func(cfg *sender.Config) { cfg.Rate = 8_000_000; cfg.Scheduler.MaxPasses = 10 })
	var rs []*receiver.Receiver
	for i := 1; i <= 2; i++ {
		r, _ := c.receiver(fmt.Sprintf("r%d", i), sn.addr, func(cfg *receiver.Config) { cfg.LossRate = 0.05 })
		rs = append(rs, r)
	}
	have := func(frac float64) func() bool {
		return func() bool {
			for _, r := range rs {
				chs := r.Status(false).GetChannels()
				if len(chs) != 1 || chs[0].GetBytesTotal() == 0 || float64(chs[0].GetBytesHave()) < frac*float64(chs[0].GetBytesTotal()) {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, time.Minute, "a third of the transfer", have(0.33))
	offset.Store(int64(time.Hour))
	waitFor(t, time.Minute, "two thirds of the transfer", have(0.66))
	offset.Store(int64(-time.Hour))
	waitComplete(t, 90*time.Second, rs...)
	for _, r := range rs {
		verify(t, origin, filepath.Join(c.dir, r.Status(false).GetReceiverId()))
	}
}

// TestTwoSendersWindowAfterPause (issue 12, failure 5; guarantee S3): a
// 100 MB object at 20 MB/s; the primary is paused (SIGSTOP) until the
// backup has taken over and multicasts, then resumed mid-object. The
// resumed primary goes on at once; the backup must hear it on the group
// and stand by, aborting its job, instead of finishing a 100 MB object
// first (its hand-back time is set to 10 s, so that only the data plane can
// end the overlap within the bound). A tap on the group measures the
// windows in which both sent DATA.
func TestTwoSendersWindowAfterPause(t *testing.T) {
	skipShort(t)
	cl, dir := newCloud(t)
	tap := newWireLog(t, cl.Group, cl.Port)
	origin := filepath.Join(dir, "origin")
	if _, err := (cloud.Sample{LargeBytes: 100_000_000, Seed: 5}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	senderArgs := []string{"-rate", "20M", "-period", "300ms", "-health-timeout", "200ms", "-log-level", "info"}
	run, err := cl.Distribute(ctx, cloud.Distribution{
		Origin: origin, Channel: "c", Receivers: 2, Backup: true,
		SenderArgs: senderArgs,
		// A hand-back time far above the bound: only hearing the primary
		// on the group can end the overlap in time.
		BackupArgs:   append(senderArgs, "-check-interval", "300ms", "-primary-grace", "500ms", "-handback-timeout", "10s"),
		ReceiverArgs: []string{"-nack-timeout", "300ms", "-scan-interval", "500ms", "-log-level", "info"},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitBytes(t, ctx, run, 0.15)
	stopped := time.Now()
	resume := pausePrimary(t, ctx, run)
	waitFor(t, 30*time.Second, "the backup multicasting while the primary is paused", func() bool { return tap.backupSent(stopped) })
	cont := time.Now()
	standby := resume()
	if !tap.primarySent(cont) {
		t.Fatal("the resumed primary sent no DATA: the overlap was not exercised")
	}
	windows, span := tap.overlap(cont)
	t.Logf("100 MB at 20 MB/s: after SIGCONT both senders sent DATA in %d windows of 100 ms, spanning %v; backup standing by %v after SIGCONT",
		windows, span, standby.Round(time.Millisecond))
	if span > time.Second {
		t.Errorf("two senders on the wire for %v after the primary resumed, want under 1 s", span)
	}
}
