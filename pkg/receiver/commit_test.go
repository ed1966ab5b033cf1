package receiver

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/repair"
	"github.com/nackcast/nackcast/pkg/store"
)

// fill writes content into o's partial, chunk by chunk, and queues its
// commit (as the receive or pull path does when the last chunk lands).
func fill(t *testing.T, r *Receiver, ch *chanState, o *objState, content []byte) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := r.ensurePartial(ch, o)
	if err != nil {
		t.Fatal(err)
	}
	cs := int(o.obj.ChunkSize)
	for i := 0; i*cs < len(content); i++ {
		if _, err := p.WriteChunk(uint32(i), content[i*cs:min((i+1)*cs, len(content))]); err != nil {
			t.Fatal(err)
		}
	}
	r.enqueueCommit(ch, o)
}

// takeCommits takes the queued commit jobs, as the commit loop does.
func takeCommits(r *Receiver) []commitJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.commitQ
	r.commitQ = nil
	return q
}

// TestStaleCommitKeepsCurrentCopy: a copy of an object finished under a
// manifest that a newer one replaced (a pull from the previous sender
// that ends after the change of sender) is discarded when it comes to be
// committed: the current manifest's copy under the final name stays, the
// object stays complete, and no storage error is reported. Before, the
// stale commit failed on the partial file the install had cleaned up
// (a storage alert) or, when the rename ran while the install probed the
// disk, replaced the current copy with the previous sender's content
// while the object was reported complete (seed 2441 of the simulator).
func TestStaleCommitKeepsCurrentCopy(t *testing.T) {
	r := newTestReceiver(t)
	ch := r.channels["c"]
	a := bytes.Repeat([]byte("a"), 3000)
	b := bytes.Repeat([]byte("b"), 3000)
	object := func(content []byte) manifest.Object {
		o, err := manifest.NewObject("c", "f.bin", uint64(len(content)), sha256.Sum256(content), 1400)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	install := func(o manifest.Object) *objState {
		m, err := manifest.New("c", []manifest.Object{o}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		r.install(ch, m)
		r.mu.Lock()
		defer r.mu.Unlock()
		return ch.objs[o.ID]
	}

	// The previous sender's version is finished and waits to be committed.
	oa := install(object(a))
	fill(t, r, ch, oa, a)
	stale := takeCommits(r)

	// The active sender's manifest changes the object; its copy commits.
	ob := install(object(b))
	fill(t, r, ch, ob, b)
	r.commitBatch(takeCommits(r))

	r.commitBatch(stale)

	got, err := os.ReadFile(filepath.Join(r.cfg.DataDir, store.FinalPath("c", "f.bin")))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, b) {
		t.Errorf("final file holds %q..., want the current manifest's content %q...", got[:4], b[:4])
	}
	r.mu.Lock()
	state := ch.objs[ob.obj.ID].state
	r.mu.Unlock()
	if state != repair.Complete {
		t.Errorf("object state %v, want complete", state)
	}
	if n := r.stats.WriteErrors.Load(); n != 0 {
		t.Errorf("%d storage errors, want none", n)
	}
	if r.store.HasPartial("c", oa.obj) {
		t.Error("the stale partial file is still on disk")
	}
}
