// Command implosion measures how a real sender holds up under a NACK
// implosion: many simulated receivers (goroutines sharing a few real gRPC
// connections) NACK random chunk ranges of a channel as a lossy cloud
// would, each following the next_nack_after the sender hands back (with
// the receivers' ±25% jitter). It reports the NACK arrival rate the sender
// sees once every receiver has followed its first interval, against the
// sender's configured target, and the sender process's memory, for each
// receiver count.
//
//	go run ./scripts/implosion -bin bin -counts 100,1000,10000
//
// The sender is the real binary on lo; its multicast stays on lo.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/rpc"
)

type options struct {
	bin     string
	counts  []int
	conns   int
	target  float64
	minRun  time.Duration
	maxRun  time.Duration
	objects int
}

type result struct {
	receivers   int
	settle, run time.Duration
	mean, peak  float64 // NACKs/s after settling: mean, highest 1 s window
	within      float64 // fraction of 1 s windows within 2x the target
	interval    time.Duration
	rss, hwm    int64
	errors      uint64
}

func main() {
	o := options{bin: "bin", conns: 4, target: 200, minRun: 20 * time.Second, maxRun: 3 * time.Minute, objects: 100}
	var counts string
	fs := flag.NewFlagSet("implosion", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", o.bin, "directory holding the service binaries")
	fs.StringVar(&counts, "counts", "100,1000,10000", "comma-separated simulated receiver counts")
	fs.IntVar(&o.conns, "conns", o.conns, "gRPC connections the simulated receivers share")
	fs.Float64Var(&o.target, "target", o.target, "the sender's -nack-target-rate (NACKs per second)")
	fs.DurationVar(&o.minRun, "min-run", o.minRun, "shortest measurement per count")
	fs.DurationVar(&o.maxRun, "max-run", o.maxRun, "longest run per count (settling included)")
	fs.IntVar(&o.objects, "objects", o.objects, "objects in the channel")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	for _, s := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 100000 {
			fmt.Fprintf(os.Stderr, "implosion: bad receiver count %q (1 to 100000)\n", s)
			os.Exit(2)
		}
		o.counts = append(o.counts, n)
	}
	if abs, err := filepath.Abs(o.bin); err == nil {
		o.bin = abs // the cloud runs its processes in its own directory
	}
	if o.conns < 1 || o.target <= 0 || o.objects < 1 {
		fmt.Fprintln(os.Stderr, "implosion: -conns, -target and -objects must be positive")
		os.Exit(2)
	}
	var results []result
	for _, n := range o.counts {
		r, err := once(o, n)
		if err != nil {
			fmt.Fprintf(os.Stderr, "implosion FAILED at %d receivers: %v\n", n, err)
			os.Exit(1)
		}
		results = append(results, r)
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "receivers\tsettle s\tmeasured s\tNACK/s mean\tNACK/s peak 1s\twindows within 2x target\tinterval handed out\tsender RSS MiB\tsender peak RSS MiB\tRPC errors\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f%%\t%v\t%.1f\t%.1f\t%d\t\n", r.receivers, r.settle.Seconds(), r.run.Seconds(),
			r.mean, r.peak, 100*r.within, r.interval.Round(time.Millisecond), float64(r.rss)/(1<<20), float64(r.hwm)/(1<<20), r.errors)
	}
	tw.Flush()
	fmt.Printf("\ntarget %.0f NACKs/s; %d gRPC connections shared by the simulated receivers; sender on lo, defaults otherwise\n", o.target, o.conns)
}

