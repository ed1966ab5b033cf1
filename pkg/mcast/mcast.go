// Package mcast is the UDP multicast transport of the data plane: a sender
// socket bound to an explicit interface with an explicit TTL, and a receiver
// socket that joins the group on an explicit interface, both with batched
// I/O (sendmmsg/recvmmsg through golang.org/x/net/ipv4).
//
// On Linux it uses UDP segmentation offload when the kernel has it: the
// sender hands the kernel one buffer of up to 44 equal-sized datagrams
// with a UDP_SEGMENT control message (GSO), and the receiver gets
// coalesced datagrams with their segment size (UDP_GRO), so that a whole
// batch costs one system call on each side. Elsewhere, or when the kernel
// refuses, it falls back to one datagram per message in batches.
//
// Safety: this package never lets the kernel pick the interface. The
// default interface is "lo", and it refuses group addresses that are not
// IPv4 multicast.
package mcast

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
)

// Defaults.
const (
	DefaultInterface   = "lo"
	DefaultGroup       = "239.77.0.1"
	DefaultPort        = 17001
	DefaultTTL         = 1
	DefaultReadBuffer  = 8 << 20
	DefaultWriteBuffer = 4 << 20
	// MaxBatch is the largest number of datagrams per system call without
	// segmentation offload.
	MaxBatch = 64
	// MaxSegments is the most datagrams in one offloaded send: the kernel
	// accepts 64, and a UDP payload of at most 65507 bytes holds 44 of
	// 1468 bytes.
	MaxSegments = 64
	// MaxSegmentBytes is the largest buffer one offloaded send may carry:
	// the largest UDP payload.
	MaxSegmentBytes = 65507
	// groBuffer is the size of a receive buffer with GRO: one coalesced
	// datagram of up to 64 KiB.
	groBuffer = 65536
	// groMessages is the number of coalesced datagrams read per call.
	groMessages = 16
)

// ErrConfig reports an invalid transport configuration.
var ErrConfig = errors.New("invalid multicast configuration")

// Config says where the multicast cloud lives.
type Config struct {
	// Interface is the name of the network interface to send on and join
	// the group on. Never empty: the kernel must not choose.
	Interface string
	// Group is the IPv4 multicast group address.
	Group netip.Addr
	// Port is the UDP port.
	Port int
	// TTL is the multicast time-to-live; 1 keeps packets on the link.
	TTL int
	// ReadBuffer is the socket receive buffer to ask for, in bytes.
	ReadBuffer int
	// WriteBuffer is the socket send buffer to ask for, in bytes.
	WriteBuffer int
	// NoOffload turns UDP segmentation offload (GSO/GRO) off.
	NoOffload bool
}

// DefaultConfig returns a configuration for group 239.77.0.1:17001 on lo.
func DefaultConfig() Config {
	return Config{
		Interface:   DefaultInterface,
		Group:       netip.MustParseAddr(DefaultGroup),
		Port:        DefaultPort,
		TTL:         DefaultTTL,
		ReadBuffer:  DefaultReadBuffer,
		WriteBuffer: DefaultWriteBuffer,
	}
}

// Validate reports every invalid field at once. It does not look the
// interface up; Open does.
func (c Config) Validate() error {
	var errs []error
	if c.Interface == "" {
		errs = append(errs, errors.New("interface: must be named explicitly"))
	}
	if !c.Group.Is4() || !c.Group.IsMulticast() {
		errs = append(errs, fmt.Errorf("group %v: not an IPv4 multicast address (224.0.0.0/4)", c.Group))
	}
	if c.Port < 1 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("port %d: not in [1,65535]", c.Port))
	}
	if c.TTL < 0 || c.TTL > 255 {
		errs = append(errs, fmt.Errorf("ttl %d: not in [0,255]", c.TTL))
	}
	if c.ReadBuffer < 0 || c.WriteBuffer < 0 {
		errs = append(errs, fmt.Errorf("rcvbuf %d, sndbuf %d: socket buffer sizes must not be negative", c.ReadBuffer, c.WriteBuffer))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// GroupAddr returns the group as a UDP address.
func (c Config) GroupAddr() *net.UDPAddr {
	return &net.UDPAddr{IP: c.Group.AsSlice(), Port: c.Port}
}

func (c Config) iface() (*net.Interface, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(c.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", c.Interface, err)
	}
	if ifi.Flags&net.FlagUp == 0 {
		return nil, fmt.Errorf("interface %q is down", c.Interface)
	}
	if ifi.Flags&(net.FlagMulticast|net.FlagLoopback) == 0 {
		return nil, fmt.Errorf("interface %q does not support multicast", c.Interface)
	}
	return ifi, nil
}

// Sender sends datagrams to the group.
type Sender struct {
	conn net.PacketConn
	pc   *ipv4.PacketConn
	dst  *net.UDPAddr
	msgs []ipv4.Message
	one  [MaxBatch][1][]byte
	gso  bool
	oob  []byte // UDP_SEGMENT control message, rewritten per send
}

// NewSender opens a socket that sends to the group on the configured
// interface with the configured TTL. Multicast loopback is on so that
// receivers on the same host (and on lo) get the packets.
func NewSender(c Config) (*Sender, error) {
	ifi, err := c.iface()
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		return nil, fmt.Errorf("open sender socket: %w", err)
	}
	pc := ipv4.NewPacketConn(conn)
	setup := []struct {
		what string
		err  error
	}{
		{"set multicast interface", pc.SetMulticastInterface(ifi)},
		{"set multicast ttl", pc.SetMulticastTTL(c.TTL)},
		{"set multicast loopback", pc.SetMulticastLoopback(true)},
	}
	for _, s := range setup {
		if s.err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s on %s: %w", s.what, c.Interface, s.err)
		}
	}
	if c.WriteBuffer > 0 {
		setBuffer(conn, c.WriteBuffer, false)
	}
	msgs := make([]ipv4.Message, MaxBatch)
	dst := c.GroupAddr()
	for i := range msgs {
		msgs[i].Addr = dst
	}
	s := &Sender{conn: conn, pc: pc, dst: dst, msgs: msgs}
	if !c.NoOffload && gsoSupported(conn) {
		s.gso = true
		s.oob = segmentCmsg(1)
	}
	return s, nil
}

