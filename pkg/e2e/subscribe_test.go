package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/sender"
)

// TestRuntimeSubscriptions: a receiver started on channel c is assigned
// channel d at runtime and completes it; c is then removed with its
// content, d's content is kept across an unsubscribe and a re-subscribe,
// and the receiver restarted with -channels c comes back on its runtime
// set (d), complete without fetching d's content again. nackctl drives it.
func TestRuntimeSubscriptions(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	writeFile(t, filepath.Join(origin, "c", "one.txt"), []byte("of channel c"))
	writeFile(t, filepath.Join(origin, "d", "two.bin"), make([]byte, 200<<10))
	writeFile(t, filepath.Join(origin, "d", "sub/three.txt"), []byte("of channel d"))
	_, sn := c.sender(origin, nil)
	r, rn := c.receiver("edge", sn.addr, nil)
	waitComplete(t, 20*time.Second, r)
	data := filepath.Join(c.dir, "edge")

	// nackctl is the admin here (plaintext cloud): subscribe twice, the
	// second changes nothing.
	if code, out, errOut := nackctl(t, "subscribe", "-channel", "d", rn.addr); code != 0 || !strings.Contains(out, "subscribed to d; channels c,d") {
		t.Fatalf("nackctl subscribe: exit %d, %q %q", code, out, errOut)
	}
	if code, out, _ := nackctl(t, "subscribe", "-channel", "d", rn.addr); code != 0 || !strings.Contains(out, "already subscribed") {
		t.Errorf("second subscribe: exit %d, %q", code, out)
	}
	waitFor(t, 20*time.Second, "channel d complete", func() bool {
		st := r.Status(false)
		return st.GetComplete() && len(st.GetChannels()) == 2
	})
	verifyChannel(t, origin, data, "d")

	if code, out, errOut := nackctl(t, "unsubscribe", "-channel", "c", "-remove", rn.addr); code != 0 || !strings.Contains(out, "unsubscribed from c (1 objects deleted); channels d") {
		t.Fatalf("nackctl unsubscribe -remove: exit %d, %q %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "c")); !os.IsNotExist(err) {
		t.Errorf("channel c's content still on disk: %v", err)
	}
	if code, _, errOut := nackctl(t, "unsubscribe", "-channel", "c", rn.addr); code != 1 || !strings.Contains(errOut, "not subscribed") {
		t.Errorf("unsubscribe twice: exit %d, %q; want 1, not subscribed", code, errOut)
	}
	if code, _, errOut := nackctl(t, "subscribe", "-channel", "../x", rn.addr); code != 1 || !strings.Contains(errOut, "invalid channel name") {
		t.Errorf("subscribe to a hostile name: exit %d, %q", code, errOut)
	}
	if got := r.Subscriptions(); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("subscriptions %v, want [d]", got)
	}
	// Keep d's content across unsubscribe and subscribe.
	if _, _, err := r.Unsubscribe("d", false); err != nil {
		t.Fatal(err)
	}
	verifyChannel(t, origin, data, "d")
	if st := r.Status(false); len(st.GetChannels()) != 0 {
		t.Errorf("status after unsubscribing everything: %v", st.GetChannels())
	}
	if _, added, err := r.Subscribe("d"); err != nil || !added {
		t.Fatalf("subscribe again: %v %v", added, err)
	}
	waitComplete(t, 20*time.Second, r)

	// Restart with -channels c: the runtime set (d) wins, and d's content
	// is complete from disk.
	rn.stop()
	r2, _ := c.receiver("edge", sn.addr, func(cfg *receiver.Config) { cfg.Channels = []string{"c"} })
	if got := r2.Subscriptions(); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("subscriptions after a restart with -channels c: %v, want [d]", got)
	}
	waitComplete(t, 20*time.Second, r2)
	if got := r2.Stats().MulticastBytes.Load() + r2.Stats().UnicastBytes.Load(); got != 0 {
		t.Errorf("the restarted receiver fetched %d bytes of content it held", got)
	}
	if _, err := os.Stat(filepath.Join(data, "c")); !os.IsNotExist(err) {
		t.Errorf("the restart brought channel c back: %v", err)
	}
}

// verifyChannel checks a receiver's copy of channel ch against the origin.
func verifyChannel(t *testing.T, origin, dataDir, ch string) {
	t.Helper()
	want, err := cloud.Digests(filepath.Join(origin, ch))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cloud.Digests(filepath.Join(dataDir, ch))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != len(got) {
		t.Fatalf("channel %s: %d files, want %d", ch, len(got), len(want))
	}
	for p, d := range want {
		if got[p] != d {
			t.Errorf("channel %s: %s differs", ch, p)
		}
	}
}

// TestSubscriptionChurnWhileReceiving: channel d is subscribed and
// unsubscribed twenty times while its objects are being multicast,
// committed and pulled, its content removed every other time and kept
// otherwise; then subscribed for good. An unsubscribe with removal leaves
// nothing of d behind (no commit lands in a removed channel); the receiver
// ends complete and verified, with no partial file of d left; a
// subscription after the receiver stopped is refused.
func TestSubscriptionChurnWhileReceiving(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	writeFile(t, filepath.Join(origin, "c", "a.txt"), []byte("c"))
	for i := range 40 {
		writeFile(t, filepath.Join(origin, "d", fmt.Sprintf("f%02d.bin", i)), bytes.Repeat([]byte{byte(i)}, 20<<10+i))
	}
	_, sn := c.sender(origin, func(cfg *sender.Config) { cfg.Rate = 20_000_000 })
	r, rn := c.receiver("churn", sn.addr, nil)
	waitComplete(t, 20*time.Second, r)
	data := filepath.Join(c.dir, "churn")
	for i := range 20 {
		if _, _, err := r.Subscribe("d"); err != nil {
			t.Fatal(err)
		}
		// Let some of d arrive (a few objects), then take it away.
		waitFor(t, 45*time.Second, fmt.Sprintf("some of d in round %d (%v)", i, r.Status(false).GetChannels()), func() bool {
			for _, ch := range r.Status(false).GetChannels() {
				if ch.GetChannel() == "d" && ch.GetBytesHave() > uint64(i%4)*20<<10 {
					return true
				}
			}
			return false
		})
		remove := i%2 == 0
		if _, _, err := r.Unsubscribe("d", remove); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(data, "d")); remove && !os.IsNotExist(err) {
			t.Fatalf("round %d: d's files left after unsubscribing with removal: %v", i, err)
		}
	}
	if _, _, err := r.Subscribe("d"); err != nil {
		t.Fatal(err)
	}
	waitComplete(t, 60*time.Second, r)
	verifyChannel(t, origin, data, "d")
	verify(t, origin, data)
	parts, _ := os.ReadDir(filepath.Join(data, ".nackcast", "partial", "d"))
	if len(parts) != 0 {
		t.Errorf("%d partial files of d left after it completed: %v", len(parts), parts)
	}
	rn.stop()
	if _, _, err := r.Subscribe("e"); !errors.Is(err, receiver.ErrNotRunning) {
		t.Errorf("subscribe after the receiver stopped: %v, want ErrNotRunning", err)
	}
}
