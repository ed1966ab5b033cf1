package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
	"github.com/nackcast/nackcast/pkg/netlab"
)

// raw measures the ceiling: a blaster of plain batches or GSO buffers,
// and sinks reading plainly or with GRO, for 3 seconds.
func (l *lab) raw(ctx context.Context, c *config, s *sample) error {
	offload := strconv.FormatBool(c.tool == "raw-gso")
	hosts := l.receivers(c.n)
	var sinks []*proc
	defer func() {
		for _, p := range sinks {
			p.kill()
		}
	}()
	for i, h := range hosts {
		p, err := l.spawn(ctx, h, fmt.Sprintf("raw sink %d", i+1), "", l.self, "-role", "raw-sink", "-iface", "eth0", "-port", "27999", "-for", "30s", "-offload="+offload)
		if err != nil {
			return err
		}
		sinks = append(sinks, p)
	}
	for _, p := range sinks {
		// The sink prints "ready" on stderr; wait for the output to say so.
		if !waitOutput(p, "ready", 10*time.Second) {
			return fmt.Errorf("%s did not start%s", p.name, p.tail())
		}
	}
	m, err := l.startMeter(hosts, false)
	if err != nil {
		return err
	}
	blast, err := l.spawn(ctx, l.sender(), "raw blaster", "", l.self, "-role", "raw-blast", "-iface", "eth0", "-port", "27999", "-for", "3s", "-offload="+offload)
	if err != nil {
		return err
	}
	if err := blast.wait(ctx); err != nil {
		return err
	}
	var least int64 = -1
	var slowest float64
	for _, p := range sinks {
		if err := p.wait(ctx); err != nil {
			return err
		}
		var res roleResult
		out := p.out.Bytes()
		i := strings.LastIndex(string(out), "{")
		if i < 0 || json.Unmarshal(out[i:], &res) != nil || res.Seconds <= 0 {
			return fmt.Errorf("%s: no rate in %q", p.name, out)
		}
		if least < 0 || res.Bytes < least {
			least = res.Bytes
		}
		slowest = max(slowest, res.Seconds)
	}
	// The sinks exit a second after the last datagram: the busy CPU
	// time of that idle second is nil, the end is the blaster's.
	if err := m.finish(s, blast.end, least); err != nil {
		return err
	}
	// A sink's own clock (first to last datagram) is its transfer time.
	s.Xfer, s.MBps = slowest, float64(least)/slowest/1e6
	s.Content = least
	return nil
}

// waitOutput waits until the in-memory output of p holds line.
func waitOutput(p *proc, line string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(string(p.out.Bytes()), "\n") {
			if strings.TrimSpace(l) == line {
				return true
			}
		}
		select {
		case <-p.done:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// rateWatch samples a nackcast sender's pacing rate from its metrics
// every 250 ms, uncompressed: the lowest rate of a run says how far the
// sender slowed down for its receivers, however it was told to (overrun
// cuts, drain rate caps). Scraped every 100 ms with gzip, the sender
// spent 4% of its CPU compressing metrics for the bench.
type rateWatch struct {
	stopc chan struct{}
	done  chan struct{}
	min   int64
	cuts  int64
}

var rateMetric = regexp.MustCompile(`(?m)^(nackcast_sender_rate_bytes_per_second|nackcast_sender_rate_decreases_total) ([0-9.e+]+)$`)

func watchRate(addr string) *rateWatch {
	w := &rateWatch{stopc: make(chan struct{}), done: make(chan struct{}), min: -1}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableCompression: true}}
	scrape := func() {
		resp, err := hc.Get("http://" + addr + "/metrics")
		if err != nil {
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return
		}
		for _, m := range rateMetric.FindAllStringSubmatch(string(b), -1) {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				continue
			}
			switch m[1] {
			case "nackcast_sender_rate_bytes_per_second":
				if v > 0 && (w.min < 0 || int64(v) < w.min) {
					w.min = int64(v)
				}
			default:
				w.cuts = int64(v)
			}
		}
	}
	go func() {
		defer close(w.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stopc:
				scrape()
				return
			case <-t.C:
				scrape()
			}
		}
	}()
	return w
}

