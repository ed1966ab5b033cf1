package sender

import (
	"flag"

	"github.com/nackcast/nackcast/pkg/app"
)

// Default gRPC and metrics addresses.
const (
	DefaultListen        = ":7001"
	DefaultBackupListen  = ":7002"
	DefaultMetrics       = ":9101"
	DefaultBackupMetrics = ":9102"
)

// NewFlagSet returns the command-line flags of the sender service, bound to
// cfg and common.
func NewFlagSet(name string, cfg *Config, common *app.Common) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	listen, metrics := DefaultListen, DefaultMetrics
	if cfg.Role == Backup {
		listen, metrics = DefaultBackupListen, DefaultBackupMetrics
	}
	common.Register(fs, listen, metrics)
	cfg.RegisterFlags(fs)
	return fs
}

// RegisterFlags binds the sender's settings to flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.ID, "id", c.ID, "sender identifier in replies, logs and status")
	fs.StringVar(&c.OriginDir, "origin", c.OriginDir, "origin directory: one subdirectory per channel")
	fs.Var(app.NewStringList(&c.Channels), "channels", "comma-separated channels to distribute (default: every subdirectory of the origin)")
	fs.IntVar(&c.ChunkSize, "chunk-size", c.ChunkSize, "payload bytes per DATA packet (40-byte header + chunk must fit the MTU minus 28)")
	fs.Var(app.NewByteSize(&c.Rate), "rate", "multicast pacing rate in bytes/s shared by all jobs, e.g. 100M; 0 = unpaced")
	fs.BoolVar(&c.AdaptiveRate, "adaptive-rate", c.AdaptiveRate, "lower the rate while receivers report socket buffer overruns (the -rate is the ceiling)")
	fs.DurationVar(&c.RescanInterval, "rescan", c.RescanInterval, "how often the origin is rescanned")
	fs.BoolVar(&c.AllowEmptyScan, "allow-empty-scan", c.AllowEmptyScan, "let an origin scan that finds no object empty a channel that had objects (off: the previous manifest is kept and an alert raised)")
	fs.DurationVar(&c.AnnounceInterval, "announce", c.AnnounceInterval, "how often manifests are announced on the group")
	fs.IntVar(&c.EndRepeats, "end-repeats", c.EndRepeats, "times each END packet is sent")
	if c.Role == Backup {
		fs.StringVar(&c.Peer, "primary", c.Peer, "the primary sender's gRPC address, checked before taking over")
		fs.DurationVar(&c.CheckInterval, "check-interval", c.CheckInterval, "how often an active backup checks the primary")
		fs.DurationVar(&c.CompareInterval, "compare-interval", c.CompareInterval, "how often the backup compares its manifests with the primary's and alerts on a lasting difference (0: never)")
		fs.DurationVar(&c.PrimaryGrace, "primary-grace", c.PrimaryGrace, "after the backup starts or hands back, how long a silent primary still counts as alive")
		fs.DurationVar(&c.Failover.AlertWindow, "alert-window", c.Failover.AlertWindow, "a second NACK from a receiver within this window while the primary is alive raises a network alert")
		fs.DurationVar(&c.Failover.HandbackTimeout, "handback-timeout", c.Failover.HandbackTimeout, "after the primary's signal, how long the backup goes on with the jobs in hand before it aborts them (bounds two senders on the wire)")
		fs.DurationVar(&c.Failover.HeardWindow, "heard-window", c.Failover.HeardWindow, "a primary heard on the group counts as alive this long, whatever its health check says")
	} else {
		fs.StringVar(&c.Peer, "backup", c.Peer, "the backup sender's gRPC address, signalled at start-up (empty: none)")
		fs.DurationVar(&c.MaxHandoverWait, "max-handover-wait", c.MaxHandoverWait, "longest wait at start-up for an active backup to finish its jobs")
		fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "where pass records are kept across restarts (empty: <origin>/.nackcast-sender; none: off)")
	}
	fs.Var(app.NewByteSize(&c.MaxPublishSize), "max-publish-size", "largest object accepted by PublishObject, e.g. 16Gi")
	fs.DurationVar(&c.HealthTimeout, "health-timeout", c.HealthTimeout, "deadline of one liveness check or start-up signal to the other sender")
	fs.Float64Var(&c.ClientRate, "client-rate", c.ClientRate, "NACK and manifest calls per second allowed to each client (by certificate name under TLS, else by IP address); 0: no limit")
	fs.IntVar(&c.ClientBurst, "client-burst", c.ClientBurst, "calls a client may make at once above -client-rate")
	fs.Float64Var(&c.ClientPullRate, "client-pull-rate", c.ClientPullRate, "unicast Pull calls per second allowed to each client (one per object pulled; burst: one second's worth); 0: no limit")
	c.Packet.RegisterFlags(fs, true)
	fs.StringVar(&c.ManifestKey, "manifest-key", c.ManifestKey, "PEM Ed25519 private key (mode 0600) that signs the manifests handed out, for receivers that check them with -manifest-pubkey (nackctl manifest-key makes a pair)")
	c.Scheduler.RegisterFlags(fs)
	c.Multicast.RegisterFlags(fs, false)
}
