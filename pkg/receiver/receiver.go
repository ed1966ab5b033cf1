// Package receiver runs a nackcast receiver (the seed's content engine
// receiver, Fig. 3 and Fig. 6): it keeps each subscribed channel's manifest
// (the dataset) and content, writes multicast chunks into partial files,
// commits verified objects, scans for what is missing, NACKs the primary and
// then the backup, and pulls over unicast when told to. The decisions live
// in package repair and the disk layout in package store; this package owns
// the sockets, goroutines and clock around them.
package receiver

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/nackcast/nackcast/pkg/chunks"
	"github.com/nackcast/nackcast/pkg/fec"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/pktauth"
	"github.com/nackcast/nackcast/pkg/ratectl"
	"github.com/nackcast/nackcast/pkg/repair"
	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/store"
	"github.com/nackcast/nackcast/pkg/wire"
)

// Counters are a receiver's cumulative counters.
type Counters struct {
	PacketsReceived  atomic.Uint64
	PacketsMalformed atomic.Uint64
	PacketsForeign   atomic.Uint64
	PacketsDuplicate atomic.Uint64
	PacketsInjected  atomic.Uint64
	MulticastBytes   atomic.Uint64
	UnicastBytes     atomic.Uint64
	NacksSent        atomic.Uint64
	RepliesWait      atomic.Uint64
	RepliesUnicast   atomic.Uint64
	RepliesNotFound  atomic.Uint64
	RangesRequested  atomic.Uint64
	Pulls            atomic.Uint64
	ObjectsCompleted atomic.Uint64
	VerifyFailures   atomic.Uint64
	ObjectsLost      atomic.Uint64
	ManifestFetches  atomic.Uint64
	EpochsForgotten  atomic.Uint64 // sender epochs dropped past repair.MaxEpochs
	WriteErrors      atomic.Uint64
	// RepliesPrimaryActive counts NACKs a standing-by backup disregarded.
	RepliesPrimaryActive atomic.Uint64
	// ParityReceived, ParityUnused and ChunksRebuilt count forward error
	// correction: shards kept, shards not needed or over the memory cap,
	// chunks recovered.
	// PacketsUnauthenticated counts datagrams dropped because their
	// authentication trailer was missing or wrong.
	PacketsUnauthenticated atomic.Uint64
	// PacketsPaused counts datagrams not filed while paused on a full disk.
	PacketsPaused  atomic.Uint64
	ParityReceived atomic.Uint64
	ParityUnused   atomic.Uint64
	ChunksRebuilt  atomic.Uint64
	// PacketsOverflow is the kernel's count of datagrams dropped because
	// the socket buffer was full.
	PacketsOverflow atomic.Uint64
	// BytesRead counts the datagram bytes read from the socket.
	BytesRead atomic.Uint64
	// FeedbackSent counts the socket reports sent to the sender between
	// NACKs (buffer past 80% full, or drops).
	FeedbackSent atomic.Uint64
	// reported are the PacketsReceived and PacketsOverflow values sent in
	// the last NACK, for the next one's deltas.
	reportedReceived, reportedOverflow atomic.Uint64
}

// objState is the receiver's holding of one object.
type objState struct {
	obj     manifest.Object
	state   repair.State
	partial *store.Partial // open partial file, or nil
	missing chunks.List    // for a partial that is not open: its missing chunks
	held    uint64         // bytes held of a partial, as of the last look
	busy    bool           // being committed or pulled
	final   manifest.FileIdentity
	lastUse time.Time
	parity  map[uint32]*heldBlock // parity held by block, or nil
}

