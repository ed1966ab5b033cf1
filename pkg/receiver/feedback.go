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

// socketReport is what recvLoop asks feedbackLoop to report: the fill of
// the fuller of the socket buffer and the filing queue, and the pace of
// the stage that falls behind (bytes per second).
type socketReport struct {
	fill float64
	rate uint64
}

// feedbackLoop sends the reports recvLoop asks for (through r.feedback)
// to the sender the NACKs last reached, so
// that it paces to this receiver before it drops rather than after. The
// counts are the same deltas as the NACKs' (a drop is reported once,
// by whichever goes first).
func (r *Receiver) feedbackLoop(ctx context.Context) {
	for {
		var rep socketReport
		select {
		case <-ctx.Done():
			return
		case rep = <-r.feedback:
		}
		received, overflow := r.stats.PacketsReceived.Load(), r.stats.PacketsOverflow.Load()
		req := &pb.FeedbackRequest{
			ReceiverId:    r.cfg.ID,
			Received:      received - min(r.stats.reportedReceived.Swap(received), received),
			OverflowDrops: overflow - min(r.stats.reportedOverflow.Swap(overflow), overflow),
			ReceiveRate:   rep.rate,
			QueueFill:     float32(rep.fill),
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
