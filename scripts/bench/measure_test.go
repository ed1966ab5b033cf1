package main

import (
	"math"
	"testing"
	"time"
)

func TestParseNetDev(t *testing.T) {
	text := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0: 1000 10 0 7 0 0 0 3 256000000 180000 0 2 0 0 0 0
`
	got, err := parseNetDev([]byte(text), "eth0")
	if err != nil {
		t.Fatal(err)
	}
	want := ifCounters{RxBytes: 1000, RxPackets: 10, RxDropped: 7, TxBytes: 256000000, TxPackets: 180000, TxDropped: 2}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := parseNetDev([]byte(text), "eth1"); err == nil {
		t.Error("eth1: no error")
	}
}

func TestParseSNMP(t *testing.T) {
	text := `Ip: Forwarding DefaultTTL
Ip: 1 64
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 369408 0 1075972 167368 15360 0 0 20 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 99 0 0 0 0
`
	got, err := parseSNMP([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if want := (udpCounters{RcvbufErrors: 15360, InDatagrams: 369408}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseStat(t *testing.T) {
	got, err := parseStat([]byte("cpu  100 5 20 1000 50 3 7 2 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	// busy: user+nice+system+irq+softirq+steal; total adds idle and iowait.
	if want := (cpuTimes{busy: 137, total: 1187}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestFirstData(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := []txSample{
		{at: at(0), bytes: 0, packets: 0},
		{at: at(5), bytes: 300, packets: 3},                  // control packets
		{at: at(10), bytes: 300 + 200_000, packets: 3 + 4},   // a TCP transfer in 64 KiB TSO segments
		{at: at(15), bytes: 200_300, packets: 7},             // quiet
		{at: at(20), bytes: 200_300 + 144_000, packets: 107}, // 100 datagrams of 1440 bytes
		{at: at(25), bytes: 500_000, packets: 220},
	}
	got, ok := firstData(s, false)
	if !ok || !got.at.Equal(at(15)) {
		t.Errorf("datagrams: got %v %v, want %v", got.at.Sub(t0), ok, 15*time.Millisecond)
	}
	got, ok = firstData(s, true)
	if !ok || !got.at.Equal(at(5)) {
		t.Errorf("any frames: got %v %v, want %v", got.at.Sub(t0), ok, 5*time.Millisecond)
	}
	if _, ok := firstData(s[:2], false); ok {
		t.Error("control packets only: first data found")
	}
}

func TestParseNftDrops(t *testing.T) {
	listing := `table inet nackcast_loss {
	chain in {
		type filter hook input priority filter; policy accept;
		meta l4proto udp numgen random mod 100 < 5 counter packets 8454 bytes 12345678 drop
	}
}`
	if got := parseNftDrops(listing); got != 8454 {
		t.Errorf("got %d, want 8454", got)
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in          []float64
		med, lo, hi float64
	}{
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 2, 3}, 2.5, 1, 4},
		{[]float64{5}, 5, 5, 5},
	} {
		got := summarize(tc.in)
		if got.med != tc.med || got.lo != tc.lo || got.hi != tc.hi || got.n != len(tc.in) {
			t.Errorf("summarize(%v) = %+v, want median %v, min %v, max %v", tc.in, got, tc.med, tc.lo, tc.hi)
		}
	}
	if got := summarize(nil); got.ok() || !math.IsNaN(got.med) {
		t.Errorf("summarize(nil) = %+v, want no value", got)
	}
}
