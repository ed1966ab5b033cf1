// Package cloud starts and watches a local nackcast cloud made of real
// processes (the sender, backup and receiver binaries) on the loopback
// interface. The demo, the benchmark and the process-level tests share it.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/netlab"
	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/tlsconf"
)

// Proc is one service process of the cloud.
type Proc struct {
	Name    string
	Addr    string // gRPC address
	Metrics string // HTTP address of /metrics
	Log     string // path of its log file
	Args    []string
	Host    *netlab.Host // namespace it runs in; nil for the root namespace

	bin  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	conn *grpc.ClientConn
}

// Cloud is a set of processes sharing a multicast group on lo.
type Cloud struct {
	BinDir string
	Dir    string // working directory: logs, data directories
	Group  string
	Port   int

	// ca, when set, gives every process a certificate of its own and
	// runs the cloud with mutual TLS (EnableTLS); otherwise processes run
	// with -plaintext on loopback.
	ca    *tlsconf.DevCA
	admin *tlsconf.Reloader

	mu    sync.Mutex
	procs []*Proc
}

// CertDir is where EnableTLS keeps the cloud's certificates.
func (c *Cloud) CertDir() string { return filepath.Join(c.Dir, "certs") }

// EnableTLS makes a development CA for the cloud: processes started from
// now on get a certificate named after them (role sender, backup or
// receiver after their binary) and serve mutual TLS; the cloud's own
// connections use an "admin" certificate.
func (c *Cloud) EnableTLS() error {
	ca, err := tlsconf.NewDevCA(24 * time.Hour)
	if err != nil {
		return err
	}
	c.ca = ca
	pem, err := ca.PEM()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.CertDir(), 0o755); err != nil {
		return err
	}
	if err := pem.WriteFiles(filepath.Join(c.CertDir(), "ca.pem"), filepath.Join(c.CertDir(), "ca.key")); err != nil {
		return err
	}
	files, err := c.Issue("admin", "admin")
	if err != nil {
		return err
	}
	c.admin, err = tlsconf.New(files, nil)
	return err
}

// Issue writes a certificate of the cloud's CA for name with role into
// CertDir and returns its files.
func (c *Cloud) Issue(name, role string) (tlsconf.Files, error) {
	if c.ca == nil {
		return tlsconf.Files{}, errors.New("the cloud has no CA: EnableTLS first")
	}
	p, err := c.ca.Issue(name, role, nil, 24*time.Hour)
	if err != nil {
		return tlsconf.Files{}, err
	}
	f := tlsconf.Files{
		CA:   filepath.Join(c.CertDir(), "ca.pem"),
		Cert: filepath.Join(c.CertDir(), name+".pem"),
		Key:  filepath.Join(c.CertDir(), name+".key"),
	}
	return f, p.WriteFiles(f.Cert, f.Key)
}

// DialOptions are the options for connecting to the cloud's processes as
// its administrator.
func (c *Cloud) DialOptions() []grpc.DialOption {
	if c.admin == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(c.admin.ClientCredentials(""))}
}

// New returns a cloud that runs binaries from binDir, keeps its files
// under dir and uses a free multicast port on lo.
func New(binDir, dir string) (*Cloud, error) {
	for _, b := range []string{"sender", "backup", "receiver"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return nil, fmt.Errorf("binary %s missing (run make build): %w", b, err)
		}
	}
	port, err := FreeUDPPort()
	if err != nil {
		return nil, err
	}
	return &Cloud{BinDir: binDir, Dir: dir, Group: "239.77.0.1", Port: port}, nil
}

// Start launches binary bin (sender, backup or receiver) as name with
// args, plus the cloud's multicast settings and a free gRPC address.
func (c *Cloud) Start(name, bin string, args ...string) (*Proc, error) {
	addr, err := FreeTCPAddr()
	if err != nil {
		return nil, err
	}
	return c.StartAt(name, bin, addr, args...)
}

// StartAt is Start with a chosen gRPC address.
func (c *Cloud) StartAt(name, bin, addr string, args ...string) (*Proc, error) {
	return c.start(&Proc{Name: name, Addr: addr, bin: bin}, "lo", args)
}

// StartOn launches bin as name inside lab host h, on its eth0 with gRPC on
// the host's address and port, and metrics on port+2000.
func (c *Cloud) StartOn(h *netlab.Host, name, bin string, port int, args ...string) (*Proc, error) {
	return c.start(&Proc{
		Name:    name,
		Addr:    net.JoinHostPort(h.Addr, strconv.Itoa(port)),
		Metrics: net.JoinHostPort(h.Addr, strconv.Itoa(port+2000)),
		bin:     bin,
		Host:    h,
	}, h.Iface, args)
}

