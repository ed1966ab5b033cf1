package client

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// FleetOptions tunes Fleet.
type FleetOptions struct {
	// Dial connects to an address; Dial (plaintext) when nil, a
	// Config's Dial for mutual TLS.
	Dial func(addr string) (*grpc.ClientConn, error)
	// Sender, when set, is asked for each channel's current manifest
	// version, which then decides which receivers are behind.
	Sender string
	// Timeout bounds each receiver's answer (default 5 s).
	Timeout time.Duration
	// Parallel is how many receivers are asked at once (default 32).
	Parallel int
}

// Fleet asks every receiver of addrs for its status, at most
// opts.Parallel at once, and assembles the view: per channel, how many
// receivers are complete at the current manifest version, behind, in
// progress or stuck, and per receiver where it stands, which sender it
// follows and why it is stuck. A receiver that does not answer is a row
// saying so; Fleet fails only when opts.Sender is set and does not answer.
func Fleet(ctx context.Context, addrs []string, opts FleetOptions) (*pb.FleetView, error) {
	if opts.Dial == nil {
		opts.Dial = func(addr string) (*grpc.ClientConn, error) { return Dial(addr) }
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 32
	}
	current := map[string]uint64{}
	if opts.Sender != "" {
		cc, err := opts.Dial(opts.Sender)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
		resp, err := pb.NewSenderServiceClient(cc).ListChannels(cctx, &pb.ListChannelsRequest{})
		cancel()
		cc.Close()
		if err != nil {
			return nil, fmt.Errorf("sender %s: %w", opts.Sender, err)
		}
		for _, ch := range resp.GetChannels() {
			current[ch.GetChannel()] = ch.GetManifestVersion()
		}
	}
	statuses := make([]*pb.ReceiverStatus, len(addrs))
	errs := make([]error, len(addrs))
	sem := make(chan struct{}, opts.Parallel)
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			statuses[i], errs[i] = receiverStatus(ctx, addr, opts)
		}()
	}
	wg.Wait()
	return assemble(time.Now(), addrs, statuses, errs, current), nil
}

