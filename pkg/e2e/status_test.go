package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/client"
	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/sender"
)

// TestStuckReceiverSaysWhy: a receiver that cannot make progress says why
// in its status (the operator's first question), not only in WARN logs.
func TestStuckReceiverSaysWhy(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	writeFile(t, filepath.Join(origin, "c", "a.txt"), []byte("hello"))
	_, sn := c.sender(origin, nil)
	nowhere := reserveAddr(t)
	tests := []struct {
		name    string
		primary string
		channel string
		kind    pb.ChannelProblemKind
		says    []string
	}{
		{"unknown channel", sn.addr, "nope", pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_UNKNOWN_CHANNEL, []string{`"nope"`, "do not distribute"}},
		{"sender unreachable", nowhere, "c", pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_SENDER_UNREACHABLE, []string{nowhere, "connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := c.receiver(strings.ReplaceAll(tt.name, " ", "-"), tt.primary, func(cfg *receiver.Config) { cfg.Channels = []string{tt.channel} })
			var p *pb.ChannelProblem
			waitFor(t, 15*time.Second, "the receiver's status to name its problem", func() bool {
				p = r.Status(false).GetChannels()[0].GetProblem()
				return p.GetKind() == tt.kind
			})
			for _, s := range tt.says {
				if !strings.Contains(p.GetMessage(), s) {
					t.Errorf("problem %q does not say %q", p.GetMessage(), s)
				}
			}
			if p.GetSince() == nil {
				t.Errorf("problem %v has no time", p)
			}
		})
	}
	// A receiver of the real channel has none, and says who served its
	// manifest.
	ok, _ := c.receiver("fine", sn.addr, nil)
	waitComplete(t, 20*time.Second, ok)
	ch := ok.Status(false).GetChannels()[0]
	if ch.GetProblem() != nil || ch.GetManifestSender() != "sender" {
		t.Errorf("healthy receiver: problem %v, manifest sender %q; want none and \"sender\"", ch.GetProblem(), ch.GetManifestSender())
	}
}

// TestCompletionTimeCountsFromDistribution: a publication that arrives
// long after the receiver started reports how long its distribution took,
// not the receiver's uptime ("TOOK 35.9 s" for a 5 s transfer).
func TestCompletionTimeCountsFromDistribution(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	writeFile(t, filepath.Join(origin, "c", "a.txt"), []byte("first"))
	_, sn := c.sender(origin, nil)
	r, _ := c.receiver("r", sn.addr, nil)
	waitComplete(t, 20*time.Second, r)
	first := r.Status(false).GetChannels()[0]
	if first.GetLastComplete() == nil || first.GetDistributionStarted() == nil || first.GetCompletionTime() == nil {
		t.Fatalf("complete channel without its times: %v", first)
	}

	local := filepath.Join(c.dir, "new.bin")
	if err := os.WriteFile(local, make([]byte, 300<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc, err := client.Dial(sn.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	published := time.Now()
	resp, err := client.PublishFile(ctx, pb.NewSenderServiceClient(cc), "c", "new.bin", local)
	if err != nil {
		t.Fatal(err)
	}
	var ch *pb.ReceiverChannelStatus
	waitFor(t, 20*time.Second, "the publication to arrive", func() bool {
		ch = r.Status(false).GetChannels()[0]
		return ch.GetComplete() && ch.GetManifestVersion() == resp.GetManifestVersion()
	})
	began, done := ch.GetDistributionStarted().AsTime(), ch.GetLastComplete().AsTime()
	if began.Before(published) || !began.After(first.GetLastComplete().AsTime()) {
		t.Errorf("distribution began %v: want after the publication (%v) and after the first completion (%v)", began, published, first.GetLastComplete().AsTime())
	}
	if took := ch.GetCompletionTime().AsDuration(); (took-done.Sub(began)).Abs() > time.Millisecond || took > time.Since(published) {
		t.Errorf("completion time %v: want %v (last complete - distribution start), at most %v since the publication", took, done.Sub(began), time.Since(published))
	}
	if lp := ch.GetLastProgress(); lp == nil || lp.AsTime().Before(began) {
		t.Errorf("last progress %v: want within the distribution (from %v)", lp, began)
	}
}

// TestReceiversStartBeforePrimary: receivers and the backup start before
// the primary (every Compose up). The receivers end up following the
// primary with no failover counted, the backup raises no network alert
// and, checking the primary while it stands by, reports it alive with its
// epoch.
func TestReceiversStartBeforePrimary(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 5, MaxSmall: 16 << 10, LargeBytes: 512 << 10, Seed: 5}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	primaryAddr, backupAddr := reserveAddr(t), reserveAddr(t)
	backup, _ := c.senderAt(origin, backupAddr, func(cfg *sender.Config) {
		cfg.ID, cfg.Role, cfg.Peer = "backup", sender.Backup, primaryAddr
		cfg.CheckInterval = 200 * time.Millisecond
	})
	r, _ := c.receiver("r", primaryAddr, func(cfg *receiver.Config) {
		cfg.Backup = backupAddr
		cfg.NackTimeout = 300 * time.Millisecond
	})
	waitFor(t, 10*time.Second, "the receiver to have tried its primary", func() bool {
		return r.Status(false).GetChannels()[0].GetProblem() != nil
	})
	primary, _ := c.senderAt(origin, primaryAddr, func(cfg *sender.Config) { cfg.Peer = backupAddr })
	waitComplete(t, 30*time.Second, r)
	verify(t, origin, filepath.Join(c.dir, "r"))

	st := r.Status(false)
	if st.GetActiveSender() != primaryAddr && st.GetActiveSender() != "" {
		t.Errorf("active sender %q, want the primary %s (or none when no NACK was needed)", st.GetActiveSender(), primaryAddr)
	}
	if st.GetFailovers() != 0 {
		t.Errorf("%d failovers counted, want 0: every packet came from the primary", st.GetFailovers())
	}
	for _, e := range st.GetEpochs() {
		if e.GetBackup() {
			t.Errorf("packets from the backup: %v", e)
		}
	}
	if p := st.GetChannels()[0].GetProblem(); p != nil {
		t.Errorf("problem %v left after completing", p)
	}
	epoch := primary.Status(false).GetEpoch()
	var bs *pb.SenderStatus
	waitFor(t, 10*time.Second, "the backup to see the primary", func() bool {
		bs = backup.Status(false)
		return bs.GetPrimaryAlive() && bs.GetPrimaryEpoch() == epoch
	})
	if bs.GetPrimaryState() != pb.SenderState_SENDER_STATE_ACTIVE || bs.GetPrimarySeenAt() == nil || bs.GetState() != pb.SenderState_SENDER_STATE_STANDBY {
		t.Errorf("backup: state %v, view of the primary %v seen %v; want standby, primary active and seen", bs.GetState(), bs.GetPrimaryState(), bs.GetPrimarySeenAt())
	}
	for _, a := range bs.GetRecentAlerts() {
		if a.GetKind() == pb.AlertKind_ALERT_KIND_NETWORK {
			t.Errorf("network alert for a receiver that started before its primary: %v", a)
		}
	}
}

// TestWatchSurvivesAReceiverGoingAway: nackctl watch over two receivers
// goes on showing the one that stays when the other stops, and marks the
// gone one UNREACHABLE (it exited with a garbled error before).
func TestWatchSurvivesAReceiverGoingAway(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	writeFile(t, filepath.Join(origin, "c", "a.txt"), []byte("hello"))
	_, sn := c.sender(origin, nil)
	r1, n1 := c.receiver("stays", sn.addr, nil)
	r2, n2 := c.receiver("goes", sn.addr, nil)
	waitComplete(t, 20*time.Second, r1, r2)

	cmd := exec.Command(filepath.Join(binDir, "nackctl"), "watch", "-interval", "200ms", "-for", "60s", n2.addr, n1.addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	expect := func(what string, match func(string) bool) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("nackctl watch ended before %s", what)
				}
				if match(l) {
					return
				}
			case <-deadline:
				t.Fatalf("no line showing %s", what)
			}
		}
	}
	expect("both receivers", func(l string) bool { return strings.HasPrefix(l, "goes ") && strings.Contains(l, "done") })
	n2.stop()
	expect("the gone receiver marked", func(l string) bool {
		return strings.Contains(l, n2.addr) && strings.Contains(l, "UNREACHABLE")
	})
	expect("the other receiver still watched", func(l string) bool { return strings.HasPrefix(l, "stays ") && strings.Contains(l, "done") })
	if cmd.ProcessState != nil {
		t.Fatalf("nackctl watch exited: %v", cmd.ProcessState)
	}
}

