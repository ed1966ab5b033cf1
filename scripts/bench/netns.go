package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	"github.com/nackcast/nackcast/pkg/netlab"
)

// row is one line of the comparison table.
type row struct {
	Tool      string
	Receivers int
	Loss      float64
	Seconds   float64   // until the last receiver holds a verified copy
	PerRecv   []float64 // MB/s per receiver
	Wire      float64   // bytes the sender's interface sent / content bytes
	Note      string
	PeakRSS   int64 // largest peak RSS (VmHWM) of a nackcast receiver, bytes
}

func (r row) minRate() float64 {
	if len(r.PerRecv) == 0 {
		return 0
	}
	m := r.PerRecv[0]
	for _, v := range r.PerRecv[1:] {
		m = min(m, v)
	}
	return m
}

// lab is the network and content of a namespace benchmark.
type lab struct {
	net      *netlab.Lab
	self     string // this binary, re-run in the namespaces for its roles
	bin      string // the service binaries
	work     string
	origin   string
	content  int64 // bytes of channel "bench"
	small    int64 // bytes of channel "small"
	big      int64 // bytes of channel "big" (one object)
	objects  int   // objects of channel "small"
	rate     int64
	keep     bool   // keep run directories (logs)
	logLevel string // log level of the nackcast services
	profile  string // directory for CPU profiles; empty = none
}

func benchNetns(ctx context.Context, o options) error {
	if err := netlab.Available(); err != nil {
		return fmt.Errorf("the namespace benchmark needs root, iproute2 and nftables (%w); run make bench as root, or go run ./scripts/bench -lo for the loopback one", err)
	}
	if err := ensureUFTP(); err != nil {
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
	n, err := netlab.New(7, 1500)
	if err != nil {
		return err
	}
	defer n.Close()
	l := &lab{net: n, self: self, bin: bin, work: work, origin: filepath.Join(work, "origin"), rate: o.rate, keep: o.keep, logLevel: o.logLevel, profile: o.profile}

	half := o.size / 2
	fmt.Printf("generating %d MiB of mixed content and %d objects of 4 KiB...\n", o.size>>20, o.smallObjects)
	if l.content, err = (cloud.Sample{SmallFiles: o.files, MaxSmall: int(2 * half / int64(o.files)), LargeBytes: half, Seed: 9}).Generate(filepath.Join(l.origin, "bench")); err != nil {
		return err
	}
	if l.small, err = writeSmall(filepath.Join(l.origin, "small"), o.smallObjects); err != nil {
		return err
	}
	l.objects = o.smallObjects
	fmt.Printf("lab: 1 sender + up to 6 receivers in network namespaces on a bridge, MTU 1500; nackcast rate ceiling %s\n\n", rateString(o.rate))

	var rows []row
	add := func(r row, err error) error {
		if err != nil {
			return fmt.Errorf("%s, %d receivers, loss %.0f%%: %w", r.Tool, r.Receivers, 100*r.Loss, err)
		}
		fmt.Printf("  %-18s %d receivers, loss %2.0f%%: %6.2f s, %7.1f MB/s per receiver (min), wire/content %.3f %s\n",
			r.Tool, r.Receivers, 100*r.Loss, r.Seconds, r.minRate(), r.Wire, r.Note)
		rows = append(rows, r)
		return nil
	}
	do := func(name string) bool { return len(o.only) == 0 || o.only[name] }
	if do("raw") {
		if err := add(l.raw(ctx, 3)); err != nil {
			return err
		}
	}
	if do("nackcast") {
		for _, recv := range []int{1, 3, 6} {
			if err := add(l.nackcast(ctx, "bench", recv, 0)); err != nil {
				return err
			}
		}
	}
	if do("loss") {
		if err := add(l.nackcast(ctx, "bench", 3, 0.05)); err != nil {
			return err
		}
	}
	if do("uftp") {
		for _, loss := range []float64{0, 0.05} {
			if err := add(l.uftp(ctx, 3, loss)); err != nil {
				return err
			}
		}
	}
	if do("unicast") {
		for _, recv := range []int{1, 3, 6} {
			if err := add(l.unicast(ctx, recv)); err != nil {
				return err
			}
		}
	}
	if do("small") {
		if err := add(l.nackcast(ctx, "small", 3, 0)); err != nil {
			return err
		}
	}
	if do("big") && o.bigSize > 0 {
		fmt.Printf("  (generating one object of %d MiB...)\n", o.bigSize>>20)
		if l.big, err = (cloud.Sample{LargeBytes: o.bigSize, Seed: 5}).Generate(filepath.Join(l.origin, "big")); err != nil {
			return err
		}
		if err := add(l.nackcast(ctx, "big", 1, 0)); err != nil {
			return err
		}
	}
	return report(rows, l, o)
}

// ensureUFTP installs Debian's uftp when it is missing.
func ensureUFTP() error {
	if _, err := exec.LookPath("uftp"); err == nil {
		return nil
	}
	fmt.Println("installing uftp from Debian packages...")
	for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "uftp"}} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", args[0], err, out)
		}
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

