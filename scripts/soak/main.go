// Command soak runs a nackcast cloud of real processes on lo for a bounded
// time under trouble: loss on every receiver, new objects published every
// -publish, a random receiver killed (SIGKILL) and restarted every
// -receiver-kill, the primary killed and restarted every -primary-kill.
// At the end it lets the cloud settle and checks that every receiver holds
// a verified copy of every object (SHA-256 against the origin) and that
// the processes that ran throughout (the backup) or were restarted did
// not leak goroutines or file descriptors (go_goroutines and
// process_open_fds from their /metrics, against their values after the
// first complete distribution). It exits 0 only when all holds, and
// removes its processes and files on the way out (-keep keeps the files).
//
//	go run ./scripts/soak -bin bin -for 5m
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
)

type options struct {
	bin          string
	dur          time.Duration
	receivers    int
	loss         float64
	publish      time.Duration
	receiverKill time.Duration
	primaryKill  time.Duration
	keep         bool
}

func main() {
	o := options{bin: "bin", dur: 5 * time.Minute, receivers: 3, loss: 0.02, publish: 10 * time.Second, receiverKill: 20 * time.Second, primaryKill: time.Minute}
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.StringVar(&o.bin, "bin", o.bin, "directory holding the service binaries")
	fs.DurationVar(&o.dur, "for", o.dur, "how long the trouble lasts (the check follows), at most 2h")
	fs.IntVar(&o.receivers, "receivers", o.receivers, "number of receivers")
	fs.Float64Var(&o.loss, "loss", o.loss, "loss injected on every receiver (0 to 0.5)")
	fs.DurationVar(&o.publish, "publish", o.publish, "how often a new object is added to the origin")
	fs.DurationVar(&o.receiverKill, "receiver-kill", o.receiverKill, "how often a random receiver is killed and restarted")
	fs.DurationVar(&o.primaryKill, "primary-kill", o.primaryKill, "how often the primary is killed and restarted")
	fs.BoolVar(&o.keep, "keep", false, "keep the working directory (logs)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if o.dur <= 0 || o.dur > 2*time.Hour || o.receivers < 1 || o.loss < 0 || o.loss > 0.5 {
		fmt.Fprintln(os.Stderr, "soak: -for must be in (0, 2h], -receivers ≥ 1, -loss in [0, 0.5]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := soak(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "soak: FAILED:", err)
		os.Exit(1)
	}
	fmt.Println("soak: OK")
}

func soak(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "nackcast-soak-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Println("work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	cl, err := cloud.New(bin, dir)
	if err != nil {
		return err
	}
	defer cl.Close()
	origin := filepath.Join(dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 100, MaxSmall: 64 << 10, LargeBytes: 32 << 20, Empty: true, Seed: 1}).Generate(filepath.Join(origin, "c")); err != nil {
		return err
	}
	// The whole soak is bounded: trouble for o.dur, then at most 5 min
	// to settle.
	ctx, cancel := context.WithTimeout(ctx, o.dur+5*time.Minute)
	defer cancel()
	senderArgs := []string{"-rate", "50M", "-rescan", "1s", "-period", "300ms", "-health-timeout", "300ms", "-log-level", "warn"}
	run, err := cl.Distribute(ctx, cloud.Distribution{
		Origin: origin, Channel: "c", Receivers: o.receivers, Backup: true, Loss: o.loss,
		SenderArgs:   senderArgs,
		BackupArgs:   append(senderArgs, "-check-interval", "500ms", "-primary-grace", "2s"),
		ReceiverArgs: []string{"-nack-timeout", "500ms", "-log-level", "warn"},
	})
	if err != nil {
		return err
	}
	if _, err := run.Wait(ctx, 3*time.Minute, 200*time.Millisecond, nil); err != nil {
		return fmt.Errorf("first distribution: %w", err)
	}
	fmt.Printf("first distribution complete on %d receivers; trouble for %v\n", o.receivers, o.dur)
	base := map[string]usage{}
	for _, p := range append([]*cloud.Proc{run.Sender, run.Backup}, run.Receivers...) {
		if base[p.Name], err = usageOf(p); err != nil {
			return err
		}
	}

	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	end := time.After(o.dur)
	pub, rk, pk := time.NewTicker(o.publish), time.NewTicker(o.receiverKill), time.NewTicker(o.primaryKill)
	defer pub.Stop()
	defer rk.Stop()
	defer pk.Stop()
	published, rkills, pkills := 0, 0, 0
trouble:
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end:
			break trouble
		case <-pub.C:
			published++
			data := make([]byte, 1+rnd.IntN(4<<20))
			for i := range data {
				data[i] = byte(rnd.Uint32())
			}
			p := filepath.Join(origin, "c", "soak", fmt.Sprintf("obj-%04d.bin", published))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p+".tmp", data, 0o644); err != nil {
				return err
			}
			if err := os.Rename(p+".tmp", p); err != nil {
				return err
			}
		case <-rk.C:
			r := run.Receivers[rnd.IntN(len(run.Receivers))]
			if err := r.Kill(syscall.SIGKILL); err != nil {
				return err
			}
			if err := run.Restart(r); err != nil {
				return err
			}
			rkills++
		case <-pk.C:
			if err := run.Sender.Kill(syscall.SIGKILL); err != nil {
				return err
			}
			time.Sleep(3 * time.Second) // the backup takes over meanwhile
			if err := run.Restart(run.Sender); err != nil {
				return err
			}
			pkills++
		}
		fmt.Printf("%v: %d objects published, %d receiver kills, %d primary kills\n", time.Now().Format("15:04:05"), published, rkills, pkills)
	}
	fmt.Println("trouble over; letting the cloud settle")
	if _, err := run.Wait(ctx, 4*time.Minute, 500*time.Millisecond, nil); err != nil {
		return fmt.Errorf("settle: %w", err)
	}
	if err := run.Verify(); err != nil {
		return err
	}
	fmt.Printf("every receiver holds a verified copy of every object (%d published during the soak)\n", published)
	var leaks []string
	for _, p := range append([]*cloud.Proc{run.Sender, run.Backup}, run.Receivers...) {
		u, err := usageOf(p)
		if err != nil {
			return err
		}
		b := base[p.Name]
		fmt.Printf("  %-12s goroutines %4d (after the first distribution %4d), open fds %4d (%4d)\n", p.Name, u.goroutines, b.goroutines, u.fds, b.fds)
		if u.goroutines > b.goroutines+50 || u.fds > b.fds+50 {
			leaks = append(leaks, p.Name)
		}
	}
	if len(leaks) > 0 {
		return fmt.Errorf("goroutines or file descriptors grew by more than 50 in %v", leaks)
	}
	return nil
}

// usage is what a process holds.
type usage struct{ goroutines, fds int }

// usageOf reads go_goroutines and process_open_fds from p's /metrics.
func usageOf(p *cloud.Proc) (usage, error) {
	resp, err := http.Get("http://" + p.Metrics + "/metrics")
	if err != nil {
		return usage{}, err
	}
	defer resp.Body.Close()
	var u usage
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			u.goroutines = int(f)
		case "process_open_fds":
			u.fds = int(f)
		}
	}
	return u, sc.Err()
}
