package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/nackcast/nackcast/pkg/client"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/mcast"
)

// The bench re-runs itself inside the lab's namespaces in these roles.

// roleResult is what a role prints, as one JSON line, for the bench.
type roleResult struct {
	Bytes   int64   `json:"bytes"`
	Seconds float64 `json:"seconds"`
	Objects int     `json:"objects,omitempty"`
}

// rawConfig is the multicast setting of the raw ceiling pair: the
// interface is always named (never the kernel's choice), and offload
// selects UDP GSO at the blaster and UDP GRO at the sinks, or plain
// batches of datagrams (sendmmsg/recvmmsg) without either.
func rawConfig(iface string, port int, offload bool) mcast.Config {
	c := mcast.DefaultConfig()
	c.NoOffload = !offload
	c.Interface = iface
	c.Group = netip.MustParseAddr("239.77.0.99")
	c.Port = port
	c.ReadBuffer = 32 << 20
	c.WriteBuffer = 8 << 20
	return c
}

// rawBlast sends back-to-back batches of 1440-byte datagrams to the group
// for d, as GSO buffers or as plain batches: the fastest the machine
// multicasts, with no protocol.
func rawBlast(iface string, port int, d time.Duration, offload bool) error {
	s, err := mcast.NewSender(rawConfig(iface, port, offload))
	if err != nil {
		return err
	}
	defer s.Close()
	if offload && !s.GSO() {
		return errors.New("UDP GSO asked for but not available")
	}
	const seg = 1440
	buf := make([]byte, seg*(mcast.MaxSegmentBytes/seg))
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := s.SendSegments(buf, seg); err != nil {
			return err
		}
	}
	return nil
}

// rawSink counts the bytes it receives from the group until the group has
// been quiet for a second after the first datagram, and prints the rate
// between the first and the last.
func rawSink(iface string, port int, limit time.Duration, offload bool) error {
	r, err := mcast.NewReceiver(rawConfig(iface, port, offload), 2048)
	if err != nil {
		return err
	}
	defer r.Close()
	if offload && !r.GRO() {
		return errors.New("UDP GRO asked for but not available")
	}
	fmt.Fprintln(os.Stderr, "ready")
	var first, last time.Time
	var n int64
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		wait := time.Second
		if first.IsZero() {
			wait = time.Until(deadline)
		}
		if err := r.SetDeadline(time.Now().Add(wait)); err != nil {
			return err
		}
		batch, err := r.Read()
		if err != nil {
			if !first.IsZero() {
				break
			}
			continue
		}
		now := time.Now()
		if first.IsZero() {
			first = now
		}
		last = now
		for _, b := range batch {
			n += int64(len(b))
		}
	}
	return printResult(roleResult{Bytes: n, Seconds: last.Sub(first).Seconds()})
}

// pull fetches every object of channel from the sender at addr over
// unicast gRPC (Pull), writes and verifies it: the unicast fan-out that
// multicast is compared with.
func pull(addr, channel, dir string) error {
	cc, err := client.Dial(addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	sc := pb.NewSenderServiceClient(cc)
	ctx := context.Background()
	start := time.Now()
	resp, err := sc.GetManifest(ctx, &pb.GetManifestRequest{Channel: channel})
	if err != nil {
		return err
	}
	m, err := manifest.FromProto(resp.GetManifest())
	if err != nil {
		return err
	}
	var total int64
	var mu sync.Mutex
	g := new(errgroup.Group)
	g.SetLimit(4)
	for _, o := range m.Objects {
		g.Go(func() error {
			n, err := pullOne(ctx, sc, channel, o, filepath.Join(dir, filepath.FromSlash(o.Path)))
			mu.Lock()
			total += n
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return printResult(roleResult{Bytes: total, Seconds: time.Since(start).Seconds(), Objects: len(m.Objects)})
}

func pullOne(ctx context.Context, sc pb.SenderServiceClient, channel string, o manifest.Object, path string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := sha256.New()
	var n int64
	if o.Size > 0 {
		stream, err := sc.Pull(ctx, &pb.PullRequest{Channel: channel, ObjectId: o.ID, Version: o.Version, ReceiverId: "bench-pull"})
		if err != nil {
			return 0, err
		}
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return n, err
			}
			if _, err := f.WriteAt(msg.GetData(), int64(msg.GetOffset())); err != nil {
				return n, err
			}
			h.Write(msg.GetData()) // whole-object pulls arrive in order
			n += int64(len(msg.GetData()))
		}
	}
	if [32]byte(h.Sum(nil)) != o.SHA256 {
		return n, fmt.Errorf("%s: SHA-256 mismatch", o.Path)
	}
	return n, f.Sync()
}

// anchor holds a network namespace open for the bench's probes: the bench
// reads the namespace's counters through /proc/<pid>/net of this process.
// It says "ready" once it runs inside the namespace and exits when its
// standard input closes (the bench ended, however it ended).
func anchor() error {
	fmt.Println("ready")
	_, err := io.Copy(io.Discard, os.Stdin)
	return err
}

func printResult(r roleResult) error {
	return json.NewEncoder(os.Stdout).Encode(r)
}

// runRole runs the bench in one of its internal roles.
func runRole(o roleOptions) error {
	switch o.role {
	case "raw-blast":
		return rawBlast(o.iface, o.port, o.d, o.offload)
	case "raw-sink":
		return rawSink(o.iface, o.port, o.d, o.offload)
	case "anchor":
		return anchor()
	case "pull":
		if o.addr == "" || o.dir == "" {
			return errors.New("pull needs -addr and -dir")
		}
		return pull(o.addr, o.channel, o.dir)
	}
	return fmt.Errorf("unknown role %q", o.role)
}