func receiverStatus(ctx context.Context, addr string, opts FleetOptions) (*pb.ReceiverStatus, error) {
	cc, err := opts.Dial(addr)
	if err != nil {
		return nil, err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	resp, err := pb.NewReceiverServiceClient(cc).GetStatus(ctx, &pb.ReceiverServiceGetStatusRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetStatus(), nil
}

// assemble builds the view from each receiver's status or error. current
// holds the channels' current versions when a sender was asked.
func assemble(now time.Time, addrs []string, statuses []*pb.ReceiverStatus, errs []error, current map[string]uint64) *pb.FleetView {
	v := &pb.FleetView{Time: timestamppb.New(now)}
	// Without the sender's word, the current version of a channel is the
	// one of the receiver whose distribution started last, among those
	// that got their manifest from a sender in this run and report no
	// problem: a receiver restarted with an old manifest from its disk,
	// unable to reach a sender, would otherwise pass for the newest.
	newest := maps.Clone(current)
	if newest == nil {
		newest = map[string]uint64{}
	}
	started := map[string]time.Time{}
	for _, trusted := range []bool{true, false} {
		for _, st := range statuses {
			for _, ch := range st.GetChannels() {
				name := ch.GetChannel()
				if _, ok := current[name]; ok || ch.GetManifestVersion() == 0 || ch.GetDistributionStarted() == nil {
					continue
				}
				if ok := ch.GetManifestSender() != "" && ch.GetProblem() == nil; ok != trusted {
					continue
				}
				if _, set := started[name]; set && !trusted && newest[name] != 0 {
					continue // a trusted one decided
				}
				if t := ch.GetDistributionStarted().AsTime(); newest[name] == 0 || t.After(started[name]) {
					newest[name], started[name] = ch.GetManifestVersion(), t
				}
			}
		}
	}
	byName := map[string]*pb.FleetChannel{}
	for i, addr := range addrs {
		row := &pb.FleetReceiver{Address: addr}
		v.Receivers = append(v.Receivers, row)
		if errs[i] != nil {
			v.Unreachable++
			row.Error = errText(errs[i])
			continue
		}
		st := statuses[i]
		row.Reachable, row.ReceiverId, row.ActiveSender, row.Build = true, st.GetReceiverId(), st.GetActiveSender(), st.GetBuild()
		for _, ch := range st.GetChannels() {
			name := ch.GetChannel()
			fc := byName[name]
			if fc == nil {
				fc = &pb.FleetChannel{Channel: name, NewestVersion: newest[name]}
				byName[name] = fc
			}
			rc := &pb.FleetReceiverChannel{
				Channel: name, ManifestVersion: ch.GetManifestVersion(), BytesHave: ch.GetBytesHave(), BytesTotal: ch.GetBytesTotal(),
				ManifestSender: ch.GetManifestSender(), Problem: ch.GetProblem(), LastComplete: ch.GetLastComplete(),
			}
			switch {
			case ch.GetProblem() != nil:
				rc.State = pb.FleetState_FLEET_STATE_STUCK
				fc.Stuck++
			case ch.GetComplete() && (fc.NewestVersion == 0 || ch.GetManifestVersion() == fc.NewestVersion):
				rc.State = pb.FleetState_FLEET_STATE_COMPLETE
				fc.Complete++
			case ch.GetComplete():
				rc.State = pb.FleetState_FLEET_STATE_BEHIND
				fc.Behind++
			default:
				rc.State = pb.FleetState_FLEET_STATE_IN_PROGRESS
				fc.InProgress++
			}
			fc.Receivers++
			countVersion(fc, ch.GetManifestVersion(), ch.GetComplete())
			row.Channels = append(row.Channels, rc)
		}
	}
	for _, fc := range byName {
		slices.SortFunc(fc.Versions, func(a, b *pb.FleetVersion) int { return cmp.Compare(b.GetReceivers(), a.GetReceivers()) })
		v.Channels = append(v.Channels, fc)
	}
	slices.SortFunc(v.Channels, func(a, b *pb.FleetChannel) int { return strings.Compare(a.GetChannel(), b.GetChannel()) })
	return v
}

func countVersion(fc *pb.FleetChannel, version uint64, complete bool) {
	for _, fv := range fc.Versions {
		if fv.GetManifestVersion() == version {
			fv.Receivers++
			if complete {
				fv.Complete++
			}
			return
		}
	}
	fv := &pb.FleetVersion{ManifestVersion: version, Receivers: 1}
	if complete {
		fv.Complete = 1
	}
	fc.Versions = append(fc.Versions, fv)
}

// errText is an error in one line: a gRPC status's code and message.
func errText(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	msg := st.Message()
	if strings.Contains(msg, "desc = ") {
		// The transport's nested description: its last part says it.
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = strings.Trim(msg[i+2:], `"`)
		}
	}
	return strings.ToLower(st.Code().String()) + ": " + msg
}

// ResolveReceivers expands receiver addresses: "dns:HOST:PORT" stands for
// every address HOST resolves to (a Kubernetes headless Service's name
// resolves to its ready pods), with PORT; any other entry is an address
// as it is. The order is kept, duplicates dropped.
func ResolveReceivers(ctx context.Context, specs []string) ([]string, error) {
	var out []string
	for _, s := range specs {
		name, ok := strings.CutPrefix(s, "dns:")
		if !ok {
			out = append(out, s)
			continue
		}
		host, port, err := net.SplitHostPort(name)
		if err != nil {
			return nil, fmt.Errorf("%q: want dns:HOST:PORT: %w", s, err)
		}
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, port))
		}
	}
	seen := map[string]bool{}
	return slices.DeleteFunc(out, func(a string) bool {
		dup := seen[a]
		seen[a] = true
		return dup
	}), nil
}
