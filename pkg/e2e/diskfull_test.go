package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/sender"
)

// TestDiskFullPausesAndResumes gives a receiver a data directory on an
// 8 MiB tmpfs and a channel of about 16 MiB. When the disk fills the
// transfer pauses with a storage alert (no NACKs, packets counted as
// paused), every file under a final name is whole and verified; when the
// file system is grown the receiver resumes by itself and completes with
// verified files. Needs root (mount): skipped without it, unless
// NACKCAST_REQUIRE_ROOT_TESTS is set (CI as root sets it), and as root a
// tmpfs that cannot be mounted fails the test rather than skipping it.
func TestDiskFullPausesAndResumes(t *testing.T) {
	skipShort(t)
	if os.Geteuid() != 0 {
		if os.Getenv(requireRootEnv) != "" {
			t.Fatalf("%s is set but the test does not run as root: it cannot mount a small tmpfs", requireRootEnv)
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "nackcast-test", mnt).CombinedOutput(); err != nil {
		t.Fatalf("running as root but cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 30, MaxSmall: 64 << 10, LargeBytes: 15 << 20, Seed: 81}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	want, err := cloud.Digests(filepath.Join(origin, "c"))
	if err != nil {
		t.Fatal(err)
	}
	_, sn := c.sender(origin, func(cfg *sender.Config) { cfg.Rate = 20_000_000 })
	data := filepath.Join(mnt, "r1")
	r, _ := c.receiver("r1", sn.addr, func(cfg *receiver.Config) {
		cfg.DataDir = data
		cfg.MinFreeBytes = 2 << 20
		cfg.CheckpointInterval = 100 * time.Millisecond
	})
	waitFor(t, 60*time.Second, "the transfer to pause on the full disk", func() bool { return r.Status(false).GetDiskFull() })
	time.Sleep(500 * time.Millisecond)
	st := r.Status(false)
	if !st.GetDiskFull() || st.GetComplete() {
		t.Fatalf("disk_full %v, complete %v: want a paused, incomplete transfer", st.GetDiskFull(), st.GetComplete())
	}
	var alerted bool
	for _, a := range st.GetRecentAlerts() {
		alerted = alerted || a.GetKind() == pb.AlertKind_ALERT_KIND_STORAGE
	}
	if !alerted {
		t.Error("no storage alert raised")
	}
	nacks := st.GetCounters().GetNacksSent()
	time.Sleep(time.Second)
	st = r.Status(false)
	if got := st.GetCounters().GetNacksSent(); got != nacks {
		t.Errorf("%d NACKs sent while paused", got-nacks)
	}
	n := checkFinals(t, want, filepath.Join(data, "c"))
	t.Logf("paused: %d files under their final names, all verified; %d packets not filed", n, st.GetCounters().GetPacketsPaused())

	if out, err := exec.Command("mount", "-o", "remount,size=64m", mnt).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	waitComplete(t, 60*time.Second, r)
	verify(t, origin, data)
	if r.Status(false).GetDiskFull() {
		t.Error("still marked disk full after completing")
	}
}
