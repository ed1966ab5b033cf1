// Package netlab builds a small network of hosts on one machine for tests
// and benchmarks: one network namespace per host, each with an eth0 veth
// into a Linux bridge that lives in its own namespace, addresses in
// 198.18.0.0/24 (reserved for benchmarking). Multicast floods the bridge,
// as on a real LAN. nftables rules inside a host's namespace give random
// loss or cut the host off. It needs root, iproute2 and nftables.
//
// The creating process reaches the hosts' TCP services through one more
// veth, 198.18.0.254 in its own namespace; the bridge drops multicast
// towards that port, so no multicast leaves the lab's namespaces. Only one
// lab can exist on a machine at a time.
//
// Every namespace and link it creates carries a name with the creating
// process's id; Close deletes them by name, and CleanStale removes those of
// processes that no longer exist.
package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// namePrefix starts every namespace netlab creates.
const namePrefix = "ncl"

// Available reports why a lab cannot be built here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (install iproute2 and nftables)", tool)
		}
	}
	return nil
}

// Host is one namespace of the lab.
type Host struct {
	Name  string // namespace name
	Addr  string // IPv4 address on eth0
	Iface string // "eth0"
	lab   *Lab
}

// Lab is a bridge and its hosts.
type Lab struct {
	prefix string
	bridge string // namespace holding br0
	mgmt   string // veth in the creator's namespace
	Hosts  []*Host
}

// MgmtAddr is the creating process's address on the lab network.
const MgmtAddr = "198.18.0.254"

// New creates a lab of n hosts (198.18.0.1 to 198.18.0.n) with the given
// MTU (0 for 1500).
func New(n, mtu int) (*Lab, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if n < 1 || n > 200 {
		return nil, fmt.Errorf("hosts %d: want 1 to 200", n)
	}
	if mtu == 0 {
		mtu = 1500
	}
	CleanStale()
	l := &Lab{prefix: fmt.Sprintf("%s%d", namePrefix, os.Getpid())}
	l.bridge = l.prefix + "-br"
	if err := l.setup(n, mtu); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) setup(n, mtu int) error {
	if err := run("ip", "netns", "add", l.bridge); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", l.bridge, "link", "add", "br0", "type", "bridge"},
		{"-n", l.bridge, "link", "set", "br0", "mtu", strconv.Itoa(mtu), "up"},
		{"-n", l.bridge, "link", "set", "lo", "up"},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	l.mgmt = l.prefix + "m"
	mgmtPeer := l.prefix + "mb"
	for _, args := range [][]string{
		{"link", "add", l.mgmt, "mtu", strconv.Itoa(mtu), "type", "veth", "peer", "name", mgmtPeer, "netns", l.bridge},
		{"-n", l.bridge, "link", "set", mgmtPeer, "master", "br0", "up"},
		{"addr", "add", MgmtAddr + "/24", "dev", l.mgmt},
		{"link", "set", l.mgmt, "up"},
	} {
		if err := run("ip", args...); err != nil {
			return err
		}
	}
	guard := exec.Command("ip", "netns", "exec", l.bridge, "nft", "-f", "-")
	guard.Stdin = strings.NewReader(fmt.Sprintf(`
table bridge nackcast_guard {
	chain forward {
		type filter hook forward priority 0; policy accept;
		oifname "%s" meta pkttype { multicast, broadcast } drop
	}
}
`, mgmtPeer))
	if out, err := guard.CombinedOutput(); err != nil {
		return fmt.Errorf("nft guard in %s: %w: %s", l.bridge, err, out)
	}
	for i := 1; i <= n; i++ {
		h := &Host{Name: fmt.Sprintf("%s-h%d", l.prefix, i), Addr: fmt.Sprintf("198.18.0.%d", i), Iface: "eth0", lab: l}
		veth := fmt.Sprintf("%sv%d", l.prefix, i)
		if len(veth) > 15 {
			veth = veth[len(veth)-15:]
		}
		if err := run("ip", "netns", "add", h.Name); err != nil {
			return err
		}
		l.Hosts = append(l.Hosts, h)
		for _, args := range [][]string{
			{"link", "add", veth, "mtu", strconv.Itoa(mtu), "type", "veth", "peer", "name", "eth0", "netns", h.Name},
			{"link", "set", veth, "netns", l.bridge},
			{"-n", l.bridge, "link", "set", veth, "master", "br0", "up"},
			{"-n", h.Name, "link", "set", "eth0", "mtu", strconv.Itoa(mtu)},
			{"-n", h.Name, "addr", "add", h.Addr + "/24", "brd", "+", "dev", "eth0"},
			{"-n", h.Name, "link", "set", "eth0", "up"},
			{"-n", h.Name, "link", "set", "lo", "up"},
		} {
			if err := run("ip", args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close deletes the lab's namespaces (and with them its links).
func (l *Lab) Close() error {
	var errs []error
	for _, h := range l.Hosts {
		if err := run("ip", "netns", "del", h.Name); err != nil {
			errs = append(errs, err)
		}
	}
	l.Hosts = nil
	if l.mgmt != "" {
		_ = run("ip", "link", "del", l.mgmt) // gone already when the bridge's side went
	}
	if err := run("ip", "netns", "del", l.bridge); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CleanStale deletes namespaces left by labs whose process is gone.
func CleanStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || !strings.HasPrefix(fields[0], namePrefix) {
			continue
		}
		name := fields[0]
		pidStr := strings.TrimPrefix(name, namePrefix)
		if i := strings.IndexByte(pidStr, '-'); i > 0 {
			pidStr = pidStr[:i]
		}
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // its process is alive
		}
		_ = run("ip", "netns", "del", name)
		_ = run("ip", "link", "del", fmt.Sprintf("%s%dm", namePrefix, pid))
	}
}

// Command returns a command that runs bin with args inside the host's
// namespace. ip netns exec execs the program, so the command's PID is the
// program's.
func (h *Host) Command(bin string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Name, bin}, args...)...)
}

