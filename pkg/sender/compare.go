package sender

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
)

// This file is the backup's comparison of its channels with the primary's
// (guarantee A1): the two scan their own origins and share no state, so
// nothing else would notice that a take-over is about to distribute other
// content. While both are alive the backup compares manifest versions
// every CompareInterval and alerts on a difference that outlasts what a
// rescan explains (failover.Divergence), naming the paths.

// compareLoop compares until ctx is done.
func (s *Sender) compareLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.CompareInterval)
	defer t.Stop()
	c := pb.NewSenderServiceClient(s.peer)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 5*s.cfg.HealthTimeout)
		resp, err := c.ListChannels(cctx, &pb.ListChannelsRequest{})
		cancel()
		if err != nil {
			continue // the primary is away: nothing to compare with
		}
		primary := make(map[string]uint64, len(resp.GetChannels()))
		for _, ch := range resp.GetChannels() {
			primary[ch.GetChannel()] = ch.GetManifestVersion()
		}
		now := s.now()
		type finding struct {
			name       string
			backup     *manifest.Manifest // nil: the backup lacks the channel
			primaryHas bool
		}
		var report []finding
		s.mu.Lock()
		// Every channel either side serves that this backup is meant to
		// serve (all, when it discovers channels in its origin).
		names := make(map[string]bool, len(s.channels)+len(primary))
		for name := range s.channels {
			names[name] = true
		}
		for name := range primary {
			if len(s.cfg.Channels) == 0 || slices.Contains(s.cfg.Channels, name) {
				names[name] = true
			}
		}
		for name := range names {
			var mine uint64
			var m *manifest.Manifest
			if ch := s.channels[name]; ch != nil {
				mine, m = ch.m.Version, ch.m
			}
			if s.divergence.Observe(now, name, primary[name], mine) {
				report = append(report, finding{name, m, primary[name] != 0})
			}
		}
		s.divergence.Keep(func(name string) bool { return names[name] })
		s.mu.Unlock()
		for _, f := range report {
			s.reportDivergence(ctx, c, f.name, f.backup, f.primaryHas)
		}
	}
}

// reportDivergence raises the alert for channel name, whose manifest on
// this backup is backup (nil if it lacks the channel), with the paths that
// differ when the primary's manifest can be fetched.
func (s *Sender) reportDivergence(ctx context.Context, c pb.SenderServiceClient, name string, backup *manifest.Manifest, primaryHas bool) {
	var detail string
	switch {
	case !primaryHas:
		detail = "the primary does not serve this channel"
	case backup == nil:
		detail = "the backup does not serve this channel"
	default:
		detail = "the primary's manifest could not be fetched to name the paths"
		cctx, cancel := context.WithTimeout(ctx, 5*s.cfg.HealthTimeout)
		resp, err := c.GetManifest(cctx, &pb.GetManifestRequest{Channel: name})
		cancel()
		if err == nil {
			if pm, err := manifest.FromProto(resp.GetManifest()); err == nil {
				d := manifest.Compare(pm, backup)
				detail = fmt.Sprintf("%d changed %s, %d only on the primary %s, %d only on the backup %s",
					len(d.Changed), somePaths(d.Changed), len(d.OnlyA), somePaths(d.OnlyA), len(d.OnlyB), somePaths(d.OnlyB))
			}
		}
	}
	msg := fmt.Sprintf("channel %q on the backup differs from the primary %s: %s; if the backup takes over, receivers will get the backup's content", name, s.cfg.Peer, detail)
	s.foLog.Error("backup content differs from the primary's", "channel", name, "primary", s.cfg.Peer, "detail", detail)
	s.alerts.Raise(&pb.Alert{
		Time:    timestamppb.New(s.now()),
		Kind:    pb.AlertKind_ALERT_KIND_MANIFEST_MISMATCH,
		Source:  s.cfg.ID,
		Channel: name,
		Message: msg,
	})
}

// somePaths formats up to three paths of ps.
func somePaths(ps []string) string {
	if len(ps) == 0 {
		return ""
	}
	more := ""
	if len(ps) > 3 {
		more = fmt.Sprintf(" and %d more", len(ps)-3)
		ps = ps[:3]
	}
	return "(" + strings.Join(ps, ", ") + more + ")"
}
