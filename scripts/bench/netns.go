package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	"github.com/nackcast/nackcast/pkg/netlab"
)

// maxReceivers is the largest receiver count of the lab's configurations.
const maxReceivers = 3

// channel is content the lab distributes, under origin/<name>.
type channel struct {
	name    string
	bytes   int64 // per receiver
	objects int
	single  string // path of its one file, for tools that send one file; empty if several
}

// lab is the network, content and processes of a namespace benchmark.
type lab struct {
	net      *netlab.Lab
	anchors  map[*netlab.Host]*proc // one process per host, for its counters
	self     string                 // this binary, re-run in the namespaces for its roles
	bin      string                 // the service binaries
	work     string
	origin   string
	channels map[string]*channel
	o        options

	mu    sync.Mutex
	procs map[*proc]bool // every process started and not yet reaped
}

func benchNetns(ctx context.Context, o options) (err error) {
	if err := netlab.Available(); err != nil {
		return fmt.Errorf("the namespace benchmark needs root, iproute2 and nftables (%w); run make bench as root, or go run ./scripts/bench -lo for the loopback one", err)
	}
	if err := ensureTools(); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "nackcast-netbench-")
	if err != nil {
		return err
	}
	if o.keep {
		defer fmt.Printf("work directory kept: %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	n, err := netlab.New(1+maxReceivers, 1500)
	if err != nil {
		return err
	}
	l := &lab{net: n, anchors: map[*netlab.Host]*proc{}, self: self, bin: bin, work: work, origin: filepath.Join(work, "origin"),
		channels: map[string]*channel{}, o: o, procs: map[*proc]bool{}}
	// Whatever happens from here (an error, a panic, Ctrl-C), every
	// process the lab started is killed by its PID, then the namespaces
	// go, and with them their veths and nftables tables.
	defer func() {
		l.killAll()
		if cerr := n.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the lab: %w", cerr))
		}
	}()
	if err := l.setup(ctx); err != nil {
		return err
	}
	if err := l.generate(); err != nil {
		return err
	}
	configs := l.configs()
	if len(configs) == 0 {
		return errors.New("-only selects no configuration")
	}
	fmt.Printf("\n%d configurations x %d repetitions, interleaved; a run gives up after %v\n\n", len(configs), o.reps, o.timeout)
	var samples []*sample
	// A failed nackcast run (or the harness's) fails the bench; a peer's
	// failed run (uftp dropping a receiver, say) is a result, shown as such.
	var failed, peerFailed int
	runOne := func(c *config, rep, reps int) error {
		s := l.runConfig(ctx, c, rep)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if strings.HasPrefix(s.Status, "failed") {
			if c.tool == "nackcast" {
				failed++
			} else {
				peerFailed++
			}
		}
		fmt.Printf("  %d/%d %-26s %s\n", rep, reps, c.key, s.line())
		samples = append(samples, s)
		return nil
	}
	var interrupted error
	var main, big []*config
	for _, c := range configs {
		if c.channel == "big" {
			big = append(big, c)
		} else {
			main = append(main, c)
		}
	}
	for rep := 1; rep <= o.reps && interrupted == nil; rep++ {
		for _, c := range main {
			if interrupted = runOne(c, rep, o.reps); interrupted != nil {
				break
			}
		}
	}
	for _, c := range big {
		for rep := 1; rep <= o.bigReps && interrupted == nil; rep++ {
			interrupted = runOne(c, rep, o.bigReps)
		}
	}
	if rerr := report(samples, configs, l); rerr != nil {
		return rerr
	}
	if interrupted != nil {
		return fmt.Errorf("interrupted (%w): the tables hold the runs done so far", interrupted)
	}
	if peerFailed > 0 {
		fmt.Printf("%d runs of the peers failed (their status is in the table and the runs CSV)\n", peerFailed)
	}
	if failed > 0 {
		return fmt.Errorf("%d nackcast runs failed (see the status column of the runs CSV)", failed)
	}
	return nil
}

