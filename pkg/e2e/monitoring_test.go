package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nackcast/nackcast/pkg/cloud"
)

// requirePrometheusEnv, set to 1 (CI does), turns the skip of the
// monitoring test when no prometheus binary is found into a failure.
const requirePrometheusEnv = "NACKCAST_REQUIRE_PROMETHEUS"

// The monitoring content shipped with the Helm chart.
var (
	alertsFile    = filepath.Join("..", "..", "deploy", "helm", "nackcast", "files", "alerts.yaml")
	dashboardFile = filepath.Join("..", "..", "deploy", "helm", "nackcast", "files", "dashboard.json")
)

// findPrometheus returns the path of the prometheus binary, skipping the
// test (or failing it under NACKCAST_REQUIRE_PROMETHEUS=1) without one.
func findPrometheus(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("prometheus")
	if err == nil {
		return path
	}
	msg := "no prometheus binary in PATH (Debian: apt-get install prometheus)"
	if os.Getenv(requirePrometheusEnv) == "1" {
		t.Fatalf("%s, and %s=1 requires it", msg, requirePrometheusEnv)
	}
	t.Skipf("%s: skipped; %s=1 makes this a failure", msg, requirePrometheusEnv)
	return ""
}

// promServer is a real Prometheus process scraping a cloud.
type promServer struct {
	t    *testing.T
	addr string
}