// stop ends the sampling and returns the lowest rate seen (0 if none)
// and the sender's count of rate decreases.
func (w *rateWatch) stop() (minRate int64, cuts int) {
	close(w.stopc)
	<-w.done
	return max(w.min, 0), int(w.cuts)
}

// nackcast distributes a channel to n receivers, all with their default
// settings but the sender's -rate.
func (l *lab) nackcast(ctx context.Context, c *config, s *sample) error {
	dir, hosts, done, err := l.runSetup(c, s)
	if err != nil {
		return err
	}
	defer done()
	cl, err := cloud.New(l.bin, dir)
	if err != nil {
		return err
	}
	defer cl.Close()
	var common []string
	if l.o.logLevel != "" {
		common = append(common, "-log-level", l.o.logLevel)
	}
	if l.o.profile != "" {
		common = append(common, "-pprof")
	}
	primary := l.sender().Addr + ":7001"
	var procs []*cloud.Proc
	for i, h := range hosts {
		name := fmt.Sprintf("receiver-%d", i+1)
		p, err := cl.StartOn(h, name, "receiver", 7101, append([]string{"-id", name, "-data", filepath.Join(dir, name), "-channels", c.channel,
			"-primary", primary}, common...)...)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		if err := p.WaitServing(ctx); err != nil {
			return err
		}
	}
	m, err := l.startMeter(hosts, false)
	if err != nil {
		return err
	}
	snd, err := cl.StartOn(l.sender(), "sender", "sender", 7001, append([]string{"-origin", l.origin, "-channels", c.channel,
		"-state-dir", filepath.Join(dir, "sender-state"), "-rate", l.o.rateArg}, common...)...)
	if err != nil {
		return err
	}
	if l.o.profile != "" {
		tag := strings.NewReplacer(" ", "-", "=", "", "%", "pct").Replace(c.key) + fmt.Sprintf("-rep%d", s.Rep)
		stop := l.profileRun(snd, tag+"-sender")
		defer stop()
		stopR := l.profileRun(procs[0], tag+"-receiver-1")
		defer stopR()
	}
	rates := watchRate(snd.Metrics)
	complete := make([]bool, len(procs))
	var end time.Time
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for remaining := len(procs); remaining > 0; {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d receivers incomplete: %w (logs in %s)", remaining, len(procs), ctx.Err(), dir)
		case <-t.C:
		}
		if !snd.Running() {
			return fmt.Errorf("the sender exited: %w%s", snd.ExitErr(), snd.LogTail(5))
		}
		for i, p := range procs {
			if complete[i] {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := p.ReceiverStatus(cctx)
			cancel()
			if err == nil && st.GetComplete() {
				end = time.Now()
				complete[i] = true
				remaining--
				k := st.GetCounters()
				s.RecvOverflow += int64(k.GetPacketsOverflow())
				if _, hwm, err := p.Memory(); err == nil {
					s.PeakRSS = max(s.PeakRSS, hwm)
				}
			}
		}
	}
	if err := m.finish(s, end, 0); err != nil {
		return err
	}
	if st, err := snd.SenderStatus(ctx); err == nil {
		k := st.GetCounters()
		s.NACKs, s.Repairs, s.Unicast = int64(k.GetNacks()), int64(k.GetRepairPasses()), int64(k.GetPullBytes())
	}
	s.MinRate, s.RateCuts = rates.stop()
	return verifyAll(filepath.Join(l.origin, c.channel), dir, names(procs), c.channel)
}

func names(ps []*cloud.Proc) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

// errCopy marks a receiver's copy that is missing or differs from the
// origin: the run fails, whatever the tool.
var errCopy = errors.New("copy not verified")