// chanState is one subscribed channel.
type chanState struct {
	name      string
	id        uint32
	m         *manifest.Manifest // nil until the first manifest
	objs      map[uint64]*objState
	core      *repair.Core
	wake      chan struct{}
	refetch   bool
	fetchedAt time.Time // last manifest fetch that got an answer
	announced uint64    // last manifest version announced on the wire
	// from is the sender that served the installed manifest ("" when it
	// was loaded from disk), fromEpoch its incarnation.
	from      string
	fromEpoch uint64
	// held is a manifest from the active sender held back because it
	// would remove too much (repair.HoldBack); confirmed is the version
	// an operator confirmed with ConfirmManifest.
	held      *heldManifest
	confirmed uint64
	// declined is the last manifest version fetched and not adopted (or
	// refused by the sender): ANNOUNCEs of it do not trigger refetches.
	declined uint64
	// installMu makes adoptions of the channel's manifests one at a
	// time (the NACK loop's fetches, an operator's ConfirmManifest), and
	// commits wait for it. It is the channel name's, shared by every
	// subscription to that name (Receiver.installLock): the commits of an
	// earlier subscription and an unsubscribe of a later one exclude each
	// other too.
	installMu *sync.Mutex
	// distStart is when the latest distribution began: the channel went
	// from complete (or from no manifest) to lacking something. doneAt is
	// when it was last complete, zero while it is not.
	distStart time.Time
	doneAt    time.Time
	// progressHave and progressAt track progress for the stuck alert;
	// lastProgress is when the channel last gained bytes.
	progressHave uint64
	progressAt   time.Time
	lastProgress time.Time
	// lastDone is when the channel was last complete (doneAt, kept while
	// the channel is incomplete again).
	lastDone time.Time
	// problem is why the channel makes no progress, or nil.
	problem *problem
	// cancel stops the channel's NACK loop, which closes done on return.
	cancel context.CancelFunc
	done   chan struct{}
	// gone is set (under installMu and mu) when the channel is
	// unsubscribed: nothing installs a manifest into it any more.
	gone bool
}

// Receiver is a running receiver.
type Receiver struct {
	cfg     Config
	log     hclog.Logger
	nackLog hclog.Logger // the NACK loops'
	dataLog hclog.Logger // the data plane's
	now     func() time.Time
	store   *store.Store
	stats   Counters
	loss    func() bool
	// drain measures how fast recvLoop reads the socket (NACKs report
	// it: the sender paces to the slowest receiver).
	drain ratectl.DrainMeter
	// filed measures how fast fileLoop files reads while it works.
	filed ratectl.BusyMeter

	primary, backup *grpc.ClientConn

	mu           sync.Mutex
	channels     map[string]*chanState
	byID         map[uint32]*chanState
	epochs       repair.Epochs
	alerts       alerter
	activeSender string
	failovers    uint64
	// horizon is the highest job sequence number read in END or ANNOUNCE
	// packets of sender epoch horizonEpoch.
	horizonEpoch uint64
	horizon      uint64
	openPartials int
	// Forward error correction, under mu: parity held in memory and its
	// byte count, freed shard buffers, scratch shards for rebuilding.
	codec       *fec.Codec
	opener      *pktauth.Opener   // nil without packet keys
	manifestPub ed25519.PublicKey // checks manifest signatures, or nil
	// diskFull pauses filing and NACKing while the data disk is full.
	diskFull      atomic.Bool
	diskFullSince atomic.Int64
	parityBytes   int64
	parityFree    [][]byte
	fecShards     [][]byte
	fecWork       [][]byte
	oneBuf        [1][]byte

	// commitQ holds full partials waiting for the commit loop, which
	// commitWake wakes. It is bounded by the objects of the manifests.
	commitQ    []commitJob
	commitWake chan struct{}
	// feedback asks feedbackLoop for a report.
	feedback chan socketReport
	pulls    chan pullJob
	readyCh  chan struct{}
	started  time.Time

	// subs are the subscribed channels in order of subscription (under
	// mu); subMu makes Subscribe and Unsubscribe one at a time. While
	// running, runCtx is Run's context and loops counts the channels' NACK
	// loops, which Subscribe starts too.
	subs  []string
	subMu sync.Mutex
	// installLocks are the channels' install locks by name (installMus
	// guards the map; it is taken alone).
	installMus   sync.Mutex
	installLocks map[string]*sync.Mutex
	running      bool
	runCtx       context.Context
	loops        sync.WaitGroup
}

type commitJob struct {
	ch *chanState
	o  *objState
	p  *store.Partial
}

type pullJob struct {
	ch   *chanState
	o    *objState
	from *grpc.ClientConn
	addr string
}

// Option changes how a Receiver is built; for tests.
type Option func(*Receiver)

// WithClock injects the clock.
func WithClock(now func() time.Time) Option { return func(r *Receiver) { r.now = now } }

