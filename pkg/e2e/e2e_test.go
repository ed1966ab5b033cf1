package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/scheduler"
	"github.com/nackcast/nackcast/pkg/sender"
	"github.com/nackcast/nackcast/pkg/wire"
)

// TestDistributeMixedSizes: one sender, three receivers, a channel with an
// empty file, a one-byte file, many small files and a 64 MiB file; every
// receiver ends with the origin's SHA-256 for every file.
func TestDistributeMixedSizes(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	sample := cloud.Sample{SmallFiles: 200, MaxSmall: 32 << 10, LargeBytes: 64 << 20, Empty: true, Seed: 1}
	if _, err := sample.Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	// Receivers first: they wait for the sender, as after a CDN rollout.
	var rs []*receiver.Receiver
	addr := reserveAddr(t)
	for i := 1; i <= 3; i++ {
		r, _ := c.receiver(fmt.Sprintf("r%d", i), addr, nil)
		rs = append(rs, r)
	}
	s, _ := c.senderAt(origin, addr, nil)
	waitComplete(t, 90*time.Second, rs...)
	for _, r := range rs {
		verify(t, origin, filepath.Join(c.dir, r.Status(false).GetReceiverId()))
	}
	st := s.Status(false)
	t.Logf("sender: passes %d (repair %d), bytes sent %d, nacks %d", st.GetCounters().GetPasses(), st.GetCounters().GetRepairPasses(), st.GetCounters().GetBytesSent(), st.GetCounters().GetNacks())
}

// TestLossRepairedBySelectivePasses: with 5% of every receiver's datagrams
// dropped, delivery completes through NACK-driven repair passes that carry
// only what was asked for: the chunks themselves without forward error
// correction; Reed-Solomon parity shards where receivers lost different
// chunks of a block; and, with proactive parity, mostly no NACK at all.
func TestLossRepairedBySelectivePasses(t *testing.T) {
	tests := []struct {
		name       string
		fec        scheduler.FEC
		wantParity bool
	}{
		{"chunks", scheduler.FEC{}, false},
		{"parity repair", scheduler.FEC{Block: 32, Parity: 16}, true},
		{"proactive parity", scheduler.FEC{Block: 32, Parity: 16, Proactive: 4}, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(t)
			origin := filepath.Join(c.dir, "origin")
			sample := cloud.Sample{SmallFiles: 50, MaxSmall: 64 << 10, LargeBytes: 16 << 20, Seed: uint64(2 + i)}
			total, err := sample.Generate(filepath.Join(origin, "c"))
			if err != nil {
				t.Fatal(err)
			}
			s, sn := c.sender(origin, func(cfg *sender.Config) {
				cfg.Scheduler.MaxPasses = 10
				cfg.Scheduler.FEC = tt.fec
			})
			var rs []*receiver.Receiver
			for i := 1; i <= 3; i++ {
				r, _ := c.receiver(fmt.Sprintf("r%d", i), sn.addr, func(cfg *receiver.Config) { cfg.LossRate = 0.05 })
				rs = append(rs, r)
			}
			waitComplete(t, 90*time.Second, rs...)
			var rebuilt uint64
			for _, r := range rs {
				st := r.Status(false)
				verify(t, origin, filepath.Join(c.dir, st.GetReceiverId()))
				ct := st.GetCounters()
				if ct.GetPacketsDroppedInjected() == 0 {
					t.Errorf("%s: no injected drops: loss was not exercised", st.GetReceiverId())
				}
				rebuilt += ct.GetChunksRebuilt()
				t.Logf("%s: ranges asked %d, parity kept %d unused %d, chunks rebuilt %d", st.GetReceiverId(), ct.GetRangesRequested(), ct.GetParityReceived(), ct.GetParityUnused(), ct.GetChunksRebuilt())
			}
			sc := s.Status(false).GetCounters()
			ratio := float64(sc.GetBytesSent()) / float64(total)
			t.Logf("sender: passes %d (repair %d), wire bytes %d for %d content (%.3fx), parity packets %d, unicast %d", sc.GetPasses(), sc.GetRepairPasses(), sc.GetBytesSent(), total, ratio, sc.GetParityPacketsSent(), sc.GetPullBytes())
			if tt.fec.Proactive == 0 && sc.GetRepairPasses() == 0 {
				t.Errorf("no repair pass happened")
			}
			if got := sc.GetParityPacketsSent() > 0 && rebuilt > 0; got != tt.wantParity {
				t.Errorf("parity packets sent %d, chunks rebuilt %d: want parity used = %v", sc.GetParityPacketsSent(), rebuilt, tt.wantParity)
			}
			// Three receivers each losing 5% ask for about 15% of the
			// chunks; whole-object re-sends would be twice the content.
			if ratio > 1.6 {
				t.Errorf("sent %.2fx the content: repairs were not selective", ratio)
			}
		})
	}
}

