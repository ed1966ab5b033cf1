package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// TestManagerProgram runs pkg/client's example manager, then nackctl,
// against real processes over mutual TLS: each assigns channel d to two
// receivers at runtime, waits until both hold it, takes it from one (its
// copy deleted) and shows the fleet view.
func TestManagerProgram(t *testing.T) {
	skipShort(t)
	cl, dir := newCloud(t)
	if err := cl.EnableTLS(); err != nil {
		t.Fatal(err)
	}
	origin := filepath.Join(dir, "origin")
	writeFile(t, filepath.Join(origin, "c", "c.txt"), []byte("channel c"))
	for i, size := range []int{300 << 10, 5 << 10, 1} {
		writeFile(t, filepath.Join(origin, "d", "part", string(rune('a'+i))+".bin"), bytes.Repeat([]byte{byte(i)}, size))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	run, err := cl.Distribute(ctx, cloud.Distribution{Origin: origin, Channel: "c", Receivers: 2, SenderArgs: []string{"-channels", "c,d"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.Wait(ctx, time.Minute, 100*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	admin, err := cl.Issue("manager", "admin")
	if err != nil {
		t.Fatal(err)
	}
	r1, r2 := run.Receivers[0], run.Receivers[1]
	tlsEnv := append(os.Environ(), "NACKCAST_TLS_CA="+admin.CA, "NACKCAST_TLS_CERT="+admin.Cert, "NACKCAST_TLS_KEY="+admin.Key)

	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "manager"), "-sender", run.Sender.Addr, "-channel", "d",
		"-receivers", r1.Addr+","+r2.Addr, "-drop", r2.Addr, "-timeout", "90s")
	cmd.Env = tlsEnv
	out, err := cmd.CombinedOutput()
	t.Logf("manager:\n%s", out)
	if err != nil {
		t.Fatalf("manager: %v", err)
	}
	for _, want := range []string{
		r1.Addr + ": subscribed to d (channels c,d)",
		r2.Addr + ": holds d at manifest",
		r2.Addr + ": unsubscribed from d, 3 objects deleted",
		"fleet: channel c: 2 receivers, 2 complete, 0 behind, 0 in progress, 0 stuck",
		"fleet: channel d: 1 receivers, 1 complete, 0 behind, 0 in progress, 0 stuck",
		"fleet: receiver-1 (" + r1.Addr + "): c=complete d=complete",
		"fleet: receiver-2 (" + r2.Addr + "): c=complete",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("manager output lacks %q", want)
		}
	}
	verifyChannel(t, origin, run.DataDir(r1), "d")
	if _, err := os.Stat(filepath.Join(run.DataDir(r2), "d")); !os.IsNotExist(err) {
		t.Errorf("receiver-2 still holds channel d: %v", err)
	}

	// nackctl does the same the other way round, with the same files.
	ctl := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "nackctl"), args...)
		cmd.Env = tlsEnv
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("nackctl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	ctl("subscribe", "-channel", "d", r2.Addr)
	ctl("wait", "-for", "60s", r2.Addr)
	ctl("unsubscribe", "-channel", "d", "-remove", r1.Addr)
	human := ctl("fleet", "-sender", run.Sender.Addr, r1.Addr, r2.Addr, reserveAddr(t))
	t.Logf("nackctl fleet:\n%s", human)
	if !strings.Contains(human, "2 receivers answered, 1 unreachable") || !strings.Contains(human, "UNREACHABLE") {
		t.Errorf("nackctl fleet does not show the unreachable receiver")
	}
	var v pb.FleetView
	if err := protojson.Unmarshal([]byte(ctl("-o", "json", "fleet", "-sender", run.Sender.Addr, r1.Addr, r2.Addr)), &v); err != nil {
		t.Fatal(err)
	}
	for _, ch := range v.GetChannels() {
		want := map[string]uint32{"c": 2, "d": 1}[ch.GetChannel()]
		if ch.GetReceivers() != want || ch.GetComplete() != want {
			t.Errorf("fleet JSON, channel %s: %d receivers, %d complete; want %d of %d", ch.GetChannel(), ch.GetReceivers(), ch.GetComplete(), want, want)
		}
	}
	verifyChannel(t, origin, run.DataDir(r2), "d")
	if _, err := os.Stat(filepath.Join(run.DataDir(r1), "d")); !os.IsNotExist(err) {
		t.Errorf("receiver-1 still holds channel d: %v", err)
	}
}
