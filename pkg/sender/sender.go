// Package sender runs a nackcast sender (the seed's content engine sender,
// Fig. 2 and Fig. 4): it scans channels in its origin directory into
// manifests, multicasts their objects with a paced transmitter driven by
// the scheduler, and answers NACKs, manifest fetches and unicast pulls over
// gRPC. The decisions live in package scheduler; this package owns the
// sockets, files, goroutines and clock around it.
package sender

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/nackcast/nackcast/pkg/alerts"
	"github.com/nackcast/nackcast/pkg/failover"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/mcast"
	"github.com/nackcast/nackcast/pkg/pktauth"
	"github.com/nackcast/nackcast/pkg/ratectl"
	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/scheduler"
	"github.com/nackcast/nackcast/pkg/version"
)

// Sentinel errors, mapped to gRPC codes by the service.
var (
	ErrUnknownChannel = errors.New("unknown channel")
	ErrUnknownObject  = errors.New("unknown object")
	ErrVersion        = errors.New("object version differs from the sender's")
	ErrChanged        = errors.New("object changed on the origin since the manifest was built")
	ErrNotReady       = errors.New("sender not ready")
	// ErrManifestTooLarge: a channel's manifest exceeds one gRPC message
	// (about 150,000 ordinary objects), so GetManifest cannot return it;
	// StreamManifest can.
	ErrManifestTooLarge = errors.New("manifest too large for one message")
)

// Counters are a sender's cumulative counters.
type Counters struct {
	PacketsSent       atomic.Uint64
	BytesSent         atomic.Uint64
	DataBytesSent     atomic.Uint64
	Passes            atomic.Uint64
	RepairPasses      atomic.Uint64
	ParityPacketsSent atomic.Uint64
	Nacks             atomic.Uint64
	RepliesWait       atomic.Uint64
	RepliesUnicast    atomic.Uint64
	RepliesNotFound   atomic.Uint64
	Pulls             atomic.Uint64
	PullBytes         atomic.Uint64
	JobsAborted       atomic.Uint64
	SendErrors        atomic.Uint64 // sends that failed transiently (network down, firewall): packets lost
}

// channel is one channel's current manifest and the identity of each
// object's file when it was hashed.
type channel struct {
	name  string
	id    uint32
	dir   string
	m     *manifest.Manifest
	proto *pb.Manifest
	files map[string]manifest.FileIdentity
	// tooLarge is set when the manifest exceeds what one gRPC message
	// carries: GetManifest refuses it with this error.
	tooLarge error
	stats    *chanCounters // the channel's counters (chanstats.go)
}

// maxManifestBytes is the largest manifest GetManifest serves: the gRPC
// message limit less room for the response around it.
const maxManifestBytes = rpc.MaxMessageSize - 64<<10

