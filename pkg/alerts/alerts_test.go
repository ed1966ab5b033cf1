package alerts

import (
	"context"
	"fmt"
	"testing"
	"time"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

func TestRecentBoundedAndStreamed(t *testing.T) {
	var l Log
	for i := 0; i < MaxRecent+5; i++ {
		l.Raise(&pb.Alert{Message: fmt.Sprint(i)})
	}
	total, recent := l.Snapshot()
	if total != MaxRecent+5 || len(recent) != MaxRecent || recent[0].GetMessage() != "5" {
		t.Fatalf("total %d, %d recent starting at %q", total, len(recent), recent[0].GetMessage())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan string, 100)
	done := make(chan error, 1)
	go func() {
		done <- l.Stream(ctx, func(a *pb.Alert) error { got <- a.GetMessage(); return nil })
	}()
	for i := 0; i < MaxRecent; i++ {
		<-got // the replay
	}
	// Raise until the watcher is registered and receives a new alert.
	for deadline := time.Now().Add(5 * time.Second); ; {
		l.Raise(&pb.Alert{Message: "new"})
		select {
		case m := <-got:
			if m != "new" {
				t.Fatalf("streamed %q", m)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			return
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("new alert never streamed")
		}
	}
}