// New validates cfg, opens the data directory and returns a receiver that
// is not yet running.
func New(cfg Config, log hclog.Logger, opts ...Option) (*Receiver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("receiver config: %w", err)
	}
	st, err := store.Open(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	r := &Receiver{
		cfg:        cfg,
		log:        log,
		nackLog:    log.Named("nack"),
		dataLog:    log.Named("data"),
		now:        time.Now,
		store:      st,
		channels:   make(map[string]*chanState),
		byID:       make(map[uint32]*chanState),
		commitWake: make(chan struct{}, 1),
		feedback:   make(chan socketReport, 1),
		codec:      fec.NewCodec(),
		pulls:      make(chan pullJob, 1024),
		readyCh:    make(chan struct{}),
		loss:       func() bool { return false },
	}
	for _, o := range opts {
		o(r)
	}
	r.started = r.now()
	if cfg.LossRate > 0 {
		rnd := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		r.loss = func() bool { return rnd.Float64() < cfg.LossRate }
	}
	if cfg.CrashAt != "" {
		step, n, err := store.ParseCrashPoint(cfg.CrashAt)
		if err == nil {
			err = store.SetCrashPoint(step, n)
		}
		if err != nil {
			return nil, err
		}
		log.Warn("TESTING: this receiver will kill itself", "at", cfg.CrashAt)
	}
	if cfg.ManifestPubKey != "" {
		if r.manifestPub, err = manifest.LoadVerifyKey(cfg.ManifestPubKey); err != nil {
			return nil, err
		}
	}
	keys, err := cfg.Packet.Keyring()
	if err != nil {
		return nil, err
	}
	if keys != nil {
		r.opener = pktauth.NewOpener(keys)
	}
	r.primary, err = rpc.Dial(cfg.Primary, cfg.DialOptions...)
	if err != nil {
		st.Close()
		return nil, err
	}
	if cfg.Backup != "" {
		if r.backup, err = rpc.Dial(cfg.Backup, cfg.DialOptions...); err != nil {
			r.primary.Close()
			st.Close()
			return nil, err
		}
	}
	names, err := r.initialChannels()
	if err != nil {
		st.Close()
		return nil, err
	}
	for _, name := range names {
		ch := r.newChannel(name)
		if other := r.byID[ch.id]; other != nil {
			st.Close()
			return nil, fmt.Errorf("channels %q and %q share channel id %08x: %w", other.name, name, ch.id, ErrChannelID)
		}
		r.channels[name] = ch
		r.byID[ch.id] = ch
	}
	r.subs = names
	return r, nil
}

// Stats returns the receiver's counters.
func (r *Receiver) Stats() *Counters { return &r.stats }

// Ready is closed once the multicast socket is joined and persisted
// manifests are loaded.
func (r *Receiver) Ready() <-chan struct{} { return r.readyCh }