// Sender is a running sender.
type Sender struct {
	cfg     Config
	log     hclog.Logger
	txLog   hclog.Logger // the transmitter's
	foLog   hclog.Logger // failover's
	now     func() time.Time
	scanner *manifest.Scanner
	stats   Counters

	mu          sync.Mutex
	sched       *scheduler.Scheduler
	channels    map[string]*channel
	byID        map[uint32]*channel
	epoch       uint64
	keys        *pktauth.Keyring   // packet keys, or nil: packets are not authenticated
	manifestKey ed25519.PrivateKey // signs manifests, or nil
	jobSeq      uint64             // jobs finished in this epoch (END sequence numbers)
	state       pb.SenderState
	stateSince  time.Time
	ready       bool

	// Failover: the other sender, the backup's Fig. 5 core (nil on a
	// primary), the backup's view of the primary, alerts.
	peer             *grpc.ClientConn
	fo               *failover.Backup
	checkMu          sync.Mutex
	primaryAlive     bool
	primaryCheckedAt time.Time
	// primarySeen is when the primary last answered a check, with the
	// epoch and state it reported then (from its GetStatus).
	primarySeen  time.Time
	primaryEpoch uint64
	primaryState pb.SenderState
	started      time.Time
	takeovers    uint64
	alerts       alerts.Log

	// rateCtl adapts the pacing rate to receivers' overrun reports (nil
	// when unpaced or not adaptive); limiter is the transmitter's pacer.
	rateCtl *ratectl.Controller
	limiter *rate.Limiter

	// restored holds a primary's pass records from its previous run until
	// each channel's first scan applies them; passesDirty says the records
	// changed since they were saved.
	restored    map[string]map[uint64]passEntry
	passesDirty bool

	scanMu sync.Mutex // one scan at a time
	// skipped counts, per channel, the origin entries the last scan
	// skipped; emptyAlerted is when an empty scan of a channel was last
	// alerted. Both under mu.
	skipped      map[string]int
	emptyAlerted map[string]time.Time
	// maxManifest is the largest manifest served (maxManifestBytes; tests
	// lower it).
	maxManifest int
	// divergence tracks, on a backup, channels whose manifest differs
	// from the primary's (under mu).
	divergence failover.Divergence

	wake chan struct{} // transmitter: new work

	// sent measures the rate the transmitter actually sends at (written
	// by the transmitter only): a sender held back by its CPU sends
	// below its pacing rate, and Feedback caps from what it sends.
	sent ratectl.DrainMeter

	// waves counts each channel's manifest fetches per version, and
	// hurry is the timer that starts its pending first passes once the
	// receivers hold the new manifest; firstPassWait is the latest first
	// pass's wait, in nanoseconds.
	waves         map[uint32]*fetchWave
	hurry         map[uint32]*time.Timer
	firstPassWait atomic.Int64
	rescan        chan struct{} // scanner: rescan now
	announce      chan struct{} // transmitter: announce now
	readyCh       chan struct{}
}

// Option changes how a Sender is built; for tests.
type Option func(*Sender)

// WithClock injects the clock.
func WithClock(now func() time.Time) Option { return func(s *Sender) { s.now = now } }

