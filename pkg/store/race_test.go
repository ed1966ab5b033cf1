package store

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
)

// TestCheckpointDuringCommit: a receiver checkpoints the partials it had
// open while a commit worker may be committing one of them. A checkpoint
// racing the commit must neither touch the partial's state unlocked nor
// leave a bitmap behind the committed file.
func TestCheckpointDuringCommit(t *testing.T) {
	s := openStore(t, t.TempDir())
	var left []string
	for i := range 100 {
		data := content(4*chunkSize, uint64(i))
		o := object(t, fmt.Sprintf("f%d", i), data)
		p, err := s.OpenPartial("ch", o)
		if err != nil {
			t.Fatal(err)
		}
		writeChunks(t, p, data, func(uint32) bool { return true })
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Checkpoint(); err != nil && !errors.Is(err, fs.ErrClosed) {
				t.Errorf("Checkpoint: %v", err)
			}
		}()
		if err := s.CommitBatch([]*Partial{p})[0]; err != nil {
			t.Fatalf("commit %s: %v", o.Path, err)
		}
		wg.Wait()
		if _, err := s.root.Lstat(p.base + ".bitmap"); !errors.Is(err, fs.ErrNotExist) {
			left = append(left, o.Path)
		}
	}
	if len(left) > 0 {
		t.Errorf("bitmap left after the commit of %d of 100 objects (first: %s)", len(left), left[0])
	}
}
