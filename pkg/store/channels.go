package store

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/nackcast/nackcast/pkg/manifest"
)

// This file keeps the receiver's subscriptions, as changed at runtime by a
// CDN manager, and removes a channel's content when it is unsubscribed.

const subscriptionsFile = stateDir + "/subscriptions"

// SaveSubscriptions persists the subscribed channels, one name per line,
// atomically and durably.
func (s *Store) SaveSubscriptions(channels []string) error {
	for _, c := range channels {
		if err := manifest.ValidateChannelName(c); err != nil {
			return err
		}
	}
	data := strings.Join(channels, "\n")
	if len(channels) > 0 {
		data += "\n"
	}
	if err := s.writeAtomic(subscriptionsFile, []byte(data)); err != nil {
		return err
	}
	return s.syncDir(stateDir)
}

// LoadSubscriptions returns the persisted subscriptions; ok is false when
// none were ever saved (the receiver then starts from its configuration).
func (s *Store) LoadSubscriptions() (channels []string, ok bool, err error) {
	data, err := s.root.ReadFile(subscriptionsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	channels = []string{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		if err := manifest.ValidateChannelName(line); err != nil {
			return nil, false, fmt.Errorf("%s in the data directory: %w", subscriptionsFile, err)
		}
		channels = append(channels, line)
	}
	return channels, true, nil
}

// RemoveChannel deletes everything the data directory holds of channel:
// its verified files, its partial files and its persisted manifest. The
// caller makes sure nothing writes into the channel meanwhile.
func (s *Store) RemoveChannel(channel string) error {
	if err := manifest.ValidateChannelName(channel); err != nil {
		return err
	}
	// The partial directory goes under the lock that partRoot takes: a
	// late caller (a pull of the unsubscribed channel still under way)
	// must not cache a handle of the directory being deleted, which a new
	// subscription would then use.
	s.mu.Lock()
	if r := s.partDirs[channel]; r != nil {
		r.Close()
		delete(s.partDirs, channel)
	}
	for d := range s.madeDirs {
		if d == channel || strings.HasPrefix(d, channel+"/") {
			delete(s.madeDirs, d)
		}
	}
	err := s.root.RemoveAll(stateDir + "/partial/" + channel)
	s.mu.Unlock()
	err = errors.Join(err, s.root.RemoveAll(channel))
	if rerr := s.root.Remove(stateDir + "/manifests/" + channel + ".pb"); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return err
	}
	return errors.Join(s.syncDir("."), s.syncDir(stateDir+"/partial"), s.syncDir(stateDir+"/manifests"))
}
