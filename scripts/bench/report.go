package main

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// sample is one run of one configuration, measured from the kernel's
// counters (see meter).
type sample struct {
	Config, Tool, Channel string
	N                     int
	Loss                  float64
	Rep                   int
	Status                string // ok, failed: why, skipped: why, interrupted

	Content   int64 // bytes of the channel, per receiver
	Objects   int
	Delivered int64 // bytes every receiver got (the content; for raw rows what the slowest sink counted)

	Xfer      float64 // first data packet on the sender's wire → every receiver holds its copy, seconds
	Wall      float64 // sender process start → every receiver holds its copy, seconds
	StartUp   float64 // sender process start → first data packet, seconds
	FirstData bool    // the first data packet was detected (else xfer = wall)
	MBps      float64 // per receiver: delivered / xfer, 10^6 bytes/s
	Wire      float64 // sender interface tx bytes / delivered bytes

	TxBytes, TxPackets, TxDropped int64   // sender's eth0 over the run
	Background                    float64 // CPU cores busy just before the run (other work on the machine)
	CPUBusy                       float64
	CPUPerGB                      float64 // machine-wide busy CPU seconds over the wall window / (delivered × receivers / 10^9)
	CPUXferPerGB                  float64 // the same over the xfer window

	SockDrops int64   // UdpRcvbufErrors, summed over the receivers' namespaces
	InqDrops  int64   // rx_dropped of the receivers' eth0 (input queue full)
	LossDrops int64   // the nftables loss rule's counter, summed
	LossHit   float64 // LossDrops / (sender tx packets × receivers)

	// nackcast only.
	RecvOverflow            int64 // socket overflows the receivers counted themselves
	PeakRSS                 int64 // largest receiver VmHWM, bytes
	NACKs, Repairs, Unicast int64
	RateCuts                int   // the sender's nackcast_sender_rate_decreases_total at the end
	MinRate                 int64 // lowest nackcast_sender_rate_bytes_per_second, sampled every 100 ms
}

func (s *sample) ok() bool { return s.Status == "ok" }

// overrun: a receiver or its input queue dropped datagrams (not the loss
// rule).
func (s *sample) overrun() bool { return s.SockDrops+s.InqDrops > 0 }

func (s *sample) line() string {
	if !s.ok() {
		return short(s.Status)
	}
	b := fmt.Sprintf("xfer %6.2f s  wall %6.2f s  %6.1f MB/s per receiver  wire %.3f  CPU %5.2f s/GB (xfer %5.2f)  drops sock %d inq %d loss %d",
		s.Xfer, s.Wall, s.MBps, s.Wire, s.CPUPerGB, s.CPUXferPerGB, s.SockDrops, s.InqDrops, s.LossDrops)
	if s.Loss > 0 {
		b += fmt.Sprintf(" (%.1f%% of datagrams)", 100*s.LossHit)
	}
	if !s.FirstData {
		b += "  [no first data packet seen: xfer = wall]"
	}
	b += fmt.Sprintf("  bg %.2f cores", s.Background)
	if s.Tool == "nackcast" {
		b += fmt.Sprintf("  [NACKs %d, repair passes %d, unicast %.1f MB, rate cuts %d, lowest rate %.0f MB/s",
			s.NACKs, s.Repairs, float64(s.Unicast)/1e6, s.RateCuts, float64(s.MinRate)/1e6)
		b += fmt.Sprintf(", peak RSS %.0f MiB]", float64(s.PeakRSS)/(1<<20))
	}
	return b
}

// stat is the median and range of a metric over the successful runs.
type stat struct {
	med, lo, hi float64
	n           int
}

