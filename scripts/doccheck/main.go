// Command doccheck runs the commands of the documentation as a new user
// would: it clones the repository afresh, extracts every fenced shell
// block (```sh, ```bash, ```shell) of README.md, deploy/README.md and
// deploy/k8s/README.md, and runs them in order, each under a time limit
// and in its own process group, with the processes a file's blocks leave
// in the background killed at the end of that file. An unannotated block
// that fails fails the run.
//
// Blocks of one file run as in one terminal: variables a block exports,
// and the directory it moves to, carry over to the next block (shell
// variables that are not exported do not). Each block runs under
// `set -eo pipefail`, so any failing command fails it, and so does a
// background command that exited with an error, or that ended before the
// end of the file.
//
// HTML comments right before a block annotate it:
//
//	<!-- doccheck: skip: REASON -->          not run (needs a cluster, run by CI elsewhere)
//	<!-- doccheck: needs docker -->          skipped, with the reason printed, without Docker
//	<!-- doccheck: timeout 10m -->           its time limit (default -timeout)
//	<!-- doccheck: omit "make test": REASON -->  run without the lines starting so
//	<!-- doccheck: cleanup: make compose-down -->  run at the end of the file, even on failure
//
// Every fenced block must say its language: ```sh for commands, ```text
// for output, diagrams and transcripts, which are shown, not run. The
// skipped blocks and lines are listed with their reasons at the end.
//
// Usage (make doccheck):
//
//	go run ./scripts/doccheck [-rev HEAD] [-timeout 5m] [-docker auto|yes|no] [-keep] [-v]
//	go run ./scripts/doccheck -list
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// defaultFiles are the documents whose commands a new user follows.
var defaultFiles = []string{"README.md", "deploy/README.md", "deploy/k8s/README.md"}

func main() {
	repo := flag.String("repo", "", "repository to clone (default: the one holding the current directory)")
	rev := flag.String("rev", "HEAD", "revision to check: the committed state, not the work tree")
	files := flag.String("files", strings.Join(defaultFiles, ","), "comma-separated Markdown files, run in this order")
	timeout := flag.Duration("timeout", 5*time.Minute, "time limit of a block without a timeout annotation")
	docker := flag.String("docker", "auto", "run the blocks that need Docker: auto (when docker info answers), yes, no")
	keep := flag.Bool("keep", false, "keep the clone, scripts and logs")
	verbose := flag.Bool("v", false, "print every block's output, not only a failing one's")
	list := flag.Bool("list", false, "list the blocks and what would be done with each; run nothing")
	flag.Parse()
	os.Exit(run(*repo, *rev, strings.Split(*files, ","), *timeout, *docker, *keep, *verbose, *list, os.Stdout))
}