// GSO reports whether sends use UDP segmentation offload.
func (s *Sender) GSO() bool { return s.gso }

// Send writes datagrams, each the concatenation of its buffers, in batches
// of at most MaxBatch per system call. It blocks while the socket buffer is
// full and returns the number of datagrams sent.
func (s *Sender) Send(dgrams [][][]byte) (int, error) {
	sent := 0
	for sent < len(dgrams) {
		n := min(len(dgrams)-sent, len(s.msgs))
		for i := 0; i < n; i++ {
			s.msgs[i].Buffers = dgrams[sent+i]
			s.msgs[i].OOB = nil
		}
		k, err := s.writeBatch(s.msgs[:n])
		sent += k
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// SendSegments writes buf as consecutive datagrams of seg bytes each (the
// last may be shorter). With offload that is one system call; otherwise
// one batch. buf holds at most MaxSegments datagrams.
func (s *Sender) SendSegments(buf []byte, seg int) error {
	if seg <= 0 || len(buf) == 0 {
		return nil
	}
	count := (len(buf) + seg - 1) / seg
	if count > MaxSegments {
		return fmt.Errorf("%d segments in one send, at most %d", count, MaxSegments)
	}
	if s.gso && count > 1 && len(buf) <= MaxSegmentBytes {
		putSegmentSize(s.oob, seg)
		s.one[0][0] = buf
		s.msgs[0].Buffers = s.one[0][:]
		s.msgs[0].OOB = s.oob
		_, err := s.writeBatch(s.msgs[:1])
		s.msgs[0].OOB = nil
		if err == nil || !gsoRefused(err) {
			return err
		}
		// The path cannot segment (no checksum offload, say): fall back
		// for good.
		s.gso = false
	}
	for i := 0; i < count; i++ {
		end := min((i+1)*seg, len(buf))
		s.one[i][0] = buf[i*seg : end]
		s.msgs[i].Buffers = s.one[i][:]
		s.msgs[i].OOB = nil
	}
	_, err := s.writeBatch(s.msgs[:count])
	return err
}

// writeBatch sends msgs, retrying partial sends and a full interface queue.
func (s *Sender) writeBatch(msgs []ipv4.Message) (int, error) {
	sent := 0
	for sent < len(msgs) {
		k, err := s.pc.WriteBatch(msgs[sent:], 0)
		if k > 0 {
			sent += k
		}
		if err != nil {
			if errors.Is(err, syscall.ENOBUFS) {
				// The interface queue is full: back off briefly.
				time.Sleep(100 * time.Microsecond)
				continue
			}
			return sent, fmt.Errorf("send to %v: %w", s.dst, err)
		}
	}
	return sent, nil
}

// LocalAddr returns the socket's local address.
func (s *Sender) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// Close closes the socket.
func (s *Sender) Close() error { return s.conn.Close() }

// Receiver reads datagrams sent to the group.
type Receiver struct {
	conn    net.PacketConn
	pc      *ipv4.PacketConn
	own     *Batch // Read's
	rcvbuf  int
	maxSize int
	gro     bool
	counted bool   // the kernel reports socket drops
	drops   uint32 // the kernel's latest socket drop count
}

// A Batch holds the datagrams of one read in buffers of its own: they
// stay valid until the batch is read into again, so that a reader can
// hand a batch to another goroutine and read on into the next.
type Batch struct {
	// Datagrams are the datagrams read (coalesced ones split back), nil
	// for one longer than the receiver's maxSize.
	Datagrams [][]byte
	msgs      []ipv4.Message
}

// NewBatch allocates a batch for r's reads: one message per datagram
// read in a call (64), or per coalesced one of up to 64 KiB with GRO (16).
func (r *Receiver) NewBatch() *Batch {
	bufSize, count := r.maxSize, MaxBatch
	if r.gro {
		bufSize, count = max(groBuffer, r.maxSize), groMessages
	}
	b := &Batch{msgs: make([]ipv4.Message, count), Datagrams: make([][]byte, 0, count*MaxSegments)}
	backing := make([]byte, count*bufSize)
	for i := range b.msgs {
		b.msgs[i].Buffers = [][]byte{backing[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]}
		if r.gro || r.counted {
			b.msgs[i].OOB = make([]byte, oobSpace)
		}
	}
	return b
}

// NewReceiver binds the group address and port (several receivers on one
// host share it), joins the group on the configured interface, and asks
// for the configured receive buffer. maxSize is the largest datagram it
// will read whole.
func NewReceiver(c Config, maxSize int) (*Receiver, error) {
	ifi, err := c.iface()
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenPacket("udp4", c.GroupAddr().String())
	if err != nil {
		return nil, fmt.Errorf("bind %v: %w", c.GroupAddr(), err)
	}
	pc := ipv4.NewPacketConn(conn)
	if err := pc.JoinGroup(ifi, &net.UDPAddr{IP: c.Group.AsSlice()}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("join %v on %s: %w", c.Group, c.Interface, err)
	}
	r := &Receiver{conn: conn, pc: pc, maxSize: maxSize}
	if c.ReadBuffer > 0 {
		r.rcvbuf = setBuffer(conn, c.ReadBuffer, true)
	}
	if !c.NoOffload && enableGRO(conn) {
		r.gro = true
	}
	r.counted = enableDropCount(conn)
	r.own = r.NewBatch()
	return r, nil
}

// Drops returns the number of datagrams the kernel dropped on this socket
// because its buffer was full, as of the last Read, and whether the kernel
// reports it.
func (r *Receiver) Drops() (uint32, bool) { return r.drops, r.counted }

// QueueFill returns the share of the socket's receive buffer that queued
// datagrams take now (0 to 1, past 1 briefly: the kernel admits a datagram
// into a buffer not yet full), and whether the kernel reports it. One
// system call: call it every few milliseconds, not per datagram.
func (r *Receiver) QueueFill() (float64, bool) { return queueFill(r.conn) }

// ReadBuffer returns the receive buffer size the kernel granted, in bytes,
// or 0 if it could not be read.
func (r *Receiver) ReadBuffer() int { return r.rcvbuf }

// GRO reports whether the socket receives coalesced datagrams.
func (r *Receiver) GRO() bool { return r.gro }

// Read blocks until at least one datagram arrives and returns the ones
// that have (coalesced ones split back into datagrams). The returned
// slices alias internal buffers and are valid until the next Read. A
// datagram longer than maxSize comes back as a nil slice, for the caller
// to count and drop.
func (r *Receiver) Read() ([][]byte, error) {
	if err := r.ReadInto(r.own); err != nil {
		return nil, err
	}
	return r.own.Datagrams, nil
}

// ReadInto blocks until at least one datagram arrives and reads the ones
// that have into b (made by r.NewBatch), as Read does. b's previous
// datagrams are overwritten. Only one goroutine may read at a time.
func (r *Receiver) ReadInto(b *Batch) error {
	n, err := r.pc.ReadBatch(b.msgs, 0)
	if err != nil {
		b.Datagrams = b.Datagrams[:0]
		return err
	}
	out := b.Datagrams[:0]
	for i := 0; i < n; i++ {
		m := &b.msgs[i]
		d := m.Buffers[0][:m.N]
		if m.Flags&msgTrunc != 0 {
			out = append(out, nil) // truncated: unusable
			continue
		}
		seg := 0
		if m.NN > 0 {
			var drops uint32
			var ok bool
			seg, drops, ok = parseOOB(m.OOB[:m.NN])
			if ok {
				r.drops = drops
			}
			if !r.gro {
				seg = 0
			}
		}
		if seg <= 0 || seg >= len(d) {
			if len(d) > r.maxSize {
				d = nil
			}
			out = append(out, d)
			continue
		}
		for len(d) > 0 {
			one := d[:min(seg, len(d))]
			if len(one) > r.maxSize {
				one = nil
			}
			out = append(out, one)
			d = d[min(seg, len(d)):]
		}
	}
	b.Datagrams = out
	return nil
}

// SetDeadline sets the read deadline.
func (r *Receiver) SetDeadline(t time.Time) error { return r.conn.SetReadDeadline(t) }

// SetFilter attaches a classic BPF socket filter: datagrams it rejects are
// dropped by the kernel before they are queued (and are not counted as
// overflow drops).
func (r *Receiver) SetFilter(prog []bpf.RawInstruction) error { return r.pc.SetBPF(prog) }

// Close closes the socket and unblocks Read.
func (r *Receiver) Close() error { return r.conn.Close() }
