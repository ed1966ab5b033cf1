package wire

import "golang.org/x/net/bpf"

// udpHeaderLen is the length of the UDP header that precedes a packet in
// what a socket filter sees.
const udpHeaderLen = 8

// ControlFilter returns a classic BPF socket filter for a UDP socket that
// accepts only nackcast's control packets (END and ANNOUNCE) and drops
// DATA and PARITY in the kernel: a sender listening to its cloud's group
// hears the other sender at almost no cost. The filter reads the type
// byte of the header, which authentication and sealing leave in clear.
func ControlFilter() ([]bpf.RawInstruction, error) {
	return bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: udpHeaderLen + 3, Size: 1},                   // type
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(TypeEnd), SkipTrue: 1}, // END: accept
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(TypeAnnounce), SkipFalse: 1},
		bpf.RetConstant{Val: 0xFFFF}, // accept (whole datagram)
		bpf.RetConstant{Val: 0},      // drop
	})
}
