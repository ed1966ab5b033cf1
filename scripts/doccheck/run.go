package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Status is what became of a block.
type Status string

// The statuses of a block.
const (
	OK      Status = "ok"
	Failed  Status = "FAILED"
	Skipped Status = "skipped"
	NotRun  Status = "not run" // an earlier block of its file failed
	Shown   Status = "shown"   // not commands: output, a diagram
)

// Result is what running one block gave.
type Result struct {
	Block  *Block
	Status Status
	Reason string // why it failed, or was skipped
	Took   time.Duration
	Log    string // the file holding its output and its background processes'
}

// Runner runs the blocks of a file in order, as a person would in one
// terminal: each block sees the variables the blocks before it exported
// and the directory they left, and the processes they left in the
// background keep running until the end of the file.
type Runner struct {
	Dir     string        // where the first block starts (the fresh clone)
	Work    string        // scratch directory for scripts, state and logs
	Env     []string      // the environment of the first block
	Timeout time.Duration // a block's time limit unless it says otherwise
	Docker  bool          // a Docker engine answers: run "needs docker" blocks
	// NoDocker is why "needs docker" blocks are skipped when Docker is false.
	NoDocker string
	Out      io.Writer // progress and failures
	Verbose  bool      // print every block's output, not only a failing one's

	// Grace is how long processes get between SIGTERM and SIGKILL.
	Grace time.Duration
}

// group is a process group a block left behind, with the background jobs
// its shell listed when it ended.
type group struct {
	pgid  int
	block *Block
	log   string
	pids  []int
	jobs  string
}

// session is the state carried from one block of a file to the next.
type session struct {
	env      []string
	dir      string
	groups   []group
	cleanups []string
	n        int // blocks run, for file names
}

// RunFile runs the blocks of one file and returns a result per block, and
// more failed results for background processes that died before the end.
func (r *Runner) RunFile(blocks []*Block) []Result {
	s := &session{env: r.Env, dir: r.Dir}
	var results []Result
	failed := false
	for _, b := range blocks {
		switch {
		case b.Skip != "":
			results = append(results, Result{Block: b, Status: Skipped, Reason: b.Skip})
			continue
		case !b.Runs():
			results = append(results, Result{Block: b, Status: Shown})
			continue
		case failed:
			results = append(results, Result{Block: b, Status: NotRun, Reason: "an earlier block of " + b.File + " failed"})
			continue
		case b.NeedDocker && !r.Docker:
			results = append(results, Result{Block: b, Status: Skipped, Reason: r.noDocker()})
			continue
		}
		s.cleanups = append(s.cleanups, b.Cleanup...)
		res := r.runBlock(s, b)
		results = append(results, res)
		failed = res.Status == Failed
	}
	results = append(results, r.finish(s)...)
	return results
}

func (r *Runner) noDocker() string {
	if r.NoDocker != "" {
		return r.NoDocker
	}
	return "needs Docker, and no Docker engine answers here"
}

// runBlock runs one block in its own process group.
func (r *Runner) runBlock(s *session, b *Block) Result {
	s.n++
	base := filepath.Join(r.Work, fmt.Sprintf("%s-%02d-line%d", slug(b.File), s.n, b.Line))
	state := base + ".state"
	if err := os.MkdirAll(state, 0o755); err != nil {
		return Result{Block: b, Status: Failed, Reason: err.Error()}
	}
	script := base + ".sh"
	if err := os.WriteFile(script, []byte(wrap(b, state)), 0o644); err != nil {
		return Result{Block: b, Status: Failed, Reason: err.Error()}
	}
	logPath := base + ".log"
	logf, err := os.Create(logPath)
	if err != nil {
		return Result{Block: b, Status: Failed, Reason: err.Error()}
	}
	defer logf.Close()
	fmt.Fprintf(r.Out, "== %s:%d (%s, %d lines)\n", b.File, b.Line, b.Lang, strings.Count(b.Script(), "\n")+1)
	for _, o := range b.Omit {
		fmt.Fprintf(r.Out, "   without %q: %s\n", o.Prefix, o.Reason)
	}
	timeout := r.Timeout
	if b.Timeout > 0 {
		timeout = b.Timeout
	}
	res := Result{Block: b, Log: logPath}
	start := time.Now()
	reason, pgid := r.runScript(s, script, logf, timeout)
	res.Took = time.Since(start)
	// The state the shell saved on its way out, for the next block.
	if env, err := os.ReadFile(filepath.Join(state, "env")); err == nil {
		s.env = cleanEnv(env)
	}
	if dir, err := os.ReadFile(filepath.Join(state, "cwd")); err == nil && len(bytes.TrimSpace(dir)) > 0 {
		s.dir = string(bytes.TrimSpace(dir))
	}
	jobs, _ := os.ReadFile(filepath.Join(state, "jobs"))
	// Without job control the shell still keeps its background jobs'
	// ends: "Exit 1" is one that failed while the block ran (often the
	// cause of the failure of a command after it).
	for _, line := range strings.Split(string(jobs), "\n") {
		if strings.Contains(line, " Exit ") {
			if reason != "" {
				reason += "; "
			}
			reason += "a background command failed: " + strings.Join(strings.Fields(line), " ")
		}
	}
	if alive(pgid) {
		g := group{pgid: pgid, block: b, log: logPath, jobs: string(jobs)}
		pids, _ := os.ReadFile(filepath.Join(state, "pids"))
		for _, f := range strings.Fields(string(pids)) {
			if pid, err := strconv.Atoi(f); err == nil {
				g.pids = append(g.pids, pid)
			}
		}
		s.groups = append(s.groups, g)
	}
	if reason != "" {
		res.Status, res.Reason = Failed, reason
		fmt.Fprintf(r.Out, "-- FAILED after %s: %s\n", res.Took.Round(100*time.Millisecond), reason)
		r.printLog(logPath, 80)
		return res
	}
	res.Status = OK
	if r.Verbose {
		r.printLog(logPath, 0)
	}
	fmt.Fprintf(r.Out, "-- ok in %s\n", res.Took.Round(100*time.Millisecond))
	return res
}