func summarize(vals []float64) stat {
	if len(vals) == 0 {
		return stat{med: math.NaN(), lo: math.NaN(), hi: math.NaN()}
	}
	v := append([]float64(nil), vals...)
	sort.Float64s(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return stat{med: m, lo: v[0], hi: v[len(v)-1], n: len(v)}
}

func (s stat) ok() bool { return s.n > 0 }

// format prints "median (min–max)" with prec decimals.
func (s stat) format(prec int) string {
	if !s.ok() {
		return "–"
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', prec, 64) }
	if s.n == 1 {
		return f(s.med)
	}
	return fmt.Sprintf("%s (%s–%s)", f(s.med), f(s.lo), f(s.hi))
}

// summary is one configuration over its runs.
type summary struct {
	c                       *config
	runs                    []*sample // successful ones
	failed, skipped         int
	status                  string // first failure or skip
	xfer, wall, mbps, wire  stat
	cpu, cpuXfer            stat
	sock, inq, lossd        stat
	lossHit, objps, startUp stat
	rss                     stat
	overruns                int
	vsUFTP                  *summary // same channel, receivers and loss
}

func summarizeAll(samples []*sample, configs []*config) []*summary {
	var out []*summary
	by := map[*config]*summary{}
	for _, c := range configs {
		sm := &summary{c: c}
		by[c] = sm
		out = append(out, sm)
	}
	for _, s := range samples {
		var sm *summary
		for c, v := range by {
			if c.key == s.Config {
				sm = v
			}
		}
		if sm == nil {
			continue
		}
		switch {
		case s.ok():
			sm.runs = append(sm.runs, s)
		case strings.HasPrefix(s.Status, "skipped"):
			sm.skipped++
		default:
			sm.failed++
		}
		if !s.ok() && sm.status == "" {
			sm.status = s.Status
		}
	}
	get := func(sm *summary, f func(*sample) float64) stat {
		var v []float64
		for _, s := range sm.runs {
			v = append(v, f(s))
		}
		return summarize(v)
	}
	for _, sm := range out {
		sm.xfer = get(sm, func(s *sample) float64 { return s.Xfer })
		sm.wall = get(sm, func(s *sample) float64 { return s.Wall })
		sm.startUp = get(sm, func(s *sample) float64 { return s.StartUp })
		sm.mbps = get(sm, func(s *sample) float64 { return s.MBps })
		sm.wire = get(sm, func(s *sample) float64 { return s.Wire })
		sm.cpu = get(sm, func(s *sample) float64 { return s.CPUPerGB })
		sm.cpuXfer = get(sm, func(s *sample) float64 { return s.CPUXferPerGB })
		sm.sock = get(sm, func(s *sample) float64 { return float64(s.SockDrops) })
		sm.inq = get(sm, func(s *sample) float64 { return float64(s.InqDrops) })
		sm.lossd = get(sm, func(s *sample) float64 { return float64(s.LossDrops) })
		sm.lossHit = get(sm, func(s *sample) float64 { return s.LossHit })
		sm.objps = get(sm, func(s *sample) float64 { return float64(s.Objects) / s.Xfer })
		sm.rss = get(sm, func(s *sample) float64 { return float64(s.PeakRSS) })
		for _, s := range sm.runs {
			if s.overrun() {
				sm.overruns++
			}
		}
	}
	for _, sm := range out {
		if sm.c.tool == "uftp" {
			continue
		}
		for _, u := range out {
			if u.c.tool == "uftp" && u.c.channel == sm.c.channel && u.c.n == sm.c.n && u.c.loss == sm.c.loss && u.mbps.ok() {
				sm.vsUFTP = u
			}
		}
	}
	return out
}

func find(sums []*summary, tool, channel string, n int, loss float64) *summary {
	for _, sm := range sums {
		if sm.c.tool == tool && sm.c.channel == channel && sm.c.n == n && sm.c.loss == loss && len(sm.runs) > 0 {
			return sm
		}
	}
	return nil
}

func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// report prints the table and the goals, and writes the CSVs and the
// chart.
func report(samples []*sample, configs []*config, l *lab) error {
	sums := summarizeAll(samples, configs)
	fmt.Printf("\ncontent: %s; every copy verified by SHA-256 or the run fails\n", contentLine(l))
	fmt.Printf("medians over the successful runs, (min–max) when more than one; repetitions interleaved\n\n")
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "config\truns\txfer s\twall s\tMB/s per receiver\t÷ uftp\twire/content\tCPU s/GB\t÷ uftp\tCPU s/GB in xfer\tdrops sock/inq/loss\toverrun runs\t")
	for _, sm := range sums {
		runs := strconv.Itoa(len(sm.runs))
		if sm.failed > 0 {
			runs += fmt.Sprintf(" +%d failed", sm.failed)
		}
		if sm.skipped > 0 {
			runs += fmt.Sprintf(" +%d skipped", sm.skipped)
		}
		g, c := "", ""
		if sm.vsUFTP != nil && sm.mbps.ok() {
			g = fmt.Sprintf("%.2f", ratio(sm.mbps.med, sm.vsUFTP.mbps.med))
			c = fmt.Sprintf("%.2f", ratio(sm.cpu.med, sm.vsUFTP.cpu.med))
		}
		drops := "–"
		if sm.sock.ok() {
			drops = fmt.Sprintf("%.0f/%.0f/%.0f", sm.sock.med, sm.inq.med, sm.lossd.med)
		}
		over := ""
		if len(sm.runs) > 0 {
			over = fmt.Sprintf("%d/%d", sm.overruns, len(sm.runs))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", sm.c.key, runs, sm.xfer.format(2), sm.wall.format(2),
			sm.mbps.format(1), g, sm.wire.format(3), sm.cpu.format(2), c, sm.cpuXfer.format(2), drops, over)
	}
	tw.Flush()
	for _, sm := range sums {
		if sm.status != "" {
			fmt.Printf("  %s: %s\n", sm.c.key, short(sm.status))
		}
	}
	var bg []float64
	for _, s := range samples {
		bg = append(bg, s.Background)
	}
	if b := summarize(bg); b.ok() {
		fmt.Printf("  background load (CPU cores busy in the half second before each run, the bench idle): median %.2f, max %.2f\n", b.med, b.hi)
	}
	fmt.Print(`
xfer: first data packet on the sender's wire (the first 5 ms sample of the sender eth0's tx_bytes after which
  it grew by more than 64 KiB in datagram-sized frames) until every receiver holds its copy (nackcast: the
  receiver reports the channel complete, after its own SHA-256 check and fsync; uftp: uftp exits, every
  receiver having confirmed; udpcast: every udp-receiver exits; raw: the sink's first to last datagram).
wall: sender process start until the same end. MB/s per receiver: content / xfer (10^6 bytes/s).
wire/content: bytes the sender's eth0 sent (all traffic, headers included) / content bytes.
CPU s/GB: machine-wide busy time (/proc/stat: user+nice+system+irq+softirq+steal) over the wall window /
  (content x receivers) in 10^9 bytes; the bench's own polling is inside it. "in xfer": the same over the
  xfer window only (leaves out start-up work such as nackcast's sender hashing the content).
drops: sock = UdpRcvbufErrors summed over the receivers' namespaces, inq = rx_dropped of the receivers'
  eth0 (input queue full), loss = packets the nftables loss rule dropped; median per run.
overrun runs: runs with any sock or inq drop. The harness's SHA-256 check of the copies is outside every window.
`)
	goals(sums)
	if err := os.MkdirAll(l.o.results, 0o755); err != nil {
		return err
	}
	runsPath := filepath.Join(l.o.results, "bench-runs.csv")
	medPath := filepath.Join(l.o.results, "bench-medians.csv")
	pngPath := filepath.Join(l.o.results, "bench.png")
	if err := writeRunsCSV(runsPath, samples); err != nil {
		return err
	}
	if err := writeMediansCSV(medPath, sums); err != nil {
		return err
	}
	if err := writeChart(pngPath, sums); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s, %s and %s\n", runsPath, medPath, pngPath)
	return nil
}

func contentLine(l *lab) string {
	var parts []string
	for _, name := range []string{"bench", "mixed", "small", "big"} {
		ch := l.channels[name]
		if ch == nil {
			continue
		}
		switch name {
		case "bench":
			parts = append(parts, fmt.Sprintf("main rows one file of %.1f MB of random data", float64(ch.bytes)/1e6))
		case "mixed":
			parts = append(parts, fmt.Sprintf("mixed %.1f MB in %d files", float64(ch.bytes)/1e6, ch.objects))
		case "small":
			parts = append(parts, fmt.Sprintf("small %d objects of 4 KiB", ch.objects))
		case "big":
			parts = append(parts, fmt.Sprintf("big one object of %.0f MiB", float64(ch.bytes)/(1<<20)))
		}
	}
	return strings.Join(parts, "; ")
}

// goals prints the goals of issue 13 that this lab measures, each met or
// missed on the medians.
func goals(sums []*summary) {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Println("\ngoals of issue 13 (medians of this run):")
	n3, u3 := find(sums, "nackcast", "bench", 3, 0), find(sums, "uftp", "bench", 3, 0)
	ceil := find(sums, "raw-gso", "bench", 3, 0)
	if n3 != nil && u3 != nil {
		g, c := ratio(n3.mbps.med, u3.mbps.med), ratio(n3.cpu.med, u3.cpu.med)
		fmt.Printf("  1. N=3 0%%: goodput %.1f MB/s = %.2fx uftp's %.1f (goal >= 1.5x): %s", n3.mbps.med, g, u3.mbps.med, verdict(g >= 1.5))
		if ceil != nil {
			y := ratio(n3.mbps.med, ceil.mbps.med)
			fmt.Printf("; %.0f%% of the GSO+GRO ceiling %.1f MB/s (goal >= 60%%): %s", 100*y, ceil.mbps.med, verdict(y >= 0.6))
		} else {
			fmt.Print("; ceiling not measured (-only raw)")
		}
		fmt.Printf("; CPU %.2f s/GB = %.2fx uftp's %.2f (goal <= 0.7x): %s (over the xfer window only: %.2fx)\n", n3.cpu.med, c, u3.cpu.med, verdict(c <= 0.7),
			ratio(n3.cpuXfer.med, u3.cpuXfer.med))
	} else {
		fmt.Println("  1. not measured (needs nackcast and uftp)")
	}
	n5, u5 := find(sums, "nackcast", "bench", 3, 0.05), find(sums, "uftp", "bench", 3, 0.05)
	if n5 != nil {
		if u5 != nil {
			g := ratio(n5.mbps.med, u5.mbps.med)
			fmt.Printf("  2. N=3 5%%: goodput %.1f MB/s = %.2fx uftp's %.1f (goal >= 2x): %s", n5.mbps.med, g, u5.mbps.med, verdict(g >= 2))
		} else {
			fmt.Printf("  2. N=3 5%%: goodput %.1f MB/s (uftp not measured)", n5.mbps.med)
		}
		fmt.Printf("; wire %.3f x content (goal <= 1.10): %s", n5.wire.med, verdict(n5.wire.med <= 1.10))
		if u5 != nil {
			fmt.Printf(" (uftp %.3f)", u5.wire.med)
		}
		fmt.Println()
	} else {
		fmt.Println("  2. not measured (needs -only loss)")
	}
	for _, sm := range []*summary{n5, u5} {
		if sm != nil && sm.lossHit.ok() {
			fmt.Printf("     loss rule check, %s: it dropped %.2f%% (%.2f–%.2f%%) of the datagrams the sender's eth0 sent x receivers: per datagram, as asked (5%%)\n",
				sm.c.key, 100*sm.lossHit.med, 100*sm.lossHit.lo, 100*sm.lossHit.hi)
		}
	}
	n1, u1 := find(sums, "nackcast", "bench", 1, 0), find(sums, "uftp", "bench", 1, 0)
	if n1 != nil && u1 != nil {
		g := ratio(n1.mbps.med, u1.mbps.med)
		fmt.Printf("  3. N=1 0%%: goodput %.1f MB/s = %.2fx uftp's %.1f (goal >= 1.5x): %s\n", n1.mbps.med, g, u1.mbps.med, verdict(g >= 1.5))
	} else {
		fmt.Println("  3. N=1: not measured (needs nackcast and uftp)")
	}
	overrunReport(sums, verdict)
	fmt.Println("  4. PublishObject to first DATA <= 100 ms: not measured by this lab (here the sender starts with the content; its start-up to the first data is the wall - xfer difference)")
	if s := find(sums, "nackcast", "small", 3, 0); s != nil {
		fmt.Printf("  5. %d objects of 4 KiB to 3 receivers: %.0f objects/s per receiver (%.0f–%.0f; goal >= 10,000): %s\n",
			s.runs[0].Objects, s.objps.med, s.objps.lo, s.objps.hi, verdict(s.objps.med >= 10000))
	} else {
		fmt.Println("  5. small objects: not measured (-only small)")
	}
	if b := find(sums, "nackcast", "big", 1, 0); b != nil {
		mib := b.rss.hi / (1 << 20)
		fmt.Printf("  6. one object of %.0f MiB to one receiver: receiver peak RSS %.1f MiB (largest of %d runs; goal <= 64 MiB): %s\n",
			float64(b.runs[0].Content)/(1<<20), mib, len(b.runs), verdict(b.rss.hi > 0 && mib <= 64))
	} else {
		fmt.Println("  6. receiver RSS: not measured (-only big)")
	}
}

// overrunReport lists the nackcast runs in which a receiver's socket or
// input queue dropped datagrams, and whether their xfer suffered: compared
// with the median of the same configuration's runs without a drop, more
// than 20% slower counts as hurt; with no such run it cannot be told, and
// the run is compared with uftp's median instead, for information.
func overrunReport(sums []*summary, verdict func(bool) string) {
	hurt, unknown, total := 0, 0, 0
	var lines []string
	for _, sm := range sums {
		if sm.c.tool != "nackcast" {
			continue
		}
		var clean []float64
		for _, s := range sm.runs {
			if !s.overrun() {
				clean = append(clean, s.Xfer)
			}
		}
		base := summarize(clean)
		for _, s := range sm.runs {
			if !s.overrun() {
				continue
			}
			total++
			var what string
			switch {
			case base.ok():
				r := s.Xfer / base.med
				h := "not hurt"
				if r > 1.2 {
					hurt++
					h = "HURT"
				}
				what = fmt.Sprintf("xfer %.2f s = %.2fx the median of its %d runs without drops: %s", s.Xfer, r, base.n, h)
			default:
				unknown++
				what = fmt.Sprintf("xfer %.2f s; no run of this configuration without drops to compare with", s.Xfer)
				if sm.vsUFTP != nil {
					what += fmt.Sprintf(" (uftp's median %.2f s)", sm.vsUFTP.xfer.med)
				}
			}
			lines = append(lines, fmt.Sprintf("       %s rep %d: sock %d, inq %d drops (receivers counted %d overflows), repair passes %d, rate cuts %d, lowest rate %.0f MB/s; %s",
				sm.c.key, s.Rep, s.SockDrops, s.InqDrops, s.RecvOverflow, s.Repairs, s.RateCuts, float64(s.MinRate)/1e6, what))
		}
	}
	fmt.Printf("     overruns in nackcast runs: %d runs with socket-buffer or input-queue drops: %d hurt, %d not hurt, %d cannot be told (goal: no overrun-induced stall): %s\n",
		total, hurt, total-hurt-unknown, unknown, verdict(hurt == 0 && unknown == 0))
	for _, l := range lines {
		fmt.Println(l)
	}
}

// short cuts a status to one readable line; the CSV has it whole.
func short(s string) string {
	if len(s) > 240 {
		return s[:240] + "..."
	}
	return s
}

func f64(x float64, prec int) string {
	if math.IsNaN(x) {
		return ""
	}
	return strconv.FormatFloat(x, 'f', prec, 64)
}

func writeCSV(path string, records [][]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	// WriteAll flushes and returns the first error of any write.
	if err := csv.NewWriter(f).WriteAll(records); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeRunsCSV(path string, samples []*sample) error {
	records := [][]string{{"config", "tool", "channel", "receivers", "loss", "rep", "status", "content_bytes", "objects", "delivered_bytes",
		"xfer_s", "wall_s", "startup_s", "first_data_seen", "mb_per_s_per_receiver", "wire_per_content", "tx_bytes", "tx_packets", "tx_dropped",
		"background_cores_busy", "cpu_busy_s", "cpu_s_per_gb", "cpu_xfer_s_per_gb", "drops_sock", "drops_inq", "drops_loss_rule", "loss_rule_fraction",
		"receiver_overflows", "peak_rss_bytes", "nacks", "repair_passes", "unicast_bytes", "rate_cuts", "min_rate"}}
	for _, s := range samples {
		i := func(v int64) string { return strconv.FormatInt(v, 10) }
		records = append(records, []string{s.Config, s.Tool, s.Channel, strconv.Itoa(s.N), f64(s.Loss, 2), strconv.Itoa(s.Rep), s.Status,
			i(s.Content), strconv.Itoa(s.Objects), i(s.Delivered), f64(s.Xfer, 3), f64(s.Wall, 3), f64(s.StartUp, 3), strconv.FormatBool(s.FirstData),
			f64(s.MBps, 2), f64(s.Wire, 4), i(s.TxBytes), i(s.TxPackets), i(s.TxDropped), f64(s.Background, 2), f64(s.CPUBusy, 2), f64(s.CPUPerGB, 3), f64(s.CPUXferPerGB, 3),
			i(s.SockDrops), i(s.InqDrops), i(s.LossDrops), f64(s.LossHit, 4), i(s.RecvOverflow), i(s.PeakRSS), i(s.NACKs), i(s.Repairs),
			i(s.Unicast), strconv.Itoa(s.RateCuts), i(s.MinRate)})
	}
	return writeCSV(path, records)
}

func writeMediansCSV(path string, sums []*summary) error {
	head := []string{"config", "tool", "channel", "receivers", "loss", "runs_ok", "runs_failed", "runs_skipped"}
	metrics := []struct {
		name string
		prec int
		get  func(*summary) stat
	}{
		{"xfer_s", 3, func(s *summary) stat { return s.xfer }},
		{"wall_s", 3, func(s *summary) stat { return s.wall }},
		{"mb_per_s_per_receiver", 2, func(s *summary) stat { return s.mbps }},
		{"wire_per_content", 4, func(s *summary) stat { return s.wire }},
		{"cpu_s_per_gb", 3, func(s *summary) stat { return s.cpu }},
		{"cpu_xfer_s_per_gb", 3, func(s *summary) stat { return s.cpuXfer }},
		{"drops_sock", 0, func(s *summary) stat { return s.sock }},
		{"drops_inq", 0, func(s *summary) stat { return s.inq }},
		{"drops_loss_rule", 0, func(s *summary) stat { return s.lossd }},
		{"objects_per_s_per_receiver", 0, func(s *summary) stat { return s.objps }},
		{"peak_rss_bytes", 0, func(s *summary) stat { return s.rss }},
	}
	for _, m := range metrics {
		head = append(head, m.name+"_median", m.name+"_min", m.name+"_max")
	}
	head = append(head, "overrun_runs", "goodput_vs_uftp", "cpu_vs_uftp", "wire_vs_uftp")
	records := [][]string{head}
	for _, sm := range sums {
		r := []string{sm.c.key, sm.c.tool, sm.c.channel, strconv.Itoa(sm.c.n), f64(sm.c.loss, 2), strconv.Itoa(len(sm.runs)),
			strconv.Itoa(sm.failed), strconv.Itoa(sm.skipped)}
		for _, m := range metrics {
			st := m.get(sm)
			r = append(r, f64(st.med, m.prec), f64(st.lo, m.prec), f64(st.hi, m.prec))
		}
		g, c, w := "", "", ""
		if sm.vsUFTP != nil {
			g = f64(ratio(sm.mbps.med, sm.vsUFTP.mbps.med), 3)
			c = f64(ratio(sm.cpu.med, sm.vsUFTP.cpu.med), 3)
			w = f64(ratio(sm.wire.med, sm.vsUFTP.wire.med), 3)
		}
		r = append(r, strconv.Itoa(sm.overruns), g, c, w)
		records = append(records, r)
	}
	return writeCSV(path, records)
}

// rangePoints are bar tops with their min–max, for error bars.
type rangePoints []struct{ x, y, lo, hi float64 }

func (p rangePoints) Len() int                        { return len(p) }
func (p rangePoints) XY(i int) (float64, float64)     { return p[i].x, p[i].y }
func (p rangePoints) YError(i int) (float64, float64) { return p[i].y - p[i].lo, p[i].hi - p[i].y }

// writeChart draws the median goodput per receiver of every configuration
// as a bar, with its min–max.
func writeChart(path string, sums []*summary) error {
	p := plot.New()
	p.Title.Text = "goodput per receiver (content / xfer), median and min–max; netns bridge, MTU 1500, sender veth segments GSO"
	p.Y.Label.Text = "MB/s"
	colors := map[string]color.RGBA{
		"nackcast": {R: 40, G: 110, B: 180, A: 255},
		"uftp":     {R: 230, G: 130, B: 30, A: 255},
		"udpcast":  {R: 60, G: 160, B: 80, A: 255},
		"unicast":  {R: 140, G: 90, B: 170, A: 255},
	}
	gray := color.RGBA{R: 140, G: 140, B: 140, A: 255}
	var shown []*summary
	for _, sm := range sums {
		if sm.mbps.ok() {
			shown = append(shown, sm)
		}
	}
	if len(shown) == 0 {
		return nil
	}
	// One bar chart per tool, each with zeros at the other tools' places,
	// so that the tools have their colours.
	byTool := map[string]plotter.Values{}
	var tools []string
	var pts rangePoints
	var names []string
	for i, sm := range shown {
		t := sm.c.tool
		if _, ok := byTool[t]; !ok {
			byTool[t] = make(plotter.Values, len(shown))
			tools = append(tools, t)
		}
		byTool[t][i] = sm.mbps.med
		pts = append(pts, struct{ x, y, lo, hi float64 }{float64(i), sm.mbps.med, sm.mbps.lo, sm.mbps.hi})
		names = append(names, sm.c.key)
	}
	for _, t := range tools {
		bars, err := plotter.NewBarChart(byTool[t], vg.Points(22))
		if err != nil {
			return err
		}
		c, ok := colors[t]
		if !ok {
			c = gray
		}
		bars.Color = c
		bars.LineStyle.Width = 0
		p.Add(bars)
		p.Legend.Add(t, bars)
	}
	p.Legend.Top = true
	eb, err := plotter.NewYErrorBars(pts)
	if err != nil {
		return err
	}
	p.Add(eb)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.9
	p.X.Tick.Label.XAlign = -0.9
	p.X.Tick.Label.YAlign = -0.5
	return p.Save(vg.Length(len(shown))*45+250, 460, path)
}
