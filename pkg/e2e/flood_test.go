package e2e

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/pktauth"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/sender"
	"github.com/nackcast/nackcast/pkg/wire"
)

// forgeries returns datagrams an attacker on the link could send: garbage,
// truncated and oversized packets, and well-formed DATA, END and PARITY
// packets for the real channel and object, unauthenticated or with a
// forged trailer (flag set, random tag).
func forgeries(rnd *rand.Rand, channel uint32, object, version uint64, chunkSize int) [][]byte {
	h := wire.Header{Epoch: rnd.Uint64(), Channel: channel, Object: object, ObjVersion: version, Chunk: uint32(rnd.IntN(8))}
	chunk := make([]byte, chunkSize)
	for i := range chunk {
		chunk[i] = byte(rnd.Uint32())
	}
	data, _ := wire.AppendData(nil, h, chunk)
	parity, _ := wire.AppendParity(nil, h, wire.Parity{Block: 32, Total: 16, Index: 3}, chunk)
	end := wire.AppendEnd(nil, h, wire.End{ChunkCount: 8, Pass: 1, Size: 8 * uint64(chunkSize), Seq: 1})
	forged := func(pkt []byte) []byte {
		b := append([]byte(nil), pkt...)
		b[5] |= byte(wire.FlagAuth)
		tail := make([]byte, pktauth.AuthTrailerLen)
		for i := range tail {
			tail[i] = byte(rnd.Uint32())
		}
		tail[0] = 1 // the real key's id
		return append(b, tail...)
	}
	garbage := make([]byte, 1+rnd.IntN(1400))
	for i := range garbage {
		garbage[i] = byte(rnd.Uint32())
	}
	return [][]byte{
		data, parity, end,
		forged(data), forged(parity), forged(end),
		garbage,
		data[:wire.HeaderLen+10],
		append(append([]byte(nil), data...), make([]byte, 200)...),
	}
}

