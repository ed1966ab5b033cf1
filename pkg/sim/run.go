package sim

import (
	"fmt"
	"math"
	"os"
	"path"
	"strconv"
	"time"
)

// Result is the outcome of one run.
type Result struct {
	Seed uint64
	// Err is the first invariant violation, nil when every check held.
	Err error
	// At is the virtual time of the violation.
	At time.Duration
	// Trace is the last events before the end of the run (or the
	// violation).
	Trace string
	// Hash digests the whole trace: same seed, same hash.
	Hash        uint64
	VirtualTime time.Duration
	Events      uint64
	// Measured maxima.
	MaxOverlap time.Duration
	S3Bound    time.Duration
	L1Slowest  time.Duration
	L1Bound    time.Duration
	// PeakNackRate is the highest NACK rate at the active sender over
	// L2's window (Config.l2Window); PeakNackRate1s over 1 s windows.
	PeakNackRate   float64
	PeakNackRate1s float64
	NackTarget     float64
	PeakNackRatio  float64
	// L2 is set when the run checked L2 (Config.L2Check).
	L2           bool
	MaxEpochs    int
	Takeovers    int
	Handbacks    int
	Holdbacks    int
	Removals     int
	Replacements int
	VerifyFails  int
	UnicastPulls int
	// IdleSpins counts the transmitter's zero-length idle waits (ms).
	IdleSpins int
	// Forged counts the forged packets sent; UnicastReplies the backup's
	// answers to receivers that cannot reach a live primary.
	Forged         uint64
	UnicastReplies int
	// DivergenceAlerts and SenderChangedAlerts are when A1 alerts were
	// raised (backup, receivers).
	DivergenceAlerts    []time.Duration
	SenderChangedAlerts []time.Duration
	// A1Checked counts the stretches of divergence longer than A1Bound
	// (each checked for an alert); A1Longest is the longest stretch.
	A1Checked int
	A1Longest time.Duration
	Alerts    []string
}

// Failure formats a failed result for a test log: seed, time, violation
// and the trace.
func (r *Result) Failure() string {
	return fmt.Sprintf("seed %d: at %v: %v\nreplay: go test ./pkg/sim -run 'TestSimSeeds' -sim.seed=%d -v\nlast events:\n%s", r.Seed, r.At, r.Err, r.Seed, r.Trace)
}

// Start starts every process at virtual time zero.
func (s *Sim) Start() {
	s.primary.start()
	if s.backup != nil {
		s.backup.start()
	}
	for _, r := range s.recvs {
		if s.cfg.StartSpread <= 0 {
			r.start()
			continue
		}
		r.h.alive = false // not started yet
		h := r.h
		s.after(time.Duration(s.rng.Int64N(int64(s.cfg.StartSpread))), nil, "start "+h.name, func() { s.restart(h) })
	}
	s.after(time.Second, nil, "operator", s.operator)
}

// operator plays the CDN manager: a manifest held back for ConfirmAfter
// is confirmed (nackctl confirm-manifest) when it lists what the origin
// holds; one built from a scan that saw an empty directory never is (the
// operator looks at the origin first).
func (s *Sim) operator() {
	s.after(time.Second, nil, "operator", s.operator)
	if s.cfg.ConfirmAfter < 0 {
		return
	}
	for _, r := range s.recvs {
		if r.h.alive && !r.h.paused && r.held != nil && s.now.Sub(r.held.since) >= s.cfg.ConfirmAfter && !s.emptyVersions[r.held.m.Version] {
			r.confirm()
		}
	}
}

// At schedules a scenario step at virtual time t from the start.
func (s *Sim) At(t time.Duration, name string, fn func()) {
	s.at(epoch0.Add(t), nil, name, func() {
		s.trace("scenario", name, 0, 0)
		fn()
	})
}

// Heal removes every fault: processes restarted and resumed, links
// restored, forging stopped.
func (s *Sim) Heal() {
	s.healStart = s.now
	s.trace("harness", "heal", 0, 0)
	for _, h := range s.hosts {
		if h == s.forger {
			continue
		}
		s.unpause(h)
		h.cutData, h.cutCtl = false, false
		if !h.alive {
			s.restart(h)
		}
	}
	s.cfg.Forge = false
}

// RunPhases runs the fault phase (with the random fault plan when
// cfg.Faults), heals, runs the heal phase and checks L1.
func (s *Sim) RunPhases() *Result {
	s.Start()
	if s.cfg.Faults {
		s.planFaults()
	}
	if s.cfg.Forge {
		s.after(time.Second, nil, "forge", s.forge)
	}
	s.runUntil(epoch0.Add(s.cfg.FaultPhase))
	bound := s.cfg.L1Bound(s.maxBytes)
	if s.fail == nil {
		s.Heal()
		heal := s.cfg.HealPhase
		if heal == 0 {
			heal = bound
		}
		s.runUntil(s.now.Add(heal))
		if s.fail == nil {
			s.checkL1(bound)
		}
	}
	return s.result(bound)
}

