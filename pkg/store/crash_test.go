package store

import "testing"

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
