//go:build !linux

package mcast

import "net"

const msgTrunc = 0

func setBuffer(conn net.PacketConn, n int, read bool) int {
	type bufferSetter interface {
		SetReadBuffer(int) error
		SetWriteBuffer(int) error
	}
	if b, ok := conn.(bufferSetter); ok {
		if read {
			_ = b.SetReadBuffer(n)
		} else {
			_ = b.SetWriteBuffer(n)
		}
	}
	return 0
}

func gsoSupported(net.PacketConn) bool         { return false }
func segmentCmsg(int) []byte                   { return nil }
func putSegmentSize([]byte, int)               {}
func gsoRefused(error) bool                    { return true }
func enableGRO(net.PacketConn) bool            { return false }
func enableDropCount(net.PacketConn) bool      { return false }
func parseOOB([]byte) (int, uint32, bool)      { return 0, 0, false }
func queueFill(net.PacketConn) (float64, bool) { return 0, false }

var oobSpace = 0
