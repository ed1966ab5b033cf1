package store

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

func TestSubscriptions(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if got, ok, err := s.LoadSubscriptions(); ok || err != nil || got != nil {
		t.Fatalf("fresh store: %v %v %v, want none saved", got, ok, err)
	}
	for _, want := range [][]string{{"a", "b"}, {}, {"news"}} {
		if err := s.SaveSubscriptions(want); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.LoadSubscriptions()
		if !ok || err != nil || !slices.Equal(got, want) {
			t.Errorf("saved %v, loaded %v %v %v", want, got, ok, err)
		}
	}
	if err := s.SaveSubscriptions([]string{"../x"}); err == nil {
		t.Error("saved an invalid channel name")
	}
	if err := os.WriteFile(filepath.Join(dir, stateDir, "subscriptions"), []byte("ok\n../evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.LoadSubscriptions(); err == nil {
		t.Error("loaded a hostile subscriptions file")
	}
}

func TestRemoveChannel(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	for _, p := range []string{"gone/a/b.bin", "kept/c.bin"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, ch := range []string{"gone", "kept"} {
		if _, err := s.partRoot(ch); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveManifest(&pb.Manifest{Channel: ch}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RemoveChannel("gone"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"gone", stateDir + "/partial/gone", stateDir + "/manifests/gone.pb"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
	for _, p := range []string{"kept/c.bin", stateDir + "/partial/kept", stateDir + "/manifests/kept.pb"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s of another channel: %v", p, err)
		}
	}
	if err := s.RemoveChannel("never"); err != nil {
		t.Errorf("removing a channel with nothing on disk: %v", err)
	}
	if err := s.RemoveChannel(".."); err == nil {
		t.Error("removed an invalid channel name")
	}
}
