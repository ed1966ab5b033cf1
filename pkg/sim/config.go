package sim

import (
	"time"

	"github.com/nackcast/nackcast/pkg/failover"
	"github.com/nackcast/nackcast/pkg/repair"
	"github.com/nackcast/nackcast/pkg/scheduler"
)

// Config describes one simulated cloud: the real cores' configurations,
// the glue's timers (mirroring pkg/sender and pkg/receiver defaults), the
// network and the fault plan.
type Config struct {
	// Seed drives every random choice of the run.
	Seed uint64
	// Receivers is the number of receivers; Backup adds a backup sender.
	Receivers int
	Backup    bool

	// The real cores' configurations.
	Scheduler scheduler.Config
	Repair    repair.Config
	Adopt     repair.AdoptPolicy
	Failover  failover.Config

	// Sender glue (pkg/sender Config).
	ChunkSize        uint32
	BackupChunkSize  uint32  // 0: ChunkSize
	Rate             float64 // bytes per virtual second, shared by all jobs
	Batch            int     // DATA packets per paced send
	AnnounceInterval time.Duration
	RescanInterval   time.Duration
	EndRepeats       int
	EndSpacing       time.Duration
	HealthTimeout    time.Duration
	CheckInterval    time.Duration
	PrimaryGrace     time.Duration
	MaxHandoverWait  time.Duration
	AllowEmptyScan   bool
	// CompareInterval is the backup's A1 comparison period (-compare-
	// interval; 0 turns it off).
	CompareInterval time.Duration

	// Receiver glue (pkg/receiver Config).
	NackTimeout        time.Duration
	ManifestRefresh    time.Duration
	CheckpointInterval time.Duration
	// CommitDelay is the verify, fsync and rename of a full object.
	CommitDelay time.Duration
	// PullRate is the unicast pull throughput, bytes per virtual second.
	PullRate float64
	// Keepalive is how long a gRPC stream whose peer went silent takes
	// to fail (pkg/rpc: client keepalive 10 s + 5 s).
	Keepalive time.Duration
	// ConfirmAfter is when the simulated operator confirms a held-back
	// manifest; negative: never.
	ConfirmAfter time.Duration

	// Network.
	DataLatency, DataJitter time.Duration
	CtlLatency, CtlJitter   time.Duration
	// Loss is each receiver's random loss; BurstLoss the chance per packet
	// that a burst of BurstLen lost packets starts.
	Loss      []float64
	BurstLoss float64
	BurstLen  int
	// SockBuffer is a receiver's socket buffer in packets.
	SockBuffer int

	// Phases: faults (drawn from the seed when Faults is set) during
	// FaultPhase, then HealPhase with every fault removed. HealPhase 0
	// means the L1 bound.
	FaultPhase time.Duration
	HealPhase  time.Duration
	Faults     bool
	// Forge injects forged packets of random epochs; ForgeKnown makes them
	// carry the ids and versions of real objects (an attacker who fetched
	// the manifest, without packet authentication).
	Forge      bool
	ForgeKnown bool

	// Content: the channel's objects at the start, path → size.
	Objects map[string]uint64
	// BackupOrigin, when set, is the backup's origin at the start
	// (path → content generation; see originFile), else the primary's.
	BackupDiverge *Divergence

	// SenderClockBack lets the random fault plan jump senders' clocks
	// back as well as forward (receivers' clocks jump both ways always).
	// On in random seeds since 85318d9 (TestScenarioSenderClockJumpBack).
	SenderClockBack bool

	// LightReceivers makes every receiver a lightweight one, as
	// scripts/implosion's: it does not join the group and pulls nothing,
	// so its objects stay missing and it NACKs them for ever, through the
	// real glue (manifest fetch, nackOnce, sendNack) and repair.Core.
	LightReceivers bool
	// StartSpread starts the receivers at random times over its span
	// instead of all at virtual time zero.
	StartSpread time.Duration
	// L2Check makes L2 an invariant: once every receiver has followed
	// one interval from the active sender, the NACK arrival rate there,
	// averaged over l2Window (the time 100 NACKs take at the target), is
	// at most twice TargetNackRate.
	L2Check bool

	// R1Bound is the most sender epochs a receiver may keep state for:
	// repair.MaxEpochs.
	R1Bound int
}

// Divergence describes a backup origin that differs from the primary's.
type Divergence struct {
	Changed, Missing, Extra []string
}

// DefaultConfig returns a small cloud with the services' default
// tunables.
func DefaultConfig(seed uint64) Config {
	sc := scheduler.DefaultConfig()
	sc.FEC = scheduler.FEC{} // the simulation repairs with chunks
	return Config{
		Seed:               seed,
		Receivers:          4,
		Backup:             true,
		Scheduler:          sc,
		Repair:             repair.DefaultConfig(),
		Adopt:              repair.DefaultAdoptPolicy(),
		Failover:           failover.DefaultConfig(),
		ChunkSize:          1400,
		Rate:               4 << 20,
		Batch:              32,
		AnnounceInterval:   time.Second,
		RescanInterval:     5 * time.Second,
		EndRepeats:         3,
		EndSpacing:         20 * time.Millisecond,
		HealthTimeout:      300 * time.Millisecond,
		CheckInterval:      time.Second,
		PrimaryGrace:       5 * time.Second,
		MaxHandoverWait:    10 * time.Second,
		CompareInterval:    5 * time.Second,
		NackTimeout:        time.Second,
		ManifestRefresh:    30 * time.Second,
		CheckpointInterval: time.Second,
		CommitDelay:        5 * time.Millisecond,
		PullRate:           20 << 20,
		Keepalive:          15 * time.Second,
		ConfirmAfter:       20 * time.Second,
		DataLatency:        time.Millisecond,
		DataJitter:         2 * time.Millisecond,
		CtlLatency:         time.Millisecond,
		CtlJitter:          2 * time.Millisecond,
		BurstLen:           20,
		SockBuffer:         6000,
		FaultPhase:         30 * time.Second,
		Objects:            map[string]uint64{"a.bin": 100_000, "b.bin": 250_000, "c/d.bin": 30_000},
		R1Bound:            repair.MaxEpochs,
	}
}