func (l *lab) sender() *netlab.Host { return l.net.Hosts[0] }

func (l *lab) receivers(n int) []*netlab.Host { return l.net.Hosts[1 : 1+n] }

// txBytes reads the bytes the sender host's eth0 has sent.
func (l *lab) txBytes() int64 {
	out, err := l.sender().Command("cat", "/sys/class/net/eth0/statistics/tx_bytes").Output()
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	return v
}

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

// raw measures the ceiling: a blaster of GSO batches and GRO sinks.
func (l *lab) raw(ctx context.Context, n int) (row, error) {
	r := row{Tool: "raw UDP GSO+GRO", Receivers: n, Note: "(ceiling)"}
	var sinks []*exec.Cmd
	var outs []*bytes.Buffer
	for _, h := range l.receivers(n) {
		cmd := h.Command(l.self, "-role", "raw-sink", "-iface", "eth0", "-port", "27999", "-for", "30s")
		out := new(bytes.Buffer)
		cmd.Stdout = out
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			return r, err
		}
		if !waitLine(stderr, "ready", 10*time.Second) {
			// The run fails for this reason; the kill's own error (the
			// sink may have exited) and its exit status add nothing.
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return r, errors.New("raw sink did not start")
		}
		sinks, outs = append(sinks, cmd), append(outs, out)
	}
	tx := l.txBytes()
	blast := l.sender().Command(l.self, "-role", "raw-blast", "-iface", "eth0", "-port", "27999", "-for", "3s")
	if out, err := blast.CombinedOutput(); err != nil {
		return r, fmt.Errorf("raw blaster: %w: %s", err, out)
	}
	sent := l.txBytes() - tx
	for i, cmd := range sinks {
		if err := cmd.Wait(); err != nil {
			return r, fmt.Errorf("raw sink: %w", err)
		}
		var res roleResult
		if err := json.Unmarshal(outs[i].Bytes(), &res); err != nil {
			return r, fmt.Errorf("raw sink result %q: %w", outs[i].String(), err)
		}
		if res.Seconds <= 0 {
			return r, fmt.Errorf("raw sink result %q: no rate (fewer than two batches received)", outs[i].String())
		}
		r.PerRecv = append(r.PerRecv, float64(res.Bytes)/res.Seconds/1e6)
		r.Seconds = max(r.Seconds, res.Seconds)
		if i == 0 && res.Bytes > 0 {
			r.Wire = float64(sent) / float64(res.Bytes)
		}
	}
	return r, nil
}

// waitLine waits for a line on r, up to d.
func waitLine(r interface{ Read([]byte) (int, error) }, line string, d time.Duration) bool {
	got := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == line {
				got <- true
				return
			}
		}
		got <- false
	}()
	select {
	case ok := <-got:
		return ok
	case <-time.After(d):
		return false
	}
}

