package e2e

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/wire"
)

// wireBucket is the resolution of a wireLog.
const wireBucket = 100 * time.Millisecond

// wireLog listens to a cloud's group on lo, as a tap on the wire would,
// and records in which 100 ms windows the primary and the backup sent
// DATA: the measure of guarantee S3 (one sender at a time) that does not
// depend on what the senders say about themselves.
type wireLog struct {
	sock *mcast.Receiver
	done chan struct{}

	mu      sync.Mutex
	buckets map[int64]uint8 // window → 1: primary sent DATA, 2: backup did
}

func newWireLog(t *testing.T, group string, port int) *wireLog {
	t.Helper()
	c := mcast.DefaultConfig()
	c.Group = netip.MustParseAddr(group)
	c.Port = port
	c.ReadBuffer = 16 << 20
	sock, err := mcast.NewReceiver(c, wire.MaxPacket)
	if err != nil {
		t.Fatal(err)
	}
	w := &wireLog{sock: sock, done: make(chan struct{}), buckets: make(map[int64]uint8)}
	go w.run()
	t.Cleanup(w.close)
	return w
}

func (w *wireLog) run() {
	defer close(w.done)
	for {
		batch, err := w.sock.Read()
		if err != nil {
			return
		}
		now := time.Now().UnixNano() / int64(wireBucket)
		var bits uint8
		for _, b := range batch {
			h, _, err := wire.Parse(b)
			if err != nil || h.Type != wire.TypeData {
				continue
			}
			if h.Flags&wire.FlagBackup != 0 {
				bits |= 2
			} else {
				bits |= 1
			}
		}
		if bits != 0 {
			w.mu.Lock()
			w.buckets[now] |= bits
			w.mu.Unlock()
		}
	}
}

func (w *wireLog) close() {
	w.sock.Close()
	<-w.done
}

// overlap returns, from since on, the number of 100 ms windows in which
// both senders sent DATA and the time from the first such window to the
// end of the last.
func (w *wireLog) overlap(since time.Time) (windows int, span time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	from := since.UnixNano() / int64(wireBucket)
	first, last := int64(-1), int64(-1)
	for b, bits := range w.buckets {
		if b < from || bits != 3 {
			continue
		}
		windows++
		if first < 0 || b < first {
			first = b
		}
		if b > last {
			last = b
		}
	}
	if windows == 0 {
		return 0, 0
	}
	return windows, time.Duration(last-first+1) * wireBucket
}

// backupSent and primarySent report whether that sender sent DATA in any
// window from since on.
func (w *wireLog) backupSent(since time.Time) bool  { return w.sent(since, 2) }
func (w *wireLog) primarySent(since time.Time) bool { return w.sent(since, 1) }

func (w *wireLog) sent(since time.Time, bit uint8) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	from := since.UnixNano() / int64(wireBucket)
	for b, bits := range w.buckets {
		if b >= from && bits&bit != 0 {
			return true
		}
	}
	return false
}
