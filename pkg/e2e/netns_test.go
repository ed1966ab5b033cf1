package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/netlab"
)

// TestNetnsFailover runs a cloud of real processes on separate hosts
// (network namespaces on a bridge): a primary, a backup, three receivers
// and a fourth receiver whose path to the primary's gRPC port silently
// drops everything.
//
//   - The stranded receiver's NACKs time out and reach the backup, which
//     finds the primary alive and raises a network alert, not a takeover.
//   - The primary's host then goes silent in the middle of the transfer (no
//     resets: every packet to and from it is dropped). The receivers' NACKs
//     time out, the backup's health checks time out, the backup takes over
//     and every receiver completes with verified files.
//   - The primary's host comes back: the primary never stopped (its
//     failed sends while isolated were counted as lost packets), so the
//     backup hears it on the group, or the primary hears the backup and
//     signals it, or the backup's periodic check finds it serving, and the
//     backup hands back; the primary multicasts again.
func TestNetnsFailover(t *testing.T) {
	netlab.Require(t)
	lab, err := netlab.New(6, 1500)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	primaryHost, backupHost, stuckHost := lab.Hosts[0], lab.Hosts[1], lab.Hosts[5]

	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	skipShort(t)
	cl, err := cloud.New(binDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	origin := filepath.Join(dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 30, MaxSmall: 64 << 10, LargeBytes: 48 << 20, Seed: 21}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const nackTimeout, healthTimeout = 500 * time.Millisecond, 300 * time.Millisecond
	primaryAddr := primaryHost.Addr + ":7001"
	backupAddr := backupHost.Addr + ":7002"
	common := []string{"-origin", origin, "-channels", "c", "-rate", "16M", "-period", "300ms", "-health-timeout", healthTimeout.String(), "-log-level", "info"}
	backup, err := cl.StartOn(backupHost, "backup", "backup", 7002, append(common, "-primary", primaryAddr, "-check-interval", "500ms", "-primary-grace", "500ms")...)
	if err != nil {
		t.Fatal(err)
	}
	primary, err := cl.StartOn(primaryHost, "sender", "sender", 7001, append(common, "-backup", backupAddr, "-state-dir", filepath.Join(dir, "primary-state"))...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*cloud.Proc{backup, primary} {
		if err := p.WaitServing(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := stuckHost.BlockTCP(primaryHost.Addr, 7001); err != nil {
		t.Fatal(err)
	}
	var receivers []*cloud.Proc
	for i, h := range lab.Hosts[2:] {
		name := fmt.Sprintf("receiver-%d", i+1)
		if h == stuckHost {
			name = "stranded"
		}
		p, err := cl.StartOn(h, name, "receiver", 7101, "-id", name, "-data", filepath.Join(dir, name), "-channels", "c",
			"-primary", primaryAddr, "-backup", backupAddr, "-nack-timeout", nackTimeout.String(), "-scan-interval", "500ms", "-log-level", "info")
		if err != nil {
			t.Fatal(err)
		}
		receivers = append(receivers, p)
	}
	for _, p := range receivers {
		if err := p.WaitServing(ctx); err != nil {
			t.Fatal(err)
		}
	}
	healthy := receivers[:3]

	// Alert, not takeover, for the stranded receiver.
	waitFor(t, time.Minute, "network alert", func() bool {
		st, err := backup.SenderStatus(ctx)
		return err == nil && st.GetAlerts() > 0
	})
	st, _ := backup.SenderStatus(ctx)
	if st.GetState() != pb.SenderState_SENDER_STATE_STANDBY || st.GetTakeovers() != 0 || st.GetRecentAlerts()[0].GetReceiverId() != "stranded" {
		t.Fatalf("after the stranded receiver's NACKs: state %v, takeovers %d, alerts %v", st.GetState(), st.GetTakeovers(), st.GetRecentAlerts())
	}

	// The primary's host goes silent mid-transfer.
	waitFor(t, time.Minute, "a third of the transfer", func() bool {
		for _, p := range healthy {
			rs, err := p.ReceiverStatus(ctx)
			if err != nil || len(rs.GetChannels()) != 1 || rs.GetChannels()[0].GetBytesHave()*3 < rs.GetChannels()[0].GetBytesTotal() {
				return false
			}
		}
		return true
	})
	silenced := time.Now()
	if err := primaryHost.Isolate(); err != nil {
		t.Fatal(err)
	}
	var sts []*pb.ReceiverStatus
	waitFor(t, 2*time.Minute, "completion through the backup", func() bool {
		sts = sts[:0]
		for _, p := range healthy {
			rs, err := p.ReceiverStatus(ctx)
			if err != nil || !rs.GetComplete() {
				return false
			}
			sts = append(sts, rs)
		}
		return true
	})
	complete := time.Since(silenced)
	first, ok := firstBackupPacket(sts, silenced)
	if !ok {
		t.Fatal("no packet from the backup after the primary went silent")
	}
	t.Logf("primary silenced -> first backup packet %v, -> all receivers complete %v (nack-timeout %v, health-timeout %v retried once)",
		first.Sub(silenced).Round(time.Millisecond), complete.Round(time.Millisecond), nackTimeout, healthTimeout)
	for _, p := range healthy {
		verify(t, origin, filepath.Join(dir, p.Name))
	}

	// The primary's host comes back; the primary never stopped.
	if err := primaryHost.Restore(); err != nil {
		t.Fatal(err)
	}
	var last *pb.SenderStatus
	defer func() {
		if t.Failed() && last != nil {
			t.Logf("backup: state %v, takeovers %d, alerts %d; log tail:\n%s", last.GetState(), last.GetTakeovers(), last.GetAlerts(), backup.LogTail(30))
		}
	}()
	waitFor(t, 30*time.Second, "hand-back after the periodic check", func() bool {
		st, err := backup.SenderStatus(ctx)
		if err == nil {
			last = st
		}
		return err == nil && st.GetState() == pb.SenderState_SENDER_STATE_STANDBY && st.GetTakeovers() == 1
	})
	log, _ := os.ReadFile(backup.Log)
	for _, want := range []string{"network alert", "receiver=stranded", "primary is down: backup taking over"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("backup log lacks %q", want)
		}
	}
	handedBack := false
	for _, how := range []string{"primary heard on the group: backup standing by", "primary reclaimed the sender role", "primary is serving again: backup handing back"} {
		handedBack = handedBack || strings.Contains(string(log), how)
	}
	if !handedBack {
		t.Error("backup log says nothing of a hand-back")
	}
	// The primary multicasts again: a new object reaches the healthy
	// receivers from it.
	writeFile(t, filepath.Join(origin, "c", "after-return.bin"), make([]byte, 2<<20))
	waitFor(t, time.Minute, "the object published after the return", func() bool {
		for _, p := range healthy {
			rs, err := p.ReceiverStatus(ctx)
			if err != nil || !rs.GetComplete() || rs.GetChannels()[0].GetObjectsTotal() != 32 {
				return false
			}
		}
		return true
	})
	ps, err := primary.SenderStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps.GetCounters().GetPasses() == 0 {
		t.Error("the primary made no pass")
	}
}

// TestNetnsHostileFlood: hosts on a bridge, packets authenticated, 5%
// random loss on every receiver (nftables), and an attacker host flooding
// the group with forged packets for the channel at the rate of the real
// traffic. Every receiver completes with verified files and counts the
// forgeries as unauthenticated.
func TestNetnsHostileFlood(t *testing.T) {
	netlab.Require(t)
	lab, err := netlab.New(4, 1500)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	senderHost, attacker := lab.Hosts[0], lab.Hosts[3]
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	skipShort(t)
	cl, err := cloud.New(binDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	origin := filepath.Join(dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 30, MaxSmall: 64 << 10, LargeBytes: 24 << 20, Seed: 23}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "packet.keys")
	writeKeys(t, keys)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const rate = 16_000_000
	snd, err := cl.StartOn(senderHost, "sender", "sender", 7001, "-origin", origin, "-channels", "c", "-rate", fmt.Sprint(rate),
		"-packet-key-file", keys, "-log-level", "warn")
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	var receivers []*cloud.Proc
	for i, h := range lab.Hosts[1:3] {
		if err := h.Loss(0.05); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("receiver-%d", i+1)
		p, err := cl.StartOn(h, name, "receiver", 7101, "-id", name, "-data", filepath.Join(dir, name), "-channels", "c",
			"-primary", snd.Addr, "-packet-key-file", keys, "-log-level", "warn")
		if err != nil {
			t.Fatal(err)
		}
		receivers = append(receivers, p)
	}
	flood := attacker.Command(filepath.Join(binDir, "flooder"), "-iface", attacker.Iface, "-group", cl.Group, "-port", fmt.Sprint(cl.Port),
		"-channel", fmt.Sprint(manifest.ChannelID("c")), "-rate", fmt.Sprint(rate/1468), "-for", "60s")
	var out strings.Builder
	flood.Stdout = &out
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if flood.ProcessState == nil {
			// The test ended before the flooder did: stop it. Its exit
			// status then only reports the kill.
			if err := flood.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("stop the flooder: %v", err)
			}
			_ = flood.Wait()
		}
	}()
	start := time.Now()
	waitFor(t, 2*time.Minute, "every receiver complete under the flood", func() bool {
		for _, p := range receivers {
			st, err := p.ReceiverStatus(ctx)
			if err != nil || !st.GetComplete() {
				return false
			}
		}
		return true
	})
	took := time.Since(start)
	for _, p := range receivers {
		verify(t, origin, filepath.Join(dir, p.Name))
		st, err := p.ReceiverStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ct := st.GetCounters()
		t.Logf("%s complete in %v under the flood: unauthenticated %d, malformed %d, overflow %d", p.Name, took.Round(time.Millisecond), ct.GetPacketsUnauthenticated(), ct.GetPacketsMalformed(), ct.GetPacketsOverflow())
		if ct.GetPacketsUnauthenticated() == 0 {
			t.Errorf("%s counted no forged packet: the flood did not reach it", p.Name)
		}
	}
}

// TestNetnsMulticastCutCompletesByUnicast (issue 12, failure 1; guarantee
// L1): a receiver whose multicast is cut (nftables drops every UDP
// datagram it would receive; gRPC untouched) after it has read packets of
// the current epoch goes on NACKing. It must not be told WAIT for ever:
// the sender answers UNICAST once the passes are used up, and the receiver
// completes by pulling, within a bound derived from the configuration.
func TestNetnsMulticastCutCompletesByUnicast(t *testing.T) {
	netlab.Require(t)
	skipShort(t)
	lab, err := netlab.New(3, 1500)
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	senderHost, cutHost, okHost := lab.Hosts[0], lab.Hosts[1], lab.Hosts[2]
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cl, err := cloud.New(binDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	origin := filepath.Join(dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 20, MaxSmall: 64 << 10, LargeBytes: 24 << 20, Seed: 31}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const passes, period = 2, 300 * time.Millisecond
	addr := senderHost.Addr + ":7001"
	snd, err := cl.StartOn(senderHost, "sender", "sender", 7001, "-origin", origin, "-channels", "c", "-rate", "8M",
		"-period", period.String(), "-max-passes", fmt.Sprint(passes), "-log-level", "info")
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	var rs []*cloud.Proc
	for i, h := range []*netlab.Host{cutHost, okHost} {
		name := fmt.Sprintf("receiver-%d", i+1)
		p, err := cl.StartOn(h, name, "receiver", 7101, "-id", name, "-data", filepath.Join(dir, name), "-channels", "c",
			"-primary", addr, "-nack-timeout", "500ms", "-scan-interval", "500ms", "-log-level", "info")
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WaitServing(ctx); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, p)
	}
	cut := rs[0]
	waitFor(t, time.Minute, "the receiver to read packets of the epoch", func() bool {
		st, err := cut.ReceiverStatus(ctx)
		return err == nil && len(st.GetEpochs()) > 0 && st.GetCounters().GetMulticastBytes() > 2<<20
	})
	if err := cutHost.Loss(1); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	// L1's bound for this configuration: every pass the receiver asks for
	// (at most passes, each after a period and the sender's horizon
	// grace of period + merge window), NACK intervals of a few seconds at
	// most, and the pull of the whole channel (about 26 MB) over a
	// loopback-class link: well under 60 s; 90 s leaves room for a loaded
	// machine.
	const bound = 90 * time.Second
	var st *pb.ReceiverStatus
	waitFor(t, bound, "the cut receiver to complete by unicast", func() bool {
		st, err = cut.ReceiverStatus(ctx)
		return err == nil && st.GetComplete()
	})
	took := time.Since(cutAt)
	verify(t, origin, filepath.Join(dir, cut.Name))
	ct := st.GetCounters()
	t.Logf("multicast cut -> complete in %v: replies wait %d, unicast %d; unicast %d bytes, multicast %d bytes",
		took.Round(time.Millisecond), ct.GetRepliesWait(), ct.GetRepliesUnicast(), ct.GetUnicastBytes(), ct.GetMulticastBytes())
	if ct.GetRepliesUnicast() == 0 || ct.GetUnicastBytes() == 0 {
		t.Errorf("completed without a UNICAST reply or a pull: the cut was not exercised")
	}
	if _, err := rs[1].ReceiverStatus(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the other receiver to complete", func() bool {
		st, err := rs[1].ReceiverStatus(ctx)
		return err == nil && st.GetComplete()
	})
	verify(t, origin, filepath.Join(dir, rs[1].Name))
}