// TestPassesCapLeadsToUnicast: with one multicast pass allowed, a receiver
// that lost chunks is told UNICAST and pulls the rest over gRPC.
func TestPassesCapLeadsToUnicast(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 10, MaxSmall: 64 << 10, LargeBytes: 4 << 20, Seed: 3}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	s, sn := c.sender(origin, func(cfg *sender.Config) { cfg.Scheduler.MaxPasses = 1 })
	r, _ := c.receiver("r1", sn.addr, func(cfg *receiver.Config) { cfg.LossRate = 0.2 })
	waitComplete(t, 60*time.Second, r)
	verify(t, origin, filepath.Join(c.dir, "r1"))
	ct := r.Status(false).GetCounters()
	if ct.GetRepliesUnicast() == 0 || ct.GetPulls() == 0 || ct.GetUnicastBytes() == 0 {
		t.Errorf("unicast replies %d, pulls %d, unicast bytes %d: want all > 0", ct.GetRepliesUnicast(), ct.GetPulls(), ct.GetUnicastBytes())
	}
	if sc := s.Status(false).GetCounters(); sc.GetRepairPasses() != 0 || sc.GetPulls() == 0 {
		t.Errorf("sender: %d repair passes (want 0 with the cap at 1), %d pulls", sc.GetRepairPasses(), sc.GetPulls())
	}
}

// TestNotFoundReachesReceiver: the receiver got its manifest from another
// sender (the primary was down) that holds an object the primary lacks.
// When the primary is back, its NOT_FOUND reaches the receiver, which
// refetches the manifest from the primary, drops the object and completes
// the rest. The primary multicasts on another port here, so the receiver
// hears no ANNOUNCE from it and learns only through the NACK reply.
func TestNotFoundReachesReceiver(t *testing.T) {
	c := newCluster(t)
	full := filepath.Join(c.dir, "full")
	partial := filepath.Join(c.dir, "partial")
	writeFile(t, filepath.Join(full, "c", "keep.bin"), bytes.Repeat([]byte("k"), 5000))
	writeFile(t, filepath.Join(full, "c", "gone.bin"), bytes.Repeat([]byte("g"), 5000))
	writeFile(t, filepath.Join(partial, "c", "keep.bin"), bytes.Repeat([]byte("k"), 5000))

	other := c.port + 1
	_, bn := c.sender(full, func(cfg *sender.Config) { cfg.Multicast.Port = other + 1 })
	primary := reserveAddr(t)
	r, _ := c.receiver("r1", primary, func(cfg *receiver.Config) {
		cfg.Backup = bn.addr
		cfg.Multicast.Port = other + 2
		cfg.NackTimeout = 200 * time.Millisecond
	})
	waitFor(t, 10*time.Second, "manifest from the second sender", func() bool {
		return len(r.Status(false).GetChannels()) == 1 && r.Status(false).GetChannels()[0].GetObjectsTotal() == 2
	})
	c.senderAt(partial, primary, func(cfg *sender.Config) {
		cfg.Multicast.Port = other + 3
		cfg.Scheduler.MaxPasses = 1
		cfg.AnnounceInterval = time.Hour
	})
	waitComplete(t, 30*time.Second, r)
	st := r.Status(false)
	if st.GetCounters().GetRepliesNotFound() == 0 {
		t.Errorf("no NOT_FOUND reply reached the receiver: %v", st.GetCounters())
	}
	if st.GetChannels()[0].GetObjectsTotal() != 1 || st.GetFailovers() == 0 || st.GetActiveSender() != primary {
		t.Errorf("status = %v", st)
	}
	verify(t, partial, filepath.Join(c.dir, "r1"))
}

