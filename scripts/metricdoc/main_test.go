package main

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/nackcast/nackcast/pkg/app"
)

// TestREADMEUpToDate fails when a metric was added, removed or changed
// without regenerating the README's metric table (make docs).
func TestREADMEUpToDate(t *testing.T) {
	doc, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := Services()
	if err != nil {
		t.Fatal(err)
	}
	updated, err := Update(doc, svcs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, updated) {
		t.Error("README.md metric table is out of date: run make docs")
	}
}

// TestMetricNames holds every metric to Prometheus' naming rules
// (promlint: counters end in _total and nothing else does, base units,
// no type in the name) and to the house ones: a service prefix, rates in
// _per_second, times since 1970 in _timestamp_seconds, info metrics
// named _info.
func TestMetricNames(t *testing.T) {
	svcs, err := Services()
	if err != nil {
		t.Fatal(err)
	}
	var fams []*dto.MetricFamily
	seen := map[string]bool{}
	for _, svc := range svcs {
		prefix := "nackcast_" + strings.Split(svc.Names, ",")[0] + "_"
		if svc.Names == "all" {
			prefix = "nackcast_"
		}
		for _, d := range svc.Collectors {
			for _, m := range d.Metrics() {
				if seen[m.Name] {
					t.Errorf("%s declared twice", m.Name)
				}
				seen[m.Name] = true
				if !strings.HasPrefix(m.Name, prefix) {
					t.Errorf("%s: want prefix %s", m.Name, prefix)
				}
				if slices.Contains(strings.Split(m.Name, "_"), "rate") && m.Type == prometheus.GaugeValue && !strings.HasSuffix(m.Name, "_per_second") {
					t.Errorf("%s: a rate gauge: want _per_second", m.Name)
				}
				if strings.Contains(m.Help, "since 1970") != strings.HasSuffix(m.Name, "_timestamp_seconds") {
					t.Errorf("%s: a time since 1970 is named _timestamp_seconds, and only that (help %q)", m.Name, m.Help)
				}
				if strings.HasPrefix(m.Help, "Always 1") != strings.HasSuffix(m.Name, "_info") {
					t.Errorf("%s: an info metric (always 1, labels say what) is named _info, and only that", m.Name)
				}
				fams = append(fams, family(m))
			}
		}
	}
	problems, err := promlint.NewWithMetricFamilies(fams).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// family is a one-sample metric family of m, for promlint.
func family(m *app.Metric) *dto.MetricFamily {
	f := &dto.MetricFamily{Name: proto.String(m.Name), Help: proto.String(m.Help)}
	s := &dto.Metric{}
	for _, l := range m.Labels {
		s.Label = append(s.Label, &dto.LabelPair{Name: proto.String(l), Value: proto.String("x")})
	}
	if m.TypeName() == "counter" {
		f.Type = dto.MetricType_COUNTER.Enum()
		s.Counter = &dto.Counter{Value: proto.Float64(1)}
	} else {
		f.Type = dto.MetricType_GAUGE.Enum()
		s.Gauge = &dto.Gauge{Value: proto.Float64(1)}
	}
	f.Metric = []*dto.Metric{s}
	return f
}

// TestTableCanFail: a README whose table lacks a metric is stale, and one
// without the markers is refused.
func TestTableCanFail(t *testing.T) {
	svcs, err := Services()
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte("x\n<!-- metrics -->\n| metric |\n<!-- /metrics -->\ny\n")
	updated, err := Update(doc, svcs)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(doc, updated) || !bytes.Contains(updated, []byte("`nackcast_build_info`")) || !bytes.Contains(updated, []byte("`nackcast_receiver_channel_last_progress_timestamp_seconds`")) {
		t.Errorf("table not written:\n%s", updated)
	}
	if _, err := Update([]byte("no markers"), svcs); err == nil {
		t.Error("a document without markers accepted")
	}
}

// TestMonitoringNamesExist: the alert rules and the Grafana dashboard name
// only metrics the services export (a rename must update them).
func TestMonitoringNamesExist(t *testing.T) {
	svcs, err := Services()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, svc := range svcs {
		for _, d := range svc.Collectors {
			for _, m := range d.Metrics() {
				known[m.Name] = true
			}
		}
	}
	name := regexp.MustCompile(`\bnackcast_[a-z0-9_]+`)
	for _, f := range []string{"alerts.yaml", "dashboard.json"} {
		src, err := os.ReadFile("../../deploy/helm/nackcast/files/" + f)
		if err != nil {
			t.Fatal(err)
		}
		used := name.FindAllString(string(src), -1)
		if len(used) < 10 {
			t.Errorf("%s names %d metrics: not the shipped file?", f, len(used))
		}
		for _, n := range used {
			if !known[n] {
				t.Errorf("%s names %s, which no service exports", f, n)
			}
		}
	}
}