// Run runs the scenario scripted with At until virtual time end.
func (s *Sim) Run(end time.Duration) *Result {
	s.runUntil(epoch0.Add(end))
	return s.result(0)
}

func (s *Sim) result(bound time.Duration) *Result {
	s.a1End()
	peak, _, _ := s.l2Peak(s.cfg.l2Window())
	peak1, _, _ := s.l2Peak(1)
	if !s.m.overlapStart.IsZero() {
		s.m.maxOverlap = max(s.m.maxOverlap, s.now.Sub(s.m.overlapStart))
	}
	return &Result{
		Seed: s.cfg.Seed, Err: s.fail, At: s.failAt, Trace: s.lastTrace(traceLines), Hash: s.hash.Sum64(),
		VirtualTime: s.elapsed(), Events: s.events,
		MaxOverlap: s.m.maxOverlap, S3Bound: s.cfg.S3Bound(), L1Slowest: s.m.l1Slowest, L1Bound: bound,
		PeakNackRate: peak, PeakNackRate1s: peak1, NackTarget: s.cfg.Scheduler.TargetNackRate, PeakNackRatio: peak / s.cfg.Scheduler.TargetNackRate, L2: s.cfg.L2Check,
		MaxEpochs: s.m.maxEpochs, Takeovers: s.m.takeovers, Handbacks: s.m.handbacks, Holdbacks: s.m.holdbacks,
		Removals: s.m.removals, Replacements: s.m.replacements, VerifyFails: s.m.verifyFails, UnicastPulls: s.m.unicastPulls, IdleSpins: s.m.idleSpins,
		A1Checked: s.m.a1Checked, A1Longest: s.m.a1Max,
		Forged: s.m.forged, UnicastReplies: s.m.unicastReplies,
		DivergenceAlerts: s.m.divergenceAlerts, SenderChangedAlerts: s.m.senderChangedAlerts,
		Alerts: s.m.alerts,
	}
}

// RandomConfig draws a cloud and its fault plan's parameters from seed.
func RandomConfig(seed uint64) Config {
	c := DefaultConfig(seed)
	e := newEngine(seed ^ 0x5deece66d)
	r := e.rng
	c.Receivers = 3 + r.IntN(6)
	c.Backup = r.IntN(5) > 0
	c.ChunkSize = uint32(512 + r.IntN(889))
	c.BackupChunkSize = c.ChunkSize
	if r.IntN(10) == 0 {
		c.BackupChunkSize = uint32(512 + r.IntN(889))
	}
	c.Rate = math.Exp(math.Log(100e3) + r.Float64()*math.Log(20)) // 100 kB/s to 2 MB/s
	c.Scheduler.MaxPasses = 1 + r.IntN(3)
	c.Scheduler.MaxJobs = 1 + r.IntN(4)
	c.Objects = map[string]uint64{}
	for i, n := 0, 2+r.IntN(5); i < n; i++ {
		p := fmt.Sprintf("o%d.bin", i)
		if r.IntN(3) == 0 {
			p = path.Join("d", p)
		}
		c.Objects[p] = uint64(1 + r.IntN(300*int(c.ChunkSize)))
	}
	c.Loss = make([]float64, c.Receivers)
	for i := range c.Loss {
		c.Loss[i] = r.Float64() * 0.15
	}
	c.BurstLoss = r.Float64() * 0.002
	c.SockBuffer = 300 + r.IntN(6000)
	c.FaultPhase = time.Duration(15+r.IntN(45)) * time.Second
	c.ConfirmAfter = time.Duration(2+r.IntN(15)) * time.Second
	c.Faults = true
	c.SenderClockBack = true
	c.Forge = r.IntN(3) == 0
	return c
}

// planFaults draws the fault phase's faults from the run's seed.
func (s *Sim) planFaults() {
	r := s.rng
	F := s.cfg.FaultPhase
	var nodes []*host
	for _, h := range s.hosts {
		if h != s.forger {
			nodes = append(nodes, h)
			h.skew = time.Duration(r.Int64N(int64(time.Second))) - 500*time.Millisecond
		}
	}
	span := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo))) }
	for i, n := 0, 5+r.IntN(20); i < n; i++ {
		t := time.Duration(r.Int64N(int64(F)))
		h := nodes[r.IntN(len(nodes))]
		switch k := r.IntN(13); k {
		case 0, 1:
			d := span(200*time.Millisecond, 15*time.Second)
			s.At(t, "kill "+h.name, func() { s.kill(h) })
			s.At(t+d, "restart "+h.name, func() { s.restart(h) })
		case 2, 3:
			d := span(100*time.Millisecond, 6*time.Second)
			s.At(t, "pause "+h.name, func() { s.pause(h) })
			s.At(t+d, "resume "+h.name, func() { s.unpause(h) })
		case 4:
			d := span(500*time.Millisecond, 10*time.Second)
			s.At(t, "cut multicast "+h.name, func() { h.cutData = true })
			s.At(t+d, "restore multicast "+h.name, func() { h.cutData = false })
		case 5:
			d := span(500*time.Millisecond, 10*time.Second)
			s.At(t, "cut grpc "+h.name, func() { h.cutCtl = true })
			s.At(t+d, "restore grpc "+h.name, func() { h.cutCtl = false })
		case 6:
			mag := time.Duration(math.Exp(r.Float64()*math.Log(float64(time.Hour/time.Millisecond)))) * time.Millisecond
			if r.IntN(2) == 0 && (s.cfg.SenderClockBack || !s.isSender(h)) {
				mag = -mag
			}
			s.At(t, fmt.Sprintf("clock jump %s %v", h.name, mag), func() { h.skew += mag })
		case 7, 8, 9:
			s.At(t, "origin change", func() { s.originChange(k) })
		case 10:
			s.At(t, "empty scan", func() {
				if r.IntN(2) == 0 {
					s.primaryOrigin.emptyScans++
				} else {
					s.backupOrigin.emptyScans++
				}
			})
		case 11:
			s.At(t, "backup origin diverges", func() {
				ps := s.backupOrigin.paths()
				if len(ps) > 0 {
					p := ps[r.IntN(len(ps))]
					s.gen++
					s.backupOrigin.files[p] = makeContent(p, s.gen, s.backupOrigin.files[p].size+1)
				}
			})
		case 12:
			s.At(t, "forge", func() { s.forgeBurst(200) })
		}
	}
}

