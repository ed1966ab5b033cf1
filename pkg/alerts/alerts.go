// Package alerts keeps a service's recent alerts and fans new ones out to
// the clients watching them (the WatchAlerts RPCs).
package alerts

import (
	"context"
	"sync"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// MaxRecent bounds the alerts kept for status snapshots and new watchers.
const MaxRecent = 32

// Log is a bounded log of alerts with subscribers. The zero Log is ready.
type Log struct {
	mu       sync.Mutex
	recent   []*pb.Alert
	total    uint64
	watchers map[chan *pb.Alert]struct{}
}

// Raise records an alert and hands it to every watcher; a watcher that does
// not keep up misses it rather than slowing the service.
func (l *Log) Raise(a *pb.Alert) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	l.recent = append(l.recent, a)
	if len(l.recent) > MaxRecent {
		l.recent = l.recent[len(l.recent)-MaxRecent:]
	}
	for w := range l.watchers {
		select {
		case w <- a:
		default:
		}
	}
}

// Snapshot returns the number of alerts raised and the recent ones.
func (l *Log) Snapshot() (uint64, []*pb.Alert) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, append([]*pb.Alert(nil), l.recent...)
}

// Stream sends the recent alerts, then every new one, until ctx is done or
// send fails.
func (l *Log) Stream(ctx context.Context, send func(*pb.Alert) error) error {
	l.mu.Lock()
	if l.watchers == nil {
		l.watchers = make(map[chan *pb.Alert]struct{})
	}
	w := make(chan *pb.Alert, 64)
	l.watchers[w] = struct{}{}
	recent := append([]*pb.Alert(nil), l.recent...)
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.watchers, w)
		l.mu.Unlock()
	}()
	for _, a := range recent {
		if err := send(a); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-w:
			if err := send(a); err != nil {
				return err
			}
		}
	}
}
