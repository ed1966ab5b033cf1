package sender

import (
	"sort"
	"sync/atomic"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// chanCounters are one channel's share of the sender's counters, for the
// per-channel metrics. A change of a channel's manifest replaces its
// channel value; the counters carry over (carryCounters). Counting stays
// off the per-packet path: a job adds its bytes every MiB and when it ends
// (jobSent), a NACK once per request, a pull once per message.
type chanCounters struct {
	nacks                                        atomic.Uint64
	repliesWait, repliesUnicast, repliesNotFound atomic.Uint64
	passes, repairPasses                         atomic.Uint64
	bytesSent, dataBytesSent                     atomic.Uint64
	pulls, pullBytes                             atomic.Uint64
}

// carryCounters returns the counters a channel replacing cur keeps: cur's,
// or new ones for a channel seen for the first time.
func carryCounters(cur *channel) *chanCounters {
	if cur != nil && cur.stats != nil {
		return cur.stats
	}
	return new(chanCounters)
}

// nack counts a NACK request and its replies by action.
func (c *chanCounters) nack(resp *pb.NackResponse) {
	if c == nil {
		return
	}
	c.nacks.Add(1)
	var wait, unicast, notFound uint64
	for _, o := range resp.GetObjects() {
		switch o.GetAction() {
		case pb.NackAction_NACK_ACTION_WAIT:
			wait++
		case pb.NackAction_NACK_ACTION_UNICAST:
			unicast++
		case pb.NackAction_NACK_ACTION_NOT_FOUND:
			notFound++
		}
	}
	c.repliesWait.Add(wait)
	c.repliesUnicast.Add(unicast)
	c.repliesNotFound.Add(notFound)
}

// pull counts a unicast pull served.
func (c *chanCounters) pull() {
	if c != nil {
		c.pulls.Add(1)
	}
}

// pulled counts bytes sent by a unicast pull.
func (c *chanCounters) pulled(n int) {
	if c != nil {
		c.pullBytes.Add(uint64(n))
	}
}

// jobSent accumulates a job's multicast traffic while it runs, in plain
// fields of its runner written by the transmitter alone; it reaches the
// channel's counters every jobFlushBytes and when the job ends.
type jobSent struct {
	bytes, data uint64
}

// jobFlushBytes is how much a job sends between two additions to its
// channel's counters: one atomic addition per 16 batches or so, frequent
// enough for a per-channel bytes/s graph of a large object.
const jobFlushBytes = 1 << 20

// count counts one batch of the job: size UDP payload bytes carrying data
// content bytes.
func (r *jobRunner) count(size, data int) {
	r.sent.bytes += uint64(size)
	r.sent.data += uint64(data)
	if r.sent.bytes >= jobFlushBytes {
		r.flush()
	}
}

// flush adds what the job sent since the last flush to its channel.
func (r *jobRunner) flush() {
	if r.ch != nil && r.ch.stats != nil {
		r.ch.stats.bytesSent.Add(r.sent.bytes)
		r.ch.stats.dataBytesSent.Add(r.sent.data)
	}
	r.sent = jobSent{}
}

// ended flushes an ended job's traffic and counts its pass when it
// finished (an aborted job made none).
func (r *jobRunner) ended(finished bool) {
	r.flush()
	if finished && r.ch != nil && r.ch.stats != nil {
		r.ch.stats.passes.Add(1)
		if r.job.Repair {
			r.ch.stats.repairPasses.Add(1)
		}
	}
}

// channelCounters is one channel's counters at a scrape.
type channelCounters struct {
	name                              string
	nacks, wait, unicast, notFound    uint64
	passes, repairPasses, bytes, data uint64
	pulls, pullBytes                  uint64
	manifestVersion                   uint64
	manifestGenerated                 float64 // seconds since 1970
	objects, totalBytes               uint64
}

// channelCounterList reads every channel's counters, sorted by name.
func (s *Sender) channelCounterList() []channelCounters {
	s.mu.Lock()
	out := make([]channelCounters, 0, len(s.channels))
	for _, ch := range s.channels {
		c := channelCounters{name: ch.name, manifestVersion: ch.m.Version, objects: uint64(len(ch.m.Objects)), totalBytes: ch.m.TotalBytes()}
		if !ch.m.GeneratedAt.IsZero() {
			c.manifestGenerated = float64(ch.m.GeneratedAt.UnixNano()) / 1e9
		}
		if k := ch.stats; k != nil {
			c.nacks, c.wait, c.unicast, c.notFound = k.nacks.Load(), k.repliesWait.Load(), k.repliesUnicast.Load(), k.repliesNotFound.Load()
			c.passes, c.repairPasses = k.passes.Load(), k.repairPasses.Load()
			c.bytes, c.data = k.bytesSent.Load(), k.dataBytesSent.Load()
			c.pulls, c.pullBytes = k.pulls.Load(), k.pullBytes.Load()
		}
		out = append(out, c)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
