package receiver

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/wire"
)

// newTestReceiver builds a receiver of channel "c" that is not running
// (no sockets): its packet path and state can be driven directly.
func newTestReceiver(t *testing.T) *Receiver {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Channels = []string{"c"}
	r, err := New(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	return r
}

// TestReceivePathAllocs: in steady state, filing DATA packets (parse,
// look-up, run merge, vectored write, bitmap) allocates nothing.
func TestReceivePathAllocs(t *testing.T) {
	r := newTestReceiver(t)
	const chunks = 100_000
	obj, err := manifest.NewObject("c", "big", chunks*1400, sha256.Sum256(nil), 1400)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.New("c", []manifest.Object{obj}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r.install(r.channels["c"], m)

	payload := make([]byte, 1400)
	pkts := make([][]byte, mcast.MaxSegments)
	next := uint32(0)
	build := func() {
		for i := range pkts {
			h := wire.Header{Epoch: 7, Channel: m.ChannelID, Chunk: next % chunks, Object: obj.ID, ObjVersion: obj.Version}
			pkts[i], _ = wire.AppendData(pkts[i][:0], h, payload)
			next++
		}
	}
	run := chunkRun{bufs: make([][]byte, 0, mcast.MaxSegments)}
	feed := func() {
		r.mu.Lock()
		for _, b := range pkts {
			r.handlePacket(b, &run)
		}
		r.flush(&run)
		r.mu.Unlock()
	}
	build()
	feed() // opens the partial file
	allocs := testing.AllocsPerRun(200, func() {
		build()
		feed()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of %d packets", allocs, len(pkts))
	}
	if got := r.stats.MulticastBytes.Load(); got == 0 {
		t.Error("nothing was written")
	}
}
