package mcast

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *Config)
		ok   bool
	}{
		{"default", func(c *Config) {}, true},
		{"no interface", func(c *Config) { c.Interface = "" }, false},
		{"unicast group", func(c *Config) { c.Group = netip.MustParseAddr("10.0.0.1") }, false},
		{"ipv6 group", func(c *Config) { c.Group = netip.MustParseAddr("ff02::1") }, false},
		{"zero group", func(c *Config) { c.Group = netip.Addr{} }, false},
		{"port zero", func(c *Config) { c.Port = 0 }, false},
		{"port too big", func(c *Config) { c.Port = 70000 }, false},
		{"ttl too big", func(c *Config) { c.TTL = 256 }, false},
		{"negative buffer", func(c *Config) { c.ReadBuffer = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mod(&c)
			err := c.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("err = %v, want ErrConfig", err)
			}
		})
	}
	c := Config{}
	err := c.Validate()
	for _, want := range []string{"interface", "group", "port"} {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("Validate of zero config = %v, should mention %q", err, want)
		}
	}
}

func TestUnknownInterface(t *testing.T) {
	c := DefaultConfig()
	c.Interface = "nackcast-none0"
	if _, err := NewSender(c); err == nil {
		t.Error("NewSender on a missing interface succeeded")
	}
	if _, err := NewReceiver(c, 2048); err == nil {
		t.Error("NewReceiver on a missing interface succeeded")
	}
}

// testConfig returns a config on lo with a random port, so that parallel
// tests do not share a group.
func testConfig() Config {
	c := DefaultConfig()
	c.Port = 20000 + rand.IntN(20000)
	return c
}

func TestLoopbackBatches(t *testing.T) {
	c := testConfig()
	var rs []*Receiver
	for i := 0; i < 2; i++ {
		r, err := NewReceiver(c, 2048)
		if err != nil {
			t.Fatalf("NewReceiver: %v", err)
		}
		defer r.Close()
		if r.ReadBuffer() <= 0 {
			t.Errorf("receive buffer not reported")
		}
		rs = append(rs, r)
	}
	s, err := NewSender(c)
	if err != nil {
		t.Fatalf("NewSender: %v", err)
	}
	defer s.Close()

	const count = 150
	hdr := []byte("hdr:")
	var dgrams [][][]byte
	for i := 0; i < count; i++ {
		dgrams = append(dgrams, [][]byte{hdr, []byte(fmt.Sprintf("%04d", i))})
	}
	n, err := s.Send(dgrams)
	if err != nil || n != count {
		t.Fatalf("Send = %d, %v", n, err)
	}
	for ri, r := range rs {
		if err := r.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < count {
			batch, err := r.Read()
			if err != nil {
				t.Fatalf("receiver %d: Read after %d datagrams: %v", ri, got, err)
			}
			for _, b := range batch {
				if want := fmt.Sprintf("hdr:%04d", got); string(b) != want {
					t.Fatalf("receiver %d: datagram %q, want %q", ri, b, want)
				}
				got++
			}
		}
	}
}

