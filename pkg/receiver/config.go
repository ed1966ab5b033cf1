package receiver

import (
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/pktauth"
	"github.com/nackcast/nackcast/pkg/repair"
	"github.com/nackcast/nackcast/pkg/store"
)

// Config configures a receiver.
type Config struct {
	// ID names the receiver in NACKs, logs and status.
	ID string
	// DataDir holds the channels' content and the receiver's state.
	DataDir string
	// Channels lists the channels to subscribe to.
	Channels []string
	// Primary is the primary sender's gRPC address (host:port).
	Primary string
	// Backup is the backup sender's gRPC address; empty for none.
	Backup string
	// NackTimeout is the deadline of a NACK to one sender (step 615).
	NackTimeout time.Duration
	// Repair holds the Fig. 6 tunables.
	Repair repair.Config
	// Multicast says where the cloud lives.
	Multicast mcast.Config
	// CheckpointInterval is how often partial objects are made durable
	// and their bitmaps persisted.
	CheckpointInterval time.Duration
	// DiskScanInterval is how often complete objects are checked on disk
	// (a file deleted or truncated there is fetched again).
	DiskScanInterval time.Duration
	// ScrubInterval is how often every complete object is re-read and its
	// SHA-256 checked (0: only on request, nackctl verify); ScrubRate caps
	// the bytes per second a periodic scrub reads, to stay low-priority.
	ScrubInterval time.Duration
	ScrubRate     int64
	// MaxOpenPartials caps the partial files held open at once.
	MaxOpenPartials int
	// ParityMemory caps the bytes of parity shards held in memory while
	// their blocks wait for enough shards to be rebuilt.
	ParityMemory int64
	// MinFreeBytes is the free space in the data directory at which a
	// receiver paused on a full disk resumes.
	MinFreeBytes int64
	// Packet holds the cloud's packet keys: with keys, every multicast
	// packet must carry a valid authentication trailer.
	Packet pktauth.Config
	// ManifestPubKey is a PEM Ed25519 public key: with it, a manifest
	// fetched from a sender is installed only if signed by its private
	// key.
	ManifestPubKey string
	// DialOptions are used to dial the senders (transport credentials).
	DialOptions []grpc.DialOption
	// Pullers is the number of unicast pulls run at once.
	Pullers int
	// ManifestRefresh is how often the manifest is fetched again even
	// when no ANNOUNCE asks for it.
	ManifestRefresh time.Duration
	// Adopt limits what a fetched manifest may remove without an
	// operator's confirmation (guarantee S2).
	Adopt repair.AdoptPolicy
	// MaxManifestObjects refuses a manifest listing more objects (a
	// sender's bound on the receiver's memory); manifests are streamed,
	// so there is no other size limit.
	MaxManifestObjects int
	// StuckAfter raises an alert when an incomplete channel makes no
	// progress for this long.
	StuckAfter time.Duration
	// LossRate drops this fraction of incoming datagrams at random before
	// they are parsed. For tests and demonstrations of repair only.
	LossRate float64
	// CrashAt, TESTING ONLY, is "STEP:N": the receiver kills itself the
	// Nth time its store reaches STEP (store.CrashSteps).
	CrashAt string
}

// DefaultConfig returns a receiver's defaults.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		ID:                 host,
		DataDir:            "data",
		Primary:            "127.0.0.1:7001",
		NackTimeout:        time.Second,
		Repair:             repair.DefaultConfig(),
		Multicast:          mcast.DefaultConfig(),
		CheckpointInterval: time.Second,
		DiskScanInterval:   5 * time.Second,
		ScrubInterval:      24 * time.Hour,
		ScrubRate:          20_000_000,
		MaxOpenPartials:    256,
		ParityMemory:       16 << 20,
		MinFreeBytes:       64 << 20,
		Packet:             pktauth.DefaultConfig(),
		Pullers:            2,
		StuckAfter:         2 * time.Minute,
		ManifestRefresh:    30 * time.Second,
		Adopt:              repair.DefaultAdoptPolicy(),
		MaxManifestObjects: 2_000_000,
	}
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.MaxManifestObjects < 1 {
		errs = append(errs, fmt.Errorf("max-manifest-objects %d: must be at least 1", c.MaxManifestObjects))
	}
	if c.ID == "" {
		errs = append(errs, errors.New("id: must not be empty"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data: must not be empty"))
	}
	seen := map[uint32]string{}
	for _, ch := range c.Channels {
		if err := manifest.ValidateChannelName(ch); err != nil {
			errs = append(errs, fmt.Errorf("channels: %w", err))
			continue
		}
		id := manifest.ChannelID(ch)
		if other, dup := seen[id]; dup {
			errs = append(errs, fmt.Errorf("channels %q and %q share channel id %08x (or are the same)", other, ch, id))
		}
		seen[id] = ch
	}
	if c.Primary == "" {
		errs = append(errs, errors.New("primary: the primary sender's address is required"))
	}
	if c.Backup != "" && c.Backup == c.Primary {
		errs = append(errs, errors.New("backup: must differ from primary"))
	}
	if c.NackTimeout <= 0 {
		errs = append(errs, fmt.Errorf("nack-timeout %v: must be positive", c.NackTimeout))
	}
	if c.ScrubInterval < 0 || c.ScrubRate <= 0 {
		errs = append(errs, fmt.Errorf("scrub-interval %v, scrub-rate %d: need an interval ≥ 0 (0: off) and a positive rate", c.ScrubInterval, c.ScrubRate))
	}
	if c.CheckpointInterval <= 0 || c.DiskScanInterval <= 0 {
		errs = append(errs, fmt.Errorf("checkpoint %v, disk-scan %v: intervals must be positive", c.CheckpointInterval, c.DiskScanInterval))
	}
	if err := c.Packet.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Adopt.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MinFreeBytes < 0 {
		errs = append(errs, fmt.Errorf("min-free %d: must not be negative", c.MinFreeBytes))
	}
	if c.ParityMemory < 0 {
		errs = append(errs, fmt.Errorf("parity-memory %d: must not be negative", c.ParityMemory))
	}
	if c.MaxOpenPartials < 1 {
		errs = append(errs, fmt.Errorf("max-open-partials %d: must be at least 1", c.MaxOpenPartials))
	}
	if c.ManifestRefresh <= 0 {
		errs = append(errs, fmt.Errorf("manifest-refresh %v: must be positive", c.ManifestRefresh))
	}
	if c.StuckAfter <= 0 {
		errs = append(errs, fmt.Errorf("stuck-after %v: must be positive", c.StuckAfter))
	}
	if c.Pullers < 1 {
		errs = append(errs, fmt.Errorf("pullers %d: must be at least 1", c.Pullers))
	}
	if c.CrashAt != "" {
		if _, _, err := store.ParseCrashPoint(c.CrashAt); err != nil {
			errs = append(errs, fmt.Errorf("test-crash-at: %w", err))
		}
	}
	if c.LossRate < 0 || c.LossRate >= 1 {
		errs = append(errs, fmt.Errorf("test-loss %v: must be in [0,1)", c.LossRate))
	}
	if err := c.Repair.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Multicast.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
