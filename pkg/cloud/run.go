package cloud

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// Distribution describes one distribution of a channel to receivers.
type Distribution struct {
	// Origin is the sender's origin directory; Channel one directory in it.
	Origin  string
	Channel string
	// Receivers is how many receivers to start.
	Receivers int
	// Loss is the fraction of datagrams each receiver drops (test hook).
	Loss float64
	// Backup starts a backup sender too, on the same group, over
	// BackupOrigin (default: Origin).
	Backup       bool
	BackupOrigin string
	// SenderArgs, BackupArgs and ReceiverArgs are extra flags.
	SenderArgs   []string
	BackupArgs   []string
	ReceiverArgs []string
}

// Run is a started distribution.
type Run struct {
	Sender    *Proc
	Backup    *Proc // nil without a backup
	Receivers []*Proc
	Start     time.Time
	spec      Distribution
	dir       string
	cloud     *Cloud
}

// Distribute starts a distribution and waits until every process serves.
// Without a backup the receivers start first, as after a CDN rollout they
// wait for their sender. With one, the backup and the primary start first,
// so that receivers do not find the primary missing and wake the backup.
func (c *Cloud) Distribute(ctx context.Context, d Distribution) (*Run, error) {
	addr, err := FreeTCPAddr()
	if err != nil {
		return nil, err
	}
	run := &Run{spec: d, dir: c.Dir, cloud: c}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var senderArgs, receiverArgs []string
	startSender := func() error {
		args := append([]string{"-origin", d.Origin, "-channels", d.Channel}, senderArgs...)
		run.Sender, err = c.StartAt("sender", "sender", addr, append(args, d.SenderArgs...)...)
		if err == nil {
			run.Start = time.Now()
		}
		return err
	}
	if d.Backup {
		origin := d.BackupOrigin
		if origin == "" {
			origin = d.Origin
		}
		run.Backup, err = c.Start("backup", "backup", append([]string{"-origin", origin, "-channels", d.Channel, "-primary", addr}, d.BackupArgs...)...)
		if err != nil {
			return nil, err
		}
		senderArgs = []string{"-backup", run.Backup.Addr}
		receiverArgs = []string{"-backup", run.Backup.Addr}
		if err := startSender(); err != nil {
			return nil, err
		}
		for _, p := range []*Proc{run.Backup, run.Sender} {
			if err := p.WaitServing(wctx); err != nil {
				return nil, err
			}
		}
	}
	for i := 1; i <= d.Receivers; i++ {
		name := fmt.Sprintf("receiver-%d", i)
		args := append([]string{"-id", name, "-data", filepath.Join(c.Dir, name), "-channels", d.Channel, "-primary", addr}, receiverArgs...)
		if d.Loss > 0 {
			args = append(args, "-test-loss", fmt.Sprint(d.Loss))
		}
		p, err := c.Start(name, "receiver", append(args, d.ReceiverArgs...)...)
		if err != nil {
			return nil, err
		}
		run.Receivers = append(run.Receivers, p)
	}
	if !d.Backup {
		if err := startSender(); err != nil {
			return nil, err
		}
	}
	for _, p := range append([]*Proc{run.Sender}, run.Receivers...) {
		if err := p.WaitServing(wctx); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// Restart starts a stopped process of the run again.
func (r *Run) Restart(p *Proc) error { return r.cloud.Restart(p) }

// AddReceiver starts one more receiver of the run's channel whose primary
// is the given address (the backup, if any, stays the run's), without
// adding it to Receivers, and waits until it serves.
func (r *Run) AddReceiver(name, primary string, args ...string) (*Proc, error) {
	base := []string{"-id", name, "-data", filepath.Join(r.dir, name), "-channels", r.spec.Channel, "-primary", primary}
	if r.Backup != nil {
		base = append(base, "-backup", r.Backup.Addr)
	}
	p, err := r.cloud.Start(name, "receiver", append(append(base, r.spec.ReceiverArgs...), args...)...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.WaitServing(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Statuses returns every receiver's status.
func (r *Run) Statuses(ctx context.Context) ([]*pb.ReceiverStatus, error) {
	out := make([]*pb.ReceiverStatus, len(r.Receivers))
	for i, p := range r.Receivers {
		if !p.Running() {
			return nil, p.exited()
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := p.ReceiverStatus(cctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s status: %w", p.Name, err)
		}
		out[i] = st
	}
	return out, nil
}

// Wait polls the receivers every interval until all are complete, calling
// progress (if not nil) with each round of statuses.
func (r *Run) Wait(ctx context.Context, timeout, interval time.Duration, progress func([]*pb.ReceiverStatus)) ([]*pb.ReceiverStatus, error) {
	deadline := time.After(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, fmt.Errorf("receivers not complete after %v (logs in %s)", timeout, r.dir)
		case <-tick.C:
		}
		sts, err := r.Statuses(ctx)
		if err != nil {
			return nil, err
		}
		if progress != nil {
			progress(sts)
		}
		done := true
		for _, st := range sts {
			done = done && st.GetComplete()
		}
		if done {
			return sts, nil
		}
	}
}

// Verify compares every receiver's copy of the channel with the origin by
// SHA-256, reading the files itself.
func (r *Run) Verify() error {
	want, err := Digests(filepath.Join(r.spec.Origin, r.spec.Channel))
	if err != nil {
		return err
	}
	for _, p := range r.Receivers {
		got, err := Digests(filepath.Join(r.DataDir(p), r.spec.Channel))
		if err != nil {
			return err
		}
		if err := Compare(want, got); err != nil {
			return fmt.Errorf("%s does not match the origin:\n%w", p.Name, err)
		}
	}
	return nil
}

// DataDir returns the data directory of receiver p of the run.
func (r *Run) DataDir(p *Proc) string { return filepath.Join(r.dir, p.Name) }

// CompletionTime returns how long a receiver took from its first manifest
// to holding the whole channel.
func CompletionTime(st *pb.ReceiverStatus) time.Duration {
	var d time.Duration
	for _, ch := range st.GetChannels() {
		d = max(d, ch.GetCompletionTime().AsDuration())
	}
	return d
}