func TestTruncatedDatagramIsNil(t *testing.T) {
	c := testConfig()
	r, err := NewReceiver(c, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := NewSender(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Send([][][]byte{{make([]byte, 500)}, {[]byte("ok")}}); err != nil {
		t.Fatal(err)
	}
	if err := r.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for len(got) < 2 {
		batch, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batch {
			got = append(got, append([]byte(nil), b...))
		}
	}
	if len(got[0]) != 0 || string(got[1]) != "ok" {
		t.Errorf("got %q, want a dropped oversize datagram then \"ok\"", got)
	}
}

// TestSegments: a buffer of equal datagrams and a short last one arrives
// as the same datagrams, whether the sender and the receivers offload
// segmentation or not.
func TestSegments(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		senderOff, receiverOff bool
	}{
		{"offload both sides", false, false},
		{"sender without offload", true, false},
		{"receiver without offload", false, true},
		{"no offload", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig()
			rc := c
			rc.NoOffload = tc.receiverOff
			r, err := NewReceiver(rc, 2048)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			sc := c
			sc.NoOffload = tc.senderOff
			s, err := NewSender(sc)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.GSO() == tc.senderOff || r.GRO() == tc.receiverOff {
				t.Logf("offload not available here: gso=%v gro=%v", s.GSO(), r.GRO())
			}
			const seg, count = 1000, 40
			buf := make([]byte, seg*(count-1)+123)
			for i := range buf {
				buf[i] = byte(i / seg)
			}
			for round := 0; round < 3; round++ {
				if err := s.SendSegments(buf, seg); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			var got [][]byte
			for len(got) < 3*count {
				batch, err := r.Read()
				if err != nil {
					t.Fatalf("after %d datagrams: %v", len(got), err)
				}
				for _, b := range batch {
					got = append(got, append([]byte(nil), b...))
				}
			}
			for i, d := range got {
				k := i % count
				want := seg
				if k == count-1 {
					want = 123
				}
				if len(d) != want || d[0] != byte(k) {
					t.Fatalf("datagram %d: %d bytes starting %d, want %d bytes starting %d", i, len(d), d[0], want, k)
				}
			}
		})
	}
	if err := (&Sender{}).SendSegments(make([]byte, 100*(MaxSegments+1)), 100); err == nil {
		t.Error("more than MaxSegments accepted")
	}
}

func TestControlMessageParsing(t *testing.T) {
	for _, oob := range [][]byte{nil, {1, 2, 3}, make([]byte, 64)} {
		if seg, _, ok := parseOOB(oob); seg != 0 || ok {
			t.Errorf("parseOOB(%v) = %d, %v", oob, seg, ok)
		}
	}
}

// TestDropCount: a receiver that does not read while a sender overruns its
// small buffer learns from the kernel how many datagrams were dropped.
func TestDropCount(t *testing.T) {
	c := testConfig()
	rc := c
	rc.ReadBuffer = 1 // the kernel's minimum
	r, err := NewReceiver(rc, 2048)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.Drops(); !ok {
		t.Skip("kernel does not report socket drops")
	}
	s, err := NewSender(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := make([]byte, 1000*40)
	for i := 0; i < 20; i++ {
		if err := s.SendSegments(buf, 1000); err != nil {
			t.Fatal(err)
		}
	}
	// The count travels with datagrams queued after the drops: drain the
	// queue, then read one more.
	for {
		if err := r.SetDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(); err != nil {
			break
		}
	}
	if err := s.SendSegments([]byte("one more"), 1000); err != nil {
		t.Fatal(err)
	}
	if err := r.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(); err != nil {
		t.Fatal(err)
	}
	if d, _ := r.Drops(); d == 0 {
		t.Errorf("no drops reported after overrunning a minimal buffer")
	}
}

func TestSendSegmentsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	c := testConfig()
	s, err := NewSender(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	buf := make([]byte, 1440*44)
	if n := testing.AllocsPerRun(200, func() {
		if err := s.SendSegments(buf, 1440); err != nil {
			t.Fatal(err)
		}
	}); n > 0 {
		t.Errorf("SendSegments allocates %v per call (44 datagrams)", n)
	}
}

// TestQueueFill: the fill of the receive buffer rises while datagrams
// queue unread and falls back to zero once they are read.
func TestQueueFill(t *testing.T) {
	c := testConfig()
	r, err := NewReceiver(c, 2048)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, ok := r.QueueFill(); !ok {
		t.Skip("kernel does not report socket memory")
	}
	s, err := NewSender(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SendSegments(make([]byte, 1000*40), 1000); err != nil {
		t.Fatal(err)
	}
	// Delivery on lo normally completes within the send; poll the
	// kernel's count (no sleep) in case the softirq runs later.
	var full float64
	for deadline := time.Now().Add(2 * time.Second); full <= 0 && time.Now().Before(deadline); {
		full, _ = r.QueueFill()
		runtime.Gosched()
	}
	if full <= 0 {
		t.Fatalf("fill %v with 40 datagrams queued, want above 0", full)
	}
	if err := r.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < 40 {
		b, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		got += len(b)
	}
	if empty, _ := r.QueueFill(); empty != 0 {
		t.Errorf("fill %v after reading everything (was %v), want 0", empty, full)
	}
}