// New validates cfg and returns a sender that is not yet running.
func New(cfg Config, log hclog.Logger, opts ...Option) (*Sender, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sender config: %w", err)
	}
	scanner, err := manifest.NewScanner(uint32(cfg.ChunkSize))
	if err != nil {
		return nil, err
	}
	s := &Sender{
		cfg:          cfg,
		log:          log,
		txLog:        log.Named("tx"),
		foLog:        log.Named("failover"),
		now:          time.Now,
		scanner:      scanner,
		channels:     make(map[string]*channel),
		byID:         make(map[uint32]*channel),
		maxManifest:  maxManifestBytes,
		skipped:      make(map[string]int),
		emptyAlerted: make(map[string]time.Time),
		state:        pb.SenderState_SENDER_STATE_STARTING,
		wake:         make(chan struct{}, 1),
		waves:        make(map[uint32]*fetchWave),
		hurry:        make(map[uint32]*time.Timer),
		rescan:       make(chan struct{}, 1),
		announce:     make(chan struct{}, 1),
		readyCh:      make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	now := s.now()
	s.stateSince = now
	s.started = now
	s.epoch = uint64(now.UnixNano())
	s.sched = scheduler.New(cfg.Scheduler, now)
	if cfg.Role == Backup {
		fo := cfg.Failover
		fo.Grace = cfg.PrimaryGrace
		s.fo = failover.NewBackup(fo, now)
		// Two senders that rescan at different moments differ for up
		// to a rescan interval after each change.
		s.divergence.Grace = 2*cfg.RescanInterval + cfg.CompareInterval
	}
	if s.keys, err = cfg.Packet.Keyring(); err != nil {
		return nil, err
	}
	if cfg.ManifestKey != "" {
		if s.manifestKey, err = manifest.LoadSigningKey(cfg.ManifestKey); err != nil {
			return nil, err
		}
	}
	s.restored = s.loadPasses()
	if cfg.Rate > 0 && cfg.AdaptiveRate {
		s.rateCtl = ratectl.New(ratectl.DefaultConfig(float64(cfg.Rate)), now)
	}
	if cfg.Peer != "" {
		if s.peer, err = rpc.Dial(cfg.Peer, cfg.DialOptions...); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// signedProto returns the wire form of m, signed when the sender has a
// manifest key.
func (s *Sender) signedProto(m *manifest.Manifest) *pb.Manifest {
	p := m.Proto()
	if s.manifestKey != nil {
		p.Signature = manifest.Sign(m, s.manifestKey)
	}
	return p
}

// identify tells a manifest's reader which sender serves it and whether
// that sender is the cloud's active one: receivers delete content only on
// an active sender's manifest.
func (s *Sender) identify(resp *pb.GetManifestResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resp.Role = roleProto(s.cfg.Role)
	resp.State = s.state
	resp.Epoch = s.epoch
	resp.SenderId = s.cfg.ID
}

// Stats returns the sender's counters.
func (s *Sender) Stats() *Counters { return &s.stats }

// Epoch returns the sender's current epoch.
func (s *Sender) Epoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// Ready is closed once the first scan is done and the data plane is up.
func (s *Sender) Ready() <-chan struct{} { return s.readyCh }

// Run scans the origin, opens the multicast socket and runs the
// transmitter until ctx is done.
func (s *Sender) Run(ctx context.Context) error {
	// The loops below end with the transmitter too: a failed socket must
	// not leave Run waiting for them.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tx, err := newTransmitter(s)
	if err != nil {
		return err
	}
	defer tx.close()
	if s.peer != nil {
		defer s.peer.Close()
	}
	if err := s.scanAll(ctx); err != nil {
		return err
	}
	if s.cfg.Role == Primary && s.peer != nil {
		s.signalBackup(ctx)
	}
	epoch, channels := s.markReady()
	s.log.Info("sender ready", "id", s.cfg.ID, "role", s.cfg.Role, "epoch", epoch,
		"group", s.cfg.Multicast.GroupAddr(), "interface", s.cfg.Multicast.Interface, "ttl", s.cfg.Multicast.TTL,
		"rate", s.cfg.Rate, "chunk_size", s.cfg.ChunkSize, "channels", channels)

	var listener *mcast.Receiver
	if s.peer != nil {
		// Hear the other sender on the group (S3).
		if listener, err = s.openListener(); err != nil {
			return fmt.Errorf("join the group to hear the other sender: %w", err)
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.scanLoop(ctx)
	}()
	if s.fo != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.watchPrimary(ctx)
		}()
	}
	if s.fo != nil && s.cfg.CompareInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.compareLoop(ctx)
		}()
	}
	if listener != nil {
		sock := listener
		wg.Add(2)
		go func() {
			defer wg.Done()
			s.listenGroup(ctx, sock)
		}()
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sock.Close()
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.persistLoop(ctx)
	}()
	err = tx.run(ctx)
	cancel()
	wg.Wait()
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	return err
}

func (s *Sender) setState(st pb.SenderState) {
	if s.state != st {
		s.state = st
		s.stateSince = s.now()
	}
}

func (s *Sender) scanLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RescanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.rescan:
		}
		if err := s.scanAll(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("origin scan failed", "error", err)
		}
	}
}

// Rescan asks for a rescan of the origin as soon as possible.
func (s *Sender) Rescan() {
	select {
	case s.rescan <- struct{}{}:
	default:
	}
}

// fetchQuiet is how long after the last manifest fetch of a channel the
// wave of fetches an ANNOUNCE sets off may count as over, and waveSpan
// how long after a version's first fetch its wave's fetches are counted.
const (
	fetchQuiet = 50 * time.Millisecond
	waveSpan   = time.Second
)

// fetchWave counts the fetches of a channel's manifest: those of the
// current version in the first waveSpan after its first fetch (the wave
// its ANNOUNCE set off), and the same count for the previous version.
// When as many fetched the new version as fetched the previous one, and
// none for fetchQuiet, the receivers hold it and the first passes of its
// new objects may start, rather than after the whole FirstPassDelay; a
// receiver slow to fetch (or a periodic refresh inflating the previous
// count) only delays that, up to FirstPassDelay. No receiver is
// remembered, only counts.
type fetchWave struct {
	version     uint64
	start, last time.Time
	n, prev     int
}