// ensureTools installs what the lab needs from Debian packages when it is
// missing: ethtool (to make the sender's veth segment GSO bursts), uftp
// and udpcast (the peers). apt-get update runs once, before the first
// install.
func ensureTools() error {
	var missing []string
	for _, t := range []struct{ bin, pkg string }{{"ethtool", "ethtool"}, {"uftp", "uftp"}, {"uftpd", "uftp"}, {"udp-sender", "udpcast"}, {"udp-receiver", "udpcast"}} {
		if _, err := exec.LookPath(t.bin); err != nil && !contains(missing, t.pkg) {
			missing = append(missing, t.pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	fmt.Printf("installing %s from Debian packages...\n", strings.Join(missing, ", "))
	for _, args := range [][]string{{"update"}, append([]string{"install", "-y", "--no-install-recommends"}, missing...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", args[0], err, out)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// setup makes the sender's veth segment GSO bursts, starts the anchors
// and prints the conditions of the run.
func (l *lab) setup(ctx context.Context) error {
	snd := l.sender()
	if out, err := snd.Command("ethtool", "-K", "eth0", "tx-udp-segmentation", "off").CombinedOutput(); err != nil {
		return fmt.Errorf("ethtool -K eth0 tx-udp-segmentation off in %s: %w: %s", snd.Name, err, out)
	}
	seg, err := ethtoolFeature(snd, "tx-udp-segmentation")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(seg, "off") {
		return fmt.Errorf("the sender's eth0 still has tx-udp-segmentation %q: GSO bursts would cross the bridge whole", seg)
	}
	if l.o.rxGRO {
		for _, h := range l.receivers(maxReceivers) {
			if out, err := h.Command("ethtool", "-K", "eth0", "gro", "on").CombinedOutput(); err != nil {
				return fmt.Errorf("ethtool -K eth0 gro on in %s: %w: %s", h.Name, err, out)
			}
		}
	}
	gro, err := ethtoolFeature(l.receivers(1)[0], "generic-receive-offload")
	if err != nil {
		return err
	}
	for _, h := range l.net.Hosts {
		p, err := l.spawn(ctx, h, "anchor", "", l.self, "-role", "anchor")
		if err != nil {
			return err
		}
		if !p.waitReady(10 * time.Second) {
			return fmt.Errorf("the anchor in %s did not start", h.Name)
		}
		l.anchors[h] = p
	}
	fmt.Printf("date %s; commit %s; kernel %s; %d CPUs\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), commit(), kernel(), runtime.NumCPU())
	fmt.Printf("lab: 1 sender + %d receivers in network namespaces on a bridge, MTU 1500\n", maxReceivers)
	fmt.Printf("sender eth0 (veth) tx-udp-segmentation: %s (set off with ethtool -K inside its namespace: GSO bursts leave as single datagrams)\n", seg)
	fmt.Printf("receiver eth0 (veth) generic-receive-offload: %s (-rx-gro); net.core.netdev_max_backlog %s, rmem_max %s, wmem_max %s\n", gro,
		readKernelInt("/proc/sys/net/core/netdev_max_backlog"), readKernelInt("/proc/sys/net/core/rmem_max"), readKernelInt("/proc/sys/net/core/wmem_max"))
	fmt.Printf("peers: %s\n", packageVersions("uftp", "udpcast", "ethtool"))
	fmt.Printf("nackcast: sender -rate %s, everything else default (receivers' -rcvbuf default, -first-pass-delay default)\n", l.o.rateArg)
	return nil
}

// ethtoolFeature returns the state of one feature of eth0 in h, as ethtool
// -k prints it ("off", "on", "off [fixed]").
func ethtoolFeature(h *netlab.Host, feature string) (string, error) {
	out, err := h.Command("ethtool", "-k", "eth0").Output()
	if err != nil {
		return "", fmt.Errorf("ethtool -k eth0 in %s: %w", h.Name, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == feature {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("ethtool -k eth0 in %s: no %s", h.Name, feature)
}

func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	// What the services are built from: uncommitted changes there make
	// the commit an approximation (the bench's own files do not count).
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", "pkg", "services", "go.mod", "go.sum").Output(); err == nil && len(st) > 0 {
		c += " (with uncommitted changes in pkg/ or services/)"
	}
	return c
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

func packageVersions(pkgs ...string) string {
	out, err := exec.Command("dpkg-query", append([]string{"-W", "-f", "${Package} ${Version}, "}, pkgs...)...).Output()
	if err != nil {
		return "versions unknown"
	}
	return strings.TrimSuffix(string(out), ", ")
}

// generate writes the content of every channel a selected configuration
// needs (the 4 GiB object only when its run is selected).
func (l *lab) generate() error {
	o := l.o
	want := func(g string) bool { return len(o.only) == 0 || o.only[g] }
	if want("raw") || want("nackcast") || want("loss") || want("uftp") || want("udpcast") || want("unicast") {
		fmt.Printf("generating %.0f MB of random data in one file...\n", float64(o.size)/1e6)
		n, err := cloud.Sample{LargeBytes: o.size, Seed: 9}.Generate(filepath.Join(l.origin, "bench"))
		if err != nil {
			return err
		}
		l.channels["bench"] = &channel{name: "bench", bytes: n, objects: 1, single: "large/large.bin"}
	}
	if want("mixed") {
		half := o.mixedSize / 2
		fmt.Printf("generating the mixed channel: %.0f MB in one file and %d small files...\n", float64(half)/1e6, o.files)
		n, err := cloud.Sample{SmallFiles: o.files, MaxSmall: int(2 * half / int64(o.files)), LargeBytes: half, Seed: 11}.Generate(filepath.Join(l.origin, "mixed"))
		if err != nil {
			return err
		}
		l.channels["mixed"] = &channel{name: "mixed", bytes: n, objects: o.files + 1}
	}
	if want("small") {
		fmt.Printf("generating %d objects of 4 KiB...\n", o.smallObjects)
		n, err := writeSmall(filepath.Join(l.origin, "small"), o.smallObjects)
		if err != nil {
			return err
		}
		l.channels["small"] = &channel{name: "small", bytes: n, objects: o.smallObjects}
	}
	if want("big") && o.bigSize > 0 {
		fmt.Printf("generating one object of %.0f MiB...\n", float64(o.bigSize)/(1<<20))
		n, err := cloud.Sample{LargeBytes: o.bigSize, Seed: 5}.Generate(filepath.Join(l.origin, "big"))
		if err != nil {
			return err
		}
		l.channels["big"] = &channel{name: "big", bytes: n, objects: 1, single: "large/large.bin"}
	}
	return nil
}

// writeSmall writes n objects of 4 KiB, 100 per directory.
func writeSmall(dir string, n int) (int64, error) {
	buf := make([]byte, 4096)
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("%03d", i/100), fmt.Sprintf("o%05d", i))
		if i%100 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return 0, err
			}
		}
		copy(buf, fmt.Sprintf("object %d ", i))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			return 0, err
		}
	}
	return int64(n) * 4096, nil
}

// config is one configuration of the comparison, run -reps times.
type config struct {
	key     string // unique name in the tables
	group   string // its -only name
	tool    string // raw-plain, raw-gso, nackcast, uftp, udpcast, unicast
	channel string
	n       int
	loss    float64
	timeout time.Duration
	// mayNotComplete: a run that cannot complete (it times out or the
	// tool gives up) is reported as skipped, not failed, and after two
	// such runs the later repetitions are skipped too (udpcast under loss,
	// which sometimes never starts or aborts). A copy that fails its
	// SHA-256 check still fails the run.
	mayNotComplete bool
	incomplete     int    // runs that could not complete
	skipped        string // why the later repetitions are skipped
	run            func(ctx context.Context, c *config, s *sample) error
}

// configs returns the selected configurations in the order of a
// repetition.
func (l *lab) configs() []*config {
	o := l.o
	want := func(g string) bool { return len(o.only) == 0 || o.only[g] }
	var cs []*config
	add := func(group, tool, ch string, n int, loss float64, run func(context.Context, *config, *sample) error) *config {
		key := fmt.Sprintf("%s N=%d %.0f%%", tool, n, 100*loss)
		if ch != "bench" {
			key = fmt.Sprintf("%s %s N=%d %.0f%%", tool, ch, n, 100*loss)
		}
		c := &config{key: key, group: group, tool: tool, channel: ch, n: n, loss: loss, timeout: o.timeout, run: run}
		if want(group) {
			cs = append(cs, c)
		}
		return c
	}
	add("raw", "raw-plain", "bench", 3, 0, l.raw)
	add("raw", "raw-gso", "bench", 3, 0, l.raw)
	for _, n := range []int{1, 3} {
		add("nackcast", "nackcast", "bench", n, 0, l.nackcast)
		add("uftp", "uftp", "bench", n, 0, l.uftp)
		add("udpcast", "udpcast", "bench", n, 0, l.udpcast)
	}
	add("loss", "nackcast", "bench", 3, 0.05, l.nackcast)
	add("uftp", "uftp", "bench", 3, 0.05, l.uftp)
	u := add("udpcast", "udpcast", "bench", 3, 0.05, l.udpcast)
	u.mayNotComplete, u.timeout = true, min(o.timeout, 45*time.Second)
	add("unicast", "unicast", "bench", 3, 0, l.unicast)
	if want("mixed") {
		add("mixed", "nackcast", "mixed", 3, 0, l.nackcast)
		add("mixed", "uftp", "mixed", 3, 0, l.uftp)
	}
	add("small", "nackcast", "small", 3, 0, l.nackcast)
	if o.bigSize > 0 {
		b := add("big", "nackcast", "big", 1, 0, l.nackcast)
		b.timeout = max(o.timeout, time.Duration(o.bigSize/10e6)*time.Second)
	}
	return cs
}

// runConfig runs one repetition of c and returns its sample, with the
// status ok, failed: why, or skipped: why.
func (l *lab) runConfig(ctx context.Context, c *config, rep int) *sample {
	s := &sample{Config: c.key, Tool: c.tool, Channel: c.channel, N: c.n, Loss: c.loss, Rep: rep, Status: "ok"}
	if ch := l.channels[c.channel]; ch != nil {
		s.Content, s.Objects = ch.bytes, ch.objects
	}
	if c.skipped != "" {
		s.Status = "skipped: " + c.skipped
		return s
	}
	bg, err := l.quiet()
	if err != nil {
		s.Status = "failed: " + err.Error()
		return s
	}
	s.Background = bg
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	err = c.run(rctx, c, s)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		s.Status = "interrupted"
	case c.mayNotComplete && !errors.Is(err, errCopy):
		why := "did not complete: " + err.Error()
		if errors.Is(rctx.Err(), context.DeadlineExceeded) {
			why = fmt.Sprintf("did not complete within %v", c.timeout)
		}
		s.Status = "skipped: " + strings.ReplaceAll(why, "\n", " ")
		if c.incomplete++; c.incomplete >= 2 {
			c.skipped = fmt.Sprintf("did not complete in %d repetitions", c.incomplete)
		}
	default:
		if errors.Is(rctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v: %w", c.timeout, err)
		}
		s.Status = "failed: " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	return s
}

// quiet lets the machine settle before a run: the copies of the previous
// run are deleted by then, and what is still dirty is written now, so
// that no run pays for another's writeback. Then it waits, up to
// -quiet-wait, for a half second in which everything else on the machine
// kept fewer than -quiet-below CPU cores busy, and returns the load of
// the last half second measured: the background that every machine-wide
// CPU figure of the run includes.
func (l *lab) quiet() (float64, error) {
	syscall.Sync()
	const window = 500 * time.Millisecond
	time.Sleep(max(l.o.settle-window, 0))
	deadline := time.Now().Add(l.o.quietWait)
	for {
		a, err := readCPU()
		if err != nil {
			return 0, err
		}
		start := time.Now()
		time.Sleep(window)
		b, err := readCPU()
		if err != nil {
			return 0, err
		}
		bg := b.sub(a).busySeconds() / time.Since(start).Seconds()
		if bg < l.o.quietBelow || time.Now().After(deadline) {
			return bg, nil
		}
	}
}

func (l *lab) sender() *netlab.Host { return l.net.Hosts[0] }

func (l *lab) receivers(n int) []*netlab.Host { return l.net.Hosts[1 : 1+n] }

func (l *lab) setLoss(hosts []*netlab.Host, loss float64) error {
	for _, h := range hosts {
		if err := h.Restore(); err != nil {
			return err
		}
		if loss > 0 {
			if err := h.Loss(loss); err != nil {
				return err
			}
		}
	}
	return nil
}

// clearLoss takes the loss off the links of hosts at the end of a run. The
// next run sets its own loss from a clean state anyway; a failure here is
// reported, not fatal to the results already measured.
func (l *lab) clearLoss(hosts []*netlab.Host) {
	if err := l.setLoss(hosts, 0); err != nil {
		fmt.Fprintf(os.Stderr, "bench: clear the loss on the receivers' links: %v\n", err)
	}
}

// lossDrops reads the packets the loss rule of h dropped so far (its
// nftables counter); 0 when h has no loss rule.
func lossDrops(h *netlab.Host) int64 {
	out, err := h.Command("nft", "list", "table", "inet", "nackcast_loss").Output()
	if err != nil {
		return 0
	}
	return parseNftDrops(string(out))
}

// runSetup makes the directory of one run of c and sets c's loss on its
// receivers; done clears the loss and removes the directory (unless
// -keep).
func (l *lab) runSetup(c *config, s *sample) (dir string, hosts []*netlab.Host, done func(), err error) {
	dir, rm, err := l.runDir(c, s.Rep)
	if err != nil {
		return "", nil, nil, err
	}
	hosts = l.receivers(c.n)
	if err := l.setLoss(hosts, c.loss); err != nil {
		rm()
		return "", nil, nil, err
	}
	return dir, hosts, func() {
		l.clearLoss(hosts)
		rm()
	}, nil
}

// killAll kills the processes *ps holds when it runs (deferred while they
// are being started).
func killAll(ps *[]*proc) {
	for _, p := range *ps {
		p.kill()
	}
}

// runDir makes the directory of one run; it is removed at the end of the
// run unless -keep.
func (l *lab) runDir(c *config, rep int) (string, func(), error) {
	dir, err := os.MkdirTemp(l.work, strings.NewReplacer(" ", "-", "=", "", "%", "pct").Replace(c.key)+fmt.Sprintf("-rep%d-", rep))
	if err != nil {
		return "", nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", nil, err
	}
	return dir, func() {
		if !l.o.keep {
			os.RemoveAll(dir)
		}
	}, nil
}
