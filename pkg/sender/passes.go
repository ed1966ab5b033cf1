package sender

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nackcast/nackcast/pkg/scheduler"
)

// A primary keeps, across restarts, which version of each object it knew
// and how many times it multicast it, so that a restarted primary does not
// send its whole origin again as "new" (step 400 is for new and changed
// objects); receivers NACK whatever they still lack. This is per-object
// state, not per-receiver state.

const passesFile = "passes.json"

type passRecord struct {
	Channel string `json:"c"`
	Object  string `json:"o"`
	Version string `json:"v"`
	Passes  uint32 `json:"p"`
}

type passEntry struct {
	version uint64
	passes  uint32
}

// stateDir returns the directory for the primary's state, or "" when
// persistence is off (a backup, or -state-dir none).
func (c Config) stateDir() string {
	switch {
	case c.Role != Primary || c.StateDir == "none":
		return ""
	case c.StateDir == "":
		return filepath.Join(c.OriginDir, ".nackcast-sender")
	}
	return c.StateDir
}

// loadPasses reads the pass records of an earlier run, by channel name and
// object id. A missing file is an empty record; a corrupt one is logged
// and ignored (the cost is one more pass of everything).
func (s *Sender) loadPasses() map[string]map[uint64]passEntry {
	dir := s.cfg.stateDir()
	if dir == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, passesFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var recs []passRecord
	if err == nil {
		err = json.Unmarshal(data, &recs)
	}
	if err != nil {
		s.log.Warn("ignoring the pass records of an earlier run", "dir", dir, "error", err)
		return nil
	}
	out := make(map[string]map[uint64]passEntry)
	for _, r := range recs {
		id, err1 := strconv.ParseUint(r.Object, 16, 64)
		v, err2 := strconv.ParseUint(r.Version, 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if out[r.Channel] == nil {
			out[r.Channel] = make(map[uint64]passEntry)
		}
		out[r.Channel][id] = passEntry{version: v, passes: r.Passes}
	}
	return out
}

// restorePasses applies the records of channel to the scheduler once.
// Called with s.mu held.
func (s *Sender) restorePasses(ch *channel) {
	recs, ok := s.restored[ch.name]
	if !ok {
		return
	}
	delete(s.restored, ch.name)
	n := 0
	for id, e := range recs {
		if s.sched.Restore(scheduler.Key{Channel: ch.id, Object: id}, e.version, e.passes) {
			n++
		}
	}
	if n > 0 {
		s.log.Info("objects known before the restart get no first pass", "channel", ch.name, "objects", n)
	}
}

// savePasses writes the pass records atomically.
func (s *Sender) savePasses() error {
	dir := s.cfg.stateDir()
	if dir == "" {
		return nil
	}
	s.mu.Lock()
	if !s.passesDirty {
		s.mu.Unlock()
		return nil
	}
	s.passesDirty = false
	names := make(map[uint32]string, len(s.channels))
	for _, ch := range s.channels {
		names[ch.id] = ch.name
	}
	var recs []passRecord
	for _, o := range s.sched.Known() {
		if name, ok := names[o.Key.Channel]; ok {
			recs = append(recs, passRecord{Channel: name, Object: fmt.Sprintf("%016x", o.Object.ID), Version: fmt.Sprintf("%016x", o.Object.Version), Passes: o.Passes})
		}
	}
	s.mu.Unlock()
	data, err := json.Marshal(recs)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, passesFile+".tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, passesFile))
	}
	if err != nil {
		os.Remove(tmp)
		s.mu.Lock()
		s.passesDirty = true
		s.mu.Unlock()
	}
	return err
}

// persistLoop saves the pass records every couple of seconds while they
// change, and once more on the way out.
func (s *Sender) persistLoop(ctx context.Context) {
	if s.cfg.stateDir() == "" {
		return
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			if err := s.savePasses(); err != nil {
				s.log.Warn("cannot save pass records", "error", err)
			}
			return
		case <-t.C:
		}
		if err := s.savePasses(); err != nil && !warned {
			s.log.Warn("cannot save pass records; a restart will multicast everything again", "dir", s.cfg.stateDir(), "error", err)
			warned = true
		}
	}
}
