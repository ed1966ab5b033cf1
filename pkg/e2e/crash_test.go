package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/store"
)

// checkFinals fails the test if any file under a final name in dir (the
// receiver's copy of the channel) differs from the origin's: a file under
// its final name must always be whole and verified, whenever the
// receiver died. Partial files live elsewhere; names are compared by path.
func checkFinals(t *testing.T, want map[string]string, dir string) int {
	t.Helper()
	got, err := cloud.Digests(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return 0
		}
		t.Fatal(err)
	}
	for p, sum := range got {
		if strings.HasPrefix(p, ".") {
			continue
		}
		w, ok := want[p]
		if !ok {
			t.Errorf("%s: a file the origin does not have", p)
		} else if w != sum {
			t.Errorf("%s: under its final name with content that is not the origin's", p)
		}
	}
	return len(got)
}

// senderCloud starts a cloud of real processes with channel "c" of sample
// in its origin and a primary sender at rate; it returns the cloud, the
// origin, the origin's digests, the sender and a context bounded by 4
// minutes.
func senderCloud(t *testing.T, sample cloud.Sample, rate string) (*cloud.Cloud, string, map[string]string, *cloud.Proc, context.Context) {
	t.Helper()
	skipShort(t)
	cl, err := cloud.New(binDir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	origin := filepath.Join(cl.Dir, "origin")
	if _, err := sample.Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	want, err := cloud.Digests(filepath.Join(origin, "c"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	snd, err := cl.Start("sender", "sender", "-origin", origin, "-rate", rate, "-period", "200ms", "-max-passes", "10", "-log-level", "warn")
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	return cl, origin, want, snd, ctx
}

// TestCrashDuringCommits kills a receiver with SIGKILL at random moments
// while it is committing many small objects (group commits of fsyncs and
// renames), restarts it each time, and checks after every kill that each
// file already under its final name is whole and verified; at the end the
// receiver completes and its copy matches the origin. The rate keeps the
// first pass (about 16 MB at 3 MB/s) longer than the kills take, and the
// test fails unless every kill landed on an incomplete receiver.
func TestCrashDuringCommits(t *testing.T) {
	cl, origin, want, snd, ctx := senderCloud(t, cloud.Sample{SmallFiles: 1500, MaxSmall: 16 << 10, LargeBytes: 4 << 20, Seed: 51}, "3M")
	data := filepath.Join(cl.Dir, "r1")
	rcv, err := cl.Start("r1", "receiver", "-id", "r1", "-data", data, "-channels", "c",
		"-primary", snd.Addr, "-checkpoint", "100ms", "-nack-timeout", "300ms", "-log-level", "warn")
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(51, 52))
	const kills = 6
	committed := 0
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(150+rnd.IntN(500)) * time.Millisecond)
		if st, err := rcv.ReceiverStatus(ctx); err == nil && st.GetComplete() {
			t.Fatalf("the receiver completed before kill %d: the test must kill it %d times mid-transfer (slow the rate)", i+1, kills)
		}
		if err := rcv.Kill(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		n := checkFinals(t, want, filepath.Join(data, "c"))
		if n > committed {
			committed = n
		}
		t.Logf("kill %d: %d files under their final names, all verified", i+1, n)
		if err := cl.Restart(rcv); err != nil {
			t.Fatal(err)
		}
		if err := rcv.WaitServing(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if committed == 0 {
		t.Fatalf("no file was under its final name at any of the %d kills: the kills missed the commits", kills)
	}
	waitFor(t, 2*time.Minute, "completion after the kills", func() bool {
		st, err := rcv.ReceiverStatus(ctx)
		return err == nil && st.GetComplete()
	})
	verify(t, origin, data)
}

// TestPeriodicScrub: bytes flipped under a final name, with the disk scan
// out of the way, are found by the periodic scrub and fetched again.
func TestPeriodicScrub(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 5, MaxSmall: 16 << 10, LargeBytes: 2 << 20, Seed: 61}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	_, sn := c.sender(origin, nil)
	r, _ := c.receiver("r1", sn.addr, func(cfg *receiver.Config) {
		cfg.DiskScanInterval = time.Hour
		cfg.ScrubInterval = 300 * time.Millisecond
		cfg.ScrubRate = 1 << 30
	})
	waitComplete(t, 30*time.Second, r)
	victim := filepath.Join(c.dir, "r1", "c", "large", "large.bin")
	f, err := os.OpenFile(victim, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("scrub me"), 1000); err != nil {
		t.Fatal(err)
	}
	f.Close()
	waitFor(t, 30*time.Second, "the scrub to find the damage", func() bool {
		return r.Status(false).GetCounters().GetVerifyFailures() > 0
	})
	waitComplete(t, 30*time.Second, r)
	verify(t, origin, filepath.Join(c.dir, "r1"))
}

// TestCrashAtEachCommitStep kills a receiver (SIGKILL, from inside, at a
// chosen pass) at each step of its write and commit path: chunk write,
// checkpoint after the data sync, bitmap rename, verification, data sync,
// rename to the final name, directory sync. After each crash every file
// under a final name is whole and verified; restarted, the receiver
// resumes and completes with verified files.
func TestCrashAtEachCommitStep(t *testing.T) {
	cl, origin, want, snd, ctx := senderCloud(t, cloud.Sample{SmallFiles: 60, MaxSmall: 16 << 10, LargeBytes: 6 << 20, Seed: 71}, "6M")
	dir := cl.Dir
	at := map[string]int{"write": 40, "checkpoint": 2, "bitmap-rename": 2, "verify": 10, "sync": 4, "rename": 10, "sync-dir": 4}
	for _, step := range store.CrashSteps {
		t.Run(step, func(t *testing.T) {
			name := "r-" + step
			data := filepath.Join(dir, name)
			base := []string{"-id", name, "-data", data, "-channels", "c", "-primary", snd.Addr,
				"-checkpoint", "50ms", "-nack-timeout", "300ms", "-log-level", "warn"}
			crashAt := fmt.Sprintf("%s:%d", step, at[step])
			rcv, err := cl.Start(name, "receiver", append(base, "-test-crash-at", crashAt)...)
			if err != nil {
				t.Fatal(err)
			}
			waitFor(t, time.Minute, "the receiver to crash at "+crashAt, func() bool { return !rcv.Running() })
			if strings.Contains(rcv.LogTail(20), "channel complete") {
				t.Fatalf("the receiver completed before reaching %s", crashAt)
			}
			n := checkFinals(t, want, filepath.Join(data, "c"))
			t.Logf("crashed at %s (%v): %d files under their final names, all verified", crashAt, rcv.ExitErr(), n)
			rcv.Args = slices.DeleteFunc(rcv.Args, func(a string) bool { return a == "-test-crash-at" || a == crashAt })
			if err := cl.Restart(rcv); err != nil {
				t.Fatal(err)
			}
			if err := rcv.WaitServing(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 2*time.Minute, "completion after the crash", func() bool {
				st, err := rcv.ReceiverStatus(ctx)
				return err == nil && st.GetComplete()
			})
			verify(t, origin, data)
		})
	}
}