// nackcast distributes a channel to n receivers and times each.
func (l *lab) nackcast(ctx context.Context, channel string, n int, loss float64) (row, error) {
	tool := "nackcast"
	size := l.content
	switch channel {
	case "small":
		tool, size = "nackcast 4KiB objs", l.small
	case "big":
		tool, size = "nackcast one object", l.big
	}
	r := row{Tool: tool, Receivers: n, Loss: loss}
	dir, err := os.MkdirTemp(l.work, "run-")
	if err != nil {
		return r, err
	}
	if !l.keep {
		defer os.RemoveAll(dir)
	}
	cl, err := cloud.New(l.bin, dir)
	if err != nil {
		return r, err
	}
	defer cl.Close()
	hosts := l.receivers(n)
	if err := l.setLoss(hosts, loss); err != nil {
		return r, err
	}
	defer l.clearLoss(hosts)
	primary := l.sender().Addr + ":7001"
	var procs []*cloud.Proc
	for i, h := range hosts {
		name := fmt.Sprintf("receiver-%d", i+1)
		p, err := cl.StartOn(h, name, "receiver", 7101, "-id", name, "-data", filepath.Join(dir, name), "-channels", channel,
			"-primary", primary, "-log-level", l.logLevel, "-rcvbuf", strconv.Itoa(32<<20), "-pprof="+strconv.FormatBool(l.profile != ""))
		if err != nil {
			return r, err
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		if err := p.WaitServing(ctx); err != nil {
			return r, err
		}
	}
	tx := l.txBytes()
	start := time.Now()
	snd, err := cl.StartOn(l.sender(), "sender", "sender", 7001, "-origin", l.origin, "-channels", channel, "-state-dir", "none",
		"-rate", strconv.FormatInt(l.rate, 10), "-log-level", l.logLevel, "-first-pass-delay", "200ms", "-pprof="+strconv.FormatBool(l.profile != ""))
	if err != nil {
		return r, err
	}
	if l.profile != "" {
		tag := fmt.Sprintf("%s-%d-%.0f", channel, n, 100*loss)
		stop := l.profileRun(snd, tag+"-sender")
		defer stop()
		stopR := l.profileRun(procs[0], tag+"-receiver-1")
		defer stopR()
	}
	done := make([]time.Duration, len(procs))
	var overflow, foreign uint64 // over all receivers, at their completion
	deadline := time.Now().Add(5 * time.Minute)
	for remaining := len(procs); remaining > 0; {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("not complete after 5 minutes (logs in %s)", dir)
		}
		time.Sleep(50 * time.Millisecond)
		for i, p := range procs {
			if done[i] > 0 {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := p.ReceiverStatus(cctx)
			cancel()
			if err == nil && st.GetComplete() {
				done[i] = time.Since(start)
				if _, hwm, err := p.Memory(); err == nil {
					r.PeakRSS = max(r.PeakRSS, hwm)
				}
				overflow += st.GetCounters().GetPacketsOverflow()
				foreign += st.GetCounters().GetPacketsForeign()
				remaining--
			}
		}
	}
	for _, d := range done {
		r.PerRecv = append(r.PerRecv, float64(size)/d.Seconds()/1e6)
		r.Seconds = max(r.Seconds, d.Seconds())
	}
	r.Wire = float64(l.txBytes()-tx) / float64(size)
	if st, err := snd.SenderStatus(ctx); err == nil {
		k := st.GetCounters()
		r.Note = fmt.Sprintf("(NACKs %d, repair passes %d, unicast %.1f MB; receivers: %d socket overflows, %d unfiled packets)",
			k.GetNacks(), k.GetRepairPasses(), float64(k.GetPullBytes())/1e6, overflow, foreign)
		if channel == "big" {
			r.Note = fmt.Sprintf("(one object of %d MiB; receiver peak RSS %.1f MiB)", l.big>>20, float64(r.PeakRSS)/(1<<20))
		}
		if channel == "small" {
			r.Note = fmt.Sprintf("(%.0f objects/s per receiver, slowest; repair passes %d; receivers: %d socket overflows, %d unfiled packets)",
				float64(l.objects)/r.Seconds, k.GetRepairPasses(), overflow, foreign)
		}
	}
	return r, verifyAll(filepath.Join(l.origin, channel), dir, names(procs), channel)
}

func names(ps []*cloud.Proc) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func verifyAll(origin, dir string, receivers []string, channel string) error {
	want, err := cloud.Digests(origin)
	if err != nil {
		return err
	}
	for _, name := range receivers {
		got, err := cloud.Digests(filepath.Join(dir, name, channel))
		if err != nil {
			return err
		}
		if err := cloud.Compare(want, got); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// uftp distributes the same channel with Debian's uftp 4 (-R -1, GRTT
// tuned down to the lab's sub-millisecond round trips).
func (l *lab) uftp(ctx context.Context, n int, loss float64) (row, error) {
	r := row{Tool: "uftp", Receivers: n, Loss: loss}
	dir, err := os.MkdirTemp(l.work, "uftp-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	hosts := l.receivers(n)
	if err := l.setLoss(hosts, loss); err != nil {
		return r, err
	}
	defer l.clearLoss(hosts)
	var daemons []*exec.Cmd
	defer func() {
		// The daemons run until killed: the kill's error (one may have
		// exited already) and the exit status it causes say nothing.
		for _, d := range daemons {
			_ = d.Process.Kill()
			_ = d.Wait()
		}
	}()
	var receivers []string
	for i, h := range hosts {
		name := fmt.Sprintf("receiver-%d", i+1)
		dest := filepath.Join(dir, name)
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return r, err
		}
		d := h.Command("uftpd", "-d", "-I", "eth0", "-D", dest, "-B", strconv.Itoa(32<<20), "-L", filepath.Join(dir, name+".log"))
		if err := d.Start(); err != nil {
			return r, err
		}
		daemons = append(daemons, d)
		receivers = append(receivers, name)
	}
	time.Sleep(500 * time.Millisecond)
	tx := l.txBytes()
	start := time.Now()
	cmd := l.sender().Command("uftp", "-I", "eth0", "-R", "-1", "-r", "0.001:0.001:0.5", "-B", strconv.Itoa(32<<20),
		"-E", l.origin+"/", "-L", filepath.Join(dir, "uftp.log"), filepath.Join(l.origin, "bench"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return r, fmt.Errorf("uftp: %w: %s", err, out)
	}
	took := time.Since(start)
	r.Seconds = took.Seconds()
	for range hosts {
		r.PerRecv = append(r.PerRecv, float64(l.content)/took.Seconds()/1e6)
	}
	r.Wire = float64(l.txBytes()-tx) / float64(l.content)
	return r, verifyAll(filepath.Join(l.origin, "bench"), dir, receivers, "bench")
}

// unicast pulls the channel to n receivers at once over gRPC, from a
// standing-by backup (which answers Pull and multicasts nothing).
func (l *lab) unicast(ctx context.Context, n int) (row, error) {
	r := row{Tool: "unicast gRPC", Receivers: n}
	dir, err := os.MkdirTemp(l.work, "unicast-")
	if err != nil {
		return r, err
	}
	if !l.keep {
		defer os.RemoveAll(dir)
	}
	cl, err := cloud.New(l.bin, dir)
	if err != nil {
		return r, err
	}
	defer cl.Close()
	srv, err := cl.StartOn(l.sender(), "server", "backup", 7002, "-origin", l.origin, "-channels", "bench",
		"-primary", "198.18.0.253:7001", "-primary-grace", "1h", "-log-level", "warn")
	if err != nil {
		return r, err
	}
	if err := srv.WaitServing(ctx); err != nil {
		return r, err
	}
	tx := l.txBytes()
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	var receivers []string
	for i, h := range l.receivers(n) {
		name := fmt.Sprintf("receiver-%d", i+1)
		cmd := h.Command(l.self, "-role", "pull", "-addr", srv.Addr, "-channel", "bench", "-dir", filepath.Join(dir, name, "bench"))
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			return r, err
		}
		cmds, outs, receivers = append(cmds, cmd), append(outs, out), append(receivers, name)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			return r, fmt.Errorf("puller: %w: %s", err, outs[i])
		}
		var res roleResult
		if err := json.Unmarshal(outs[i].Bytes(), &res); err != nil {
			return r, fmt.Errorf("puller result %q: %w", outs[i], err)
		}
		r.PerRecv = append(r.PerRecv, float64(res.Bytes)/res.Seconds/1e6)
		r.Seconds = max(r.Seconds, res.Seconds)
	}
	r.Wire = float64(l.txBytes()-tx) / float64(l.content)
	return r, verifyAll(filepath.Join(l.origin, "bench"), dir, receivers, "bench")
}

// profileRun collects a CPU profile of p (served with -pprof on its
// metrics address) for 10 seconds, into l.profile/name.pprof. The
// returned function waits for it.
func (l *lab) profileRun(p *cloud.Proc, name string) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := os.MkdirAll(l.profile, 0o755); err != nil {
			return
		}
		var resp *http.Response
		var err error
		for range 50 { // the process may still be starting
			if resp, err = http.Get("http://" + p.Metrics + "/debug/pprof/profile?seconds=10"); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "profile %s: %v\n", name, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(filepath.Join(l.profile, name+".pprof"))
		if err != nil {
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}()
	return func() {
		// The profile ends after 10 s.
		select {
		case <-done:
		case <-time.After(15 * time.Second):
		}
	}
}