// note counts a fetch of version at now.
func (w *fetchWave) note(version uint64, now time.Time) {
	if version != w.version {
		if w.version != 0 {
			w.prev = w.n
		}
		w.version, w.start, w.n = version, now, 0
	}
	if now.Sub(w.start) < waveSpan {
		w.n++
	}
	w.last = now
}

// settled reports whether the receivers hold the current version: the
// previous wave's count reached and no fetch for fetchQuiet. wait is how
// much longer the quiet needs.
func (w *fetchWave) settled(now time.Time) (ok bool, wait time.Duration) {
	if since := now.Sub(w.last); since < fetchQuiet {
		return false, fetchQuiet - since
	}
	return w.prev > 0 && w.n >= w.prev, 0
}

// noteFetch records a fetch of a channel's manifest version and arms the
// timer that hurries its pending first passes once the receivers hold it.
func (s *Sender) noteFetch(id uint32, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.waves[id]
	if w == nil {
		w = &fetchWave{}
		s.waves[id] = w
	}
	w.note(version, time.Now())
	if s.hurry[id] == nil {
		s.hurry[id] = time.AfterFunc(fetchQuiet, func() { s.hurryFirstPasses(id) })
	}
}

// hurryFirstPasses starts a channel's pending first passes when its wave
// of fetches has settled, waits for the rest of the quiet, or gives up
// (FirstPassDelay applies).
func (s *Sender) hurryFirstPasses(id uint32) {
	s.mu.Lock()
	ok, wait := s.waves[id].settled(time.Now())
	if wait > 0 {
		s.hurry[id].Reset(wait)
		s.mu.Unlock()
		return
	}
	delete(s.hurry, id)
	n := 0
	if ok && s.state == pb.SenderState_SENDER_STATE_ACTIVE {
		n = s.sched.Hurry(id, s.now())
	}
	s.mu.Unlock()
	if n > 0 {
		s.poke(s.wake)
	}
}

func (s *Sender) poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// channelNames returns the configured channels, or every subdirectory of
// the origin with a valid channel name.
func (s *Sender) channelNames() ([]string, error) {
	if len(s.cfg.Channels) > 0 {
		return s.cfg.Channels, nil
	}
	entries, err := os.ReadDir(s.cfg.OriginDir)
	if err != nil {
		return nil, fmt.Errorf("list origin %s: %w", s.cfg.OriginDir, err)
	}
	var names []string
	seen := map[uint32]string{}
	for _, e := range entries {
		if manifest.ValidateChannelName(e.Name()) != nil {
			continue
		}
		// A channel directory may be a symlink to one.
		if fi, err := os.Stat(filepath.Join(s.cfg.OriginDir, e.Name())); err != nil || !fi.IsDir() {
			continue
		}
		id := manifest.ChannelID(e.Name())
		if other, dup := seen[id]; dup {
			s.log.Warn("channel id collision; skipping channel", "channel", e.Name(), "other", other)
			continue
		}
		seen[id] = e.Name()
		names = append(names, e.Name())
	}
	return names, nil
}

// scanAll rescans every channel and applies the changes: new and changed
// objects enter the scheduler (with a first pass when this sender is
// active), removed ones leave it.
func (s *Sender) scanAll(ctx context.Context) error {
	s.scanMu.Lock()
	defer s.scanMu.Unlock()
	names, err := s.channelNames()
	if err != nil {
		return err
	}
	live := make(map[string]bool, len(names))
	for _, name := range names {
		live[name] = true
		if err := s.scanChannel(ctx, name); err != nil {
			return err
		}
	}
	s.mu.Lock()
	for name, ch := range s.channels {
		if !live[name] {
			s.sched.RemoveChannel(ch.id)
			delete(s.channels, name)
			delete(s.byID, ch.id)
			s.log.Info("channel removed", "channel", name)
		}
	}
	s.mu.Unlock()
	return nil
}