// originChange publishes (7), modifies (8) or deletes (9) an object of
// the primary's origin; the backup's origin follows at once or lags a few
// seconds.
func (s *Sim) originChange(kind int) {
	r := s.rng
	ps := s.primaryOrigin.paths()
	var p string
	var c content
	del := false
	switch {
	case kind == 7 || len(ps) == 0:
		s.gen++
		p = fmt.Sprintf("new%d.bin", s.gen)
		c = makeContent(p, s.gen, uint64(1+r.IntN(200*int(s.cfg.ChunkSize))))
	case kind == 8:
		p = ps[r.IntN(len(ps))]
		s.gen++
		c = makeContent(p, s.gen, uint64(1+r.IntN(200*int(s.cfg.ChunkSize))))
	default:
		if len(ps) < 2 {
			return
		}
		p, del = ps[r.IntN(len(ps))], true
	}
	apply := func(o *origin) {
		if del {
			delete(o.files, p)
		} else {
			o.files[p] = c
		}
	}
	apply(s.primaryOrigin)
	if lag := time.Duration(r.IntN(3)) * 2 * time.Second; lag == 0 {
		apply(s.backupOrigin)
	} else {
		s.after(lag, nil, "backup origin follows", func() { apply(s.backupOrigin) })
	}
	s.maxBytes = max(s.maxBytes, s.originBytes())
}

// forge sends forged packets now and then during the fault phase.
func (s *Sim) forge() {
	if !s.cfg.Forge {
		return
	}
	s.forgeBurst(50)
	s.after(time.Duration(200+s.rng.IntN(2000))*time.Millisecond, nil, "forge", s.forge)
}

// forgeBurst multicasts n packets of random epochs: DATA, END and
// ANNOUNCE; with ForgeKnown the DATA name real objects and versions.
func (s *Sim) forgeBurst(n int) {
	var objs [][2]uint64
	if s.primary.m != nil {
		for _, o := range s.primary.m.Objects {
			objs = append(objs, [2]uint64{o.ID, o.Version})
		}
	}
	pkts := make([]packet, 0, n)
	for i := 0; i < n; i++ {
		p := packet{from: s.forger.id, epoch: s.rng.Uint64(), forged: true, size: 100}
		switch s.rng.IntN(3) {
		case 0:
			p.typ, p.obj, p.ver = ptData, s.rng.Uint64(), s.rng.Uint64()
			if s.cfg.ForgeKnown && len(objs) > 0 {
				o := objs[s.rng.IntN(len(objs))]
				p.obj, p.ver = o[0], o[1]
			}
		case 1:
			p.typ, p.obj, p.ver, p.seq = ptEnd, s.rng.Uint64(), s.rng.Uint64(), s.rng.Uint64N(100)
		default:
			p.typ, p.mver, p.seq = ptAnnounce, s.rng.Uint64(), s.rng.Uint64N(100)
		}
		pkts = append(pkts, p)
	}
	s.m.forged += uint64(n)
	s.multicast(s.forger, pkts)
}

// Receiver returns receiver i, for scenarios.
func (s *Sim) Receiver(i int) *receiverNode { return s.recvs[i] }

// Files lists what receiver i holds under final names: path → digest
// prefix.
func (s *Sim) Files(i int) map[string]string {
	out := map[string]string{}
	for p, f := range s.recvs[i].disk.finals {
		out[p] = fmt.Sprintf("%x", f.sha[:4])
	}
	return out
}

func (s *Sim) isSender(h *host) bool {
	return h == s.primary.h || s.backup != nil && h == s.backup.h
}

// traceLines is how many of the last events a failure shows (NACKCAST_SIM_TRACE raises it).
var traceLines = func() int {
	if n, err := strconv.Atoi(os.Getenv("NACKCAST_SIM_TRACE")); err == nil && n > 0 {
		return n
	}
	return 50
}()