// runScript runs a block's script and returns why it failed ("" if it
// did not) and its process group.
func (r *Runner) runScript(s *session, script string, logf *os.File, timeout time.Duration) (string, int) {
	cmd := exec.Command("/bin/bash", "--noprofile", "--norc", script)
	cmd.Dir = s.dir
	cmd.Env = s.env
	// Files, not pipes: background processes keep writing to the log
	// after the shell ends, and Wait must not wait for them.
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err.Error(), 0
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return "exit status: " + exitText(err), pgid
		}
		return "", pgid
	case <-timer.C:
		r.stop(pgid)
		return fmt.Sprintf("timed out after %s (its processes were killed; the shell's end: %s)", timeout, exitText(<-done)), pgid
	}
}

// finish checks that the background processes the file's blocks left are
// still running, runs the cleanups, and kills the process groups.
func (r *Runner) finish(s *session) []Result {
	var results []Result
	for _, g := range s.groups {
		for _, pid := range g.pids {
			if !running(pid) {
				reason := fmt.Sprintf("background process %d started by this block ended before the end of %s (its log: %s)", pid, g.block.File, g.log)
				fmt.Fprintf(r.Out, "-- FAILED: %s:%d: %s\n", g.block.File, g.block.Line, reason)
				r.printLog(g.log, 40)
				results = append(results, Result{Block: g.block, Status: Failed, Reason: reason, Log: g.log})
			}
		}
	}
	for _, c := range s.cleanups {
		fmt.Fprintf(r.Out, "== cleanup: %s\n", c)
		cmd := exec.Command("/bin/bash", "--noprofile", "--norc", "-c", c)
		cmd.Dir, cmd.Env = s.dir, s.env
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(r.Out, "-- cleanup failed: %v\n", err)
			continue
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintf(r.Out, "-- cleanup failed (%s):\n%s", exitText(err), indent(out.String()))
			}
		case <-time.After(5 * time.Minute):
			r.stop(cmd.Process.Pid)
			fmt.Fprintf(r.Out, "-- cleanup timed out (%s)\n", exitText(<-done))
		}
	}
	for _, g := range s.groups {
		if alive(g.pgid) {
			fmt.Fprintf(r.Out, "== stopping what %s:%d left in the background (process group %d)\n", g.block.File, g.block.Line, g.pgid)
			r.stop(g.pgid)
		}
	}
	return results
}

// stop sends SIGTERM to a process group, then SIGKILL if it is still
// there after the grace time.
func (r *Runner) stop(pgid int) {
	if pgid <= 0 {
		return
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	grace := r.Grace
	if grace == 0 {
		grace = 10 * time.Second
	}
	deadline := time.Now().Add(grace)
	for alive(pgid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pgid) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// alive reports whether a process group still has a live process.
func alive(pgid int) bool {
	if pgid <= 0 {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, pg, ok := procStat(pid); ok && pg == pgid && live(state) {
			return true
		}
	}
	return false
}

// running reports whether a process still lives. An ended background
// process whose shell has gone may stay a zombie for ever where init does
// not reap orphans: it counts as ended.
func running(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && live(state)
}

func live(state byte) bool { return state != 'Z' && state != 'X' && state != 'x' }

// procStat reads a process's state and process group from /proc.
func procStat(pid int) (state byte, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return 0, 0, false
	}
	pg, err := strconv.Atoi(f[2])
	if err != nil || len(f[0]) != 1 {
		return 0, 0, false
	}
	return f[0][0], pg, true
}

// wrap turns a block into a script that stops at the first failing
// command and saves, on its way out, what the next block starts from.
func wrap(b *Block, state string) string {
	q := shellQuote(state)
	return "# " + b.File + ":" + strconv.Itoa(b.Line) + `
__doccheck_save() {
	__doccheck_rc=$?
	env -0 >` + q + `/env
	pwd >` + q + `/cwd
	jobs -l >` + q + `/jobs 2>&1
	jobs -p >` + q + `/pids 2>&1
	exit "$__doccheck_rc"
}
trap __doccheck_save EXIT
set -eo pipefail
` + b.Script() + "\n"
}

// cleanEnv turns `env -0` output into an environment, without the
// variables each shell sets for itself.
func cleanEnv(b []byte) []string {
	var env []string
	for _, kv := range strings.Split(string(b), "\x00") {
		name, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch name {
		case "PWD", "OLDPWD", "SHLVL", "_":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// printLog prints the last n lines of a log (all with n = 0), indented.
func (r *Runner) printLog(path string, n int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if n > 0 && len(lines) > n {
		fmt.Fprintf(r.Out, "   ... (%d lines before; all in %s)\n", len(lines)-n, path)
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		fmt.Fprintf(r.Out, "   | %s\n", l)
	}
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("   | " + l + "\n")
	}
	return b.String()
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + ws.Signal().String()
		}
		return strconv.Itoa(ee.ExitCode())
	}
	return err.Error()
}

func slug(file string) string {
	return strings.NewReplacer("/", "_", ".", "_").Replace(file)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
