package sender

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/fec"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/pktauth"
	"github.com/nackcast/nackcast/pkg/scheduler"
	"github.com/nackcast/nackcast/pkg/wire"
)

// zeroObject writes a file of count zero chunks and returns it open with
// its object (the SHA-256 is not checked on the transmit path).
func zeroObject(t *testing.T, chunkSize, count int) (*os.File, manifest.Object) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, chunkSize*count), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var sum [32]byte
	obj, err := manifest.NewObject("c", "f", uint64(chunkSize*count), sum, uint32(chunkSize))
	if err != nil {
		t.Fatal(err)
	}
	return f, obj
}

// TestTransmitPathAllocs: laying a batch of DATA packets into the frame
// (headers, one preadv into the payload slots) allocates nothing.
func TestTransmitPathAllocs(t *testing.T) {
	const chunkSize, count = 1400, 10_000
	f, obj := zeroObject(t, chunkSize, count)
	tx := &transmitter{
		frame: make([]byte, mcast.MaxSegments*(wire.HeaderLen+chunkSize)),
		iov:   make([][]byte, 0, mcast.MaxSegments),
	}
	r := &jobRunner{job: scheduler.Job{Object: obj, Ranges: chunks.Whole(count)}, f: f}
	allocs := testing.AllocsPerRun(100, func() {
		if r.done() {
			r.ri, r.next = 0, 0
		}
		k, _, err := tx.fill(r)
		if err != nil || k == 0 {
			t.Fatalf("fill = %d, %v", k, err)
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("%v allocations per batch", allocs)
	}
	h, p, err := wire.Parse(tx.frame[:wire.HeaderLen+chunkSize])
	if err != nil || h.Type != wire.TypeData || len(p) != chunkSize {
		t.Errorf("first packet of the frame: %+v, %v", h, err)
	}
}

// TestParityFrame: the PARITY packets laid into the frame rebuild lost
// chunks of their block, the last block's short chunk included, and a
// batch costs no allocation beyond the Reed-Solomon library's own (two
// small ones per block encoded, none per packet).
func TestParityFrame(t *testing.T) {
	const chunkSize, count = 1400, 40 // blocks of 32: 32 chunks, then 8
	size := chunkSize*count - 100
	content := make([]byte, size)
	for i := range content {
		content[i] = byte(i*7 + i/1400)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sum [32]byte
	obj, err := manifest.NewObject("c", "f", uint64(size), sum, chunkSize)
	if err != nil {
		t.Fatal(err)
	}
	s := &Sender{cfg: DefaultConfig()}
	s.cfg.Scheduler.FEC = scheduler.FEC{Block: 32, Parity: 8}
	tx := &transmitter{
		s:     s,
		frame: make([]byte, mcast.MaxSegments*(wire.HeaderLen+wire.ParityFixedLen+chunkSize)),
		iov:   make([][]byte, 0, mcast.MaxSegments),
		codec: fec.NewCodec(),
	}
	job := scheduler.Job{Object: obj, Parity: []scheduler.BlockParity{{Block: 0, First: 2, Count: 3}, {Block: 1, First: 0, Count: 2}}}
	r := &jobRunner{job: job, f: f}
	k, err := tx.fillParity(r)
	if err != nil || k != 5 || !r.done() {
		t.Fatalf("fillParity = %d, %v (done %v), want 5 packets", k, err, r.done())
	}
	seg := wire.HeaderLen + wire.ParityFixedLen + chunkSize
	codec := fec.NewCodec()
	g := fec.Geometry{Chunks: obj.Chunks, Block: 32}
	lost := map[uint32][]int{0: {0, 17, 31}, 1: {7, 3}} // the object's last chunk is chunk 7 of block 1
	work := map[uint32][][]byte{}
	for b := range lost {
		first, n := g.Span(b)
		shards := make([][]byte, n+8)
		for i := range n {
			chunk := make([]byte, chunkSize)
			copy(chunk, content[int(first+uint32(i))*chunkSize:])
			shards[i] = chunk
		}
		for _, i := range lost[b] {
			shards[i] = nil
		}
		work[b] = shards
	}
	for i := range k {
		h, p, err := wire.Parse(tx.frame[i*seg : (i+1)*seg])
		if err != nil || h.Type != wire.TypeParity {
			t.Fatalf("packet %d: %+v, %v", i, h, err)
		}
		par, shard, err := wire.ParseParity(p)
		if err != nil || par.Block != 32 || par.Total != 8 {
			t.Fatalf("packet %d: parity %+v, %v", i, par, err)
		}
		_, n := g.Span(h.Chunk)
		work[h.Chunk][n+int(par.Index)] = shard
	}
	for b, shards := range work {
		first, n := g.Span(b)
		if err := codec.Rebuild(n, shards); err != nil {
			t.Fatalf("block %d: %v", b, err)
		}
		for _, i := range lost[b] {
			idx := first + uint32(i)
			want := content[int(idx)*chunkSize : int(idx)*chunkSize+obj.ChunkLen(idx)]
			if !bytes.Equal(shards[i][:len(want)], want) {
				t.Errorf("block %d chunk %d rebuilt wrong", b, i)
			}
		}
	}
	allocs := testing.AllocsPerRun(50, func() {
		r.pi, r.pj, tx.encFor = 0, 0, nil
		if _, err := tx.fillParity(r); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 4 && !raceEnabled {
		t.Errorf("%v allocations per batch of two blocks", allocs)
	}
}

// TestSealedTransmitPathAllocs: with packet keys, laying a batch of DATA
// packets into the frame and sealing each still allocates nothing, and
// every packet opens under the keys.
func TestSealedTransmitPathAllocs(t *testing.T) {
	const chunkSize, count = 1400, 10_000
	f, obj := zeroObject(t, chunkSize, count)
	key, err := pktauth.NewKey(1)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := pktauth.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []pktauth.Mode{pktauth.ModeAuth, pktauth.ModeSeal} {
		s := &Sender{cfg: DefaultConfig(), keys: kr}
		s.cfg.Packet.Mode = mode
		tx := &transmitter{
			s:     s,
			over:  mode.Overhead(),
			frame: make([]byte, mcast.MaxSegments*(wire.HeaderLen+chunkSize+mode.Overhead())),
			iov:   make([][]byte, 0, mcast.MaxSegments),
		}
		r := &jobRunner{job: scheduler.Job{Object: obj, Ranges: chunks.Whole(count)}, f: f, hdr: wire.Header{Epoch: 7}}
		allocs := testing.AllocsPerRun(100, func() {
			if r.done() {
				r.ri, r.next = 0, 0
			}
			if k, _, err := tx.fill(r); err != nil || k == 0 {
				t.Fatalf("fill = %d, %v", k, err)
			}
		})
		if allocs != 0 && !raceEnabled {
			t.Errorf("%v: %v allocations per sealed batch", mode, allocs)
		}
		seg := wire.HeaderLen + chunkSize + mode.Overhead()
		dg := append([]byte(nil), tx.frame[:seg]...)
		pkt, err := pktauth.NewOpener(kr).Open(dg)
		if err != nil {
			t.Fatalf("%v: first packet does not open: %v", mode, err)
		}
		if h, _, err := wire.Parse(pkt); err != nil || h.Type != wire.TypeData {
			t.Errorf("%v: opened packet %+v, %v", mode, h, err)
		}
	}
}