// scanChannel scans one channel's directory and applies the result.
// Called with s.scanMu held, so that an older scan never overwrites a
// newer one.
func (s *Sender) scanChannel(ctx context.Context, name string) error {
	dir := filepath.Join(s.cfg.OriginDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("channel %s: %w", name, err)
	}
	res, err := s.scanner.Scan(ctx, dir, name, s.now())
	if err != nil {
		return err
	}
	s.reportSkipped(name, res.Skipped)
	if !s.cfg.AllowEmptyScan && len(res.Manifest.Objects) == 0 {
		s.mu.Lock()
		cur := s.channels[name]
		s.mu.Unlock()
		if cur != nil && len(cur.m.Objects) > 0 {
			s.emptyScan(name, dir, len(cur.m.Objects), len(res.Skipped))
			return nil
		}
	}
	s.apply(name, dir, res)
	return nil
}

// reportSkipped logs the origin entries a scan could not make objects of:
// a WARN line whenever their number changes (with a few of them), each at
// DEBUG.
func (s *Sender) reportSkipped(name string, skipped []manifest.Skipped) {
	for _, sk := range skipped {
		s.log.Debug("origin file skipped", "channel", name, "path", sk.Path, "reason", sk.Reason)
	}
	s.mu.Lock()
	changed := s.skipped[name] != len(skipped)
	s.skipped[name] = len(skipped)
	s.mu.Unlock()
	if changed && len(skipped) > 0 {
		var some []string
		for _, sk := range skipped[:min(len(skipped), 5)] {
			some = append(some, sk.Path+": "+sk.Reason)
		}
		s.log.Warn("origin entries skipped: not distributed", "channel", name, "count", len(skipped), "some", some)
	}
}

// emptyScan keeps a channel's manifest when a scan of its directory found
// nothing where there were objects: the directory is more likely unmounted
// or replaced than emptied on purpose (-allow-empty-scan says otherwise).
func (s *Sender) emptyScan(name, dir string, had, skipped int) {
	msg := fmt.Sprintf("origin scan of channel %q in %s found no object where the manifest has %d (%d entries skipped): keeping the manifest; "+
		"check the directory, or run with -allow-empty-scan to empty channels by scan", name, dir, had, skipped)
	s.log.Error("origin scan found an empty channel; keeping its manifest", "channel", name, "dir", dir, "objects", had, "skipped", skipped)
	s.mu.Lock()
	last := s.emptyAlerted[name]
	now := s.now()
	if now.Sub(last) >= time.Minute || now.Before(last) {
		s.emptyAlerted[name] = now
		s.alerts.Raise(&pb.Alert{
			Time:    timestamppb.New(now),
			Kind:    pb.AlertKind_ALERT_KIND_MANIFEST_MISMATCH,
			Source:  s.cfg.ID,
			Channel: name,
			Message: msg,
		})
	}
	s.mu.Unlock()
}

func (s *Sender) apply(name, dir string, res *manifest.ScanResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.channels[name]
	if cur != nil && cur.m.Version == res.Manifest.Version {
		cur.files = res.Files // identities may change without content changes
		return
	}
	if cur != nil && !res.Manifest.GeneratedAt.After(cur.m.GeneratedAt) {
		// The clock was set back: stamp manifests in order all the
		// same, since receivers ignore a manifest older than the one
		// they hold from this sender incarnation.
		res.Manifest.GeneratedAt = cur.m.GeneratedAt.Add(time.Millisecond)
	}
	ch := &channel{
		name:  name,
		id:    res.Manifest.ChannelID,
		dir:   dir,
		m:     res.Manifest,
		proto: s.signedProto(res.Manifest),
		files: res.Files,
		stats: carryCounters(cur),
	}
	if n := proto.Size(ch.proto); n > s.maxManifest {
		// Receivers stream manifests (StreamManifest); only GetManifest,
		// one message, cannot carry this one.
		ch.tooLarge = fmt.Errorf("channel %q: its manifest of %d objects is %d bytes, more than the %d one message may carry; StreamManifest serves it (receivers and nackctl use it): %w",
			name, len(ch.m.Objects), n, s.maxManifest, ErrManifestTooLarge)
		s.log.Info("manifest larger than one message: served by StreamManifest only", "channel", name, "objects", len(ch.m.Objects), "bytes", n, "limit", s.maxManifest)
	}
	s.channels[name] = ch
	s.byID[ch.id] = ch
	// Step 400: a primary multicasts new objects without being asked; so
	// does an active backup. A backup standing by waits for NACKs.
	firstPass := s.cfg.Role == Primary || s.state == pb.SenderState_SENDER_STATE_ACTIVE
	added, changed, removed := s.sched.SetObjects(ch.id, res.Manifest.Objects, firstPass, s.now())
	s.restorePasses(ch)
	s.passesDirty = true
	s.log.Info("channel manifest", "channel", name, "version", fmt.Sprintf("%016x", ch.m.Version),
		"objects", len(ch.m.Objects), "bytes", ch.m.TotalBytes(), "added", added, "changed", changed, "removed", removed, "hashed", res.Hashed)
	s.poke(s.wake)
	s.poke(s.announce)
}