// TotalBytes is the size of the channel at the start.
func (c *Config) TotalBytes() uint64 {
	var n uint64
	for _, s := range c.Objects {
		n += s
	}
	return n
}

// secs converts bytes at a rate to a duration.
func secs(bytes uint64, rate float64) time.Duration {
	return time.Duration(float64(bytes) / rate * float64(time.Second))
}

// L1Bound is the longest a receiver that reaches a sender over gRPC may
// take, from the start of the heal phase, to hold every object of the
// active sender's manifest, verified. maxBytes bounds the channel's size
// during the run. The terms, in the order things happen:
//
//   - start-up: a primary restarted at the heal waits for the backup's
//     hand-back at most MaxHandoverWait (plus one Reclaim call), then
//     scans; an origin changed last at the end of the faults is seen
//     within RescanInterval;
//   - the receiver's next NACK: a failure backoff and a NOT_FOUND backoff
//     carried over from the faults (each at most MaxBackoff, Resync bounds
//     them after clock jumps), a manifest fetch retry backoff (at most 5 s)
//     and deadline (5 × NackTimeout), a scan interval, and the NACK
//     interval the sender hands out (at most twice receivers/target,
//     jittered);
//   - MaxPasses multicast passes, each: first-pass delay, merge window,
//     period, horizon grace, the whole channel at Rate (every object may
//     share the pacer), then the END and a NACK cycle (scan interval, two
//     NACK timeouts);
//   - the unicast pull of the whole channel at PullRate, plus a stream
//     hung on a healed partition failing after Keepalive and one more
//     NACK cycle;
//   - the operator's confirmation of a held-back manifest (ConfirmAfter).
func (c *Config) L1Bound(maxBytes uint64) time.Duration {
	startup := c.MaxHandoverWait + 2*c.HealthTimeout + 100*time.Millisecond + c.RescanInterval
	nackIv := max(c.Scheduler.MinNackInterval, time.Duration(2*float64(c.Receivers+1)/c.Scheduler.TargetNackRate*float64(time.Second)))
	nackIv = time.Duration(float64(nackIv) * (1 + c.Repair.Jitter))
	cycle := c.Repair.ScanInterval + 2*c.NackTimeout + nackIv
	next := 2*c.Repair.MaxBackoff + 5*time.Second + 5*c.NackTimeout + c.AnnounceInterval + cycle
	pass := c.Scheduler.FirstPassDelay + c.Scheduler.MergeWindow + c.Scheduler.Period + c.Scheduler.Period + c.Scheduler.MergeWindow +
		secs(maxBytes, c.Rate) + time.Duration(c.EndRepeats)*c.EndSpacing + cycle
	pull := secs(maxBytes, c.PullRate) + 4*(c.CtlLatency+c.CtlJitter) + c.Keepalive + cycle
	b := startup + next + time.Duration(c.Scheduler.MaxPasses)*pass + pull
	if c.ConfirmAfter > 0 {
		b += c.ConfirmAfter + time.Second
	}
	return b
}

// A1Bound is the longest the primary and the backup may serve different
// manifests, both up and reachable, before the backup alerts: the first
// comparison within CompareInterval, the divergence grace (2 ×
// RescanInterval + CompareInterval, as sender.New sets it), the
// comparison that finds the grace passed within one more CompareInterval,
// the ListChannels and GetManifest calls (each 5 × HealthTimeout at most)
// and one second of slack.
func (c *Config) A1Bound() time.Duration {
	grace := 2*c.RescanInterval + c.CompareInterval
	return 2*c.CompareInterval + grace + 10*c.HealthTimeout + time.Second
}

// S3Bound is the longest two senders may multicast DATA at once while the
// backup can observe the primary: HandbackTimeout plus the detection
// slack. Senders hear each other's END and ANNOUNCE only (the listener's
// socket filter): a backup hears a multicasting primary within one
// AnnounceInterval and a data-plane delay, and stands by at once
// (HeardPrimary); the primary, hearing the backup, signals it (Reclaim).
// With its multicast cut the backup finds the primary by its periodic
// check: at most CheckInterval, two health checks of HealthTimeout, a
// check result reused for 100 ms, and the Reclaim's control-plane round
// trips, after which it hands back for HandbackTimeout (handbackTick).
// The slack is the slower path, plus one paced batch of each sender.
func (c *Config) S3Bound() time.Duration {
	batch := secs(uint64(c.Batch)*uint64(max(c.ChunkSize, c.BackupChunkSize)+40), c.Rate)
	dataPath := c.AnnounceInterval + c.DataLatency + c.DataJitter + batch
	ctlPath := c.CheckInterval + 2*c.HealthTimeout + 100*time.Millisecond + 4*(c.CtlLatency+c.CtlJitter) + c.Failover.HandbackTimeout
	return max(dataPath, ctlPath) + 2*batch
}
