package app

import (
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/nackcast/nackcast/pkg/version"
)

// Metric is one metric a service exports: its name, type, help and
// variable labels, declared once. The collectors emit their samples
// through it, so a sample always has the declared type, and the README's
// metric table (make docs) is written from the same declarations.
type Metric struct {
	Name   string
	Type   prometheus.ValueType
	Help   string
	Labels []string
	desc   *prometheus.Desc
}

// Desc returns the metric's Prometheus descriptor.
func (m *Metric) Desc() *prometheus.Desc { return m.desc }

// Emit sends one sample of the metric with the given label values.
func (m *Metric) Emit(ch chan<- prometheus.Metric, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(m.desc, m.Type, v, labels...)
}

// Bool emits 1 for true and 0 for false.
func (m *Metric) Bool(ch chan<- prometheus.Metric, b bool, labels ...string) {
	v := 0.0
	if b {
		v = 1
	}
	m.Emit(ch, v, labels...)
}

// TypeName is the metric's type as the Prometheus text format names it.
func (m *Metric) TypeName() string {
	if m.Type == prometheus.CounterValue {
		return "counter"
	}
	return "gauge"
}

// Metrics is the list of a collector's metrics, in declaration order.
type Metrics struct{ list []*Metric }

// Counter declares a counter; its name must end in _total.
func (s *Metrics) Counter(name, help string, labels ...string) *Metric {
	return s.add(prometheus.CounterValue, name, help, labels)
}

// Gauge declares a gauge.
func (s *Metrics) Gauge(name, help string, labels ...string) *Metric {
	return s.add(prometheus.GaugeValue, name, help, labels)
}

func (s *Metrics) add(t prometheus.ValueType, name, help string, labels []string) *Metric {
	m := &Metric{Name: name, Type: t, Help: help, Labels: labels, desc: prometheus.NewDesc(name, help, labels, nil)}
	s.list = append(s.list, m)
	return m
}

// List returns the declared metrics.
func (s *Metrics) List() []*Metric { return s.list }

// Describe sends every declared metric's descriptor.
func (s *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range s.list {
		ch <- m.desc
	}
}

// Documented is a collector that lists the metrics it exports.
type Documented interface {
	prometheus.Collector
	Metrics() []*Metric
}

var buildMetrics Metrics

var buildInfo = buildMetrics.Gauge("nackcast_build_info",
	"Always 1; its labels say which build runs: the release version, the VCS revision (with +modified for a build from a modified tree), the Go version, and the service (sender, backup, receiver).",
	"version", "revision", "goversion", "service")

// buildCollector exports nackcast_build_info.
type buildCollector struct {
	labels [4]string
}

// BuildInfo returns the collector of nackcast_build_info for service.
func BuildInfo(service string) Documented {
	i := version.Get()
	rev := i.Revision
	if rev == "" {
		rev = "unknown"
	}
	if i.Modified {
		rev += "+modified"
	}
	return buildCollector{labels: [4]string{i.Version, rev, i.GoVersion, service}}
}

func (c buildCollector) Describe(ch chan<- *prometheus.Desc) { buildMetrics.Describe(ch) }

func (c buildCollector) Collect(ch chan<- prometheus.Metric) { buildInfo.Emit(ch, 1, c.labels[:]...) }

func (c buildCollector) Metrics() []*Metric { return buildMetrics.List() }

// clientMetrics returns the metrics of the gRPC calls the service makes
// (grpc_client_*), created on first use.
func (c *Common) clientMetrics() *grpcprom.ClientMetrics {
	if c.client == nil {
		c.client = grpcprom.NewClientMetrics(grpcprom.WithClientHandlingTimeHistogram())
	}
	return c.client
}

// DialOptions returns the options for dialling other services: the
// transport security and the client-side gRPC metrics (calls, codes and
// latency of the NACKs, pulls, manifest fetches and checks the service
// makes), served on the metrics address.
func (c *Common) DialOptions() []grpc.DialOption {
	m := c.clientMetrics()
	return append(c.Transport.DialOptions(),
		grpc.WithChainUnaryInterceptor(m.UnaryClientInterceptor()),
		grpc.WithChainStreamInterceptor(m.StreamClientInterceptor()))
}

// registry returns the Prometheus registry of a service named name: Go
// runtime and process metrics, build information, the gRPC server's and
// client's metrics, and the engine's collector.
func (c *Common) registry(name string, srv prometheus.Collector, engine prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		BuildInfo(name),
		srv,
		c.clientMetrics(),
		engine,
	)
	return reg
}