// TestDeletedAndTruncatedFilesFetchedAgain: the disk scan notices files
// removed or truncated under the data directory and the receiver fetches
// them again.
func TestDeletedAndTruncatedFilesFetchedAgain(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 20, MaxSmall: 64 << 10, LargeBytes: 2 << 20, Seed: 4}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	_, sn := c.sender(origin, nil)
	r, _ := c.receiver("r1", sn.addr, nil)
	waitComplete(t, 30*time.Second, r)
	data := filepath.Join(c.dir, "r1", "c")
	if err := os.Remove(filepath.Join(data, "large", "large.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(data, "small", "000", "file-00003.bin"), 10); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "loss noticed", func() bool { return r.Status(false).GetCounters().GetObjectsLost() >= 2 })
	waitComplete(t, 30*time.Second, r)
	verify(t, origin, filepath.Join(c.dir, "r1"))
}

// TestReceiverKilledResumes: a receiver process killed with SIGKILL in the
// middle of a large object resumes from its persisted bitmap after a
// restart, fetching less than the whole object again.
func TestReceiverKilledResumes(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	cl, err := cloud.New(binDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	origin := filepath.Join(dir, "origin")
	const size = 48 << 20
	if _, err := (cloud.Sample{LargeBytes: size, Seed: 5}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	snd, err := cl.Start("sender", "sender", "-origin", origin, "-rate", "12M", "-period", "300ms", "-log-level", "warn")
	if err != nil {
		t.Fatal(err)
	}
	if err := snd.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	rcv, err := cl.Start("r1", "receiver", "-id", "r1", "-data", filepath.Join(dir, "r1"), "-channels", "c",
		"-primary", snd.Addr, "-checkpoint", "200ms", "-log-level", "warn")
	if err != nil {
		t.Fatal(err)
	}
	if err := rcv.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "half the object", func() bool {
		st, err := rcv.ReceiverStatus(ctx)
		return err == nil && len(st.GetChannels()) == 1 && st.GetChannels()[0].GetBytesHave() >= size/2
	})
	if err := rcv.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := cl.Restart(rcv); err != nil {
		t.Fatal(err)
	}
	if err := rcv.WaitServing(ctx); err != nil {
		t.Fatal(err)
	}
	var resumed uint64
	waitFor(t, 10*time.Second, "manifest after restart", func() bool {
		st, err := rcv.ReceiverStatus(ctx)
		if err != nil || len(st.GetChannels()) != 1 || st.GetChannels()[0].GetManifestVersion() == 0 {
			return false
		}
		resumed = st.GetChannels()[0].GetBytesHave()
		return true
	})
	waitFor(t, time.Minute, "completion after restart", func() bool {
		st, err := rcv.ReceiverStatus(ctx)
		return err == nil && st.GetComplete()
	})
	st, err := rcv.ReceiverStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fetched := st.GetCounters().GetMulticastBytes() + st.GetCounters().GetUnicastBytes()
	t.Logf("held %d bytes on restart; fetched %d more of %d", resumed, fetched, size)
	if resumed < size/3 {
		t.Errorf("restarted receiver held %d bytes, want at least a third of %d from its bitmap", resumed, size)
	}
	if fetched+resumed < size || fetched >= size {
		t.Errorf("after restart fetched %d bytes with %d held: want the remainder only", fetched, resumed)
	}
	verify(t, origin, filepath.Join(dir, "r1"))
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// reserveAddr returns a loopback address nobody listens on yet.
func reserveAddr(t *testing.T) string {
	t.Helper()
	addr, err := cloud.FreeTCPAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestBadPacketsCountedAndDropped: datagrams that fail to parse, or that
// belong to another channel, object, version or length, are counted and
// dropped while a transfer completes with verified content.
func TestBadPacketsCountedAndDropped(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 5, MaxSmall: 20 << 10, LargeBytes: 8 << 20, Seed: 6}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	s, sn := c.sender(origin, func(cfg *sender.Config) { cfg.Rate = 20_000_000 })
	r, _ := c.receiver("r1", sn.addr, nil)

	cfg := mcast.DefaultConfig()
	cfg.Port = c.port
	inject, err := mcast.NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer inject.Close()
	st := s.Status(true)
	ch := st.GetChannels()[0]
	obj := ch.GetObjects()[0]
	m, err := manifest.FromProto(mustManifest(t, sn.addr))
	if err != nil {
		t.Fatal(err)
	}
	real, _ := m.Lookup(obj.GetObjectId())
	hdr := wire.Header{Epoch: 1, Channel: ch.GetChannelId(), Object: real.ID, ObjVersion: real.Version}
	data := func(h wire.Header, n int) []byte {
		b, _ := wire.AppendData(nil, h, make([]byte, n))
		return b
	}
	foreignChannel, wrongVersion, unknownObject, wrongLength, pastEnd := hdr, hdr, hdr, hdr, hdr
	foreignChannel.Channel++
	wrongVersion.ObjVersion++
	unknownObject.Object++
	wrongLength.Chunk = 0
	pastEnd.Chunk = real.Chunks
	malformed := [][]byte{
		[]byte("garbage"),
		bytes.Repeat([]byte{0xff}, 200),
		data(hdr, 10)[:wire.HeaderLen+3],                         // length field lies
		append(data(hdr, 10), 0),                                 // trailing byte
		wire.AppendEnd(nil, hdr, wire.End{Pass: 1, Seq: 1})[:30], // truncated END
	}
	foreign := [][]byte{
		data(foreignChannel, int(real.ChunkSize)),
		data(wrongVersion, int(real.ChunkSize)),
		data(unknownObject, int(real.ChunkSize)),
		data(wrongLength, int(real.ChunkSize)-1),
		data(pastEnd, 1),
	}
	waitFor(t, 10*time.Second, "transfer under way", func() bool {
		chs := r.Status(false).GetChannels()
		return len(chs) == 1 && chs[0].GetBytesHave() > 0
	})
	var dgrams [][][]byte
	for round := 0; round < 20; round++ {
		for _, b := range append(append([][]byte{}, malformed...), foreign...) {
			dgrams = append(dgrams, [][]byte{b})
		}
	}
	if _, err := inject.Send(dgrams); err != nil {
		t.Fatal(err)
	}
	waitComplete(t, 30*time.Second, r)
	verify(t, origin, filepath.Join(c.dir, "r1"))
	ct := r.Status(false).GetCounters()
	if ct.GetPacketsMalformed() < 20*uint64(len(malformed)) || ct.GetPacketsForeign() < 20*uint64(len(foreign)) {
		t.Errorf("malformed %d (want >= %d), foreign %d (want >= %d)", ct.GetPacketsMalformed(), 20*len(malformed), ct.GetPacketsForeign(), 20*len(foreign))
	}
}

func mustManifest(t *testing.T, addr string) *pb.Manifest {
	t.Helper()
	cc, err := rpc.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := pb.NewSenderServiceClient(cc).GetManifest(ctx, &pb.GetManifestRequest{Channel: "c"})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetManifest()
}

// TestOriginChangesReachReceivers: a file added to the origin, a file
// changed in place and a file removed are picked up by the sender's rescan,
// announced, and mirrored by every receiver: the new file arrives, the
// changed one is replaced by its new verified version, the removed one is
// deleted.
func TestOriginChangesReachReceivers(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	dir := filepath.Join(origin, "c")
	writeFile(t, filepath.Join(dir, "stays.txt"), []byte("unchanged"))
	writeFile(t, filepath.Join(dir, "changes.bin"), bytes.Repeat([]byte("v1"), 40_000))
	writeFile(t, filepath.Join(dir, "old", "goes.txt"), []byte("to be removed"))
	_, sn := c.sender(origin, func(cfg *sender.Config) { cfg.RescanInterval = 200 * time.Millisecond })
	var rs []*receiver.Receiver
	for i := 1; i <= 2; i++ {
		r, _ := c.receiver(fmt.Sprintf("r%d", i), sn.addr, nil)
		rs = append(rs, r)
	}
	waitComplete(t, 30*time.Second, rs...)
	first := rs[0].Status(false).GetChannels()[0].GetManifestVersion()

	writeFile(t, filepath.Join(dir, "new", "arrives.bin"), bytes.Repeat([]byte("n"), 70_000))
	writeFile(t, filepath.Join(dir, "changes.bin"), bytes.Repeat([]byte("v2"), 30_000))
	if err := os.RemoveAll(filepath.Join(dir, "old")); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		waitFor(t, 30*time.Second, "the new manifest, complete", func() bool {
			st := r.Status(false)
			return st.GetComplete() && st.GetChannels()[0].GetManifestVersion() != first && st.GetChannels()[0].GetObjectsTotal() == 3
		})
		data := filepath.Join(c.dir, r.Status(false).GetReceiverId())
		verify(t, origin, data)
		if _, err := os.Stat(filepath.Join(data, "c", "old")); !os.IsNotExist(err) {
			t.Errorf("%s: removed file's directory still there (%v)", data, err)
		}
	}
}
