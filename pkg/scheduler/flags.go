package scheduler

import "flag"

// RegisterFlags binds the scheduler's tunables to flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.MaxPasses, "max-passes", c.MaxPasses, "multicast passes per object before NACKs are answered UNICAST")
	fs.IntVar(&c.MaxJobs, "max-jobs", c.MaxJobs, "objects multicast at once")
	fs.DurationVar(&c.Period, "period", c.Period, "multicast period: least time between two passes of an object")
	fs.Float64Var(&c.TargetNackRate, "nack-target-rate", c.TargetNackRate, "NACKs per second the sender aims to receive")
	fs.DurationVar(&c.MinNackInterval, "nack-min-interval", c.MinNackInterval, "shortest NACK interval handed to receivers")
	fs.DurationVar(&c.MaxNackInterval, "nack-max-interval", c.MaxNackInterval, "longest NACK interval handed to receivers")
	fs.DurationVar(&c.MergeWindow, "merge-window", c.MergeWindow, "least wait before a pass asked for by a NACK, so that other receivers' NACKs merge into it")
	fs.IntVar(&c.FEC.Block, "fec-block", c.FEC.Block, "data chunks per Reed-Solomon block (0 with -fec-parity 0: no forward error correction)")
	fs.IntVar(&c.FEC.Parity, "fec-parity", c.FEC.Parity, "parity shards of each block's code, drawn on by repair passes and proactive parity (block + parity ≤ 256)")
	fs.IntVar(&c.FEC.Proactive, "fec-proactive", c.FEC.Proactive, "parity shards per block sent with every first pass, so light loss needs no NACK")
	fs.DurationVar(&c.FirstPassDelay, "first-pass-delay", c.FirstPassDelay, "longest delay before the first pass of a new object, for receivers to fetch the manifest (it starts once as many receivers fetched the new manifest as the previous one, 50 ms after the last fetch)")
}