// Run receives until ctx is done.
func (r *Receiver) Run(ctx context.Context) error {
	defer r.close()
	sock, err := mcast.NewReceiver(r.cfg.Multicast, wire.MaxPacket)
	if err != nil {
		return fmt.Errorf("multicast receiver: %w", err)
	}
	got := sock.ReadBuffer()
	r.log.Info("multicast joined", "group", r.cfg.Multicast.GroupAddr(), "interface", r.cfg.Multicast.Interface,
		"rcvbuf_requested", r.cfg.Multicast.ReadBuffer, "rcvbuf_granted", got)
	if got > 0 && got < r.cfg.Multicast.ReadBuffer {
		r.log.Warn("socket receive buffer smaller than requested; raise net.core.rmem_max or run as root", "granted", got)
	}
	for _, ch := range r.channelList() {
		r.loadPersisted(ch)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.runCtx, r.running = ctx, true
	for _, name := range r.subs {
		r.startChannel(r.channels[name])
	}
	subs := slices.Clone(r.subs)
	r.mu.Unlock()
	close(r.readyCh)
	r.log.Info("receiver ready", "id", r.cfg.ID, "data_dir", r.cfg.DataDir, "channels", subs,
		"primary", r.cfg.Primary, "backup", r.cfg.Backup, "loss_injected", r.cfg.LossRate)

	var wg sync.WaitGroup
	goRun := func(f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	goRun(func() { r.recvLoop(ctx, sock) })
	for i := 0; i < 2; i++ {
		goRun(func() { r.commitLoop(ctx) })
	}
	for i := 0; i < r.cfg.Pullers; i++ {
		goRun(func() { r.pullLoop(ctx) })
	}
	goRun(func() { r.housekeeping(ctx) })
	goRun(func() { r.feedbackLoop(ctx) })
	if r.cfg.ScrubInterval > 0 {
		goRun(func() { r.scrubLoop(ctx) })
	}
	<-ctx.Done()
	r.mu.Lock()
	r.running = false // no channel loop starts from now on
	r.mu.Unlock()
	sock.Close()
	wg.Wait()
	r.loops.Wait()
	return nil
}

func (r *Receiver) close() {
	r.mu.Lock()
	for _, ch := range r.channels {
		for _, o := range ch.objs {
			if o.partial != nil {
				if err := o.partial.Close(); err != nil {
					r.log.Warn("closing partial", "path", o.obj.Path, "error", err)
				}
				o.partial = nil
			}
		}
	}
	r.mu.Unlock()
	r.primary.Close()
	if r.backup != nil {
		r.backup.Close()
	}
	r.store.Close()
}

func (r *Receiver) channelList() []*chanState {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*chanState, 0, len(r.subs))
	for _, name := range r.subs {
		out = append(out, r.channels[name])
	}
	return out
}

// loadPersisted installs the manifest saved by an earlier run, so that the
// receiver knows what it holds (and what to remove when the next manifest
// drops it) before it reaches a sender.
func (r *Receiver) loadPersisted(ch *chanState) {
	m, err := r.store.LoadManifest(ch.name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			r.log.Warn("ignoring persisted manifest", "channel", ch.name, "error", err)
		}
		return
	}
	r.install(ch, m)
	r.mu.Lock()
	ch.refetch = true
	r.mu.Unlock()
	r.log.Info("persisted manifest loaded", "channel", ch.name, "version", fmt.Sprintf("%016x", m.Version), "objects", len(m.Objects))
}

// install reconciles the channel with manifest m: objects that keep their
// version keep their state; new or changed ones are looked for on disk
// (a verified final file, else a partial file, else missing); objects that
// left the manifest are removed from disk.
func (r *Receiver) install(ch *chanState, m *manifest.Manifest) {
	r.mu.Lock()
	old := ch.m
	prev := ch.objs
	r.mu.Unlock()

	// One listing of the channel on disk spares a lookup per object,
	// which matters for manifests of many small objects: packets that
	// arrive before the manifest is installed cannot be filed. Without a
	// listing every object is looked up.
	listing, err := r.store.List(ch.name)
	if err != nil {
		r.log.Warn("listing the channel on disk; looking up each object", "channel", ch.name, "error", err)
		listing = nil
	}
	next := make(map[uint64]*objState, len(m.Objects))
	for _, obj := range m.Objects {
		if o, ok := prev[obj.ID]; ok && o.obj.Version == obj.Version {
			next[obj.ID] = o
			continue
		}
		next[obj.ID] = r.probe(ch.name, obj, listing)
	}
	if old != nil {
		for _, o := range old.Objects {
			if _, keep := m.Lookup(o.ID); keep {
				continue
			}
			if err := r.store.RemoveFinal(ch.name, o.Path); err != nil {
				r.log.Warn("removing object that left the manifest", "channel", ch.name, "path", o.Path, "error", err)
			} else {
				r.log.Info("object removed from channel", "channel", ch.name, "path", o.Path)
			}
		}
	}
	r.mu.Lock()
	for id, o := range prev {
		if n, ok := next[id]; ok && n == o {
			continue
		}
		r.dropParity(o)
		if o.partial != nil {
			r.store.DiscardPartial(ch.name, o.obj, o.partial)
			o.partial = nil
			r.openPartials--
		}
	}
	ch.m = m
	ch.objs = next
	ch.refetch = false
	ch.announced = m.Version
	if old == nil || !ch.doneAt.IsZero() {
		// A distribution begins: the channel was complete (or had no
		// manifest). A new version while one is under way continues it.
		ch.distStart = r.now()
	}
	ch.doneAt = time.Time{}
	for _, o := range next {
		if o.obj.Chunks == 0 && o.state != repair.Complete && !o.busy {
			if _, err := r.ensurePartial(ch, o); err == nil {
				r.enqueueCommit(ch, o)
			}
		}
	}
	r.checkDone(ch)
	ch.core.Forget(func(id uint64) bool { _, ok := next[id]; return ok })
	ch.core.Kick(r.now())
	r.mu.Unlock()
	if err := r.store.CleanPartials(ch.name, m.Objects); err != nil {
		r.log.Warn("cleaning stale partial files", "channel", ch.name, "error", err)
	}
	r.poke(ch)
}