func once(o options, n int) (result, error) {
	res := result{receivers: n}
	dir, err := os.MkdirTemp("", "nackcast-implosion-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	origin := filepath.Join(dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: o.objects, MaxSmall: 64 << 10, Seed: 3}).Generate(filepath.Join(origin, "c")); err != nil {
		return res, err
	}
	cl, err := cloud.New(o.bin, dir)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	snd, err := cl.Start("sender", "sender", "-origin", origin, "-channels", "c", "-state-dir", "none", "-log-level", "warn",
		"-nack-target-rate", strconv.FormatFloat(o.target, 'f', -1, 64), "-rate", "50M",
		// The simulated receivers share 4 connections from one address:
		// the per-client limit would count them as one client.
		"-client-rate", "0")
	if err != nil {
		return res, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.maxRun+time.Minute)
	defer cancel()
	if err := snd.WaitServing(ctx); err != nil {
		return res, err
	}
	mresp, err := pb.NewSenderServiceClient(snd.Conn()).GetManifest(ctx, &pb.GetManifestRequest{Channel: "c"})
	if err != nil {
		return res, err
	}
	m := mresp.GetManifest()
	conns := make([]*grpc.ClientConn, o.conns)
	for i := range conns {
		if conns[i], err = rpc.Dial(snd.Addr); err != nil {
			return res, err
		}
		defer conns[i].Close()
	}

	// Every receiver has followed its first interval once the longest
	// interval the sender can hand out for this crowd, n/target, has
	// passed twice (plus the initial 200 ms).
	settle := time.Duration(2*float64(n)/o.target*float64(time.Second)) + time.Second
	run := max(o.minRun, min(o.maxRun-settle, 3*settle))
	if settle+run > o.maxRun {
		run = max(o.maxRun-settle, 5*time.Second)
	}
	res.settle, res.run = settle, run
	fmt.Printf("%d simulated receivers: settling %v, then measuring %v\n", n, settle.Round(time.Second), run.Round(time.Second))

	start := time.Now()
	end := start.Add(settle + run)
	seconds := int((settle + run) / time.Second)
	perSecond := make([]atomic.Uint64, seconds+2)
	var errs atomic.Uint64
	var lastInterval atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			receiver(ctx, pb.NewSenderServiceClient(conns[i%len(conns)]), m, i, start, end, perSecond, &errs, &lastInterval)
		}()
	}
	wg.Wait()
	res.errors = errs.Load()
	res.interval = time.Duration(lastInterval.Load())
	first := int(settle / time.Second)
	var rates []float64
	for s := first; s < seconds; s++ {
		rates = append(rates, float64(perSecond[s].Load()))
	}
	if len(rates) == 0 {
		return res, fmt.Errorf("no measurement window")
	}
	var sum float64
	within := 0
	for _, r := range rates {
		sum += r
		if r <= 2*o.target {
			within++
		}
	}
	sort.Float64s(rates)
	res.mean, res.peak = sum/float64(len(rates)), rates[len(rates)-1]
	res.within = float64(within) / float64(len(rates))
	if res.rss, res.hwm, err = snd.Memory(); err != nil {
		return res, err
	}
	fmt.Printf("  mean %.0f NACKs/s, peak %.0f, sender RSS %.1f MiB (peak %.1f MiB)\n", res.mean, res.peak, float64(res.rss)/(1<<20), float64(res.hwm)/(1<<20))
	return res, nil
}

// receiver is one simulated receiver: it NACKs one to three random objects
// with a random missing range, as a receiver behind a lossy path would,
// and waits the interval the sender hands back, jittered by ±25%.
func receiver(ctx context.Context, c pb.SenderServiceClient, m *pb.Manifest, id int, start, end time.Time,
	perSecond []atomic.Uint64, errs *atomic.Uint64, lastInterval *atomic.Int64) {
	rnd := rand.New(rand.NewPCG(uint64(id), 7))
	objs := m.GetObjects()
	var follow time.Duration
	// Receivers come up over the first initial interval (200 ms).
	wait := time.Duration(rnd.Int64N(int64(200 * time.Millisecond)))
	for {
		next := time.Now().Add(wait)
		if next.After(end) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
		req := &pb.NackRequest{ReceiverId: fmt.Sprintf("sim-%d", id), Channel: m.GetChannel(), ManifestVersion: m.GetVersion()}
		if follow > 0 {
			req.NackInterval = durationpb.New(follow)
		}
		for range 1 + rnd.IntN(3) {
			o := objs[rnd.IntN(len(objs))]
			on := &pb.ObjectNack{ObjectId: o.GetObjectId(), Version: o.GetVersion()}
			if chunks := o.GetChunkCount(); chunks > 1 {
				first := rnd.Uint32N(chunks)
				on.Missing = []*pb.ChunkRange{{First: first, Count: 1 + rnd.Uint32N(chunks-first)}}
			}
			req.Objects = append(req.Objects, on)
		}
		if s := int(time.Since(start) / time.Second); s >= 0 && s < len(perSecond) {
			perSecond[s].Add(1)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := c.Nack(cctx, req)
		cancel()
		if err != nil {
			errs.Add(1)
			wait = time.Second
			continue
		}
		follow = resp.GetNextNackAfter().AsDuration()
		lastInterval.Store(int64(follow))
		wait = time.Duration(float64(follow) * (0.75 + 0.5*rnd.Float64()))
	}
}
