package receiver

import (
	"flag"
	"strings"

	"github.com/nackcast/nackcast/pkg/app"
	"github.com/nackcast/nackcast/pkg/store"
)

// Default gRPC and metrics addresses.
const (
	DefaultListen  = ":7101"
	DefaultMetrics = ":9103"
)

// NewFlagSet returns the command-line flags of the receiver service, bound
// to cfg and common.
func NewFlagSet(name string, cfg *Config, common *app.Common) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	common.Register(fs, DefaultListen, DefaultMetrics)
	cfg.RegisterFlags(fs)
	return fs
}

// RegisterFlags binds the receiver's settings to flags on fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.ID, "id", c.ID, "receiver identifier in NACKs, logs and status")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory (content and state)")
	fs.Var(app.NewStringList(&c.Channels), "channels", "comma-separated channels to subscribe to at the first start; a CDN manager changes them at runtime (nackctl subscribe/unsubscribe), and the data directory keeps its changes across restarts")
	fs.StringVar(&c.Primary, "primary", c.Primary, "primary sender gRPC address")
	fs.StringVar(&c.Backup, "backup", c.Backup, "backup sender gRPC address (empty: none)")
	fs.DurationVar(&c.NackTimeout, "nack-timeout", c.NackTimeout, "deadline of a NACK to one sender before trying the next")
	fs.DurationVar(&c.CheckpointInterval, "checkpoint", c.CheckpointInterval, "how often partial objects are made durable")
	fs.DurationVar(&c.DiskScanInterval, "disk-scan", c.DiskScanInterval, "how often complete objects are checked on disk")
	fs.DurationVar(&c.ScrubInterval, "scrub-interval", c.ScrubInterval, "how often every complete object is re-read and its SHA-256 checked, damaged ones fetched again (0: only by nackctl verify)")
	fs.Var(app.NewByteSize(&c.ScrubRate), "scrub-rate", "bytes per second a periodic scrub reads at most, e.g. 20M")
	c.Packet.RegisterFlags(fs, false)
	fs.StringVar(&c.ManifestPubKey, "manifest-pubkey", c.ManifestPubKey, "PEM Ed25519 public key: accept only manifests signed by the senders' -manifest-key (for a plaintext control plane)")
	fs.Var(app.NewByteSize(&c.MinFreeBytes), "min-free", "free space in the data directory at which a receiver paused on a full disk resumes, e.g. 64Mi")
	fs.Var(app.NewByteSize(&c.ParityMemory), "parity-memory", "most bytes of parity held in memory for blocks not yet rebuilt, e.g. 16Mi (0: ignore parity)")
	fs.IntVar(&c.MaxOpenPartials, "max-open-partials", c.MaxOpenPartials, "partial files held open at once")
	fs.IntVar(&c.Pullers, "pullers", c.Pullers, "unicast pulls run at once")
	fs.DurationVar(&c.ManifestRefresh, "manifest-refresh", c.ManifestRefresh, "fetch the manifest this often even when no ANNOUNCE asks for it")
	fs.IntVar(&c.MaxManifestObjects, "max-manifest-objects", c.MaxManifestObjects, "refuse a manifest listing more objects than this (manifests are streamed: there is no other size limit)")
	fs.Float64Var(&c.Adopt.MaxRemovalShare, "max-removal", c.Adopt.MaxRemovalShare, "largest share of a channel's objects or bytes a new manifest may remove; a manifest removing more, or emptying the channel, is held back with an alert until confirmed (nackctl confirm-manifest)")
	fs.DurationVar(&c.StuckAfter, "stuck-after", c.StuckAfter, "alert when an incomplete channel makes no progress for this long")
	fs.Float64Var(&c.LossRate, "test-loss", c.LossRate, "TESTING ONLY: drop this fraction of incoming datagrams at random")
	fs.StringVar(&c.CrashAt, "test-crash-at", c.CrashAt, "TESTING ONLY: STEP:N kills the receiver (SIGKILL) the Nth time it reaches STEP of the write and commit path: "+strings.Join(store.CrashSteps, ", "))
	c.Repair.RegisterFlags(fs)
	c.Multicast.RegisterFlags(fs, true)
}
