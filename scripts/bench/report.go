package main

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// find returns the first row of tool with n receivers and loss.
func find(rows []row, tool string, n int, loss float64) (row, bool) {
	for _, r := range rows {
		if r.Tool == tool && r.Receivers == n && r.Loss == loss {
			return r, true
		}
	}
	return row{}, false
}

// report prints the table and the targets, and writes the CSV and chart.
func report(rows []row, l *lab, o options) error {
	fmt.Printf("\ncontent: channel bench %.1f MB (%d files, one large), channel small %d objects of 4 KiB; every copy verified by SHA-256\n\n",
		float64(l.content)/1e6, o.files+1, l.objects)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tool\treceivers\tloss\tseconds\tMB/s per receiver (min)\tsender bytes / content bytes\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%d\t%.0f%%\t%.2f\t%.1f\t%.3f\t\n", r.Tool, r.Receivers, 100*r.Loss, r.Seconds, r.minRate(), r.Wire)
	}
	tw.Flush()
	fmt.Println("\nseconds: until the slowest receiver holds a verified copy; sender bytes: the sender host's eth0 tx_bytes (headers included)")

	fmt.Println("\ntargets:")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	n0, ok1 := find(rows, "nackcast", 3, 0)
	u0, ok2 := find(rows, "uftp", 3, 0)
	raw, ok3 := find(rows, "raw UDP GSO+GRO", 3, 0)
	if ok1 && ok2 && ok3 {
		x := n0.minRate() / u0.minRate()
		y := n0.minRate() / raw.minRate()
		fmt.Printf("  1. goodput at 0%% loss: %.1fx uftp (target >= 10x): %s; %.0f%% of the raw ceiling (target >= 60%%): %s\n",
			x, verdict(x >= 10), 100*y, verdict(y >= 0.6))
	}
	n5, ok4 := find(rows, "nackcast", 3, 0.05)
	if ok1 && ok4 {
		t := n5.Seconds / n0.Seconds
		fmt.Printf("  2. 5%% loss: %.2fx the 0%% time (target <= 1.5x): %s; wire %.3fx content (target <= 1.15x): %s\n",
			t, verdict(t <= 1.5), n5.Wire, verdict(n5.Wire <= 1.15))
		if u5, ok := find(rows, "uftp", 3, 0.05); ok {
			fmt.Printf("     uftp under 5%% loss: %.2f s (%.2fx its 0%% time), wire %.3fx\n", u5.Seconds, u5.Seconds/u0.Seconds, u5.Wire)
		}
	}
	if s, ok := find(rows, "nackcast 4KiB objs", 3, 0); ok {
		rate := float64(l.objects) / s.Seconds
		fmt.Printf("  3. %d objects of 4 KiB: %.0f objects/s per receiver, slowest (target >= 10000): %s\n", l.objects, rate, verdict(rate >= 10000))
	}
	fmt.Printf("  4. time by receivers (1, 3, 6): nackcast")
	for _, n := range []int{1, 3, 6} {
		if r, ok := find(rows, "nackcast", n, 0); ok {
			fmt.Printf(" %.2f s", r.Seconds)
		}
	}
	fmt.Printf("; unicast gRPC")
	for _, n := range []int{1, 3, 6} {
		if r, ok := find(rows, "unicast gRPC", n, 0); ok {
			fmt.Printf(" %.2f s", r.Seconds)
		}
	}
	fmt.Println()
	fmt.Println("  5. NACK implosion (10,000 simulated receivers): go run ./scripts/implosion (not part of this lab)")
	if b, ok := find(rows, "nackcast one object", 1, 0); ok {
		mib := float64(b.PeakRSS) / (1 << 20)
		fmt.Printf("  6. one object of %d MiB: receiver peak RSS %.1f MiB (target <= 64 MiB): %s\n", l.big>>20, mib, verdict(b.PeakRSS > 0 && mib <= 64))
	}

	if err := os.MkdirAll(o.results, 0o755); err != nil {
		return err
	}
	csvPath := filepath.Join(o.results, "bench.csv")
	if err := writeCSV(csvPath, rows); err != nil {
		return err
	}
	pngPath := filepath.Join(o.results, "bench.png")
	if err := writeChart(pngPath, rows); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s and %s\n", csvPath, pngPath)
	return nil
}

func writeCSV(path string, rows []row) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	records := [][]string{{"tool", "receivers", "loss", "seconds", "mb_per_s_per_receiver_min", "sender_bytes_per_content_byte"}}
	for _, r := range rows {
		records = append(records, []string{r.Tool, strconv.Itoa(r.Receivers), strconv.FormatFloat(r.Loss, 'f', 2, 64),
			strconv.FormatFloat(r.Seconds, 'f', 3, 64), strconv.FormatFloat(r.minRate(), 'f', 1, 64),
			strconv.FormatFloat(r.Wire, 'f', 3, 64)})
	}
	// WriteAll flushes and returns the first error of any write.
	if err := csv.NewWriter(f).WriteAll(records); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeChart draws the goodput per receiver of every row as a bar.
func writeChart(path string, rows []row) error {
	p := plot.New()
	p.Title.Text = "goodput per receiver (slowest), netns bridge, MTU 1500"
	p.Y.Label.Text = "MB/s"
	vals := make(plotter.Values, len(rows))
	names := make([]string, len(rows))
	for i, r := range rows {
		vals[i] = r.minRate()
		names[i] = fmt.Sprintf("%s\n%d rcv, %.0f%%", r.Tool, r.Receivers, 100*r.Loss)
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(22))
	if err != nil {
		return err
	}
	bars.Color = color.RGBA{R: 40, G: 110, B: 180, A: 255}
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = 0.9
	p.X.Tick.Label.XAlign = -0.9
	p.X.Tick.Label.YAlign = -0.5
	return p.Save(vg.Length(len(rows))*45+150, 420, path)
}
