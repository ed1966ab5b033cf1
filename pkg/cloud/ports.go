package cloud

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Ports handed to child processes are picked below the kernel's ephemeral
// range. A port taken from the ephemeral range (by listening on :0 and
// closing) can be handed by the kernel to any other socket — another test
// package's listener or an outgoing connection — before the child binds
// it, and the child then fails with "address already in use". Ports below
// the range are never chosen by the kernel on its own, so only an explicit
// bind by someone else can race with us, and picks are random over
// thousands of ports and checked by binding.
var ports struct {
	sync.Mutex
	given map[int]bool // ports this process has already handed out
}

const lowestPort = 20000

// ephemeralLow returns the lowest port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > lowestPort+1000 {
				return n
			}
		}
	}
	return 32768
}

// pickPort returns a port below the ephemeral range that is free right now
// for both TCP and UDP on 127.0.0.1 and has not been handed out before by
// this process.
func pickPort() (int, error) {
	ports.Lock()
	defer ports.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	high := ephemeralLow()
	for range 200 {
		p := lowestPort + rand.IntN(high-lowestPort)
		if ports.given[p] {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp4", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		ports.given[p] = true
		return p, nil
	}
	return 0, errors.New("no free port found below the ephemeral range")
}

// FreeTCPAddr returns a loopback address whose port is free right now and
// outside the kernel's ephemeral range (see pickPort).
func FreeTCPAddr() (string, error) {
	p, err := pickPort()
	if err != nil {
		return "", fmt.Errorf("free tcp address: %w", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// FreeUDPPort returns a UDP port free right now, outside the ephemeral
// range.
func FreeUDPPort() (int, error) {
	return pickPort()
}