// Nft loads an nftables ruleset into the host's namespace.
func (h *Host) Nft(ruleset string) error {
	cmd := exec.Command("ip", "netns", "exec", h.Name, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft in %s: %w: %s", h.Name, err, out.String())
	}
	return nil
}

// Loss makes the host drop the given fraction of incoming UDP datagrams at
// random (nftables numgen), replacing earlier loss rules.
// A fraction of 1 or more drops every datagram: the host's multicast is
// cut while its TCP (gRPC) still works.
func (h *Host) Loss(fraction float64) error {
	pct := int(fraction*100 + 0.5)
	rule := fmt.Sprintf("meta l4proto udp numgen random mod 100 < %d counter drop", pct)
	if pct >= 100 {
		rule = "meta l4proto udp counter drop"
	}
	return h.Nft(fmt.Sprintf(`
table inet nackcast_loss
delete table inet nackcast_loss
table inet nackcast_loss {
	chain in {
		type filter hook input priority 0; policy accept;
		%s
	}
}
`, rule))
}

// BlockTCP makes the host silently drop its TCP traffic to addr:port, as
// a broken path to that service would (no reset, the caller times out).
func (h *Host) BlockTCP(addr string, port int) error {
	return h.Nft(fmt.Sprintf(`
table inet nackcast_block
delete table inet nackcast_block
table inet nackcast_block {
	chain out {
		type filter hook output priority 0; policy accept;
		ip daddr %s tcp dport %d counter drop
	}
}
`, addr, port))
}

// Isolate makes the host silently drop everything it sends and receives on
// eth0, as if it had lost power: peers see no reset, only silence.
func (h *Host) Isolate() error {
	return h.Nft(`
table inet nackcast_isolate
delete table inet nackcast_isolate
table inet nackcast_isolate {
	chain in {
		type filter hook input priority -10; policy accept;
		iifname "eth0" drop
	}
	chain out {
		type filter hook output priority -10; policy accept;
		oifname "eth0" drop
	}
}
`)
}

// Restore removes the Isolate, BlockTCP and Loss rules.
func (h *Host) Restore() error {
	var errs []error
	for _, t := range []string{"nackcast_isolate", "nackcast_block", "nackcast_loss"} {
		if err := h.Nft("table inet " + t + "\ndelete table inet " + t + "\n"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// EnvVar turns on the tests that build labs; `make test-netns` sets it.
const EnvVar = "NACKCAST_NETNS"

// Require skips a test unless labs are asked for (EnvVar=1), and fails it
// when they are asked for but cannot be built here.
func Require(t interface {
	Helper()
	Skip(...any)
	Fatal(...any)
}) {
	t.Helper()
	if os.Getenv(EnvVar) != "1" {
		t.Skip("network namespace test: run `make test-netns` as root (sets " + EnvVar + "=1)")
	}
	if err := Available(); err != nil {
		t.Fatal("network namespace tests asked for but unavailable:", err)
	}
}