// verifyAll compares the SHA-256 of every file of every receiver's copy
// with the origin's.
func verifyAll(origin, dir string, receivers []string, channel string) error {
	want, err := cloud.Digests(origin)
	if err != nil {
		return err
	}
	for _, name := range receivers {
		got, err := cloud.Digests(filepath.Join(dir, name, channel))
		if err != nil {
			return fmt.Errorf("%w: %s: %w", errCopy, name, err)
		}
		if err := cloud.Compare(want, got); err != nil {
			return fmt.Errorf("%w: %s: SHA-256: %w", errCopy, name, err)
		}
	}
	return nil
}

// uftp distributes the channel with Debian's uftp 4 at its fastest (-R
// -1), GRTT bounds suited to the lab's sub-millisecond round trips, and
// 32 MiB socket buffers asked for on both sides (the kernel grants up to
// net.core.rmem_max/wmem_max, doubled).
func (l *lab) uftp(ctx context.Context, c *config, s *sample) error {
	dir, hosts, done, err := l.runSetup(c, s)
	if err != nil {
		return err
	}
	defer done()
	var daemons []*proc
	defer killAll(&daemons)
	var receivers []string
	for i, h := range hosts {
		name := fmt.Sprintf("receiver-%d", i+1)
		// uftp sends origin/<channel> as <channel> (-E strips the
		// origin), so the copy lands in dest/<channel>.
		dest := filepath.Join(dir, name)
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		// -d keeps uftpd in the foreground, so that its PID is known.
		d, err := l.spawn(ctx, h, "uftpd "+name, filepath.Join(dir, name+".out"), "uftpd", "-d", "-I", "eth0", "-D", dest,
			"-B", "33554432", "-L", filepath.Join(dir, name+".log"))
		if err != nil {
			return err
		}
		daemons = append(daemons, d)
		receivers = append(receivers, name)
	}
	// uftpd binds port 1044, then joins uftp's public group 230.4.4.1: a
	// daemon not yet in the group misses the announcement and uftp
	// finishes without it.
	if err := l.waitListening(ctx, hosts, 1044, "230.4.4.1"); err != nil {
		return err
	}
	m, err := l.startMeter(hosts, false)
	if err != nil {
		return err
	}
	snd, err := l.spawn(ctx, l.sender(), "uftp", filepath.Join(dir, "uftp.out"), "uftp", "-I", "eth0", "-R", "-1", "-r", "0.01:0.001:1",
		"-B", "33554432", "-E", l.origin+"/", "-L", filepath.Join(dir, "uftp.log"), filepath.Join(l.origin, c.channel))
	if err != nil {
		return err
	}
	// uftp exits when every receiver has confirmed the whole session.
	if err := snd.wait(ctx); err != nil {
		return err
	}
	if err := m.finish(s, snd.end, 0); err != nil {
		return err
	}
	return verifyAll(filepath.Join(l.origin, c.channel), dir, receivers, c.channel)
}

