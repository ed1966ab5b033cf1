// Command bench measures nackcast with real processes and compares it with
// its peers on the same content in the same run, in a way meant not to
// flatter it.
//
// As root (the default of make bench) it builds a lab of network
// namespaces on a bridge (MTU 1500): one sender host and three receiver
// hosts. The sender's veth cuts UDP GSO bursts into ordinary datagrams
// (ethtool -K eth0 tx-udp-segmentation off, checked), as a real NIC does,
// and random loss is an nftables rule on each receiver's UDP input, so it
// hits single datagrams. On 256 MB of random data in one file it runs: the
// raw multicast ceiling (plain batched sends, and GSO at the sender with
// GRO at the receivers), nackcast (-rate 1e9, everything else default),
// Debian's uftp 4 (uftp -R -1 -r 0.01:0.001:1 -B 33554432, uftpd -B
// 33554432), udpcast (defaults) and a unicast gRPC fan-out, at 1 and 3
// receivers and at 5% loss; then a mixed channel, 20,000 objects of 4 KiB,
// and one 4 GiB object for the receiver's peak RSS. Every configuration is
// repeated -reps times, interleaved (one repetition of every configuration,
// then the next). Every receiver's copy is verified by SHA-256 for every
// tool, or the run fails.
//
// Each run is measured from the kernel's counters, the same way for every
// tool: xfer (first data packet on the sender's wire until every receiver
// holds its copy), wall (sender process start until then), MB/s per
// receiver, sender interface bytes per content byte, machine-wide CPU
// seconds per delivered GB, and drops by kind (socket buffer, input queue,
// loss rule). It prints the medians with min-max and the goals of issue 13
// with their ratios to uftp, and writes every run and the medians as CSV and
// a PNG chart under -results.
//
// Without root, or with -lo, it measures nackcast alone on lo: time to
// complete, goodput per receiver, sender bytes per content byte, NACKs,
// repair passes and unicast bytes.
//
// The same binary re-runs itself inside the namespaces in the hidden
// -role modes (raw-blast, raw-sink, pull, anchor).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/nackcast/nackcast/pkg/app"
	"github.com/nackcast/nackcast/pkg/cloud"
)

type options struct {
	bin          string
	size         int64 // the one file of the main rows (namespace lab)
	mixedSize    int64 // the mixed channel: half in one file, half in small files
	files        int
	smallObjects int
	receivers    []int
	losses       []float64
	rate         int64
	rateArg      string // -rate as given, passed on to the nackcast sender
	reps         int
	timeout      time.Duration
	lo           bool
	results      string
	only         map[string]bool // namespace runs to do; empty = all
	keep         bool            // keep the work directory (logs) of the namespace lab
	logLevel     string          // log level of the nackcast services; empty = their default
	profile      string          // directory for CPU profiles of nackcast runs
	bigSize      int64           // size of the one-object run (receiver memory)
	bigReps      int             // repetitions of the one-object run
	settle       time.Duration   // pause between runs
	rxGRO        bool            // turn GRO on on the receivers' veths
	quietBelow   float64         // background load (CPU cores) a run waits to fall below
	quietWait    time.Duration   // for at most this long
}

// groups are the names -only accepts.
var groups = []string{"raw", "nackcast", "loss", "uftp", "udpcast", "unicast", "mixed", "small", "big"}

// roleOptions configure the modes the bench runs itself in.
type roleOptions struct {
	role, iface, addr, channel, dir string
	port                            int
	d                               time.Duration
	offload                         bool
}

func main() { os.Exit(run()) }