// startPrometheus runs prometheus with the alert rules, scraping targets
// every second as job "nackcast", until the test ends.
func startPrometheus(t *testing.T, bin string, targets []string) *promServer {
	t.Helper()
	dir := t.TempDir()
	rules, err := filepath.Abs(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	quoted := make([]string, len(targets))
	for i, a := range targets {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %q
scrape_configs:
  - job_name: nackcast
    static_configs:
      - targets: [%s]
`, rules, strings.Join(quoted, ", "))
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, err := cloud.FreeTCPAddr()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var exit error // how prometheus ended, once done is closed
	go func() { exit = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Logf("prometheus: %v", err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("prometheus did not stop within 10s of SIGTERM: killed")
			if err := cmd.Process.Kill(); err != nil {
				t.Logf("prometheus: %v", err)
			}
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("prometheus log:\n%s", b)
		}
	})
	p := &promServer{t: t, addr: addr}
	waitFor(t, 30*time.Second, "prometheus to be ready", func() bool {
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("prometheus exited (%v):\n%s", exit, b)
		default:
		}
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// api calls Prometheus' HTTP API and decodes its data into out. A status
// other than success is an error.
func (p *promServer) api(path string, params url.Values, out any) error {
	resp, err := http.Get("http://" + p.addr + "/api/v1/" + path + "?" + params.Encode())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("%s: %w: %s", path, err, body)
	}
	if env.Status != "success" {
		return fmt.Errorf("%s %v: %s", path, params, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// sample is one series of an instant query's result.
type sample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s sample) value() string { v, _ := s.Value[1].(string); return v }

// query runs an instant PromQL query.
func (p *promServer) query(q string) ([]sample, error) {
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	if err := p.api("query", url.Values{"query": {q}}, &data); err != nil {
		return nil, err
	}
	if data.ResultType != "vector" {
		return nil, nil // scalars and strings: valid, nothing to check
	}
	var out []sample
	return out, json.Unmarshal(data.Result, &out)
}

// TestPrometheusScrapesCloud runs a real Prometheus against a cloud of
// real processes (primary, backup, two receivers on lo) with the alert
// rules of the Helm chart: every target is scraped, nackcast_build_info
// names each service with the version its -version prints, the receivers'
// completeness reaches Prometheus, client-side gRPC metrics are there,
// every alert rule loads and evaluates without error (none firing in a
// healthy cloud), and every query of the Grafana dashboard is valid
// PromQL, the main ones with data.
func TestPrometheusScrapesCloud(t *testing.T) {
	skipShort(t)
	bin := findPrometheus(t)
	dir := t.TempDir()
	cl, err := cloud.New(binDir, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	origin := filepath.Join(dir, "origin")
	if _, err := (cloud.Sample{SmallFiles: 30, MaxSmall: 32 << 10, LargeBytes: 4 << 20, Seed: 61}).Generate(filepath.Join(origin, "c")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run, err := cl.Distribute(ctx, cloud.Distribution{Origin: origin, Channel: "c", Receivers: 2, Backup: true,
		SenderArgs: []string{"-rescan", "1h"}, BackupArgs: []string{"-check-interval", "500ms"}})
	if err != nil {
		t.Fatal(err)
	}
	procs := append([]*cloud.Proc{run.Sender, run.Backup}, run.Receivers...)
	service := map[string]string{} // metrics address -> service
	var targets []string
	for i, p := range procs {
		targets = append(targets, p.Metrics)
		service[p.Metrics] = []string{"sender", "backup", "receiver", "receiver"}[i]
	}
	prom := startPrometheus(t, bin, targets)

	// Every target scraped.
	waitFor(t, 30*time.Second, "every target up in prometheus", func() bool {
		var data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		}
		if err := prom.api("targets", nil, &data); err != nil {
			t.Fatal(err)
		}
		up := 0
		for _, tg := range data.ActiveTargets {
			if tg.Health == "up" {
				up++
			}
		}
		return up == len(targets) && len(data.ActiveTargets) == len(targets)
	})

	// nackcast_build_info: one series per process, with its service and
	// the version its binary's -version prints.
	versions := map[string]string{}
	for _, b := range []string{"sender", "backup", "receiver"} {
		out, err := exec.Command(filepath.Join(binDir, b), "-version").Output()
		if err != nil {
			t.Fatalf("%s -version: %v", b, err)
		}
		// "sender v0.5.0 (revision 1a2b3c4d5e6f, go1.26.0)"
		f := strings.Fields(string(out))
		if len(f) < 3 || f[0] != b || !strings.Contains(string(out), "revision") {
			t.Fatalf("%s -version printed %q", b, out)
		}
		versions[b] = f[1]
	}
	var info []sample
	waitFor(t, 15*time.Second, "nackcast_build_info of every process", func() bool {
		if info, err = prom.query(`nackcast_build_info{job="nackcast"}`); err != nil {
			t.Fatal(err)
		}
		return len(info) == len(procs)
	})
	for _, s := range info {
		want := service[s.Metric["instance"]]
		if s.Metric["service"] != want || s.value() != "1" {
			t.Errorf("%s: build_info service %q value %s, want %q and 1", s.Metric["instance"], s.Metric["service"], s.value(), want)
		}
		if s.Metric["version"] != versions[want] || s.Metric["goversion"] == "" {
			t.Errorf("%s: build_info version %q goversion %q, want the version -version prints, %q", s.Metric["instance"], s.Metric["version"], s.Metric["goversion"], versions[want])
		}
	}

	// The receivers' completeness, as a dashboard reads it.
	if _, err := run.Wait(ctx, time.Minute, 100*time.Millisecond, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "every receiver complete in prometheus", func() bool {
		got, err := prom.query(`nackcast_receiver_channel_complete{channel="c"} == 1`)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == len(run.Receivers)
	})
	fleet, err := prom.query(`sum by (channel) (nackcast_receiver_bytes_have) / sum by (channel) (nackcast_receiver_channel_bytes)`)
	if err != nil {
		t.Fatal(err)
	}
	if len(fleet) != 1 || fleet[0].Metric["channel"] != "c" || fleet[0].value() != "1" {
		t.Errorf("fleet completeness %v, want channel c at 1", fleet)
	}
	if got, err := prom.query(`sum(grpc_client_handled_total{job="nackcast",grpc_method="StreamManifest"})`); err != nil || len(got) != 1 || got[0].value() == "0" {
		t.Errorf("receivers' client-side gRPC metrics: %v, %v; want their manifest fetches counted", got, err)
	}
	if got, err := prom.query(`nackcast_sender_primary_up`); err != nil || len(got) != 1 || got[0].value() != "1" {
		t.Errorf("the backup's view of the primary: %v, %v; want primary up", got, err)
	}

	checkRulesLoaded(t, prom)
	// Rates need a few scrapes of each target within their window.
	waitFor(t, 30*time.Second, "three scrapes of every target within 10s", func() bool {
		got, err := prom.query(`min(count_over_time(up{job="nackcast"}[10s])) >= 3`)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 1
	})
	checkDashboardQueries(t, prom)
}

// checkRulesLoaded checks that Prometheus loaded every alert of the rule
// file and evaluated each without error, and that none fires.
func checkRulesLoaded(t *testing.T, prom *promServer) {
	t.Helper()
	src, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\w+)\s*$`).FindAllSubmatch(src, -1) {
		want = append(want, string(m[1]))
	}
	if len(want) == 0 {
		t.Fatal("no alert found in " + alertsFile)
	}
	slices.Sort(want)
	type rule struct {
		Name      string `json:"name"`
		Health    string `json:"health"`
		LastError string `json:"lastError"`
		State     string `json:"state"`
	}
	var rules []rule
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var data struct {
			Groups []struct {
				Rules []rule `json:"rules"`
			} `json:"groups"`
		}
		if err := prom.api("rules", url.Values{"type": {"alert"}}, &data); err != nil {
			t.Fatal(err)
		}
		rules = rules[:0]
		var bad []string
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				rules = append(rules, r)
				if r.Health != "ok" {
					bad = append(bad, fmt.Sprintf("%s: health %q %s", r.Name, r.Health, r.LastError))
				}
			}
		}
		if len(bad) == 0 && len(rules) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15s, %d alert rules loaded (the file has %d), not evaluated cleanly:\n%s", len(rules), len(want), strings.Join(bad, "\n"))
		}
	}
	var got []string
	for _, r := range rules {
		got = append(got, r.Name)
		if r.State == "firing" {
			t.Errorf("alert %s fires in a healthy cloud", r.Name)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("prometheus loaded alerts %v, the file has %v", got, want)
	}
}

// checkDashboardQueries runs every query of the Grafana dashboard (its
// variables given values) through Prometheus: each must be valid PromQL,
// and the panels an operator looks at first must show data.
func checkDashboardQueries(t *testing.T, prom *promServer) {
	t.Helper()
	src, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.NewDecoder(bytes.NewReader(src)).Decode(&dash); err != nil {
		t.Fatal(err)
	}
	withData := map[string]bool{
		"Fleet completeness per channel":  false,
		"Receivers complete / incomplete": false,
		"Multicast bytes/s per channel":   false,
		"Sender states":                   false,
		"Builds":                          false,
		"Manifest versions":               false,
	}
	vars := strings.NewReplacer("$channel", ".*", "$__rate_interval", "10s")
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			n++
			res, err := prom.query(vars.Replace(tg.Expr))
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
				continue
			}
			if _, ok := withData[p.Title]; ok && len(res) > 0 {
				withData[p.Title] = true
			}
		}
	}
	if n < 20 {
		t.Errorf("%d queries in the dashboard: not the shipped one?", n)
	}
	for title, ok := range withData {
		if !ok {
			t.Errorf("panel %q shows no data for a running cloud", title)
		}
	}
}
