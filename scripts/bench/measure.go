package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nackcast/nackcast/pkg/netlab"
)

// The probes of the namespace lab. They read the kernel's own counters,
// so every tool is measured the same way: nothing here asks a tool what it
// did.
//
// A namespace's counters are read through /proc/<pid>/net of a process
// living in it (an anchor, see roles.go): /proc/<pid>/net/dev and
// /proc/<pid>/net/snmp show the network namespace of that process. That
// costs one small file read, not a process start, so the sender's counters
// can be sampled every few milliseconds without loading the machine.

// ifCounters are an interface's counters from /proc/<pid>/net/dev.
type ifCounters struct {
	RxBytes, RxPackets, RxDropped int64
	TxBytes, TxPackets, TxDropped int64
}

// readIf reads the counters of iface in the network namespace of pid.
func readIf(pid int, iface string) (ifCounters, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return ifCounters{}, err
	}
	return parseNetDev(b, iface)
}

// parseNetDev finds iface in the text of /proc/net/dev.
func parseNetDev(b []byte, iface string) (ifCounters, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) != iface {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return ifCounters{}, fmt.Errorf("/proc/net/dev line of %s: %d fields, want 16", iface, len(f))
		}
		v := make([]int64, 16)
		for i := range v {
			n, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return ifCounters{}, fmt.Errorf("/proc/net/dev line of %s: %w", iface, err)
			}
			v[i] = n
		}
		// receive: bytes packets errs drop fifo frame compressed multicast;
		// transmit: bytes packets errs drop fifo colls carrier compressed.
		return ifCounters{RxBytes: v[0], RxPackets: v[1], RxDropped: v[3], TxBytes: v[8], TxPackets: v[9], TxDropped: v[11]}, nil
	}
	return ifCounters{}, fmt.Errorf("interface %s not in /proc/net/dev", iface)
}

// udpCounters are a namespace's UDP counters from /proc/<pid>/net/snmp.
type udpCounters struct {
	RcvbufErrors, InDatagrams int64
}

func readUDP(pid int) (udpCounters, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/snmp", pid))
	if err != nil {
		return udpCounters{}, err
	}
	return parseSNMP(b)
}

// parseSNMP reads the Udp: header and value lines of /proc/net/snmp.
func parseSNMP(b []byte) (udpCounters, error) {
	var header []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "Udp:") {
			continue
		}
		f := strings.Fields(line)[1:]
		if header == nil {
			header = f
			continue
		}
		var c udpCounters
		for i, name := range header {
			if i >= len(f) {
				break
			}
			n, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return c, fmt.Errorf("/proc/net/snmp Udp %s: %w", name, err)
			}
			switch name {
			case "RcvbufErrors":
				c.RcvbufErrors = n
			case "InDatagrams":
				c.InDatagrams = n
			}
		}
		return c, nil
	}
	return udpCounters{}, fmt.Errorf("no Udp lines in /proc/net/snmp")
}

// cpuTimes are the machine's busy and total CPU time from /proc/stat, in
// clock ticks (USER_HZ, 100 per second on Linux).
type cpuTimes struct{ busy, total int64 }

const userHZ = 100

func readCPU() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	return parseStat(b)
}