// TestFloodOfForgedPackets: with packet authentication on, a flood of
// forged and garbage packets at the rate of the real traffic, aimed at the
// real channel and object, is counted and dropped; the transfer completes
// with verified content. The test logs the completion time with and
// without the flood: the goodput cost of filtering it.
func TestFloodOfForgedPackets(t *testing.T) {
	const rate = 20_000_000 // bytes/s
	var elapsed [2]time.Duration
	for i, flood := range []bool{false, true} {
		t.Run(fmt.Sprintf("flood=%v", flood), func(t *testing.T) {
			c := newCluster(t)
			origin := filepath.Join(c.dir, "origin")
			if _, err := (cloud.Sample{SmallFiles: 10, MaxSmall: 64 << 10, LargeBytes: 16 << 20, Seed: 41}).Generate(filepath.Join(origin, "c")); err != nil {
				t.Fatal(err)
			}
			keys := filepath.Join(c.dir, "packet.keys")
			writeKeys(t, keys)
			packet := pktauth.Config{KeyFile: keys, Mode: pktauth.ModeAuth}
			start := time.Now()
			s, sn := c.sender(origin, func(cfg *sender.Config) { cfg.Rate, cfg.Packet = rate, packet })
			r, _ := c.receiver("r1", sn.addr, func(cfg *receiver.Config) { cfg.Packet = packet })

			var sent uint64
			var wg sync.WaitGroup
			stop := make(chan struct{})
			if flood {
				st := s.Status(true)
				ch := st.GetChannels()[0]
				m, err := manifest.FromProto(mustManifest(t, sn.addr))
				if err != nil {
					t.Fatal(err)
				}
				obj, _ := m.Lookup(ch.GetObjects()[0].GetObjectId())
				cfg := mcast.DefaultConfig()
				cfg.Port = c.port
				inject, err := mcast.NewSender(cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer inject.Close()
				// Real traffic is about rate/1468 packets a second; send as
				// many forgeries, in batches every 5 ms, for at most 60 s.
				perTick := rate / 1468 / 200
				wg.Add(1)
				go func() {
					defer wg.Done()
					rnd := rand.New(rand.NewPCG(7, 8))
					tick := time.NewTicker(5 * time.Millisecond)
					defer tick.Stop()
					deadline := time.After(60 * time.Second)
					for {
						select {
						case <-stop:
							return
						case <-deadline:
							return
						case <-tick.C:
						}
						var batch [][][]byte
						for len(batch) < perTick {
							for _, f := range forgeries(rnd, ch.GetChannelId(), obj.ID, obj.Version, int(obj.ChunkSize)) {
								batch = append(batch, [][]byte{f})
							}
						}
						if n, err := inject.Send(batch); err == nil {
							sent += uint64(n)
						}
					}
				}()
			}
			waitComplete(t, 90*time.Second, r)
			elapsed[i] = time.Since(start)
			close(stop)
			wg.Wait()
			verify(t, origin, filepath.Join(c.dir, "r1"))
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			// Sender, receiver and flooder share this test process: its
			// heap after the flood bounds what the receiver kept of it.
			t.Logf("heap in use after the run: %.1f MiB", float64(ms.HeapInuse)/(1<<20))
			if ms.HeapInuse > 256<<20 {
				t.Errorf("heap in use %d MiB after the run: the flood was buffered", ms.HeapInuse>>20)
			}
			ct := r.Status(false).GetCounters()
			dropped := ct.GetPacketsUnauthenticated() + ct.GetPacketsMalformed()
			t.Logf("complete in %v; forged packets sent %d, refused unauthenticated %d, malformed %d, overflow %d",
				elapsed[i].Round(time.Millisecond), sent, ct.GetPacketsUnauthenticated(), ct.GetPacketsMalformed(), ct.GetPacketsOverflow())
			if flood && dropped+ct.GetPacketsOverflow()*64 < sent*9/10 {
				t.Errorf("%d forged packets sent, only %d counted as refused", sent, dropped)
			}
			if !flood && dropped != 0 {
				t.Errorf("%d packets refused without a flood", dropped)
			}
		})
	}
	if elapsed[0] > 0 && elapsed[1] > 0 {
		t.Logf("goodput cost of the flood: %v without, %v with (%.2fx)", elapsed[0].Round(time.Millisecond), elapsed[1].Round(time.Millisecond), elapsed[1].Seconds()/elapsed[0].Seconds())
	}
}

// TestReplayedReorderedDuplicatedPackets: an on-path replayer joins the
// group, captures the sender's (authenticated) packets and sends them
// again, shuffled, some twice, some long after, while the transfer runs.
// Chunks are addressed by object, version and index, so a replayed or
// reordered packet can only repeat what is already true: the transfer
// completes with verified files and the copies are counted as duplicates.
func TestReplayedReorderedDuplicatedPackets(t *testing.T) {
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 20, MaxSmall: 64 << 10, LargeBytes: 8 << 20, Seed: 43}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(c.dir, "packet.keys")
	writeKeys(t, keys)
	packet := pktauth.Config{KeyFile: keys, Mode: pktauth.ModeAuth}
	cfg := mcast.DefaultConfig()
	cfg.Port = c.port
	capture, err := mcast.NewReceiver(cfg, wire.MaxPacket)
	if err != nil {
		t.Fatal(err)
	}
	inject, err := mcast.NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer inject.Close()
	var replayed uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rnd := rand.New(rand.NewPCG(9, 10))
		var held [][]byte
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			batch, err := capture.Read()
			if err != nil {
				return // closed at the end of the test
			}
			for _, b := range batch {
				if rnd.Float64() < 0.2 {
					held = append(held, append([]byte(nil), b...))
				}
			}
			if len(held) < 64 {
				continue
			}
			rnd.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
			var out [][][]byte
			for i, b := range held {
				out = append(out, [][]byte{b})
				if i%4 == 0 {
					out = append(out, [][]byte{b}) // and once more
				}
			}
			if n, err := inject.Send(out); err == nil {
				replayed += uint64(n)
			}
			// Keep a few for a late replay.
			held = append(held[:0], held[:8]...)
		}
	}()
	_, sn := c.sender(origin, func(cfg *sender.Config) { cfg.Rate, cfg.Packet = 20_000_000, packet })
	r, _ := c.receiver("r1", sn.addr, func(cfg *receiver.Config) { cfg.Packet = packet })
	waitComplete(t, 90*time.Second, r)
	capture.Close()
	wg.Wait()
	verify(t, origin, filepath.Join(c.dir, "r1"))
	ct := r.Status(false).GetCounters()
	t.Logf("replayed %d packets; receiver: duplicates %d, unauthenticated %d, malformed %d", replayed, ct.GetPacketsDuplicate(), ct.GetPacketsUnauthenticated(), ct.GetPacketsMalformed())
	if replayed == 0 || ct.GetPacketsDuplicate() == 0 {
		t.Errorf("replayed %d, duplicates counted %d: the replay was not exercised", replayed, ct.GetPacketsDuplicate())
	}
	if ct.GetPacketsUnauthenticated() != 0 {
		t.Errorf("%d replayed packets failed authentication: replays of real packets must verify (and be harmless)", ct.GetPacketsUnauthenticated())
	}
}
