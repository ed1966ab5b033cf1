package receiver

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
)

// This file keeps, per channel, why the channel makes no progress when the
// receiver knows it (the sender unreachable, an unknown channel, a
// rejected manifest), so that status and nackctl say it instead of a
// channel at 0 B of 0 B that looks healthy. Logs and alerts still carry
// the details.

// problem is why a channel makes no progress.
type problem struct {
	kind  pb.ChannelProblemKind
	msg   string
	since time.Time
}

// setProblem records a problem of ch, keeping the time of the first one
// of the same kind. Called with r.mu held.
func (r *Receiver) setProblem(ch *chanState, kind pb.ChannelProblemKind, msg string) {
	since := r.now()
	if ch.problem != nil && ch.problem.kind == kind {
		since = ch.problem.since
	}
	ch.problem = &problem{kind: kind, msg: msg, since: since}
}

// clearProblem forgets ch's problem if it is of one of kinds. Called with
// r.mu held.
func clearProblem(ch *chanState, kinds ...pb.ChannelProblemKind) {
	if ch.problem == nil {
		return
	}
	for _, k := range kinds {
		if ch.problem.kind == k {
			ch.problem = nil
			return
		}
	}
}

// rpcProblems are the problems an answer from a sender ends.
var rpcProblems = []pb.ChannelProblemKind{
	pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_SENDER_UNREACHABLE,
	pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_UNKNOWN_CHANNEL,
	pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_REFUSED,
}

// problemStatus describes ch's problem for status; a full disk is every
// channel's problem. Called with r.mu held.
func (r *Receiver) problemStatus(ch *chanState) *pb.ChannelProblem {
	if r.diskFull.Load() {
		return &pb.ChannelProblem{
			Kind:    pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_STORAGE,
			Message: fmt.Sprintf("the data directory %s is full: receiving is paused until space returns", r.cfg.DataDir),
			Since:   timestamppb.New(time.Unix(0, r.diskFullSince.Load())),
		}
	}
	if h := ch.held; h != nil {
		return &pb.ChannelProblem{
			Kind: pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_MANIFEST_HELD,
			Message: fmt.Sprintf("manifest %016x from %s is held back (%s): nackctl confirm-manifest -channel %s -version %016x installs it",
				h.m.Version, h.src.Sender, h.decision.Reason, ch.name, h.m.Version),
			Since: timestamppb.New(h.since),
		}
	}
	if p := ch.problem; p != nil {
		return &pb.ChannelProblem{Kind: p.kind, Message: p.msg, Since: timestamppb.New(p.since)}
	}
	return nil
}

// classify names the problem behind a failed request to the senders about
// channel: what (such as "manifest fetch") failed with err, whose gRPC
// status message, when it has one, is already brief.
func classify(channel, what string, err error) (pb.ChannelProblemKind, string) {
	if errors.Is(err, manifest.ErrSignature) || errors.Is(err, manifest.ErrInvalidManifest) {
		return pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_MANIFEST_REJECTED, fmt.Sprintf("%s: %v", what, err)
	}
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	switch status.Code(err) {
	case codes.NotFound:
		return pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_UNKNOWN_CHANNEL,
			fmt.Sprintf("the senders do not distribute channel %q (%s: %s)", channel, what, msg)
	case codes.PermissionDenied, codes.Unauthenticated:
		return pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_REFUSED,
			fmt.Sprintf("the sender refused this receiver (%s: %s): check its certificate's name and role", what, msg)
	case codes.ResourceExhausted:
		return pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_REFUSED,
			fmt.Sprintf("the sender is rate-limiting this receiver (%s: %s)", what, msg)
	case codes.FailedPrecondition:
		return pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_MANIFEST_REJECTED, fmt.Sprintf("%s: %s", what, msg)
	}
	return pb.ChannelProblemKind_CHANNEL_PROBLEM_KIND_SENDER_UNREACHABLE, fmt.Sprintf("cannot reach the senders (%s: %s)", what, msg)
}

// brief shortens one gRPC error to what a person needs, such as
// "unavailable: connection refused" instead of the transport's nested
// descriptions.
func brief(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	msg := st.Message()
	if strings.Contains(msg, "desc = ") || strings.HasPrefix(msg, "transport: ") {
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
	}
	code := strings.ToLower(strings.ReplaceAll(st.Code().String(), "Exceeded", " exceeded"))
	return code + ": " + strings.Trim(msg, "\"")
}
