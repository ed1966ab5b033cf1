package sender

import (
	"testing"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/scheduler"
)

// TestChannelCountersOfJob: a job's bytes reach its channel's counters
// every jobFlushBytes and when it ends, its pass only when it finished,
// and counting a batch allocates nothing.
func TestChannelCountersOfJob(t *testing.T) {
	ch := &channel{name: "c", stats: carryCounters(nil)}
	r := &jobRunner{ch: ch, job: scheduler.Job{Repair: true}}
	const batch = 64 << 10
	for range 15 {
		r.count(batch, batch-1000)
	}
	if got := ch.stats.bytesSent.Load(); got != 0 {
		t.Errorf("after 15 batches of 64 KiB, %d bytes counted: want none before 1 MiB", got)
	}
	r.count(batch, batch-1000)
	if got := ch.stats.bytesSent.Load(); got != 16*batch {
		t.Errorf("after 1 MiB, %d bytes counted, want %d", got, 16*batch)
	}
	r.count(100, 50)
	r.ended(true)
	if got, want := ch.stats.bytesSent.Load(), uint64(16*batch+100); got != want {
		t.Errorf("bytes %d, want %d", got, want)
	}
	if got, want := ch.stats.dataBytesSent.Load(), uint64(16*(batch-1000)+50); got != want {
		t.Errorf("content bytes %d, want %d", got, want)
	}
	if ch.stats.passes.Load() != 1 || ch.stats.repairPasses.Load() != 1 {
		t.Errorf("passes %d (repair %d), want 1 (1)", ch.stats.passes.Load(), ch.stats.repairPasses.Load())
	}
	aborted := &jobRunner{ch: ch}
	aborted.count(10, 10)
	aborted.ended(false)
	if ch.stats.passes.Load() != 1 || ch.stats.bytesSent.Load() != 16*batch+110 {
		t.Errorf("an aborted job: passes %d, bytes %d; want its bytes counted and no pass", ch.stats.passes.Load(), ch.stats.bytesSent.Load())
	}
	if allocs := testing.AllocsPerRun(1000, func() { r.count(batch, batch) }); allocs != 0 && !raceEnabled {
		t.Errorf("%v allocations per batch counted", allocs)
	}
	// A runner without a channel (the transmit-path tests') counts nothing.
	(&jobRunner{}).count(2<<20, 0)
	(&jobRunner{}).ended(true)
}

func TestChannelCountersCarryOver(t *testing.T) {
	first := &channel{stats: carryCounters(nil)}
	first.stats.nacks.Add(3)
	if next := carryCounters(first); next != first.stats {
		t.Error("a channel's new manifest dropped its counters")
	}
	if a, b := carryCounters(nil), carryCounters(nil); a == b {
		t.Error("two new channels share counters")
	}
}

func TestChannelCountersOfNack(t *testing.T) {
	c := carryCounters(nil)
	c.nack(&pb.NackResponse{Objects: []*pb.ObjectReply{
		{Action: pb.NackAction_NACK_ACTION_WAIT}, {Action: pb.NackAction_NACK_ACTION_WAIT},
		{Action: pb.NackAction_NACK_ACTION_UNICAST}, {Action: pb.NackAction_NACK_ACTION_NOT_FOUND},
	}})
	c.nack(&pb.NackResponse{PrimaryActive: true}) // a standing-by backup's: no object answered
	if c.nacks.Load() != 2 || c.repliesWait.Load() != 2 || c.repliesUnicast.Load() != 1 || c.repliesNotFound.Load() != 1 {
		t.Errorf("nacks %d, wait %d, unicast %d, not found %d; want 2, 2, 1, 1", c.nacks.Load(), c.repliesWait.Load(), c.repliesUnicast.Load(), c.repliesNotFound.Load())
	}
	var nilCounters *chanCounters
	nilCounters.nack(&pb.NackResponse{})
	nilCounters.pull()
	nilCounters.pulled(5)
}
