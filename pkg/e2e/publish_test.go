package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/client"
	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/scheduler"
)

// defaultFirstPassDelay is the sender's -first-pass-delay by default.
var defaultFirstPassDelay = scheduler.DefaultConfig().FirstPassDelay

// TestPublishStartsOnceReceiversHoldManifest: an object published into a
// running cloud gets its first pass as soon as the receivers have fetched
// the new manifest (as many fetches as of the previous version, then
// 50 ms of quiet), not after the whole -first-pass-delay (500 ms by
// default), and no packet of it reaches a receiver before its manifest
// does. (An earlier rule, 20 ms of quiet alone, started a pass under CI
// load before one receiver had fetched: 990 packets came first.)
func TestPublishStartsOnceReceiversHoldManifest(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	origin := filepath.Join(dir, "origin")
	writeFiles(t, filepath.Join(origin, "c"), "a.bin", "b.bin")
	cl, err := cloud.New(binDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	// Receivers with the default -manifest-refresh: the sender counts
	// the wave of fetches of each manifest version.
	run, err := cl.Distribute(ctx, cloud.Distribution{
		Origin:       origin,
		Channel:      "c",
		Receivers:    3,
		SenderArgs:   []string{"-rate", "16M", "-log-level", "info"},
		ReceiverArgs: []string{"-log-level", "info"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.Wait(ctx, time.Minute, 50*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	before, err := run.Statuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(dir, "new.bin")
	if err := os.WriteFile(local, make([]byte, 3<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PublishFile(ctx, pb.NewSenderServiceClient(run.Sender.Conn()), "c", "new.bin", local); err != nil {
		t.Fatal(err)
	}
	after := waitObjects(t, ctx, run, 3, "every receiver holds the published object")
	st, err := run.Sender.SenderStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wait := st.GetLastFirstPassWait().AsDuration()
	t.Logf("first pass of the published object began %v after it entered the manifest", wait)
	if wait <= 0 || wait >= defaultFirstPassDelay {
		t.Errorf("first pass waited %v, want less than the %v -first-pass-delay", wait, defaultFirstPassDelay)
	}
	for i, a := range after {
		if d := a.GetCounters().GetPacketsForeign() - before[i].GetCounters().GetPacketsForeign(); d != 0 {
			t.Errorf("%s: %d packets arrived before the manifest that names their object", a.GetReceiverId(), d)
		}
	}
}