func run() int {
	o := options{bin: "bin", size: 256_000_000, mixedSize: 256_000_000, files: 200, smallObjects: 20000,
		rate: 1_000_000_000, rateArg: "1e9", reps: 5, timeout: 3 * time.Minute, results: "results",
		bigSize: 4 << 30, bigReps: 1, settle: time.Second, quietBelow: 0.25, quietWait: 10 * time.Second}
	var ro roleOptions
	var receivers, losses, only string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", o.bin, "directory holding the service binaries")
	fs.Var(app.NewByteSize(&o.size), "size", "size of the one file of random data of the main rows (namespace lab), e.g. 256MB = 256x10^6 bytes")
	fs.Var(app.NewByteSize(&o.mixedSize), "mixed-size", "size of the mixed channel: half in one large file, half in -files small files (the loopback benchmark's content)")
	fs.IntVar(&o.files, "files", o.files, "number of small files of the mixed channel")
	fs.IntVar(&o.smallObjects, "small-objects", o.smallObjects, "number of 4 KiB objects of the many-small-objects run (namespace lab)")
	fs.IntVar(&o.reps, "reps", o.reps, "repetitions of every configuration, interleaved (namespace lab)")
	fs.StringVar(&receivers, "receivers", "3", "comma-separated receiver counts to run (lo)")
	fs.StringVar(&losses, "loss", "0,0.05", "comma-separated injected loss rates to run (lo)")
	fs.Func("rate", "nackcast sender rate ceiling in bytes/s, passed on as given (0 = unpaced)", func(s string) error {
		n, err := app.ParseByteSize(s)
		if err != nil {
			return err
		}
		o.rate, o.rateArg = n, s
		return nil
	})
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "give up on a run after this long (the one-object run gets at least 1 s per 10 MB)")
	fs.BoolVar(&o.lo, "lo", false, "run the loopback benchmark even as root")
	fs.StringVar(&o.results, "results", o.results, "directory for the CSV tables and the PNG chart (namespace lab)")
	fs.StringVar(&only, "only", "", "comma-separated namespace runs to do ("+strings.Join(groups, ", ")+"); empty = all")
	fs.BoolVar(&o.keep, "keep", false, "keep the namespace lab's work directory (service logs) and print where")
	fs.StringVar(&o.logLevel, "log-level", "", "log level of the nackcast services in the namespace lab (empty: their default)")
	fs.Var(app.NewByteSize(&o.bigSize), "big-size", "size of the one object sent to one receiver to measure the receiver's peak RSS (namespace lab; 0 = skip)")
	fs.IntVar(&o.bigReps, "big-reps", o.bigReps, "repetitions of the one-object run, after the interleaved ones")
	fs.DurationVar(&o.settle, "settle", o.settle, "pause between runs, after a sync, so that one run's writeback does not land in the next")
	fs.Float64Var(&o.quietBelow, "quiet-below", o.quietBelow, "before a run, wait until other work keeps fewer than this many CPU cores busy (over half a second)...")
	fs.DurationVar(&o.quietWait, "quiet-wait", o.quietWait, "...for at most this long; the load measured is in the runs CSV either way")
	fs.BoolVar(&o.rxGRO, "rx-gro", false, "turn GRO on on the receivers' veths (ethtool -K eth0 gro on), as real NICs have it; veth's default is off")
	fs.StringVar(&o.profile, "profile", "", "write CPU profiles of the sender and of receiver-1 of every nackcast run into this directory (namespace lab; costs CPU)")
	fs.StringVar(&ro.role, "role", "", "internal: run as raw-blast, raw-sink, pull or anchor")
	fs.StringVar(&ro.iface, "iface", "eth0", "internal: multicast interface of a role")
	fs.IntVar(&ro.port, "port", 27999, "internal: UDP port of the raw pair")
	fs.DurationVar(&ro.d, "for", 3*time.Second, "internal: how long the raw pair runs")
	fs.BoolVar(&ro.offload, "offload", true, "internal: UDP GSO/GRO for the raw pair")
	fs.StringVar(&ro.addr, "addr", "", "internal: sender address of pull")
	fs.StringVar(&ro.channel, "channel", "bench", "internal: channel of pull")
	fs.StringVar(&ro.dir, "dir", "", "internal: destination of pull")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if ro.role != "" {
		if err := runRole(ro); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", ro.role, err)
			return 1
		}
		return 0
	}
	o.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		known := false
		for _, g := range groups {
			known = known || s == g
		}
		if !known {
			fmt.Fprintf(os.Stderr, "bench: unknown run %q in -only (want %s)\n", s, strings.Join(groups, ", "))
			return 2
		}
		o.only[s] = true
	}
	if o.reps < 1 || o.bigReps < 0 || o.size < 1 || o.mixedSize < 2 || o.files < 1 {
		fmt.Fprintln(os.Stderr, "bench: -reps, -size, -mixed-size and -files must be positive")
		return 2
	}
	for _, s := range strings.Split(receivers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: bad receiver count %q\n", s)
			return 2
		}
		o.receivers = append(o.receivers, n)
	}
	for _, s := range strings.Split(losses, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || f < 0 || f >= 1 {
			fmt.Fprintf(os.Stderr, "bench: bad loss %q\n", s)
			return 2
		}
		o.losses = append(o.losses, f)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	do := benchNetns
	if o.lo || os.Geteuid() != 0 {
		if !o.lo {
			fmt.Println("not root: the namespace comparison (uftp, raw ceiling, unicast fan-out) needs root; running the loopback benchmark of nackcast alone")
		}
		do = bench
	}
	if err := do(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench FAILED:", err)
		return 1
	}
	return 0
}

