// Command metricdoc writes the metric table of README.md, between
// "<!-- metrics -->" and "<!-- /metrics -->", from the metrics the
// services really register: it creates a sender, a backup and a receiver
// (in temporary directories, not running: no socket is opened), registers
// their collectors and nackcast_build_info, and lists what they describe.
// With -check it only reports whether README.md is up to date.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nackcast/nackcast/pkg/app"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/sender"
)

func main() {
	check := flag.Bool("check", false, "only check that the file is up to date")
	file := flag.String("file", "README.md", "file to update")
	flag.Parse()
	if err := run(*file, *check); err != nil {
		fmt.Fprintln(os.Stderr, "metricdoc:", err)
		if errors.Is(err, errStale) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}

var errStale = errors.New("out of date: run make docs")

func run(file string, check bool) error {
	old, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	svcs, err := Services()
	if err != nil {
		return err
	}
	updated, err := Update(old, svcs)
	if err != nil {
		return err
	}
	if bytes.Equal(old, updated) {
		return nil
	}
	if check {
		return fmt.Errorf("%s: %w", file, errStale)
	}
	return os.WriteFile(file, updated, 0o644)
}

// Service is a service's collectors, by the service names that register
// them.
type Service struct {
	Names      string // "sender, backup"
	Collectors []app.Documented
}

// Services creates the services' collectors: nackcast_build_info, which
// every service has, then a real sender and backup (one collector type:
// their metrics must be the same) and a receiver.
func Services() ([]Service, error) {
	dir, err := os.MkdirTemp("", "metricdoc-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	log := hclog.NewNullLogger()
	engines := map[string]prometheus.Collector{}
	for _, name := range []string{"sender", "backup"} {
		cfg := sender.DefaultConfig()
		if name == "backup" {
			cfg = sender.DefaultBackupConfig()
		}
		cfg.OriginDir = filepath.Join(dir, name)
		if err := os.Mkdir(cfg.OriginDir, 0o755); err != nil {
			return nil, err
		}
		s, err := sender.New(cfg, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		engines[name] = s.Collector()
	}
	rcfg := receiver.DefaultConfig()
	rcfg.DataDir = filepath.Join(dir, "receiver")
	rcfg.Channels = []string{"news"}
	r, err := receiver.New(rcfg, log)
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	engines["receiver"] = r.Collector()

	out := []Service{{Names: "all", Collectors: []app.Documented{app.BuildInfo("")}}}
	for _, names := range []string{"sender, backup", "receiver"} {
		var first []*app.Metric
		var docs []app.Documented
		for _, name := range strings.Split(names, ", ") {
			d, ok := engines[name].(app.Documented)
			if !ok {
				return nil, fmt.Errorf("%s: its collector does not list its metrics (app.Documented)", name)
			}
			if err := described(d); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			if first == nil {
				first, docs = d.Metrics(), append(docs, d)
			} else if !slices.Equal(first, d.Metrics()) {
				return nil, fmt.Errorf("%s: metrics differ from %s's", name, strings.Split(names, ", ")[0])
			}
		}
		out = append(out, Service{Names: names, Collectors: docs})
	}
	return out, nil
}

// described checks that a collector registers and describes exactly the
// metrics it lists.
func described(d app.Documented) error {
	if err := prometheus.NewPedanticRegistry().Register(d); err != nil {
		return err
	}
	ch := make(chan *prometheus.Desc, 256)
	go func() { d.Describe(ch); close(ch) }()
	var descs []*prometheus.Desc
	for desc := range ch {
		descs = append(descs, desc)
	}
	list := d.Metrics()
	if len(descs) != len(list) {
		return fmt.Errorf("describes %d metrics, lists %d", len(descs), len(list))
	}
	for i, m := range list {
		if descs[i] != m.Desc() {
			return fmt.Errorf("metric %d: described %v, listed %s", i, descs[i], m.Name)
		}
	}
	return nil
}

// Update replaces the marked table in doc.
func Update(doc []byte, svcs []Service) ([]byte, error) {
	const begin, end = "<!-- metrics -->", "<!-- /metrics -->"
	s := string(doc)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		return nil, errors.New("markers <!-- metrics --> and <!-- /metrics --> not found")
	}
	return []byte(s[:i+len(begin)] + "\n" + Table(svcs) + s[j:]), nil
}

// Table renders the metrics as a Markdown table.
func Table(svcs []Service) string {
	var b strings.Builder
	b.WriteString("| metric | type | labels | services | meaning |\n|---|---|---|---|---|\n")
	for _, svc := range svcs {
		for _, d := range svc.Collectors {
			for _, m := range d.Metrics() {
				labels := make([]string, len(m.Labels))
				for i, l := range m.Labels {
					labels[i] = "`" + l + "`"
				}
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", m.Name, m.TypeName(), strings.Join(labels, ", "), svc.Names, strings.ReplaceAll(m.Help, "|", "\\|"))
			}
		}
	}
	return b.String()
}