// probe finds what the receiver holds of obj on disk: a final file that
// verifies, a partial file, or nothing.
func (r *Receiver) probe(channel string, obj manifest.Object, l *store.Listing) *objState {
	o := &objState{obj: obj, state: repair.Missing}
	if l.MayHaveFinal(obj.Path) {
		// StatFinal first: only a regular file (not a symlink) counts.
		if _, err := r.store.StatFinal(channel, obj.Path); err == nil {
			if ok, id, err := r.store.VerifyFinal(channel, obj); err == nil && ok {
				o.state, o.final = repair.Complete, id
				return o
			}
		}
	}
	hasPartial := l.MayHavePartial(channel, obj)
	if l == nil {
		hasPartial = r.store.HasPartial(channel, obj)
	}
	if obj.Chunks == 0 || !hasPartial {
		return o
	}
	p, err := r.store.OpenPartial(channel, obj)
	if err != nil {
		r.log.Warn("cannot read partial file; starting over", "channel", channel, "path", obj.Path, "error", err)
		return o
	}
	o.state = repair.Partial
	o.missing = p.Missing()
	_, o.held = p.Progress()
	if err := p.Close(); err != nil {
		r.log.Warn("closing partial", "path", obj.Path, "error", err)
	}
	return o
}

// ensurePartial returns the open partial of o, opening it if needed. It
// must be called with r.mu held.
func (r *Receiver) ensurePartial(ch *chanState, o *objState) (*store.Partial, error) {
	o.lastUse = r.now()
	if o.partial != nil {
		return o.partial, nil
	}
	p, err := r.store.OpenPartial(ch.name, o.obj)
	if err != nil {
		return nil, err
	}
	o.partial = p
	o.state = repair.Partial
	o.missing = nil
	_, o.held = p.Progress()
	r.openPartials++
	return p, nil
}

// markComplete records a verified object. Called with r.mu held.
func (r *Receiver) markComplete(ch *chanState, o *objState, id manifest.FileIdentity) {
	o.state, o.final, o.busy = repair.Complete, id, false
	o.partial, o.missing, o.held = nil, nil, 0
	r.dropParity(o)
	r.stats.ObjectsCompleted.Add(1)
	ch.lastProgress = r.now()
	r.checkDone(ch)
}

// checkDone stamps the channel's completion time when every object is
// complete. Called with r.mu held.
func (r *Receiver) checkDone(ch *chanState) {
	if ch.m == nil || !ch.doneAt.IsZero() {
		return
	}
	for _, o := range ch.objs {
		if o.state != repair.Complete {
			return
		}
	}
	ch.doneAt = r.now()
	ch.lastDone = ch.doneAt
	// Complete: whatever kept the senders from answering did not stop it.
	clearProblem(ch, rpcProblems...)
	r.log.Info("channel complete", "channel", ch.name, "objects", len(ch.objs), "bytes", ch.m.TotalBytes(),
		"elapsed", ch.doneAt.Sub(ch.distStart).Round(time.Millisecond))
}

func (r *Receiver) poke(ch *chanState) {
	select {
	case ch.wake <- struct{}{}:
	default:
	}
}

// enqueueCommit hands a full partial to a commit worker. Called with r.mu
// held.
func (r *Receiver) enqueueCommit(ch *chanState, o *objState) {
	if o.busy || o.partial == nil {
		return
	}
	o.busy = true
	r.dropParity(o)
	p := o.partial
	o.partial = nil
	r.openPartials--
	r.commitQ = append(r.commitQ, commitJob{ch: ch, o: o, p: p})
	select {
	case r.commitWake <- struct{}{}:
	default:
	}
}

// maxCommitBatch caps the objects committed as one group.
const maxCommitBatch = 512

