// Command flooder is a test tool of the end-to-end suite: from a host of
// the network-namespace lab it floods a multicast group with forged
// nackcast packets (garbage, well-formed DATA, PARITY and END packets for
// the given channel, the same with a forged authentication trailer) at a
// fixed packet rate for a bounded time, then prints how many it sent.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"time"

	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/pktauth"
	"github.com/nackcast/nackcast/pkg/wire"
)

func main() {
	iface := flag.String("iface", "eth0", "interface to send on")
	group := flag.String("group", mcast.DefaultGroup, "multicast group")
	port := flag.Int("port", 17001, "UDP port")
	channel := flag.Uint("channel", 0, "channel id to forge packets for")
	rate := flag.Int("rate", 10000, "packets per second")
	dur := flag.Duration("for", 30*time.Second, "how long to flood (at most 5m)")
	flag.Parse()
	if *dur > 5*time.Minute || *rate < 1 || *rate > 1_000_000 {
		fmt.Fprintln(os.Stderr, "flooder: -for at most 5m, -rate in [1, 1e6]")
		os.Exit(2)
	}
	cfg := mcast.DefaultConfig()
	cfg.Interface, cfg.Port = *iface, *port
	g, err := netip.ParseAddr(*group)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flooder:", err)
		os.Exit(2)
	}
	cfg.Group = g
	s, err := mcast.NewSender(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flooder:", err)
		os.Exit(1)
	}
	defer s.Close()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	const tick = 5 * time.Millisecond
	perTick := max(*rate*int(tick)/int(time.Second), 1)
	t := time.NewTicker(tick)
	defer t.Stop()
	end := time.Now().Add(*dur)
	var sent int
	for time.Now().Before(end) {
		<-t.C
		batch := make([][][]byte, 0, perTick)
		for len(batch) < perTick {
			batch = append(batch, [][]byte{forge(rnd, uint32(*channel))})
		}
		n, err := s.Send(batch)
		if err != nil {
			fmt.Fprintln(os.Stderr, "flooder:", err)
			os.Exit(1)
		}
		sent += n
	}
	fmt.Println(sent)
}

// forge returns one forged datagram.
func forge(rnd *rand.Rand, channel uint32) []byte {
	h := wire.Header{Epoch: rnd.Uint64(), Channel: channel, Object: rnd.Uint64(), ObjVersion: rnd.Uint64(), Chunk: rnd.Uint32N(1000)}
	payload := make([]byte, 1400)
	for i := range payload {
		payload[i] = byte(rnd.Uint32())
	}
	var pkt []byte
	switch rnd.IntN(4) {
	case 0:
		return payload[:1+rnd.IntN(1400)] // garbage
	case 1:
		pkt, _ = wire.AppendData(nil, h, payload)
	case 2:
		pkt, _ = wire.AppendParity(nil, h, wire.Parity{Block: 32, Total: 16, Index: uint8(rnd.IntN(16))}, payload)
	default:
		pkt = wire.AppendEnd(nil, h, wire.End{ChunkCount: 10, Pass: 1, Size: 14000, Seq: 1})
	}
	if rnd.IntN(2) == 0 {
		pkt[5] |= byte(wire.FlagAuth)
		tail := make([]byte, pktauth.AuthTrailerLen)
		for i := range tail {
			tail[i] = byte(rnd.Uint32())
		}
		tail[0] = 1
		pkt = append(pkt, tail...)
	}
	return pkt
}
