package sender

import (
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/nackcast/nackcast/pkg/failover"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/pktauth"
	"github.com/nackcast/nackcast/pkg/scheduler"
	"github.com/nackcast/nackcast/pkg/wire"
)

// Role is a sender's configured role in its cloud.
type Role int

// Roles.
const (
	Primary Role = iota + 1
	Backup
)

func (r Role) String() string {
	switch r {
	case Primary:
		return "primary"
	case Backup:
		return "backup"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// Defaults.
const (
	// DefaultChunkSize fills a 1500-byte MTU: 20 (IP) + 8 (UDP) + 40
	// (header) + 1400 = 1468 bytes, leaving room for an authentication tag.
	DefaultChunkSize = 1400
	// DefaultRate is the default pacing rate in bytes per second.
	DefaultRate = 100_000_000
)

// Config configures a sender.
type Config struct {
	// ID names the sender in replies, logs and status.
	ID string
	// Role is Primary or Backup.
	Role Role
	// OriginDir holds one directory per channel.
	OriginDir string
	// Channels lists the channels to distribute; empty means every
	// subdirectory of OriginDir, rediscovered at each rescan.
	Channels []string
	// ChunkSize is the payload bytes per DATA packet.
	ChunkSize int
	// Rate caps the multicast rate in UDP payload bytes per second, shared
	// by all jobs; 0 means unpaced.
	Rate int64
	// AdaptiveRate lowers the rate below Rate while receivers report
	// datagrams dropped by their full socket buffers, and raises it back
	// when they stop (only with a Rate).
	AdaptiveRate bool
	// AllowEmptyScan lets an origin scan that finds no object replace a
	// channel's non-empty manifest. Off by default: a scan that sees
	// nothing (an unmounted or replaced directory) would otherwise tell
	// every receiver to delete the channel.
	AllowEmptyScan bool
	// RescanInterval is how often the origin is rescanned for new, changed
	// and removed files.
	RescanInterval time.Duration
	// AnnounceInterval is how often each channel's manifest version is
	// announced on the multicast group.
	AnnounceInterval time.Duration
	// EndRepeats is how many times the END of a job is sent, EndSpacing
	// apart, so that one lost END does not delay the receivers' NACKs.
	EndRepeats int
	EndSpacing time.Duration
	// Scheduler holds the Fig. 4 tunables.
	Scheduler scheduler.Config
	// Multicast says where the cloud lives.
	Multicast mcast.Config

	// Peer is the other sender of the cloud: for a primary, the backup it
	// signals at start-up (empty: none); for a backup, the primary whose
	// liveness it checks (required).
	Peer string
	// HealthTimeout is the deadline of one liveness check of the primary
	// (a failed check is retried once before the primary is declared
	// dead), and of one start-up signal to the backup.
	HealthTimeout time.Duration
	// CheckInterval is how often an active backup checks the primary.
	CheckInterval time.Duration
	// CompareInterval is how often a backup compares its channels'
	// manifests with the primary's (guarantee A1); 0 turns it off.
	CompareInterval time.Duration
	// PrimaryGrace is how long, after the backup starts or hands back, it
	// counts a primary that does not answer as alive: a primary starting at
	// the same time, or taking its role back, is given time to get ready
	// before the backup takes over.
	PrimaryGrace time.Duration
	// MaxHandoverWait bounds how long a starting primary waits for an
	// active backup to finish its jobs.
	MaxHandoverWait time.Duration
	// Failover holds the backup's Fig. 5 tunables.
	Failover failover.Config
	// StateDir is where a primary keeps its pass records across restarts:
	// "" means <origin>/.nackcast-sender, "none" turns it off.
	StateDir string
	// MaxPublishSize bounds an object uploaded with PublishObject.
	MaxPublishSize int64
	// Packet authenticates (or seals) every multicast packet under the
	// cloud's packet keys, when keys are configured.
	Packet pktauth.Config
	// ClientRate and ClientBurst limit the NACK and manifest calls of
	// each client (by certificate name under TLS, else by IP address);
	// ClientRate 0 turns the limit off.
	ClientRate  float64
	ClientBurst int
	// ClientPullRate limits each client's Pull calls per second (burst:
	// one second's worth); 0 turns the limit off.
	ClientPullRate float64
	// ManifestKey is a PEM Ed25519 private key that signs every manifest
	// handed out (for receivers on a plaintext control plane); "" signs
	// nothing.
	ManifestKey string
	// DialOptions are used to dial the peer (transport credentials).
	DialOptions []grpc.DialOption
}

// DefaultConfig returns a primary sender's defaults for origin dir.
func DefaultConfig() Config {
	host, _ := os.Hostname()
	return Config{
		ID:               host + "-primary",
		Role:             Primary,
		OriginDir:        "origin",
		ChunkSize:        DefaultChunkSize,
		Rate:             DefaultRate,
		AdaptiveRate:     true,
		RescanInterval:   5 * time.Second,
		AnnounceInterval: time.Second,
		EndRepeats:       2,
		EndSpacing:       20 * time.Millisecond,
		Scheduler:        scheduler.DefaultConfig(),
		Multicast:        mcast.DefaultConfig(),
		HealthTimeout:    300 * time.Millisecond,
		CheckInterval:    time.Second,
		CompareInterval:  5 * time.Second,
		PrimaryGrace:     5 * time.Second,
		MaxHandoverWait:  10 * time.Second,
		Failover:         failover.DefaultConfig(),
		MaxPublishSize:   16 << 30,
		Packet:           pktauth.DefaultConfig(),
		ClientRate:       50,
		ClientBurst:      100,
		ClientPullRate:   1000,
	}
}

// DefaultBackupConfig returns a backup sender's defaults.
func DefaultBackupConfig() Config {
	c := DefaultConfig()
	host, _ := os.Hostname()
	c.ID = host + "-backup"
	c.Role = Backup
	c.Peer = "127.0.0.1:7001"
	return c
}

// Validate reports every invalid field at once.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("id: must not be empty"))
	}
	if c.Role != Primary && c.Role != Backup {
		errs = append(errs, fmt.Errorf("role %v: must be primary or backup", c.Role))
	}
	if c.OriginDir == "" {
		errs = append(errs, errors.New("origin: must name a directory"))
	} else if fi, err := os.Stat(c.OriginDir); err != nil {
		errs = append(errs, fmt.Errorf("origin %s: %w", c.OriginDir, err))
	} else if !fi.IsDir() {
		errs = append(errs, fmt.Errorf("origin %s: not a directory", c.OriginDir))
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
	if c.ChunkSize < manifest.MinChunkSize || c.ChunkSize > wire.MaxPayload {
		errs = append(errs, fmt.Errorf("chunk-size %d: must be in [%d,%d]", c.ChunkSize, manifest.MinChunkSize, wire.MaxPayload))
	} else if extra := wire.ParityFixedLen + c.Packet.Mode.Overhead(); c.ChunkSize > wire.MaxPayload-extra {
		errs = append(errs, fmt.Errorf("chunk-size %d: a PARITY packet and the packet trailer add %d bytes; at most %d", c.ChunkSize, extra, wire.MaxPayload-extra))
	}
	if c.ClientPullRate < 0 {
		errs = append(errs, fmt.Errorf("client-pull-rate %v: must not be negative (0: no limit)", c.ClientPullRate))
	}
	if c.ClientRate < 0 || c.ClientBurst < 1 {
		errs = append(errs, fmt.Errorf("client-rate %v, client-burst %d: need a rate ≥ 0 (0: no limit) and a burst ≥ 1", c.ClientRate, c.ClientBurst))
	}
	if err := c.Packet.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate %d: must not be negative", c.Rate))
	}
	if c.RescanInterval <= 0 || c.AnnounceInterval <= 0 {
		errs = append(errs, fmt.Errorf("rescan %v, announce %v: intervals must be positive", c.RescanInterval, c.AnnounceInterval))
	}
	if c.EndRepeats < 1 || c.EndSpacing < 0 {
		errs = append(errs, fmt.Errorf("end-repeats %d (spacing %v): need at least 1 and no negative spacing", c.EndRepeats, c.EndSpacing))
	}
	if c.Role == Backup && c.Peer == "" {
		errs = append(errs, errors.New("primary: a backup needs the primary's address"))
	}
	if c.Role == Backup && c.Failover.HeardWindow < 2*c.AnnounceInterval {
		errs = append(errs, fmt.Errorf("heard-window %v: must be at least twice the primary's -announce %v (an idle primary is heard only by its ANNOUNCEs)",
			c.Failover.HeardWindow, c.AnnounceInterval))
	}
	if c.CompareInterval < 0 {
		errs = append(errs, fmt.Errorf("compare-interval %v: must not be negative", c.CompareInterval))
	}
	if c.HealthTimeout <= 0 || c.CheckInterval <= 0 || c.MaxHandoverWait < 0 || c.PrimaryGrace < 0 {
		errs = append(errs, fmt.Errorf("health-timeout %v, check-interval %v, max-handover-wait %v, primary-grace %v: timeouts must be positive",
			c.HealthTimeout, c.CheckInterval, c.MaxHandoverWait, c.PrimaryGrace))
	}
	if c.MaxPublishSize < 0 {
		errs = append(errs, fmt.Errorf("max-publish-size %d: must not be negative", c.MaxPublishSize))
	}
	if err := c.Failover.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Scheduler.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Multicast.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