type result struct {
	receivers              int
	loss                   float64
	wall, slowest          time.Duration
	minGoodput, avgGoodput float64
	wireRatio              float64
	nacks, repairs         uint64
	unicast                uint64
}

func bench(ctx context.Context, o options) error {
	work, err := os.MkdirTemp("", "nackcast-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	origin := filepath.Join(work, "origin")
	half := o.mixedSize / 2
	sample := cloud.Sample{SmallFiles: o.files, MaxSmall: int(2 * half / int64(max(o.files, 1))), LargeBytes: half, Seed: 7}
	total, err := sample.Generate(filepath.Join(origin, "bench"))
	if err != nil {
		return err
	}
	cpus := runtime.NumCPU()
	fmt.Printf("content: %d files, %.1f MB; lo, rate %s, %d CPUs; every run verified by SHA-256\n\n",
		o.files+1, float64(total)/1e6, rateString(o.rate), cpus)
	var results []result
	for _, n := range o.receivers {
		for _, loss := range o.losses {
			r, err := once(ctx, o, bin, work, origin, total, n, loss)
			if err != nil {
				return fmt.Errorf("%d receivers, loss %.2f: %w", n, loss, err)
			}
			results = append(results, r)
			fmt.Printf("done: %d receivers, loss %.0f%%: %.2fs\n", n, 100*loss, r.slowest.Seconds())
		}
	}
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "receivers\tloss\tseconds\tMB/s per receiver (min)\tMB/s per receiver (avg)\twire/content\tNACKs\trepair passes\tunicast MB\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%d\t%.0f%%\t%.2f\t%.1f\t%.1f\t%.3f\t%d\t%d\t%.1f\t\n",
			r.receivers, 100*r.loss, r.slowest.Seconds(), r.minGoodput, r.avgGoodput, r.wireRatio, r.nacks, r.repairs, float64(r.unicast)/1e6)
	}
	tw.Flush()
	fmt.Println("\nseconds: slowest receiver, first manifest to verified completion; wire/content: UDP payload bytes multicast / content bytes")
	return nil
}

func once(ctx context.Context, o options, bin, work, origin string, total int64, receivers int, loss float64) (result, error) {
	dir, err := os.MkdirTemp(work, "run-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	c, err := cloud.New(bin, dir)
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	run, err := c.Distribute(ctx, cloud.Distribution{
		Origin:       origin,
		Channel:      "bench",
		Receivers:    receivers,
		Loss:         loss,
		SenderArgs:   []string{"-rate", strconv.FormatInt(o.rate, 10), "-log-level", "warn", "-state-dir", "none"},
		ReceiverArgs: []string{"-log-level", "warn"},
	})
	if err != nil {
		return result{}, err
	}
	sts, err := run.Wait(ctx, o.timeout, 100*time.Millisecond, nil)
	if err != nil {
		return result{}, err
	}
	res := result{receivers: receivers, loss: loss, wall: time.Since(run.Start), minGoodput: 1e18}
	var sum float64
	for _, st := range sts {
		d := cloud.CompletionTime(st)
		res.slowest = max(res.slowest, d)
		g := float64(total) / max(d.Seconds(), 1e-9) / 1e6
		res.minGoodput = min(res.minGoodput, g)
		sum += g
	}
	res.avgGoodput = sum / float64(len(sts))
	snd, err := run.Sender.SenderStatus(ctx)
	if err != nil {
		return result{}, err
	}
	sc := snd.GetCounters()
	res.wireRatio = float64(sc.GetBytesSent()) / float64(total)
	res.nacks, res.repairs, res.unicast = sc.GetNacks(), sc.GetRepairPasses(), sc.GetPullBytes()
	if err := run.Verify(); err != nil {
		return result{}, err
	}
	return res, nil
}

func rateString(r int64) string {
	if r == 0 {
		return "unpaced"
	}
	return fmt.Sprintf("%.0f MB/s", float64(r)/1e6)
}