// waitListening waits until a UDP socket is bound to port in every host
// and eth0 there is a member of group (/proc/<pid>/net/udp and igmp of
// its anchor).
func (l *lab) waitListening(ctx context.Context, hosts []*netlab.Host, port int, group string) error {
	bound := fmt.Sprintf(":%04X ", port)
	a, err := netip.ParseAddr(group)
	if err != nil {
		return err
	}
	g := a.As4()
	// /proc/net/igmp prints the group as a host-order (little-endian) hex word.
	member := fmt.Sprintf("%02X%02X%02X%02X", g[3], g[2], g[1], g[0])
	for {
		all := true
		for _, h := range hosts {
			pid := l.anchors[h].cmd.Process.Pid
			udp, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/udp", pid))
			if err != nil || !strings.Contains(string(udp), bound) {
				all = false
				break
			}
			igmp, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/igmp", pid))
			if err != nil || !strings.Contains(string(igmp), member) {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for UDP port %d and group %s in every receiver: %w", port, group, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// udpcast distributes the channel's one file with udpcast, its defaults
// on eth0: udp-sender starts when the n receivers have connected
// (--min-receivers, --nokbd: no key press), every udp-receiver exits once
// it holds the file.
func (l *lab) udpcast(ctx context.Context, c *config, s *sample) error {
	ch := l.channels[c.channel]
	if ch == nil || ch.single == "" {
		return fmt.Errorf("udpcast sends one file; channel %s has %d", c.channel, ch.objects)
	}
	dir, hosts, done, err := l.runSetup(c, s)
	if err != nil {
		return err
	}
	defer done()
	var all []*proc
	defer killAll(&all)
	var receivers []string
	var rcv []*proc
	for i, h := range hosts {
		name := fmt.Sprintf("receiver-%d", i+1)
		dest := filepath.Join(dir, name, c.channel, filepath.FromSlash(ch.single))
		if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
			return err
		}
		p, err := l.spawn(ctx, h, "udp-receiver "+name, filepath.Join(dir, name+".log"), "udp-receiver", "--interface", "eth0", "--file", dest, "--nokbd")
		if err != nil {
			return err
		}
		all, rcv, receivers = append(all, p), append(rcv, p), append(receivers, name)
	}
	m, err := l.startMeter(hosts, false)
	if err != nil {
		return err
	}
	snd, err := l.spawn(ctx, l.sender(), "udp-sender", filepath.Join(dir, "udp-sender.log"), "udp-sender", "--interface", "eth0",
		"--file", filepath.Join(l.origin, c.channel, filepath.FromSlash(ch.single)), "--nokbd", "--min-receivers", strconv.Itoa(c.n))
	if err != nil {
		return err
	}
	all = append(all, snd)
	end, err := waitLast(ctx, rcv)
	if err != nil {
		return err
	}
	if err := m.finish(s, end, 0); err != nil {
		return err
	}
	if err := snd.wait(ctx); err != nil {
		return err
	}
	return verifyAll(filepath.Join(l.origin, c.channel), dir, receivers, c.channel)
}

// unicast pulls the channel to n receivers at once over gRPC, from a
// standing-by backup (which answers Pull and multicasts nothing).
func (l *lab) unicast(ctx context.Context, c *config, s *sample) error {
	dir, done, err := l.runDir(c, s.Rep)
	if err != nil {
		return err
	}
	defer done()
	cl, err := cloud.New(l.bin, dir)
	if err != nil {
		return err
	}
	defer cl.Close()
	srv, err := cl.StartOn(l.sender(), "server", "backup", 7002, "-origin", l.origin, "-channels", c.channel,
		"-primary", "198.18.0.253:7001", "-primary-grace", "1h")
	if err != nil {
		return err
	}
	if err := srv.WaitServing(ctx); err != nil {
		return err
	}
	hosts := l.receivers(c.n)
	m, err := l.startMeter(hosts, true)
	if err != nil {
		return err
	}
	var pullers []*proc
	defer func() {
		for _, p := range pullers {
			p.kill()
		}
	}()
	var receivers []string
	for i, h := range hosts {
		name := fmt.Sprintf("receiver-%d", i+1)
		p, err := l.spawn(ctx, h, "puller "+name, "", l.self, "-role", "pull", "-addr", srv.Addr, "-channel", c.channel, "-dir", filepath.Join(dir, name, c.channel))
		if err != nil {
			return err
		}
		pullers, receivers = append(pullers, p), append(receivers, name)
	}
	end, err := waitLast(ctx, pullers)
	if err != nil {
		return err
	}
	if err := m.finish(s, end, 0); err != nil {
		return err
	}
	return verifyAll(filepath.Join(l.origin, c.channel), dir, receivers, c.channel)
}

// profileRun collects a CPU profile of p (served with -pprof on its
// metrics address) for 10 seconds, into the profile directory. The
// returned function waits for it.
func (l *lab) profileRun(p *cloud.Proc, name string) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := os.MkdirAll(l.o.profile, 0o755); err != nil {
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
		f, err := os.Create(filepath.Join(l.o.profile, name+".pprof"))
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

// waitLast waits for every process of ps and returns the latest end.
func waitLast(ctx context.Context, ps []*proc) (time.Time, error) {
	var end time.Time
	for _, p := range ps {
		if err := p.wait(ctx); err != nil {
			return end, err
		}
		if p.end.After(end) {
			end = p.end
		}
	}
	return end, nil
}
