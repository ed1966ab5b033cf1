package repair

import "flag"

// RegisterFlags binds the receiver's NACK tunables to flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.ScanInterval, "scan-interval", c.ScanInterval, "how often missing objects are NACKed when nothing else prompts it")
	fs.DurationVar(&c.EndDelay, "end-delay", c.EndDelay, "most random delay before a NACK prompted by an END packet")
	fs.Float64Var(&c.Jitter, "jitter", c.Jitter, "fraction by which the NACK interval is varied at random")
	fs.DurationVar(&c.InitialInterval, "nack-initial-interval", c.InitialInterval, "NACK interval followed before the first reply")
	fs.DurationVar(&c.MaxBackoff, "max-backoff", c.MaxBackoff, "longest backoff after NOT_FOUND or an unanswered NACK")
}