func (c *Cloud) start(p *Proc, iface string, args []string) (*Proc, error) {
	p.Log = filepath.Join(c.Dir, p.Name+".log")
	if p.Metrics == "" {
		m, err := FreeTCPAddr()
		if err != nil {
			return nil, err
		}
		p.Metrics = m
	}
	p.Args = []string{
		"-listen", p.Addr,
		"-metrics-addr", p.Metrics,
		"-interface", iface,
		"-group", c.Group,
		"-port", strconv.Itoa(c.Port),
	}
	if c.ca != nil {
		role := p.bin
		files, err := c.Issue(p.Name, role)
		if err != nil {
			return nil, err
		}
		p.Args = append(p.Args, "-tls-ca", files.CA, "-tls-cert", files.Cert, "-tls-key", files.Key)
	} else {
		p.Args = append(p.Args, "-plaintext")
	}
	p.Args = append(p.Args, args...)
	if err := c.launch(p); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p, nil
}

func (c *Cloud) launch(p *Proc) error {
	logf, err := os.OpenFile(p.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	var cmd *exec.Cmd
	if p.Host != nil {
		cmd = p.Host.Command(filepath.Join(c.BinDir, p.bin), p.Args...)
	} else {
		cmd = exec.Command(filepath.Join(c.BinDir, p.bin), p.Args...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = c.Dir
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd = cmd
	p.done = make(chan struct{})
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if p.conn == nil {
		conn, err := rpc.Dial(p.Addr, c.DialOptions()...)
		if err != nil {
			return err
		}
		p.conn = conn
	}
	return nil
}

// Restart starts a stopped process again with the same arguments and
// address.
func (c *Cloud) Restart(p *Proc) error {
	if p.Running() {
		return fmt.Errorf("%s is still running", p.Name)
	}
	return c.launch(p)
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	if p.done == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Conn returns a gRPC connection to the process.
func (p *Proc) Conn() *grpc.ClientConn { return p.conn }

// Signal sends sig to the process (by PID) without waiting: SIGSTOP and
// SIGCONT pause and resume it.
func (p *Proc) Signal(sig syscall.Signal) error {
	if !p.Running() {
		return fmt.Errorf("%s is not running", p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

// Kill sends sig to the process (by PID) and waits for it to exit.
func (p *Proc) Kill(sig syscall.Signal) error {
	if !p.Running() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit after %v; killed", p.Name, sig)
	}
}

// ExitErr returns the process's exit error once it has exited.
func (p *Proc) ExitErr() error { return p.err }

// exited is the error of a wait on a process that is no longer running:
// its exit error, wrapped (an *exec.ExitError tells how it ended), then
// where its log is and the log's last lines.
func (p *Proc) exited() error {
	err := p.ExitErr()
	if err == nil {
		err = errors.New("exit status 0")
	}
	return fmt.Errorf("%s exited: %w (log: %s)%s", p.Name, err, p.Log, p.LogTail(10))
}

// Close stops every process (SIGTERM, then SIGKILL) and closes connections.
func (c *Cloud) Close() {
	c.mu.Lock()
	procs := c.procs
	c.procs = nil
	c.mu.Unlock()
	for _, p := range procs {
		_ = p.Kill(syscall.SIGTERM)
		if p.conn != nil {
			p.conn.Close()
		}
	}
}

// WaitServing waits until the process reports SERVING on its health
// service.
func (p *Proc) WaitServing(ctx context.Context) error {
	for {
		if !p.Running() {
			return p.exited()
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		ok := Healthy(cctx, p.conn)
		cancel()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not serving: %w (log: %s)", p.Name, ctx.Err(), p.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LogTail returns the last n lines of the process's log, indented, for
// error messages: a CI run keeps the test output but not the temporary
// directory the log lived in.
func (p *Proc) LogTail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n\t" + strings.Join(lines, "\n\t")
}

// ReceiverStatus returns a receiver's status.
func (p *Proc) ReceiverStatus(ctx context.Context) (*pb.ReceiverStatus, error) {
	resp, err := pb.NewReceiverServiceClient(p.conn).GetStatus(ctx, &pb.ReceiverServiceGetStatusRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetStatus(), nil
}

// SenderStatus returns a sender's status.
func (p *Proc) SenderStatus(ctx context.Context) (*pb.SenderStatus, error) {
	resp, err := pb.NewSenderServiceClient(p.conn).GetStatus(ctx, &pb.SenderServiceGetStatusRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetStatus(), nil
}

// Memory returns the process's resident set size now and at its peak
// (VmRSS and VmHWM of /proc/PID/status), in bytes.
func (p *Proc) Memory() (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.PID()))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s in /proc/%d/status: %w", k, p.PID(), err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return rss, peak, nil
}
