package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// failoverCloud starts a primary, a backup and receivers as real processes
// over a large object multicast slowly enough to be interrupted.
func failoverCloud(t *testing.T, receivers int, size int64, extraReceiverArgs ...string) (*cloud.Run, string, context.Context) {
	t.Helper()
	skipShort(t)
	cl, dir := newCloud(t)
	origin := filepath.Join(dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 20, MaxSmall: 64 << 10, LargeBytes: size, Seed: 11}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	senderArgs := []string{"-rate", "16M", "-period", "300ms", "-health-timeout", "200ms", "-log-level", "info"}
	run, err := cl.Distribute(ctx, cloud.Distribution{
		Origin:       origin,
		Channel:      "c",
		Receivers:    receivers,
		Backup:       true,
		SenderArgs:   senderArgs,
		BackupArgs:   append(senderArgs, "-check-interval", "300ms", "-primary-grace", "500ms"),
		ReceiverArgs: append([]string{"-nack-timeout", "300ms", "-scan-interval", "500ms", "-log-level", "info"}, extraReceiverArgs...),
	})
	if err != nil {
		t.Fatal(err)
	}
	return run, dir, ctx
}

func backupStatus(t *testing.T, ctx context.Context, run *cloud.Run) *pb.SenderStatus {
	t.Helper()
	st, err := run.Backup.SenderStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// firstBackupPacket returns the earliest time any receiver accepted a
// packet from a backup epoch that began after since, and whether there
// was one.
func firstBackupPacket(sts []*pb.ReceiverStatus, since time.Time) (time.Time, bool) {
	var first time.Time
	for _, st := range sts {
		for _, e := range st.GetEpochs() {
			seen := e.GetFirstSeen().AsTime()
			if e.GetBackup() && !seen.Before(since) && (first.IsZero() || seen.Before(first)) {
				first = seen
			}
		}
	}
	return first, !first.IsZero()
}

func waitBytes(t *testing.T, ctx context.Context, run *cloud.Run, fraction float64) {
	t.Helper()
	waitFor(t, time.Minute, "transfer under way", func() bool {
		sts, err := run.Statuses(ctx)
		if err != nil {
			return false
		}
		for _, st := range sts {
			chs := st.GetChannels()
			if len(chs) != 1 || chs[0].GetBytesTotal() == 0 || float64(chs[0].GetBytesHave()) < fraction*float64(chs[0].GetBytesTotal()) {
				return false
			}
		}
		return true
	})
}

// TestPrimaryKilledBackupTakesOver: SIGKILL the primary in the middle of a
// large transfer; the receivers' NACKs wake the backup, which finds the
// primary dead, takes over under a new epoch, and every receiver completes
// with verified files.
func TestPrimaryKilledBackupTakesOver(t *testing.T) {
	run, _, ctx := failoverCloud(t, 3, 48<<20)
	waitBytes(t, ctx, run, 0.3)
	if st := backupStatus(t, ctx, run); st.GetState() != pb.SenderState_SENDER_STATE_STANDBY {
		t.Fatalf("backup state %v before the kill, want STANDBY", st.GetState())
	}
	killed := time.Now()
	if err := run.Sender.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sts, err := run.Wait(ctx, 2*time.Minute, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	complete := time.Since(killed)
	if err := run.Verify(); err != nil {
		t.Fatal(err)
	}
	first, ok := firstBackupPacket(sts, killed)
	if !ok {
		t.Fatal("no receiver accepted a packet from the backup")
	}
	t.Logf("kill -> first backup packet %v, kill -> all receivers complete %v (nack-timeout 300ms, health-timeout 200ms, retried once)",
		first.Sub(killed).Round(time.Millisecond), complete.Round(time.Millisecond))
	st := backupStatus(t, ctx, run)
	if st.GetState() != pb.SenderState_SENDER_STATE_ACTIVE || st.GetTakeovers() != 1 {
		t.Errorf("backup state %v, takeovers %d; want ACTIVE after one takeover", st.GetState(), st.GetTakeovers())
	}
	for _, r := range sts {
		if r.GetFailovers() == 0 || r.GetActiveSender() != run.Backup.Addr {
			t.Errorf("%s: failovers %d, active sender %q; want the backup %s", r.GetReceiverId(), r.GetFailovers(), r.GetActiveSender(), run.Backup.Addr)
		}
	}
}

// TestPrimaryReturnsBackupHandsBack: the primary dies, the backup takes
// over, and the primary is restarted while the backup is still
// multicasting. The backup finishes the jobs in hand and stands by; the
// primary starts once it has; from then on only the primary's new epoch
// is on the wire.
func TestPrimaryReturnsBackupHandsBack(t *testing.T) {
	run, dir, ctx := failoverCloud(t, 2, 64<<20)
	waitBytes(t, ctx, run, 0.2)
	killed := time.Now()
	if err := run.Sender.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "backup multicasting", func() bool {
		sts, err := run.Statuses(ctx)
		if err != nil {
			return false
		}
		_, ok := firstBackupPacket(sts, killed)
		return ok
	})
	if err := run.Restart(run.Sender); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "backup standing by", func() bool {
		return backupStatus(t, ctx, run).GetState() == pb.SenderState_SENDER_STATE_STANDBY
	})
	standby := backupStatus(t, ctx, run).GetStateSince().AsTime()
	if err := run.Sender.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := run.Wait(ctx, 2*time.Minute, 100*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if err := run.Verify(); err != nil {
		t.Fatal(err)
	}
	// Publish a new object after the hand-back: only the primary sends it.
	writeFile(t, filepath.Join(dir, "origin", "c", "after-handback.bin"), make([]byte, 3<<20))
	sts := waitObjects(t, ctx, run, 22, "the new object everywhere")
	if err := run.Verify(); err != nil {
		t.Fatal(err)
	}
	primaryEpoch := statusEpoch(t, ctx, run.Sender)
	// The standing-by backup sees the restarted primary alive and active
	// (it showed the active primary as down after a hand-back before).
	waitFor(t, 10*time.Second, "the backup's view of the restarted primary", func() bool {
		b := backupStatus(t, ctx, run)
		return b.GetPrimaryAlive() && b.GetPrimaryEpoch() == primaryEpoch && b.GetPrimaryState() == pb.SenderState_SENDER_STATE_ACTIVE
	})
	for _, st := range sts {
		var sawPrimary bool
		for _, e := range st.GetEpochs() {
			if e.GetBackup() && e.GetLastSeen().AsTime().After(standby.Add(200*time.Millisecond)) {
				t.Errorf("%s: backup epoch %d still sending at %v, after it stood by at %v", st.GetReceiverId(), e.GetEpoch(), e.GetLastSeen().AsTime(), standby)
			}
			if e.GetEpoch() == primaryEpoch {
				sawPrimary = e.GetPackets() > 0
			}
		}
		if !sawPrimary {
			t.Errorf("%s: no packets from the restarted primary's epoch %d: %v", st.GetReceiverId(), primaryEpoch, st.GetEpochs())
		}
	}
	log, _ := os.ReadFile(run.Sender.Log)
	if !strings.Contains(string(log), "backup is active; waiting for it to finish its jobs") {
		t.Errorf("restarted primary did not wait for the backup:\n%s", log)
	}
}

// TestUnreachablePrimaryRaisesAlert: one receiver cannot reach the primary
// (its primary address leads nowhere), though the primary is alive. Its
// NACKs go to the backup, which finds the primary alive, disregards the
// first, raises a network alert on the second, and does not take over.
func TestUnreachablePrimaryRaisesAlert(t *testing.T) {
	run, _, ctx := failoverCloud(t, 1, 8<<20)
	stranded, err := run.AddReceiver("stranded", reserveAddr(t), "-test-loss", "0.2")
	if err != nil {
		t.Fatal(err)
	}
	alerts, err := pb.NewSenderServiceClient(run.Backup.Conn()).WatchAlerts(ctx, &pb.WatchAlertsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *pb.Alert, 1)
	go func() {
		if m, err := alerts.Recv(); err == nil {
			got <- m.GetAlert()
		}
	}()
	var alert *pb.Alert
	select {
	case alert = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no alert on the stream")
	}
	if alert.GetKind() != pb.AlertKind_ALERT_KIND_NETWORK || alert.GetReceiverId() != "stranded" || alert.GetChannel() != "c" {
		t.Errorf("alert = %v", alert)
	}
	if _, err := run.Wait(ctx, time.Minute, 100*time.Millisecond, nil); err != nil {
		t.Fatal(err) // the healthy receiver is unaffected
	}
	st := backupStatus(t, ctx, run)
	if st.GetState() != pb.SenderState_SENDER_STATE_STANDBY || st.GetTakeovers() != 0 || st.GetAlerts() == 0 || !st.GetPrimaryAlive() {
		t.Errorf("backup: state %v takeovers %d alerts %d primary alive %v", st.GetState(), st.GetTakeovers(), st.GetAlerts(), st.GetPrimaryAlive())
	}
	rs, err := stranded.ReceiverStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rs.GetCounters().GetRepliesPrimaryActive() == 0 {
		t.Errorf("stranded receiver never heard that the primary is alive: %v", rs.GetCounters())
	}
	log, _ := os.ReadFile(run.Backup.Log)
	if !strings.Contains(string(log), "[ERROR] backup.failover: network alert") || !strings.Contains(string(log), "receiver=stranded") {
		t.Errorf("backup log lacks the ERROR line:\n%s", log)
	}
}

// TestBackupKilledWhileStandingBy: a standing-by backup that dies changes
// nothing for the receivers.
func TestBackupKilledWhileStandingBy(t *testing.T) {
	run, _, ctx := failoverCloud(t, 2, 8<<20, "-test-loss", "0.05")
	if err := run.Backup.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Receivers started before the primary may have tried the backup
	// then; from now on the primary answers every NACK.
	before, err := run.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sts, err := run.Wait(ctx, time.Minute, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Verify(); err != nil {
		t.Fatal(err)
	}
	for i, st := range sts {
		if st.GetFailovers() != before[i].GetFailovers() || st.GetActiveSender() != run.Sender.Addr {
			t.Errorf("%s: failovers %d -> %d, active sender %q; want no failover, the primary %s", st.GetReceiverId(),
				before[i].GetFailovers(), st.GetFailovers(), st.GetActiveSender(), run.Sender.Addr)
		}
	}
}

func statusEpoch(t *testing.T, ctx context.Context, p *cloud.Proc) uint64 {
	t.Helper()
	st, err := p.SenderStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st.GetEpoch()
}
