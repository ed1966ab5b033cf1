// Package sim is a deterministic simulator of the nackcast protocol, in
// the style of etcd-io/raft's rafttest and of FoundationDB's and
// TigerBeetle's simulation testing: one virtual clock, one event queue,
// one seeded random source (math/rand/v2 PCG) that drives everything, no
// goroutines, no sockets, no wall clock. The same seed gives the same run,
// event for event (TestDeterministic compares trace hashes).
//
// # What is real
//
// The protocol cores are imported, never copied:
//
//   - pkg/scheduler, the sender's Figure 4: New, SetObjects, Nack with
//     NackInfo (follow, horizon), Next, Done, Abort, Wake, Restore,
//     ReplyInterval (NACK replies), NackInterval, Load;
//   - pkg/repair, the receiver's Figure 6: New, Plan, OnReply, OnFailure,
//     OnEnd, Kick, Due, Resync, Forget, ShouldFailover; the manifest
//     adoption rule AdoptPolicy.Adopt (Install, Ignore, HoldBack) with
//     the sender's epoch in Source and Held; the bounded per-epoch table
//     Epochs (MaxEpochs);
//   - pkg/failover, the backup's Figure 5: NewBackup, Nack,
//     PrimaryChecked, Reclaim, Tick, HeardPrimary, PeriodicCheck,
//     JobsDrained, Startup for the primary's start-up signal, and
//     Divergence for the backup's comparison with the primary (A1);
//   - pkg/manifest: objects and manifests are built with NewObject and New,
//     so versions cover the content digest and the chunk size.
//
// # What is modelled
//
// The glue around the cores mirrors pkg/sender (sender.go, transmit.go,
// failover.go, listen.go, compare.go, service.go) and pkg/receiver
// (nack.go, data.go, receiver.go, held.go) function by function, as of
// 85318d9; each simulated function names the real one it follows. Among
// them: both senders hear the group, END and ANNOUNCE only
// (listenGroup): a backup that hears the primary calls HeardPrimary and
// its transmitter drops the jobs in hand (dropIfStandingBy); a primary
// that hears a backup sends it Reclaim, at most every 200 ms; a Reclaim or
// periodic check that moves the backup from Active to HandingBack arms
// handbackTick (failover.Tick) after HandbackTimeout; on failover.Alert
// the backup answers UNICAST or NOT_FOUND with PrimaryActive set
// (unicastReplies) and the receiver acts on it; the transmitter's idle
// wakes for pooled jobs only when active; a backup compares its manifest
// with the primary's every CompareInterval (compareLoop) and alerts; a
// receiver adopting another sender's manifest that removes or changes
// objects alerts (senderChanged); a sender stamps a channel's manifests
// in order when its clock goes back (apply); manifest refetches asked by
// ANNOUNCE or NACK replies are spaced by 100 ms (minRefetchGap). Not
// modelled: packet keys (forged packets reach senders and receivers, as
// in a cloud without them), FEC, adaptive rate, signed manifests, a
// manifest too large for one message (the simulated sender never refuses
// GetManifest with FailedPrecondition).
//
// LightReceivers makes every receiver a lightweight one, as
// scripts/implosion's: it joins no group and pulls nothing, so it NACKs
// its missing objects for ever, through the same glue and repair.Core;
// the L2 clouds use hundreds of them.
//
// Bytes are not moved: an origin file is a digest and a size; a chunk
// carries a tag of the digest and chunk size it was cut from; a receiver's
// "SHA-256 verification" checks that every chunk of a full partial has the
// object's tag. Disks (final files, partial files with a bitmap persisted
// at each checkpoint, the persisted manifest) survive a receiver's
// restart; memory does not. A sender keeps its origin and, as a primary,
// its pass records across restarts, and restarts with a new epoch.
//
// The data plane is an in-memory multicast of DATA, END and ANNOUNCE
// packets with the pkg/wire fields the protocol uses (epoch, backup flag,
// object, version, chunk, job sequence number), paced at Rate bytes per
// virtual second in batches, per-receiver random and burst loss, a delay
// that keeps each link in order, and a bounded socket buffer that fills
// while its process is paused. The control plane (NACK, GetManifest,
// Pull, health check, Reclaim) is a set of calls with latency and a
// deadline: Unavailable at once from a dead peer, DeadlineExceeded from a
// partitioned, paused or slow one; a Pull takes its size over PullRate and
// fails after Keepalive when its peer goes silent.
//
// Each host has its own clock, virtual time plus a skew, that jumps
// forward or back; the cores get these clocks, timers run in virtual time
// (the real timers are monotonic).
//
// # Faults and invariants
//
// RandomConfig draws a cloud from a seed; RunPhases runs a fault phase of
// kills and restarts, pauses, multicast and gRPC cuts per host, clock
// jumps, origin publications, changes, deletions, scans that see an empty
// directory, a backup origin that diverges or lags, and forged packets of
// random epochs; then a heal phase with every fault removed. After every
// event:
//
//   - S1: a file under its final name holds exactly one version of an
//     object of a manifest the receiver accepted, never a mix;
//   - S2: content is deleted or replaced only by a manifest from a sender
//     that reported itself ACTIVE, never one built from an empty scan, and
//     one removing more than the policy's share only once confirmed (the
//     simulated operator confirms after ConfirmAfter, never an empty-scan
//     manifest);
//   - S3: while the backup can observe the primary, two senders multicast
//     DATA together for at most Config.S3Bound (HandbackTimeout plus the
//     detection slack derived there);
//   - R1: a receiver keeps state for at most R1Bound = repair.MaxEpochs
//     (16) sender epochs;
//   - A1: while the primary and the backup serve different manifests
//     (one pair of versions), both up, not paused, reachable over gRPC,
//     the backup's clock not set back, the backup raises a divergence
//     alert for that pair within Config.A1Bound (2 × CompareInterval +
//     the grace 2 × RescanInterval + CompareInterval + two calls of
//     5 × HealthTimeout + 1 s: 29 s with the defaults).
//
// At the end of the heal phase, L1: every receiver holds the active
// sender's manifest with every object verified, within Config.L1Bound of
// the heal (the bound is derived term by term there).
//
// L2, the NACK arrival rate at the active sender against the scheduler's
// TargetNackRate, is counted per sender in 1 s windows and averaged over
// l2Window, the time in which 100 NACKs arrive at the target (5 s at
// 20/s): receivers NACK at independently jittered times, so 1 s counts
// are nearly Poisson and a perfectly paced cloud exceeds twice the target
// in one 1 s window in tens of thousands by chance. A window counts while
// the sender is the active one (the one receivers' NACKs reach first),
// from the moment it becomes so: a take-over, a hand-back, a resumed or
// restarted primary are measured from their first second. Only the
// start of the cloud (receivers starting together, fetching manifests,
// NACKing at the minimum interval) counts from l2Settle (two jittered
// intervals, two NACK timeouts and a scan interval). With Config.L2Check
// it is an invariant, at most twice the target
// (TestScenarioL2TakeoverHandback, TestScenarioL2PausedPrimary). Every
// 50th seed of TestSimSeeds is a cloud of the L2 shape (RandomL2Config:
// 200 to 400 lightweight receivers started over one interval, a target of
// 20 to 40/s, the primary killed, then restarted: a take-over and a
// hand-back), where L2 is checked too; the 1 s peaks are reported.
//
// # Replaying a seed
//
// A failing seed prints itself, the virtual time, the violation and the
// last 50 events:
//
//	go test ./pkg/sim -run TestSimSeeds -sim.seed=N -v
//
// replays it alone; -sim.seeds=N (or NACKCAST_SIM_SEEDS, or make sim
// SEEDS=N) runs more seeds. A failure found by a random seed is kept as
// a named scenario (TestScenarioSeed2441) once fixed.
package sim
