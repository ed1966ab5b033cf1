package mcast

import "flag"

// RegisterFlags binds the transport settings to flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet, receiver bool) {
	fs.StringVar(&c.Interface, "interface", c.Interface, "network interface for multicast (never chosen by the kernel)")
	fs.TextVar(&c.Group, "group", c.Group, "IPv4 multicast group address")
	fs.IntVar(&c.Port, "port", c.Port, "UDP port of the multicast group")
	if receiver {
		fs.IntVar(&c.ReadBuffer, "rcvbuf", c.ReadBuffer, "socket receive buffer to ask for, in bytes")
	} else {
		fs.IntVar(&c.TTL, "ttl", c.TTL, "multicast TTL (1 keeps packets on the link)")
		fs.IntVar(&c.WriteBuffer, "sndbuf", c.WriteBuffer, "socket send buffer to ask for, in bytes")
	}
}