// commitLoop commits full partials off the receive path. Whatever has
// queued up while the previous group was being made durable is committed
// as the next group (store.CommitBatch): many small objects then cost a
// couple of file system flushes per group instead of two fsyncs each.
func (r *Receiver) commitLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.commitWake:
		}
		for {
			r.mu.Lock()
			n := min(len(r.commitQ), maxCommitBatch)
			batch := r.commitQ[:n:n]
			r.commitQ = r.commitQ[n:]
			if len(r.commitQ) == 0 {
				r.commitQ = nil
			}
			r.mu.Unlock()
			if n == 0 {
				break
			}
			r.commitBatch(batch)
		}
	}
}

func (r *Receiver) commitBatch(jobs []commitJob) {
	// No manifest is installed while the batch commits: a job whose
	// object a newer manifest removed or replaced by another version
	// (a pull or pass of the previous sender's content that ended after
	// the change of sender) must not put that content under the final
	// name, where the current manifest's copy may already be complete.
	defer lockInstalls(jobs)()
	jobs = r.dropStaleCommits(jobs)
	if len(jobs) == 0 {
		return
	}
	ps := make([]*store.Partial, len(jobs))
	for i, j := range jobs {
		ps[i] = j.p
	}
	errs := r.store.CommitBatch(ps)
	ids := make([]manifest.FileIdentity, len(jobs))
	for i, p := range ps {
		ids[i] = p.Final()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, j := range jobs {
		r.committed(j, ids[i], errs[i])
	}
}

// lockInstalls takes the install lock of every channel of jobs, in name
// order (an install takes one), and returns what releases them.
func lockInstalls(jobs []commitJob) (unlock func()) {
	var chs []*chanState
	for _, j := range jobs {
		// One per name: subscriptions to one name share the lock.
		if !slices.ContainsFunc(chs, func(c *chanState) bool { return c.installMu == j.ch.installMu }) {
			chs = append(chs, j.ch)
		}
	}
	slices.SortFunc(chs, func(a, b *chanState) int { return strings.Compare(a.name, b.name) })
	for _, ch := range chs {
		ch.installMu.Lock()
	}
	return func() {
		for _, ch := range chs {
			ch.installMu.Unlock()
		}
	}
}

// dropStaleCommits discards the partials of jobs whose object the
// installed manifest no longer holds at that version, and returns the
// others. Called with the channels' install locks held.
func (r *Receiver) dropStaleCommits(jobs []commitJob) []commitJob {
	var live, stale []commitJob
	r.mu.Lock()
	for _, j := range jobs {
		if cur := j.ch.objs[j.o.obj.ID]; cur != nil && cur.obj.Version == j.o.obj.Version {
			live = append(live, j)
		} else {
			stale = append(stale, j)
		}
	}
	r.mu.Unlock()
	for _, j := range stale {
		if j.ch.gone {
			// Its channel was unsubscribed and its content removed:
			// close the file, but do not delete by path what a new
			// subscription to the same channel may have opened since.
			if err := j.p.Close(); err != nil {
				r.log.Debug("closing the partial of an unsubscribed channel", "channel", j.ch.name, "error", err)
			}
			continue
		}
		r.store.DiscardPartial(j.ch.name, j.o.obj, j.p)
		r.log.Debug("dropped a finished copy of a version the installed manifest no longer holds",
			"channel", j.ch.name, "path", j.o.obj.Path, "version", fmt.Sprintf("%016x", j.o.obj.Version))
	}
	return live
}

// committed records the outcome of one commit. Called with r.mu held.
func (r *Receiver) committed(j commitJob, id manifest.FileIdentity, err error) {
	current := j.ch.objs[j.o.obj.ID] == j.o
	switch {
	case err == nil:
		if current {
			r.markComplete(j.ch, j.o, id)
			r.log.Debug("object complete", "channel", j.ch.name, "path", j.o.obj.Path, "size", j.o.obj.Size)
		}
	case errors.Is(err, store.ErrVerify):
		r.stats.VerifyFailures.Add(1)
		r.log.Warn("object failed verification; fetching it again", "channel", j.ch.name, "path", j.o.obj.Path)
		j.o.state, j.o.busy, j.o.missing, j.o.held = repair.Missing, false, nil, 0
		j.ch.core.Kick(r.now())
		r.poke(j.ch)
	default:
		r.storageError("commit", j.ch.name, j.o.obj.Path, err)
		j.o.busy = false
		j.o.missing = nil
	}
}

// housekeeping checkpoints open partials, closes the least recently used
// ones beyond the cap, and scans complete objects on disk.
func (r *Receiver) housekeeping(ctx context.Context) {
	cp := time.NewTicker(r.cfg.CheckpointInterval)
	defer cp.Stop()
	scan := time.NewTicker(r.cfg.DiskScanInterval)
	defer scan.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-cp.C:
			r.checkDiskSpace()
			r.checkpoint()
			r.mu.Lock()
			r.checkStuck(r.now())
			r.mu.Unlock()
		case <-scan.C:
			for _, ch := range r.channelList() {
				r.scanDisk(ch)
			}
		}
	}
}

