package receiver

import (
	"context"
	"time"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// fillEvery is how often recvLoop samples its socket buffer's fill (one
// system call) while data flows.
const fillEvery = 5 * time.Millisecond

// feedbackTimeout bounds one Feedback call: a late report is worthless.
const feedbackTimeout = 250 * time.Millisecond

// feedbackLoop sends the reports recvLoop asks for (through r.feedback,
// carrying the buffer's fill) to the sender the NACKs last reached, so
// that it paces to this receiver before it drops rather than after. The
// counts are the same deltas as the NACKs' (a drop is reported once,
// by whichever goes first).
func (r *Receiver) feedbackLoop(ctx context.Context) {
	for {
		var fill float64
		select {
		case <-ctx.Done():
			return
		case fill = <-r.feedback:
		}
		received, overflow := r.stats.PacketsReceived.Load(), r.stats.PacketsOverflow.Load()
		req := &pb.FeedbackRequest{
			ReceiverId:    r.cfg.ID,
			Received:      received - min(r.stats.reportedReceived.Swap(received), received),
			OverflowDrops: overflow - min(r.stats.reportedOverflow.Swap(overflow), overflow),
			ReceiveRate:   r.drain.Rate(),
			QueueFill:     float32(fill),
		}
		r.mu.Lock()
		cc := r.primary
		if r.backup != nil && r.activeSender == r.cfg.Backup {
			cc = r.backup
		}
		r.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, feedbackTimeout)
		_, err := pb.NewSenderServiceClient(cc).Feedback(cctx, req)
		cancel()
		r.stats.FeedbackSent.Add(1)
		if err != nil {
			r.nackLog.Debug("feedback not delivered", "error", err)
		}
	}
}
