package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nackcast/nackcast/pkg/netlab"
)

// proc is a process the lab started in a namespace.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	end  time.Time // when it exited
	log  *os.File
	out  *lockedBuffer // its standard output, when no log file
	in   io.WriteCloser
	// ready gets the first line of standard output that says "ready".
	ready chan struct{}
}

// spawn starts bin with args in h. Its output goes to logPath, or is kept
// in memory when logPath is empty. The process is killed by its PID at
// the end of its run, when ctx ends, or when the lab closes; the kernel
// kills it if the bench dies (Pdeathsig).
func (l *lab) spawn(ctx context.Context, h *netlab.Host, name, logPath, bin string, args ...string) (*proc, error) {
	cmd := h.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), ready: make(chan struct{})}
	var stdout io.Writer
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		p.log = f
		stdout = f
		cmd.Stderr = f
	} else {
		p.out = new(lockedBuffer)
		stdout = p.out
		cmd.Stderr = p.out
	}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p.in = in
	if err := cmd.Start(); err != nil {
		if p.log != nil {
			p.log.Close()
		}
		return nil, fmt.Errorf("start %s in %s: %w", name, h.Name, err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := false
		for sc.Scan() {
			line := sc.Text()
			if !once && strings.TrimSpace(line) == "ready" {
				once = true
				close(p.ready)
			}
			fmt.Fprintln(stdout, line)
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	l.mu.Lock()
	l.procs[p] = true
	l.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		p.end = time.Now()
		pw.Close()
		if p.log != nil {
			p.log.Close()
		}
		l.mu.Lock()
		delete(l.procs, p)
		l.mu.Unlock()
		close(p.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			p.kill()
		case <-p.done:
		}
	}()
	return p, nil
}

// waitReady waits for the process to print "ready".
func (p *proc) waitReady(d time.Duration) bool {
	select {
	case <-p.ready:
		return true
	case <-p.done:
		return false
	case <-time.After(d):
		return false
	}
}

// wait waits for the process to exit, or for ctx.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: %w%s", p.name, p.err, p.tail())
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", p.name, ctx.Err())
	}
}

// kill ends the process by its PID (SIGKILL) and waits for it.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	// The process may exit between the check and the signal; the
	// signal's error says nothing then.
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// tail is the end of the process's output, for error messages.
func (p *proc) tail() string {
	var b []byte
	if p.out != nil {
		b = p.out.Bytes()
	} else if p.log != nil {
		b, _ = os.ReadFile(p.log.Name())
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	if s == "" {
		return ""
	}
	return ": " + s
}

// killAll kills every process the lab started that is still running,
// anchors last.
func (l *lab) killAll() {
	l.mu.Lock()
	var ps []*proc
	for p := range l.procs {
		ps = append(ps, p)
	}
	l.mu.Unlock()
	for _, p := range ps {
		p.in.Close()
		p.kill()
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.b = append(b.b, p...)
	return len(p), nil
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.b...)
}
