package mcast

import (
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const msgTrunc = unix.MSG_TRUNC

// setBuffer asks for a socket buffer of n bytes, past the sysctl limit when
// the process may (SO_RCVBUFFORCE/SO_SNDBUFFORCE as root), and returns what
// the kernel granted.
func setBuffer(conn net.PacketConn, n int, read bool) int {
	force, plain := unix.SO_SNDBUFFORCE, unix.SO_SNDBUF
	if read {
		force, plain = unix.SO_RCVBUFFORCE, unix.SO_RCVBUF
	}
	got := 0
	control(conn, func(fd int) {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, n) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, plain, n)
		}
		got, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, plain)
	})
	return got
}

func control(conn net.PacketConn, f func(fd int)) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	return raw.Control(func(fd uintptr) { f(int(fd)) }) == nil
}

// gsoSupported reports whether the kernel knows UDP_SEGMENT (Linux 4.18+).
func gsoSupported(conn net.PacketConn) bool {
	ok := false
	control(conn, func(fd int) {
		ok = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT, 0) == nil
	})
	return ok
}

// segmentCmsg returns a UDP_SEGMENT control message for segments of seg
// bytes.
func segmentCmsg(seg int) []byte {
	b := make([]byte, unix.CmsgSpace(2))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	putSegmentSize(b, seg)
	return b
}

// putSegmentSize rewrites the segment size of a UDP_SEGMENT message.
func putSegmentSize(b []byte, seg int) {
	binary.NativeEndian.PutUint16(b[unix.CmsgLen(0):], uint16(seg))
}

// gsoRefused reports a send error that means the path cannot segment.
func gsoRefused(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)
}

// enableGRO turns UDP_GRO on (Linux 5.0+) and reports whether it did.
func enableGRO(conn net.PacketConn) bool {
	ok := false
	control(conn, func(fd int) {
		ok = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1) == nil
	})
	return ok
}

// enableDropCount asks the kernel to report, with every datagram, how many
// it dropped on this socket for want of buffer space (SO_RXQ_OVFL).
func enableDropCount(conn net.PacketConn) bool {
	ok := false
	control(conn, func(fd int) {
		ok = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1) == nil
	})
	return ok
}

// oobSpace is room for the UDP_GRO and SO_RXQ_OVFL control messages.
var oobSpace = unix.CmsgSpace(4) + unix.CmsgSpace(4)

// parseOOB returns the GRO segment size (0 when there is none) and the
// socket's drop counter (ok false when there is none) from a datagram's
// control messages. It does not allocate.
func parseOOB(oob []byte) (seg int, drops uint32, ok bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return seg, drops, ok
		}
		data := oob[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO:
			switch {
			case len(data) >= 4:
				seg = int(binary.NativeEndian.Uint32(data))
			case len(data) >= 2:
				seg = int(binary.NativeEndian.Uint16(data))
			}
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && len(data) >= 4:
			drops, ok = binary.NativeEndian.Uint32(data), true
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return seg, drops, ok
}

// queueFill returns the share of the socket's receive buffer in use: the
// memory its queued datagrams take over the buffer size (SO_MEMINFO).
func queueFill(conn net.PacketConn) (float64, bool) {
	var mi [unix.SK_MEMINFO_VARS]uint32
	ok := false
	control(conn, func(fd int) {
		l := uint32(unsafe.Sizeof(mi))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
			uintptr(unsafe.Pointer(&mi[0])), uintptr(unsafe.Pointer(&l)), 0)
		ok = errno == 0 && mi[unix.SK_MEMINFO_RCVBUF] > 0
	})
	if !ok {
		return 0, false
	}
	return float64(mi[unix.SK_MEMINFO_RMEM_ALLOC]) / float64(mi[unix.SK_MEMINFO_RCVBUF]), true
}