func (r *Receiver) checkpoint() {
	type open struct {
		ch string
		o  *objState
		p  *store.Partial
	}
	var all []open
	r.mu.Lock()
	for _, ch := range r.channels {
		for _, o := range ch.objs {
			if o.partial != nil {
				all = append(all, open{ch.name, o, o.partial})
			}
		}
	}
	r.mu.Unlock()
	for _, x := range all {
		if err := x.p.Checkpoint(); err != nil && !errors.Is(err, fs.ErrClosed) {
			r.storageError("checkpoint", x.ch, x.o.obj.Path, err)
		}
	}
	r.evict()
}

// evict closes the least recently used partial files beyond the cap.
func (r *Receiver) evict() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.openPartials > r.cfg.MaxOpenPartials {
		var lru *objState
		for _, ch := range r.channels {
			for _, o := range ch.objs {
				if o.partial != nil && !o.busy && (lru == nil || o.lastUse.Before(lru.lastUse)) {
					lru = o
				}
			}
		}
		if lru == nil {
			return
		}
		lru.missing = lru.partial.Missing()
		_, lru.held = lru.partial.Progress()
		if err := lru.partial.Close(); err != nil {
			r.log.Warn("closing partial", "path", lru.obj.Path, "error", err)
		}
		lru.partial = nil
		r.openPartials--
	}
}

// scanDisk is the disk half of the scan (seed steps 600-605): a complete
// object whose file was deleted, truncated or replaced is verified again
// and, if it fails, fetched again. Empty objects and full partials left by
// an interrupted commit are committed here.
// markLost records that a complete object's file is gone or wrong and
// sets it to be fetched again. Called with r.mu held.
func (r *Receiver) markLost(ch *chanState, o *objState, why string) {
	r.stats.ObjectsLost.Add(1)
	r.log.Warn(why, "channel", ch.name, "path", o.obj.Path)
	o.state, o.missing, o.held = repair.Missing, nil, 0
	ch.doneAt = time.Time{}
	ch.core.Kick(r.now())
	r.poke(ch)
}

func (r *Receiver) scanDisk(ch *chanState) {
	type check struct {
		o  *objState
		id manifest.FileIdentity
	}
	var checks []check
	var retry []*objState
	r.mu.Lock()
	for _, o := range ch.objs {
		switch {
		case o.state == repair.Complete:
			checks = append(checks, check{o, o.final})
		case !o.busy && o.partial == nil && (o.obj.Chunks == 0 || o.state == repair.Partial && len(o.missing) == 0):
			// An empty object, or a full partial whose commit did not
			// happen (queue full, disk error): commit it now.
			retry = append(retry, o)
		}
	}
	r.mu.Unlock()

	for _, c := range checks {
		id, err := r.store.StatFinal(ch.name, c.o.obj.Path)
		if err == nil && id.Equal(c.id) {
			continue
		}
		ok := false
		if err == nil {
			ok, id, _ = r.store.VerifyFinal(ch.name, c.o.obj)
		}
		r.mu.Lock()
		if ch.objs[c.o.obj.ID] == c.o && c.o.state == repair.Complete {
			if ok {
				c.o.final = id
			} else {
				r.markLost(ch, c.o, "object lost on disk; fetching it again")
			}
		}
		r.mu.Unlock()
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range retry {
		if ch.objs[o.obj.ID] != o || o.busy || o.partial != nil {
			continue
		}
		p, err := r.ensurePartial(ch, o)
		if err != nil {
			r.storageError("open partial", ch.name, o.obj.Path, err)
			continue
		}
		if p.Full() {
			r.enqueueCommit(ch, o)
		}
	}
}