// parseStat reads the first ("cpu ") line of /proc/stat: busy is user,
// nice, system, irq, softirq and steal; idle and iowait are not busy
// (guest time is already inside user).
func parseStat(b []byte) (cpuTimes, error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return cpuTimes{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	var v [8]int64
	for i := range v {
		n, err := strconv.ParseInt(f[1+i], 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/stat: %w", err)
		}
		v[i] = n
	}
	user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	busy := user + nice + system + irq + softirq + steal
	return cpuTimes{busy: busy, total: busy + idle + iowait}, nil
}

func (c cpuTimes) sub(o cpuTimes) cpuTimes {
	return cpuTimes{busy: c.busy - o.busy, total: c.total - o.total}
}

func (c cpuTimes) busySeconds() float64 { return float64(c.busy) / userHZ }

// txSample is one reading of the sender interface's transmit counters.
type txSample struct {
	at             time.Time
	bytes, packets int64
	cpu            cpuTimes // the machine's, at the same time
}

// txWatch samples the sender interface's tx counters every few
// milliseconds, from before a tool starts until it is done, to find the
// first data packet on the wire whatever the tool.
type txWatch struct {
	stop    chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	samples []txSample
}

// The first data packet is detected as the start of the first sampling
// interval in which the sender interface sent more than firstDataBytes in
// datagrams of at most datagramBytes on average: a data burst of a UDP
// tool, not a TCP manifest transfer (veth sends TCP as 64 KiB TSO
// segments) or a control packet.
const (
	watchEvery     = 5 * time.Millisecond
	firstDataBytes = 64 << 10
	datagramBytes  = 2048
)

func watchTx(pid int, iface string) *txWatch {
	w := &txWatch{stop: make(chan struct{}), done: make(chan struct{}), samples: make([]txSample, 0, 4096)}
	go func() {
		defer close(w.done)
		t := time.NewTicker(watchEvery)
		defer t.Stop()
		for {
			c, err := readIf(pid, iface)
			cpu, cerr := readCPU()
			if err == nil && cerr == nil {
				w.mu.Lock()
				w.samples = append(w.samples, txSample{at: time.Now(), bytes: c.TxBytes, packets: c.TxPackets, cpu: cpu})
				w.mu.Unlock()
			}
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// Stop ends the sampling and returns the samples.
func (w *txWatch) Stop() []txSample {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.samples
}

// firstData returns the first sample after which the sender sent more
// than firstDataBytes before the next sample, in frames of at most
// datagramBytes on average unless anyFrames (TCP tools).
func firstData(s []txSample, anyFrames bool) (txSample, bool) {
	for i := 0; i+1 < len(s); i++ {
		db, dp := s[i+1].bytes-s[i].bytes, s[i+1].packets-s[i].packets
		if db <= firstDataBytes || dp <= 0 {
			continue
		}
		if anyFrames || db/dp <= datagramBytes {
			return s[i], true
		}
	}
	return txSample{}, false
}

var nftCounter = regexp.MustCompile(`counter packets (\d+) bytes (\d+)`)

// parseNftDrops sums the packets of the counters in an nft listing.
func parseNftDrops(listing string) int64 {
	var n int64
	for _, m := range nftCounter.FindAllStringSubmatch(listing, -1) {
		v, _ := strconv.ParseInt(m[1], 10, 64)
		n += v
	}
	return n
}

// readKernelInt reads one integer file (a sysctl under /proc/sys).
func readKernelInt(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// meter measures one run from the kernel's counters: it starts just
// before the sender process does.
type meter struct {
	l         *lab
	hosts     []*netlab.Host
	start     time.Time
	cpu       cpuTimes
	snd       ifCounters
	rcvIf     []ifCounters
	rcvUDP    []udpCounters
	watch     *txWatch
	anyFrames bool
}

// startMeter reads the counters of the sender and of hosts and starts
// watching the sender's interface. anyFrames: the first data may come in
// TCP segments (the unicast fan-out).
func (l *lab) startMeter(hosts []*netlab.Host, anyFrames bool) (*meter, error) {
	m := &meter{l: l, hosts: hosts, anyFrames: anyFrames}
	snd := l.anchors[l.sender()].cmd.Process.Pid
	var err error
	if m.snd, err = readIf(snd, "eth0"); err != nil {
		return nil, err
	}
	for _, h := range hosts {
		pid := l.anchors[h].cmd.Process.Pid
		c, err := readIf(pid, "eth0")
		if err != nil {
			return nil, err
		}
		u, err := readUDP(pid)
		if err != nil {
			return nil, err
		}
		m.rcvIf, m.rcvUDP = append(m.rcvIf, c), append(m.rcvUDP, u)
	}
	m.watch = watchTx(snd, "eth0")
	if m.cpu, err = readCPU(); err != nil {
		return nil, err
	}
	m.start = time.Now()
	return m, nil
}

// finish ends the measurement at end (when every receiver held its copy)
// and fills s: xfer, wall, goodput, wire, CPU and drops. delivered is the
// bytes every receiver got (the content, or what a raw sink counted).
func (m *meter) finish(s *sample, end time.Time, delivered int64) error {
	cpu, err := readCPU()
	if err != nil {
		return err
	}
	samples := m.watch.Stop()
	snd, err := readIf(m.l.anchors[m.l.sender()].cmd.Process.Pid, "eth0")
	if err != nil {
		return err
	}
	for i, h := range m.hosts {
		pid := m.l.anchors[h].cmd.Process.Pid
		c, err := readIf(pid, "eth0")
		if err != nil {
			return err
		}
		u, err := readUDP(pid)
		if err != nil {
			return err
		}
		s.SockDrops += u.RcvbufErrors - m.rcvUDP[i].RcvbufErrors
		s.InqDrops += c.RxDropped - m.rcvIf[i].RxDropped
		s.LossDrops += lossDrops(h)
	}
	s.Wall = end.Sub(m.start).Seconds()
	if delivered <= 0 {
		delivered = s.Content
	}
	s.Delivered = delivered
	gb := float64(delivered) * float64(s.N) / 1e9
	s.CPUBusy = cpu.sub(m.cpu).busySeconds()
	s.CPUPerGB = s.CPUBusy / gb
	first, ok := firstData(samples, m.anyFrames)
	s.FirstData = ok
	if ok && first.at.Before(end) {
		s.Xfer = end.Sub(first.at).Seconds()
		s.StartUp = first.at.Sub(m.start).Seconds()
		s.CPUXferPerGB = cpu.sub(first.cpu).busySeconds() / gb
	} else {
		s.Xfer = s.Wall
		s.CPUXferPerGB = s.CPUPerGB
	}
	s.MBps = float64(delivered) / s.Xfer / 1e6
	s.TxBytes, s.TxPackets, s.TxDropped = snd.TxBytes-m.snd.TxBytes, snd.TxPackets-m.snd.TxPackets, snd.TxDropped-m.snd.TxDropped
	s.Wire = float64(s.TxBytes) / float64(delivered)
	if s.Loss > 0 && s.TxPackets > 0 {
		s.LossHit = float64(s.LossDrops) / float64(s.TxPackets*int64(s.N))
	}
	return nil
}
