package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func readRepoFile(f string) (string, error) {
	b, err := os.ReadFile(filepath.Join("..", "..", f))
	return string(b), err
}

// runMarkdown runs the blocks of md with a Runner in a temporary
// directory and returns the results and the runner's output.
func runMarkdown(t *testing.T, md string, docker bool) ([]Result, string) {
	t.Helper()
	blocks, err := Parse("f.md", md)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var out strings.Builder
	r := &Runner{Dir: dir, Work: t.TempDir(), Env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, Timeout: 20 * time.Second,
		Docker: docker, Out: &out, Grace: 2 * time.Second}
	return r.RunFile(blocks), out.String()
}

func statuses(results []Result) string {
	var s []string
	for _, r := range results {
		s = append(s, string(r.Status))
	}
	return strings.Join(s, ",")
}

func TestRunFile(t *testing.T) {
	tests := []struct {
		name string
		md   string
		want string // statuses, comma-separated
		out  string // in the output
	}{
		{"commands pass", "```sh\ntrue\necho hello\n```\n", "ok", "-- ok in"},
		{"a failing command fails the block", "```sh\nfalse\necho not reached\n```\n", "FAILED", "exit status: 1"},
		{"a failing pipe fails it", "```sh\nfalse | cat\n```\n", "FAILED", "exit status: 1"},
		{"its output is shown on failure", "```sh\necho the-cause >&2; exit 3\n```\n", "FAILED", "| the-cause"},
		{"later blocks of the file are not run", "```sh\nexit 1\n```\n\n```sh\ntrue\n```\n", "FAILED,not run", ""},
		{"output is shown, not run", "```text\n$ false\n```\n", "shown", ""},
		{"skip", "<!-- doccheck: skip: needs a cluster -->\n```sh\nfalse\n```\n", "skipped", ""},
		{"needs docker, without it", "<!-- doccheck: needs docker -->\n```sh\nfalse\n```\n", "skipped", ""},
		{"omitted lines are not run", "<!-- doccheck: omit \"false\": not here -->\n```sh\ntrue\nfalse\n```\n", "ok", `without "false": not here`},
		{"exported variables carry over", "```sh\nexport A=1\nB=2\ncd sub 2>/dev/null || { mkdir sub; cd sub; }\n```\n\n```sh\ntest \"$A\" = 1\ntest -z \"${B:-}\"\ntest \"$(basename \"$PWD\")\" = sub\n```\n", "ok,ok", ""},
		{"unset carries over", "```sh\nexport A=1\n```\n\n```sh\nunset A\n```\n\n```sh\ntest -z \"${A:-}\"\n```\n", "ok,ok,ok", ""},
		{"a background command that failed", "```sh\nfalse &\npid=$!\nfor i in $(seq 500); do kill -0 $pid 2>/dev/null || break; sleep 0.01; done\n```\n", "FAILED", "a background command failed: [1]"},
		{"timeout", "<!-- doccheck: timeout 300ms -->\n```sh\nsleep 30\n```\n", "FAILED", "timed out after 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			results, out := runMarkdown(t, tt.md, false)
			if got := statuses(results); got != tt.want {
				t.Errorf("statuses = %s, want %s\n%s", got, tt.want, out)
			}
			if !strings.Contains(out, tt.out) {
				t.Errorf("output does not contain %q:\n%s", tt.out, out)
			}
		})
	}
}

// TestBackgroundProcessesLiveUntilTheEnd checks that a process a block
// starts in the background serves the next block and is killed, with its
// process group, at the end of the file.
func TestBackgroundProcessesLiveUntilTheEnd(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	md := "```sh\nsleep 600 &\necho $! >" + pidFile + "\n```\n\n```sh\nkill -0 \"$(cat " + pidFile + ")\"\n```\n"
	results, out := runMarkdown(t, md, false)
	if got := statuses(results); got != "ok,ok" {
		t.Fatalf("statuses = %s, want ok,ok\n%s", got, out)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// RunFile returned after killing the group; the orphaned sleep is
	// reaped by init, which may take a moment.
	deadline := time.Now().Add(5 * time.Second)
	for running(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if running(pid) {
		t.Errorf("background process %d still runs after the end of the file", pid)
	}
	if !strings.Contains(out, "stopping what f.md:1 left in the background") {
		t.Errorf("output does not say it stopped the background process:\n%s", out)
	}
}

// TestBackgroundProcessThatDied checks that a background process that
// ends before the end of its file, after its block, fails the run.
func TestBackgroundProcessThatDied(t *testing.T) {
	dir := t.TempDir()
	flag, pidFile := filepath.Join(dir, "go"), filepath.Join(dir, "pid")
	// The first block leaves a process that exits with 4 once the second
	// block says so; the second waits until it is gone (or a zombie).
	md := "```sh\n(for i in $(seq 200); do [ -e " + flag + " ] && exit 4; sleep 0.05; done) &\necho $! >" + pidFile + "\n```\n\n" +
		"```sh\ntouch " + flag + "\npid=$(cat " + pidFile + ")\n" +
		"for i in $(seq 200); do s=$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null || echo gone); case $s in Z|gone) break;; esac; sleep 0.05; done\n```\n"
	results, out := runMarkdown(t, md, false)
	if got := statuses(results); got != "ok,ok,FAILED" {
		t.Fatalf("statuses = %s, want ok,ok,FAILED\n%s", got, out)
	}
	if !strings.Contains(results[2].Reason, "ended before the end of f.md") {
		t.Errorf("reason = %q", results[2].Reason)
	}
}

func TestCleanupRunsAfterAFailure(t *testing.T) {
	mark := filepath.Join(t.TempDir(), "cleaned")
	md := "<!-- doccheck: cleanup: touch " + mark + " -->\n```sh\nexit 1\n```\n"
	results, out := runMarkdown(t, md, false)
	if got := statuses(results); got != "FAILED" {
		t.Fatalf("statuses = %s, want FAILED\n%s", got, out)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Errorf("cleanup did not run: %v\n%s", err, out)
	}
}

func TestFreshEnv(t *testing.T) {
	env, dropped := freshEnv([]string{"PATH=/bin", "NACKCAST_PLAINTEXT=true", "MAKEFLAGS=-j2", "MAKELEVEL=1", "HOME=/root", "CI=true"})
	if got, want := strings.Join(env, " "), "PATH=/bin HOME=/root CI=true"; got != want {
		t.Errorf("env = %q, want %q", got, want)
	}
	if got, want := strings.Join(dropped, " "), "NACKCAST_PLAINTEXT MAKEFLAGS MAKELEVEL"; got != want {
		t.Errorf("dropped = %q, want %q", got, want)
	}
}