func run(repo, rev string, files []string, timeout time.Duration, docker string, keep, verbose, list bool, out io.Writer) int {
	start := time.Now()
	if repo == "" {
		top, err := git("", "rev-parse", "--show-toplevel")
		if err != nil {
			fmt.Fprintf(out, "doccheck: %v\n", err)
			return 2
		}
		repo = top
	}
	sha, err := git(repo, "rev-parse", "--verify", rev+"^{commit}")
	if err != nil {
		fmt.Fprintf(out, "doccheck: %v\n", err)
		return 2
	}
	if dirty, _ := git(repo, append([]string{"status", "--porcelain", "--"}, files...)...); dirty != "" {
		fmt.Fprintf(out, "doccheck: note: uncommitted changes are not checked (doccheck runs %s in a fresh clone):\n%s\n", short(sha), dirty)
	}

	// Parse every file first: a malformed annotation fails before anything runs.
	var byFile [][]*Block
	parseFailed := false
	for _, f := range files {
		text, err := git(repo, "show", sha+":"+f)
		if err != nil {
			fmt.Fprintf(out, "doccheck: %s: %v\n", f, err)
			parseFailed = true
			continue
		}
		blocks, err := Parse(f, text+"\n")
		if err != nil {
			fmt.Fprintf(out, "doccheck: %v\n", err)
			parseFailed = true
		}
		byFile = append(byFile, blocks)
	}
	if parseFailed {
		return 1
	}

	haveDocker, noDocker := false, "needs Docker, and no Docker engine answers here (docker info fails)"
	switch docker {
	case "yes":
		haveDocker = true
	case "no":
		noDocker = "needs Docker, and -docker no was given"
	case "auto":
		haveDocker = exec.Command("docker", "info").Run() == nil
	default:
		fmt.Fprintf(out, "doccheck: -docker %q: want auto, yes or no\n", docker)
		return 2
	}
	if list {
		for _, blocks := range byFile {
			for _, b := range blocks {
				fmt.Fprintf(out, "%s:%d %s: %s\n", b.File, b.Line, b.Lang, plan(b, haveDocker, noDocker))
			}
		}
		return 0
	}

	work, err := os.MkdirTemp("", "doccheck-")
	if err != nil {
		fmt.Fprintf(out, "doccheck: %v\n", err)
		return 2
	}
	if keep {
		fmt.Fprintf(out, "doccheck: keeping %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	clone := filepath.Join(work, "nackcast")
	if _, err := git("", "clone", "--quiet", repo, clone); err != nil {
		fmt.Fprintf(out, "doccheck: %v\n", err)
		return 2
	}
	if _, err := git(clone, "checkout", "--quiet", "--detach", sha); err != nil {
		fmt.Fprintf(out, "doccheck: %v\n", err)
		return 2
	}
	fmt.Fprintf(out, "doccheck: %s at %s, cloned into %s; Docker: %v\n", repo, short(sha), clone, haveDocker)
	env, dropped := freshEnv(os.Environ())
	if len(dropped) > 0 {
		fmt.Fprintf(out, "doccheck: the blocks start without %s, as in a new terminal\n", strings.Join(dropped, ", "))
	}
	r := &Runner{Dir: clone, Work: work, Env: env, Timeout: timeout, Docker: haveDocker, NoDocker: noDocker, Out: out, Verbose: verbose}
	var results []Result
	for _, blocks := range byFile {
		results = append(results, r.RunFile(blocks)...)
	}
	return summary(out, results, time.Since(start))
}

// plan says what run would do with a block.
func plan(b *Block, docker bool, noDocker string) string {
	switch {
	case b.Skip != "":
		return "skip: " + b.Skip
	case !b.Runs():
		return "shown, not run"
	case b.NeedDocker && !docker:
		return "skip: " + noDocker
	}
	s := "run"
	if b.NeedDocker {
		s += " (needs Docker)"
	}
	for _, o := range b.Omit {
		s += fmt.Sprintf("; without %q: %s", o.Prefix, o.Reason)
	}
	return s
}

// summary prints the skipped and failed blocks and the totals, and
// returns the exit code.
func summary(out io.Writer, results []Result, took time.Duration) int {
	var passed, failed, skipped, shown int
	var skips, fails []string
	for _, res := range results {
		at := fmt.Sprintf("%s:%d", res.Block.File, res.Block.Line)
		switch res.Status {
		case OK:
			passed++
			for _, o := range res.Block.Omit {
				skips = append(skips, fmt.Sprintf("%s without %q: %s", at, o.Prefix, o.Reason))
			}
		case Failed:
			failed++
			fails = append(fails, fmt.Sprintf("%s: %s", at, res.Reason))
		case Skipped:
			skipped++
			skips = append(skips, fmt.Sprintf("%s: %s", at, res.Reason))
		case NotRun:
			skipped++
			fails = append(fails, fmt.Sprintf("%s: not run: %s", at, res.Reason))
		case Shown:
			shown++
		}
	}
	fmt.Fprintln(out)
	if len(skips) > 0 {
		fmt.Fprintln(out, "skipped:")
		for _, s := range skips {
			fmt.Fprintln(out, "  "+s)
		}
	}
	if len(fails) > 0 {
		fmt.Fprintln(out, "failed:")
		for _, s := range fails {
			fmt.Fprintln(out, "  "+s)
		}
	}
	fmt.Fprintf(out, "doccheck: %d blocks run, %d shown only (output, diagrams), in %s\n", passed+failed, shown, took.Round(time.Second))
	fmt.Fprintf(out, "doccheck: %d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 {
		return 1
	}
	return 0
}

// freshEnv is the environment of a new terminal: the current one without
// nackcast's variables and those make passes to its children.
func freshEnv(environ []string) (env, dropped []string) {
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "NACKCAST_") || name == "MAKEFLAGS" || name == "MFLAGS" || name == "MAKELEVEL" || strings.HasPrefix(name, "MAKE_TERM") {
			dropped = append(dropped, name)
			continue
		}
		env = append(env, kv)
	}
	return env, dropped
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	if dir != "" {
		cmd.Dir = dir
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimRight(string(out), "\n"), nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
