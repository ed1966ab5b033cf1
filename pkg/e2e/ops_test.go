package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/nackcast/nackcast/pkg/cloud"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// scrape reads a service's /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

// metric returns the value of the series of family name whose labels
// include the given name=value pairs.
func metric(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.GetCounter() != nil:
			return m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// nackctl runs the real CLI and returns its exit code and outputs.
func nackctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "nackctl"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// TestOperations drives a cloud of real processes the way an operator and
// a CDN manager do: metrics after a transfer, a file published with the
// CLI reaching the receivers (followed through the status stream), and the
// CLI's human and JSON output and its errors.
func TestOperations(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	cl, err := cloud.New(binDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	origin := filepath.Join(dir, "origin")
	total, err := (cloud.Sample{SmallFiles: 40, MaxSmall: 32 << 10, LargeBytes: 6 << 20, Empty: true, Seed: 31}).Generate(filepath.Join(origin, "c"))
	if err != nil {
		t.Fatal(err)
	}
	const objects = 43
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := cl.Distribute(ctx, cloud.Distribution{Origin: origin, Channel: "c", Receivers: 2, Backup: true,
		SenderArgs: []string{"-rescan", "1h"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := run.Wait(ctx, time.Minute, 100*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}

	// Metrics moved by the right amounts.
	sm := scrape(t, run.Sender.Metrics)
	if got := metric(t, sm, "nackcast_sender_passes_total", "kind", "first"); got != objects {
		t.Errorf("sender first passes = %v, want %d (one per object)", got, objects)
	}
	if got := metric(t, sm, "nackcast_sender_data_bytes_sent_total"); got < float64(total) {
		t.Errorf("sender content bytes sent = %v, want at least %d", got, total)
	}
	nacks := metric(t, sm, "nackcast_sender_nacks_total")
	if got := metric(t, sm, "grpc_server_handled_total", "grpc_method", "Nack", "grpc_code", "OK"); got != nacks {
		t.Errorf("gRPC Nack calls %v, sender NACK counter %v", got, nacks)
	}
	before := make([]map[string]*dto.MetricFamily, len(run.Receivers))
	for i, p := range run.Receivers {
		rm := scrape(t, p.Metrics)
		before[i] = rm
		got := metric(t, rm, "nackcast_receiver_bytes_received_total", "path", "multicast") + metric(t, rm, "nackcast_receiver_bytes_received_total", "path", "unicast")
		if got != float64(total) {
			t.Errorf("%s: received %v content bytes, want exactly %d", p.Name, got, total)
		}
		if got := metric(t, rm, "nackcast_receiver_objects_completed_total"); got != objects {
			t.Errorf("%s: objects completed = %v, want %d", p.Name, got, objects)
		}
		if got := metric(t, rm, "nackcast_receiver_channel_complete", "channel", "c"); got != 1 {
			t.Errorf("%s: channel complete = %v, want 1", p.Name, got)
		}
		if got := metric(t, rm, "nackcast_receiver_objects", "channel", "c", "state", "complete"); got != objects {
			t.Errorf("%s: complete objects gauge %v, want %d", p.Name, got, objects)
		}
	}

	// Publish with the CLI; follow the receivers through the status stream.
	file := filepath.Join(dir, "fresh.bin")
	content := bytes.Repeat([]byte("fresh content "), 20000)
	if err := os.WriteFile(file, content, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := nackctl(t, "-addr", run.Sender.Addr, "-o", "json", "publish", file, "-channel", "c", "-path", "new/fresh.bin")
	if code != 0 {
		t.Fatalf("nackctl publish: exit %d: %s", code, errOut)
	}
	var pub struct {
		Object struct {
			Path string `json:"path"`
			Size string `json:"size"`
		} `json:"object"`
	}
	if err := json.Unmarshal([]byte(out), &pub); err != nil || pub.Object.Path != "new/fresh.bin" || pub.Object.Size != fmt.Sprint(len(content)) {
		t.Fatalf("publish JSON %q: %v", out, err)
	}
	for _, p := range run.Receivers {
		stream, err := pb.NewReceiverServiceClient(p.Conn()).WatchStatus(ctx, &pb.ReceiverServiceWatchStatusRequest{Interval: durationpb.New(100 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		for {
			m, err := stream.Recv()
			if err != nil {
				t.Fatalf("%s: status stream: %v", p.Name, err)
			}
			if ch := m.GetStatus().GetChannels()[0]; ch.GetObjectsTotal() == objects+1 && ch.GetComplete() {
				break
			}
		}
	}
	if err := run.Verify(); err != nil {
		t.Fatal(err)
	}
	for i, p := range run.Receivers {
		rm := scrape(t, p.Metrics)
		if d := metric(t, rm, "nackcast_receiver_objects_completed_total") - metric(t, before[i], "nackcast_receiver_objects_completed_total"); d != 1 {
			t.Errorf("%s: %v more objects completed, want 1", p.Name, d)
		}
	}

	// The CLI, human and JSON, and its errors.
	code, out, errOut = nackctl(t, "status", run.Sender.Addr, run.Backup.Addr, run.Receivers[0].Addr)
	if code != 0 || !strings.Contains(out, "primary ") || !strings.Contains(out, "backup ") || !strings.Contains(out, "receiver receiver-1") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = nackctl(t, "-o", "json", "status", run.Receivers[0].Addr)
	var rs struct {
		ReceiverID string `json:"receiverId"`
		Complete   bool   `json:"complete"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rs) != nil || rs.ReceiverID != "receiver-1" || !rs.Complete {
		t.Errorf("status -o json: exit %d, %q", code, out)
	}
	start := time.Now()
	code, out, errOut = nackctl(t, "watch", "-for", "700ms", "-interval", "200ms", run.Receivers[0].Addr, run.Receivers[1].Addr)
	if code != 0 || !strings.Contains(out, "receiver-2") || !strings.Contains(out, "ETA done") || time.Since(start) > 10*time.Second {
		t.Errorf("watch: exit %d after %v\n%s%s", code, time.Since(start), out, errOut)
	}
	code, out, _ = nackctl(t, "-addr", run.Sender.Addr, "channels")
	if code != 0 || !strings.Contains(out, "c ") {
		t.Errorf("channels: exit %d\n%s", code, out)
	}
	code, out, _ = nackctl(t, "-addr", run.Sender.Addr, "manifest", "c")
	if code != 0 || !strings.Contains(out, "new/fresh.bin") {
		t.Errorf("manifest: exit %d\n%s", code, out)
	}
	code, out, errOut = nackctl(t, "alerts", "-for", "300ms", run.Backup.Addr)
	if code != 0 {
		t.Errorf("alerts -for: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = nackctl(t, "-addr", run.Sender.Addr, "delete", "-channel", "c", "new/fresh.bin")
	if code != 0 || !strings.Contains(out, "deleted c/new/fresh.bin") {
		t.Errorf("delete: exit %d\n%s", code, out)
	}

	// Scrub: a byte flipped in a receiver's file, size and times kept, is
	// found by nackctl verify (exit 1, path listed) and fetched again.
	r1 := run.Receivers[0]
	if code, out, errOut := nackctl(t, "verify", "-channel", "c", r1.Addr); code != 0 || !strings.Contains(out, "0 damaged") {
		t.Fatalf("verify of an intact copy: exit %d\n%s%s", code, out, errOut)
	}
	victim := filepath.Join(dir, r1.Name, "c", "large", "large.bin")
	fi, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(victim, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	var flip [1]byte
	if _, err := f.ReadAt(flip[:], fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	flip[0] ^= 0xff
	if _, err := f.WriteAt(flip[:], fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(victim, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	code, out, _ = nackctl(t, "verify", "-channel", "c", r1.Addr)
	if code != 1 || !strings.Contains(out, "damaged, fetching again: large/large.bin") {
		t.Errorf("verify of a damaged copy: exit %d\n%s", code, out)
	}
	if _, err := run.Wait(ctx, time.Minute, 100*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	if err := run.Verify(); err != nil {
		t.Errorf("after the scrub: %v", err)
	}

	// The containers' probe: -healthcheck asks the service itself.
	for _, p := range []*cloud.Proc{run.Sender, run.Backup, run.Receivers[0]} {
		bin := map[string]string{"sender": "sender", "backup": "backup"}[p.Name]
		if bin == "" {
			bin = "receiver"
		}
		out, err := exec.Command(filepath.Join(binDir, bin), "-healthcheck", "-plaintext", "-listen", p.Addr).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SERVING") {
			t.Errorf("%s -healthcheck: %v\n%s", p.Name, err, out)
		}
	}
	if out, err := exec.Command(filepath.Join(binDir, "sender"), "-healthcheck", "-plaintext", "-listen", reserveAddr(t)).CombinedOutput(); err == nil {
		t.Errorf("-healthcheck of nothing succeeded: %s", out)
	}

	errorCases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unreachable", []string{"-addr", reserveAddr(t), "channels"}, 1, "cannot reach"},
		{"wrong service", []string{"-addr", run.Receivers[0].Addr, "channels"}, 1, "does not serve nackcast.v1.SenderService"},
		{"unknown channel", []string{"-addr", run.Sender.Addr, "manifest", "nope"}, 1, `channel "nope"`},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"missing argument", []string{"-addr", run.Sender.Addr, "publish", file}, 2, "usage: nackctl publish"},
		{"bad output", []string{"-o", "xml", "channels"}, 2, "want human or json"},
		{"missing file", []string{"-addr", run.Sender.Addr, "publish", "-channel", "c", filepath.Join(dir, "nope")}, 1, "no such file"},
	}
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := nackctl(t, tc.args...)
			lines := strings.Count(strings.TrimSpace(errOut), "\n") + 1
			if code != tc.code || !strings.Contains(errOut, tc.want) || (tc.code == 1 && lines != 1) {
				t.Errorf("exit %d (want %d), stderr %q (want one line with %q)", code, tc.code, errOut, tc.want)
			}
		})
	}
}