// markReady ends start-up: the sender serves its manifests and, as a
// primary, becomes active; a backup stands by. Calls waiting for the
// sender to be ready go on. It returns the epoch and the number of
// channels at that moment: from then on, RPCs change them (a backup's
// take-over, a publication), so they are only read under s.mu.
func (s *Sender) markReady() (epoch uint64, channels int) {
	s.mu.Lock()
	s.ready = true
	if s.cfg.Role == Backup {
		s.setState(pb.SenderState_SENDER_STATE_STANDBY)
	} else {
		s.setState(pb.SenderState_SENDER_STATE_ACTIVE)
	}
	epoch, channels = s.epoch, len(s.channels)
	s.mu.Unlock()
	close(s.readyCh)
	return epoch, channels
}

// lookup returns a channel by name.
func (s *Sender) lookup(name string) (*channel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready {
		return nil, ErrNotReady
	}
	ch, ok := s.channels[name]
	if !ok {
		return nil, fmt.Errorf("channel %q: %w", name, ErrUnknownChannel)
	}
	return ch, nil
}

// channelList returns the channels sorted by name.
func (s *Sender) channelList() []*channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*channel, 0, len(s.channels))
	for _, ch := range s.channels {
		out = append(out, ch)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// openObject opens the origin file of obj and checks that it is still the
// file the manifest was built from.
func (s *Sender) openObject(ch *channel, obj *manifest.Object) (*os.File, error) {
	s.mu.Lock()
	want, ok := ch.files[obj.Path]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s/%s: %w", ch.name, obj.Path, ErrChanged)
	}
	f, err := os.Open(filepath.Join(ch.dir, filepath.FromSlash(obj.Path)))
	if err != nil {
		s.Rescan()
		return nil, fmt.Errorf("%s/%s: %w: %w", ch.name, obj.Path, ErrChanged, err)
	}
	fi, err := f.Stat()
	if err != nil || !manifest.IdentityOf(fi).Equal(want) {
		f.Close()
		s.Rescan()
		return nil, fmt.Errorf("%s/%s: %w", ch.name, obj.Path, ErrChanged)
	}
	return f, nil
}

