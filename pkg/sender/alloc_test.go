package sender

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/scheduler"
	"github.com/nackcast/nackcast/pkg/wire"
)

// TestTransmitPathAllocs: laying a batch of DATA packets into the frame
// (headers, one preadv into the payload slots) allocates nothing.
func TestTransmitPathAllocs(t *testing.T) {
	const chunkSize, count = 1400, 10_000
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, make([]byte, chunkSize*count), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var sum [32]byte
	obj, err := manifest.NewObject("c", "f", chunkSize*count, sum, chunkSize)
	if err != nil {
		t.Fatal(err)
	}
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
	if allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}
	h, p, err := wire.Parse(tx.frame[:wire.HeaderLen+chunkSize])
	if err != nil || h.Type != wire.TypeData || len(p) != chunkSize {
		t.Errorf("first packet of the frame: %+v, %v", h, err)
	}
}
