package store

import (
	"context"
	"testing"
	"time"
)

func TestParseCrashPoint(t *testing.T) {
	tests := []struct {
		in   string
		step string
		n    int
		ok   bool
	}{
		{"rename:3", "rename", 3, true},
		{"sync-dir:1", "sync-dir", 1, true},
		{"rename", "", 0, false},
		{"rename:0", "", 0, false},
		{"rename:x", "", 0, false},
		{"format-disk:1", "", 0, false},
	}
	for _, tt := range tests {
		step, n, err := ParseCrashPoint(tt.in)
		if (err == nil) != tt.ok || (tt.ok && (step != tt.step || n != tt.n)) {
			t.Errorf("ParseCrashPoint(%q) = %q, %d, %v", tt.in, step, n, err)
		}
	}
}

func TestVerifyFinalPaced(t *testing.T) {
	s := openStore(t, t.TempDir())
	data := content(300_000, 7)
	obj := object(t, "f.bin", data)
	p, err := s.OpenPartial("ch", obj)
	if err != nil {
		t.Fatal(err)
	}
	writeChunks(t, p, data, func(uint32) bool { return true })
	if err := s.Commit(p); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ok, _, err := s.VerifyFinalPaced(context.Background(), "ch", obj, 1_000_000)
	if err != nil || !ok {
		t.Fatalf("VerifyFinalPaced = %v, %v", ok, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("300 kB at 1 MB/s read in %v: not paced", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.VerifyFinalPaced(ctx, "ch", obj, 1000); err == nil {
		t.Error("a cancelled scrub went on")
	}
}
