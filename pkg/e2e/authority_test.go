package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// These tests hold guarantee S2 with real processes: receivers delete or
// replace content only on an authoritative manifest from the cloud's
// active sender, never because a scan saw nothing, and never wholesale
// without an operator's confirmation.

// authorityCloud starts real processes over origin (channel "c"), with a
// backup over backupOrigin when it is not empty, and returns the run and
// a context bounded by three minutes.
func authorityCloud(t *testing.T, origin, backupOrigin string, receivers int, senderArgs ...string) (*cloud.Run, context.Context) {
	t.Helper()
	skipShort(t)
	cl, err := cloud.New(binDir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	args := append([]string{"-rate", "16M", "-period", "300ms", "-health-timeout", "200ms", "-rescan", "200ms", "-log-level", "info"}, senderArgs...)
	run, err := cl.Distribute(ctx, cloud.Distribution{
		Origin:       origin,
		Channel:      "c",
		Receivers:    receivers,
		Backup:       backupOrigin != "",
		BackupOrigin: backupOrigin,
		SenderArgs:   args,
		BackupArgs:   append(args, "-check-interval", "300ms", "-primary-grace", "500ms"),
		ReceiverArgs: []string{"-nack-timeout", "300ms", "-scan-interval", "500ms", "-manifest-refresh", "200ms", "-log-level", "info"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.Wait(ctx, time.Minute, 50*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if err := run.Verify(); err != nil {
		t.Fatal(err)
	}
	return run, ctx
}

// waitObjects waits until every receiver of run is complete with n
// objects in its channel, and returns their statuses.
func waitObjects(t *testing.T, ctx context.Context, run *cloud.Run, n uint32, what string) []*pb.ReceiverStatus {
	t.Helper()
	var sts []*pb.ReceiverStatus
	waitFor(t, time.Minute, what, func() bool {
		var err error
		if sts, err = run.Statuses(ctx); err != nil {
			return false
		}
		for _, st := range sts {
			if !st.GetComplete() || st.GetChannels()[0].GetObjectsTotal() != n {
				return false
			}
		}
		return true
	})
	return sts
}

// writeFiles writes files of distinct content named names into dir.
func writeFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		writeFile(t, filepath.Join(dir, n), []byte(strings.Repeat("content of "+n+"\n", 2000)))
	}
}

// checkHolds fails unless every receiver of run holds exactly the files of
// want (a channel directory's digests), whole.
func checkHolds(t *testing.T, run *cloud.Run, want map[string]string) {
	t.Helper()
	for _, p := range run.Receivers {
		got, err := cloud.Digests(filepath.Join(run.DataDir(p), "c"))
		if err != nil {
			t.Fatal(err)
		}
		if err := cloud.Compare(want, got); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
}

// TestStandbyBackupManifestDeletesNothing (issue 12, failure 2): the
// primary's origin has a and b, the backup's only a. Receivers complete,
// the primary dies, and their periodic manifest refreshes reach the
// standing-by backup: its manifest is not authoritative, so b stays.
func TestStandbyBackupManifestDeletesNothing(t *testing.T) {
	dir := t.TempDir()
	origin, backupOrigin := filepath.Join(dir, "origin"), filepath.Join(dir, "backup-origin")
	writeFiles(t, filepath.Join(origin, "c"), "a.bin", "b.bin")
	writeFiles(t, filepath.Join(backupOrigin, "c"), "a.bin")
	want, err := cloud.Digests(filepath.Join(origin, "c"))
	if err != nil {
		t.Fatal(err)
	}
	run, ctx := authorityCloud(t, origin, backupOrigin, 2)
	before, err := run.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Sender.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Three refreshes each (200 ms apart) that only the backup answered.
	waitFor(t, time.Minute, "three manifest refreshes from the standing-by backup", func() bool {
		sts, err := run.Statuses(ctx)
		if err != nil {
			return false
		}
		for i, st := range sts {
			if st.GetCounters().GetManifestFetches() < before[i].GetCounters().GetManifestFetches()+3 {
				return false
			}
		}
		return true
	})
	checkHolds(t, run, want)
	sts, err := run.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range sts {
		if !st.GetComplete() || st.GetChannels()[0].GetManifestVersion() != before[i].GetChannels()[0].GetManifestVersion() {
			t.Errorf("%s: complete %v, manifest %016x; want complete on the primary's %016x", st.GetReceiverId(), st.GetComplete(),
				st.GetChannels()[0].GetManifestVersion(), before[i].GetChannels()[0].GetManifestVersion())
		}
	}
	if st := backupStatus(t, ctx, run); st.GetState() != pb.SenderState_SENDER_STATE_STANDBY {
		t.Errorf("backup %v, want it standing by: no receiver lacked anything", st.GetState())
	}
}

// TestManifestHeldBackUntilConfirmed: the origin loses four of six files;
// the primary's new manifest would remove more than half of the channel,
// so receivers keep every file, show the held-back manifest with an alert,
// and install it only when an operator confirms with nackctl. Then the
// channel directory is replaced by a symlink to it (failure 4): nothing is
// removed, and a file added through the link arrives.
func TestManifestHeldBackUntilConfirmed(t *testing.T) {
	dir := t.TempDir()
	origin := filepath.Join(dir, "origin")
	chanDir := filepath.Join(origin, "c")
	names := []string{"f1", "f2", "f3", "f4", "f5", "f6"}
	writeFiles(t, chanDir, names...)
	all, err := cloud.Digests(chanDir)
	if err != nil {
		t.Fatal(err)
	}
	run, ctx := authorityCloud(t, origin, "", 2)

	for _, n := range names[2:] {
		if err := os.Remove(filepath.Join(chanDir, n)); err != nil {
			t.Fatal(err)
		}
	}
	var held uint64
	waitFor(t, time.Minute, "every receiver to hold the new manifest back", func() bool {
		sts, err := run.Statuses(ctx)
		if err != nil {
			return false
		}
		for _, st := range sts {
			h := st.GetChannels()[0].GetHeldManifest()
			if h == nil {
				return false
			}
			held = h.GetManifestVersion()
		}
		return true
	})
	checkHolds(t, run, all)
	sts, err := run.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		h := st.GetChannels()[0].GetHeldManifest()
		if h.GetObjectsRemoved() != 4 || h.GetObjectsTotal() != 2 {
			t.Errorf("%s: held manifest removes %d, lists %d; want 4 and 2", st.GetReceiverId(), h.GetObjectsRemoved(), h.GetObjectsTotal())
		}
		alerted := false
		for _, a := range st.GetRecentAlerts() {
			alerted = alerted || (a.GetKind() == pb.AlertKind_ALERT_KIND_MANIFEST_MISMATCH && strings.Contains(a.GetMessage(), "held back"))
		}
		if !alerted {
			t.Errorf("%s: no alert for the held-back manifest: %v", st.GetReceiverId(), st.GetRecentAlerts())
		}
	}
	if code, out, errOut := nackctl(t, "-addr", run.Receivers[0].Addr, "status"); code != 0 || !strings.Contains(out, "HELD BACK") {
		t.Errorf("nackctl status: exit %d, no HELD BACK line:\n%s%s", code, out, errOut)
	}
	args := []string{"confirm-manifest", "-channel", "c", "-version", "0123"}
	if code, _, errOut := nackctl(t, append(args, run.Receivers[0].Addr)...); code == 0 || !strings.Contains(errOut, "held back") {
		t.Errorf("confirming another version: exit %d, %q; want a refusal naming the held-back version", code, errOut)
	}
	args[4] = fmt.Sprintf("%016x", held)
	for _, p := range run.Receivers {
		if code, out, errOut := nackctl(t, append(args, p.Addr)...); code != 0 || !strings.Contains(out, "4 objects removed") {
			t.Fatalf("nackctl confirm-manifest %s: exit %d\n%s%s", p.Addr, code, out, errOut)
		}
	}
	if err := run.Verify(); err != nil {
		t.Fatalf("after the confirmation: %v", err)
	}

	// The channel directory replaced by a symlink to it.
	moved := filepath.Join(dir, "moved-c")
	if err := os.Rename(chanDir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(moved, chanDir); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, moved, "f7")
	waitObjects(t, ctx, run, 3, "the file added through the symlinked channel directory")
	if err := run.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestDivergedBackupAlerts (issue 12, failure 3; guarantee A1): the
// backup's origin has one file changed, one missing and one extra. While
// both senders are alive the backup compares manifests and raises an
// alert naming the paths, before any failover. The primary is then killed
// for good mid-transfer: the backup takes over, the receivers follow its
// content — and say so with an alert each.
func TestDivergedBackupAlerts(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	origin, backupOrigin := filepath.Join(dir, "origin"), filepath.Join(dir, "backup-origin")
	for _, o := range []string{origin, backupOrigin} {
		if _, err := (cloud.Sample{LargeBytes: 40 << 20, Seed: 21}).Generate(filepath.Join(o, "c")); err != nil {
			t.Fatal(err)
		}
		writeFiles(t, filepath.Join(o, "c"), "a.txt")
	}
	writeFiles(t, filepath.Join(origin, "c"), "only-primary.txt")
	writeFile(t, filepath.Join(origin, "c", "changed.txt"), []byte("the primary's version"))
	writeFile(t, filepath.Join(backupOrigin, "c", "changed.txt"), []byte("the backup's version"))
	writeFiles(t, filepath.Join(backupOrigin, "c"), "only-backup.txt")

	cl, err := cloud.New(binDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"-rate", "8M", "-period", "300ms", "-health-timeout", "200ms", "-rescan", "200ms", "-log-level", "info"}
	run, err := cl.Distribute(ctx, cloud.Distribution{
		Origin: origin, Channel: "c", Receivers: 2, Backup: true, BackupOrigin: backupOrigin,
		SenderArgs:   args,
		BackupArgs:   append(args, "-check-interval", "300ms", "-primary-grace", "500ms", "-compare-interval", "200ms"),
		ReceiverArgs: []string{"-nack-timeout", "300ms", "-scan-interval", "500ms", "-log-level", "info"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var divergence string
	waitFor(t, 30*time.Second, "the backup's divergence alert", func() bool {
		st := backupStatus(t, ctx, run)
		for _, a := range st.GetRecentAlerts() {
			if a.GetKind() == pb.AlertKind_ALERT_KIND_MANIFEST_MISMATCH {
				divergence = a.GetMessage()
			}
		}
		return divergence != "" && len(st.GetDivergedChannels()) == 1
	})
	for _, p := range []string{"changed.txt", "only-primary.txt", "only-backup.txt"} {
		if !strings.Contains(divergence, p) {
			t.Errorf("the divergence alert does not name %s: %s", p, divergence)
		}
	}
	sts, err := run.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if st.GetComplete() {
			t.Fatalf("%s complete before the primary was killed: the take-over would not be exercised", st.GetReceiverId())
		}
	}
	if err := run.Sender.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sts, err = run.Wait(ctx, 2*time.Minute, 100*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := cloud.Digests(filepath.Join(backupOrigin, "c"))
	if err != nil {
		t.Fatal(err)
	}
	checkHolds(t, run, want)
	for _, st := range sts {
		alerted := false
		for _, a := range st.GetRecentAlerts() {
			alerted = alerted || strings.Contains(a.GetMessage(), "now follows sender")
		}
		if !alerted {
			t.Errorf("%s adopted the backup's content without an alert: %v", st.GetReceiverId(), st.GetRecentAlerts())
		}
	}
	t.Logf("backup: %s", divergence)
}