// Status returns a snapshot of the sender's state.
func (s *Sender) Status(includeObjects bool) *pb.SenderStatus {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	inFlight, pooled := s.sched.Load()
	st := &pb.SenderStatus{
		Build:        version.Get().Proto(),
		Started:      timestamp(s.started),
		SenderId:     s.cfg.ID,
		Role:         roleProto(s.cfg.Role),
		State:        s.state,
		Epoch:        s.epoch,
		StateSince:   timestamp(s.stateSince),
		NackRate:     s.sched.NackRate(now),
		NackInterval: duration(s.sched.NackInterval(now)),
		JobsInFlight: uint32(inFlight),
		JobsPooled:   uint32(pooled),
		Takeovers:    s.takeovers,
		Rate:         s.currentRate(now),
		LastFirstPassWait: func() *durationpb.Duration {
			if d := s.firstPassWait.Load(); d > 0 {
				return durationpb.New(time.Duration(d))
			}
			return nil
		}(),
		RateDecreases: func() uint64 {
			if s.rateCtl == nil {
				return 0
			}
			return s.rateCtl.Decreases() + s.rateCtl.Caps()
		}(),
		Counters: &pb.SenderCounters{
			PacketsSent:       s.stats.PacketsSent.Load(),
			BytesSent:         s.stats.BytesSent.Load(),
			DataBytesSent:     s.stats.DataBytesSent.Load(),
			Passes:            s.stats.Passes.Load(),
			RepairPasses:      s.stats.RepairPasses.Load(),
			ParityPacketsSent: s.stats.ParityPacketsSent.Load(),
			Nacks:             s.stats.Nacks.Load(),
			RepliesWait:       s.stats.RepliesWait.Load(),
			RepliesUnicast:    s.stats.RepliesUnicast.Load(),
			RepliesNotFound:   s.stats.RepliesNotFound.Load(),
			Pulls:             s.stats.Pulls.Load(),
			PullBytes:         s.stats.PullBytes.Load(),
		},
	}
	st.Alerts, st.RecentAlerts = s.alerts.Snapshot()
	st.DivergedChannels = s.divergence.Diverged()
	slices.Sort(st.DivergedChannels)
	if s.fo != nil {
		st.Primary = s.cfg.Peer
		st.PrimaryAlive = s.primaryAlive
		if !s.primaryCheckedAt.IsZero() {
			st.PrimaryCheckedAt = timestamp(s.primaryCheckedAt)
		}
		if !s.primarySeen.IsZero() {
			st.PrimarySeenAt = timestamp(s.primarySeen)
			st.PrimaryEpoch, st.PrimaryState = s.primaryEpoch, s.primaryState
		}
	}
	names := make([]string, 0, len(s.channels))
	for n := range s.channels {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		ch := s.channels[n]
		cs := &pb.SenderChannelStatus{
			Channel:         ch.name,
			ChannelId:       ch.id,
			ManifestVersion: ch.m.Version,
			ObjectCount:     uint32(len(ch.m.Objects)),
			TotalBytes:      ch.m.TotalBytes(),
		}
		if includeObjects {
			for _, o := range ch.m.Objects {
				os, _ := s.sched.Lookup(scheduler.Key{Channel: ch.id, Object: o.ID})
				cs.Objects = append(cs.Objects, &pb.SenderObjectStatus{
					ObjectId: o.ID,
					Path:     o.Path,
					Size:     o.Size,
					Passes:   os.Passes,
					State:    jobStateProto(os.State),
				})
			}
		}
		st.Channels = append(st.Channels, cs)
	}
	return st
}

// currentRate returns the pacing rate now (0 when unpaced). Called with
// s.mu held.
func (s *Sender) currentRate(now time.Time) float64 {
	if s.rateCtl != nil {
		return s.rateCtl.Rate(now)
	}
	return float64(s.cfg.Rate)
}

// adaptRate folds a receiver's overrun report into the rate and applies
// the result to the pacer. Called with s.mu held.
func (s *Sender) adaptRate(now time.Time, received, drops uint64, readRate float64) {
	if s.rateCtl == nil {
		return
	}
	before := s.rateCtl.Decreases()
	r := s.rateCtl.Report(now, received, drops, readRate)
	if s.rateCtl.Decreases() != before {
		s.txLog.Info("receivers overrun: lowering the rate", "rate", int64(r), "dropped", drops, "received", received)
	}
	s.applyRate(r)
}

// applyRate sets the pacer's rate when it moved by more than 1%. Called
// with s.mu held.
func (s *Sender) applyRate(r float64) {
	if s.limiter == nil {
		return
	}
	cur := float64(s.limiter.Limit())
	if cur == 0 || r < cur*0.99 || r > cur*1.01 {
		s.limiter.SetLimit(rate.Limit(r))
	}
}
