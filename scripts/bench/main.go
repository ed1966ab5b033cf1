// Command bench measures nackcast with real processes and compares it with
// its peers on the same content in the same run.
//
// As root (the default of make bench) it builds a lab of network
// namespaces on a bridge (MTU 1500): one sender host and up to six
// receiver hosts. It measures the raw UDP GSO+GRO ceiling with a blaster
// and sinks of its own, nackcast at 1, 3 and 6 receivers and under 5%
// random loss, Debian's uftp under the same conditions, a unicast gRPC
// fan-out at 1, 3 and 6 receivers, and 20,000 objects of 4 KiB. Every
// receiver's copy is verified by SHA-256 for every tool. It prints one
// table and the ratios of the performance targets, and writes the table
// as CSV and a PNG chart under -results.
//
// Without root, or with -lo, it measures nackcast alone on lo: time to
// complete, goodput per receiver, sender bytes per content byte, NACKs,
// repair passes and unicast bytes.
//
// The same binary re-runs itself inside the namespaces in the hidden
// -role modes (raw-blast, raw-sink, pull).
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
	size         int64
	files        int
	smallObjects int
	receivers    []int
	losses       []float64
	rate         int64
	timeout      time.Duration
	lo           bool
	results      string
	only         map[string]bool // namespace runs to do; empty = all
	keep         bool            // keep the work directory (logs) of the namespace lab
	logLevel     string          // log level of the nackcast services
	profile      string          // directory for CPU profiles of nackcast runs
	bigSize      int64           // size of the one-object run (receiver memory)
}

// roleOptions configure the modes the bench runs itself in.
type roleOptions struct {
	role, iface, addr, channel, dir string
	port                            int
	d                               time.Duration
}

func main() { os.Exit(run()) }

func run() int {
	o := options{bin: "bin", size: 512 << 20, files: 200, smallObjects: 20000, rate: 1_000_000_000,
		timeout: 5 * time.Minute, results: "results", bigSize: 4 << 30}
	var ro roleOptions
	var receivers, losses, only string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", o.bin, "directory holding the service binaries")
	fs.Var(app.NewByteSize(&o.size), "size", "content size: half in one large file, half in small files")
	fs.IntVar(&o.files, "files", o.files, "number of small files")
	fs.IntVar(&o.smallObjects, "small-objects", o.smallObjects, "number of 4 KiB objects of the many-small-objects run (namespace lab)")
	fs.StringVar(&receivers, "receivers", "3", "comma-separated receiver counts to run (lo)")
	fs.StringVar(&losses, "loss", "0,0.05", "comma-separated injected loss rates to run (lo)")
	fs.Var(app.NewByteSize(&o.rate), "rate", "sender rate ceiling in bytes/s (0 = unpaced)")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "give up on a run after this long")
	fs.BoolVar(&o.lo, "lo", false, "run the loopback benchmark even as root")
	fs.StringVar(&o.results, "results", o.results, "directory for the CSV table and the PNG chart (namespace lab)")
	fs.StringVar(&only, "only", "", "comma-separated namespace runs to do (raw, nackcast, loss, uftp, unicast, small, big); empty = all")
	fs.BoolVar(&o.keep, "keep", false, "keep the namespace lab's work directory (service logs) and print where")
	fs.StringVar(&o.logLevel, "log-level", "warn", "log level of the nackcast services in the namespace lab")
	fs.Var(app.NewByteSize(&o.bigSize), "big-size", "size of the one object sent to one receiver to measure the receiver's peak RSS (namespace lab; 0 = skip)")
	fs.StringVar(&o.profile, "profile", "", "write CPU profiles of the sender and of receiver-1 of every nackcast run into this directory (namespace lab)")
	fs.StringVar(&ro.role, "role", "", "internal: run as raw-blast, raw-sink or pull")
	fs.StringVar(&ro.iface, "iface", "eth0", "internal: multicast interface of a role")
	fs.IntVar(&ro.port, "port", 27999, "internal: UDP port of the raw pair")
	fs.DurationVar(&ro.d, "for", 3*time.Second, "internal: how long the raw pair runs")
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
		switch s {
		case "raw", "nackcast", "loss", "uftp", "unicast", "small", "big":
			o.only[s] = true
		default:
			fmt.Fprintf(os.Stderr, "bench: unknown run %q in -only (want raw, nackcast, loss, uftp, unicast, small, big)\n", s)
			return 2
		}
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
	half := o.size / 2
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