// TestCLIOnUnknownChannelAndQuietAlerts: nackctl publish into a channel the
// sender does not have fails (exit 1, naming -create) and creates nothing;
// with -create it works; nackctl alerts says that it follows a stream that
// has nothing to show yet.
func TestCLIOnUnknownChannelAndQuietAlerts(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	writeFile(t, filepath.Join(origin, "c", "a.txt"), []byte("hello"))
	_, sn := c.sender(origin, nil)
	_, rn := c.receiver("r", sn.addr, nil)
	file := filepath.Join(c.dir, "x.bin")
	writeFile(t, file, []byte("x"))

	code, _, stderr := nackctl(t, "-addr", sn.addr, "publish", "-channel", "nope", file)
	if code != 1 || !strings.Contains(stderr, "unknown channel") || !strings.Contains(stderr, "-create") {
		t.Errorf("publish into an unknown channel: exit %d, %q; want 1, naming -create", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(origin, "nope")); !os.IsNotExist(err) {
		t.Errorf("the refused publication created the channel: %v", err)
	}
	if code, stdout, stderr := nackctl(t, "-addr", sn.addr, "publish", "-channel", "nope", "-create", file); code != 0 || !strings.Contains(stdout, "published") {
		t.Errorf("publish -create: exit %d, %q %q", code, stdout, stderr)
	}

	code, stdout, stderr := nackctl(t, "alerts", "-for", "300ms", rn.addr)
	if code != 0 || stdout != "" || !strings.Contains(stderr, "following the alerts of "+rn.addr) {
		t.Errorf("alerts of a quiet receiver: exit %d, stdout %q, stderr %q; want 0, nothing, and the following notice", code, stdout, stderr)
	}

	// watch -until-complete whose -for runs out fails, and shows why the
	// stuck receiver is stuck.
	_, ln := c.receiver("lost", sn.addr, func(cfg *receiver.Config) { cfg.Channels = []string{"missing"} })
	code, stdout, stderr = nackctl(t, "watch", "-until-complete", "-for", "1500ms", "-interval", "200ms", rn.addr, ln.addr)
	if code != 1 || !strings.Contains(stderr, "not every receiver complete") || !strings.Contains(stdout, "STUCK: unknown channel") {
		t.Errorf("watch -until-complete over a stuck receiver: exit %d, stdout %q, stderr %q; want 1, the problem shown", code, stdout, stderr)
	}
}
