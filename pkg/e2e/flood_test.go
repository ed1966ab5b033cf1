package e2e

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
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
