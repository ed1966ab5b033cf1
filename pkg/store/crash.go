package store

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// CrashSteps are the points of the write and commit path where a test can
// make the process kill itself (SetCrashPoint):
//
//   - write: before a vectored write of chunks into a partial file;
//   - checkpoint: after a partial's data was synced, before its bitmap is
//     written;
//   - bitmap-rename: after the new bitmap was written and synced under a
//     temporary name, before the rename over the old one;
//   - verify: before a full partial is re-read and checked against its
//     SHA-256;
//   - sync: after verification, before the data is made durable;
//   - rename: before a verified partial is renamed to its final name;
//   - sync-dir: after the rename, before the directory is made durable.
var CrashSteps = []string{"write", "checkpoint", "bitmap-rename", "verify", "sync", "rename", "sync-dir"}

var crash struct {
	step atomic.Pointer[string]
	left atomic.Int64
}

// SetCrashPoint makes the process kill itself with SIGKILL (no deferred
// work, no flush: as a power cut would, for the process) the nth time it
// reaches step, one of CrashSteps. It is for fault-injection tests only.
func SetCrashPoint(step string, n int) error {
	if err := checkCrashPoint(step, n); err != nil {
		return err
	}
	crash.left.Store(int64(n))
	crash.step.Store(&step)
	return nil
}

func checkCrashPoint(step string, n int) error {
	if !slices.Contains(CrashSteps, step) || n < 1 {
		return fmt.Errorf("crash point %s:%d: want one of %s and a count ≥ 1", step, n, strings.Join(CrashSteps, ", "))
	}
	return nil
}

// ParseCrashPoint parses and checks "STEP:N" (as the receiver's
// -test-crash-at flag gives it).
func ParseCrashPoint(s string) (string, int, error) {
	step, count, ok := strings.Cut(s, ":")
	n, err := strconv.Atoi(count)
	if !ok || err != nil {
		return "", 0, fmt.Errorf("crash point %q: want STEP:N", s)
	}
	return step, n, checkCrashPoint(step, n)
}

// crashPoint kills the process if this is the chosen pass through step.
func crashPoint(step string) {
	p := crash.step.Load()
	if p == nil || *p != step || crash.left.Add(-1) != 0 {
		return
	}
	self, err := os.FindProcess(os.Getpid())
	if err == nil {
		_ = self.Kill()
	}
	select {} // the signal is on its way
}
