package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/tlsconf"
	"github.com/nackcast/nackcast/pkg/version"
)

// Common holds the flags every service has.
type Common struct {
	Listen      string
	MetricsAddr string
	Pprof       bool
	LogLevel    string
	LogJSON     bool
	Grace       time.Duration
	Config      string
	HealthCheck bool
	// Transport is gRPC transport security, for serving and for dialling
	// other services.
	Transport Transport
	// Policy is who may call which method under mutual TLS.
	Policy tlsconf.Policy
	// ServerOptions, if set, returns more gRPC server options once the
	// flags are parsed (a service's per-client limits).
	ServerOptions func() []grpc.ServerOption
	// Version, set by -version, prints the build and exits.
	Version bool

	name   string                  // the service's name, for nackcast_build_info
	client *grpcprom.ClientMetrics // see DialOptions
}

// Register adds the common flags to fs with listen as the default gRPC
// address and metrics as the default metrics address.
func (c *Common) Register(fs *flag.FlagSet, listen, metrics string) {
	fs.StringVar(&c.Listen, "listen", listen, "gRPC listen address (host:port)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.BoolVar(&c.LogJSON, "log-json", false, "log in JSON")
	fs.DurationVar(&c.Grace, "grace", 5*time.Second, "time allowed for a graceful stop before it is forced")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", metrics, "HTTP address serving Prometheus /metrics (empty: off)")
	fs.BoolVar(&c.Pprof, "pprof", false, "also serve Go's /debug/pprof profiles on the metrics address")
	fs.StringVar(&c.Config, "config", "", "read flag values from this file (lines of \"name = value\")")
	fs.BoolVar(&c.HealthCheck, "healthcheck", false, "check the health of the service listening on -listen and exit 0 if it is SERVING (for container probes)")
	fs.BoolVar(&c.Version, "version", false, "print the version, VCS revision and Go version of this build and exit")
	c.Transport.Register(fs)
}

// healthCheck asks the service on the listen address for its health and
// returns the exit code: 0 for SERVING, 1 otherwise.
func (c *Common) healthCheck(name string) int {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: -listen %q: %v\n", name, c.Listen, err)
		return 2
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	addr := net.JoinHostPort(host, port)
	if err := c.Transport.Setup(hclog.NewNullLogger()); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	cc, err := rpc.Dial(addr, c.Transport.DialOptions()...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s at %s: %v\n", name, addr, err)
		return 1
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		fmt.Fprintf(os.Stderr, "%s at %s: %s\n", name, addr, resp.GetStatus())
		return 1
	}
	fmt.Printf("%s at %s: SERVING\n", name, addr)
	return 0
}

// serveHTTP serves /metrics from reg (and /debug/pprof with -pprof) on the
// metrics address until ctx is done. It fails if the address cannot be
// bound, like the gRPC listener.
func (c *Common) serveHTTP(ctx context.Context, log hclog.Logger, reg *prometheus.Registry) error {
	if c.MetricsAddr == "" {
		return nil
	}
	lis, err := net.Listen("tcp", c.MetricsAddr)
	if err != nil {
		return fmt.Errorf("metrics address: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if c.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(lis); err != nil && err != http.ErrServerClosed {
			log.Error("metrics server", "error", err)
		}
	}()
	log.Info("metrics listening", "address", lis.Addr().String(), "pprof", c.Pprof)
	return nil
}

// reloadOnHangup reloads the TLS certificates on SIGHUP until ctx is done
// (they are also reloaded when their files change).
func (c *Common) reloadOnHangup(ctx context.Context, log hclog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := c.Transport.Reload(); err != nil {
				log.Warn("tls reload failed; keeping the previous certificates", "error", err)
			} else if c.Transport.Secure() {
				log.Info("tls certificates reloaded")
			}
		}
	}
}

// Logger returns the root logger named name.
func (c *Common) Logger(name string) (hclog.Logger, error) {
	lvl := hclog.LevelFromString(c.LogLevel)
	if lvl == hclog.NoLevel {
		return nil, fmt.Errorf("log-level %q: want trace, debug, info, warn or error", c.LogLevel)
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      lvl,
		JSONFormat: c.LogJSON,
		Output:     os.Stderr,
	}), nil
}

// LogEffective logs the value of every flag once at start-up, masking the
// values of flags whose names suggest a secret.
func LogEffective(log hclog.Logger, fs *flag.FlagSet) {
	var kv []any
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, n := range names {
		v := fs.Lookup(n).Value.String()
		for _, s := range []string{"key", "secret", "password", "token"} {
			if strings.Contains(n, s) && v != "" {
				v = "****"
			}
		}
		kv = append(kv, n, v)
	}
	log.Info("effective configuration", kv...)
}

// Engine is what a service runs: Run until ctx is done; Ready closes when
// the service may report SERVING; Collector exports its metrics.
type Engine interface {
	Run(ctx context.Context) error
	Ready() <-chan struct{}
	Collector() prometheus.Collector
}

// Serve runs engine and the gRPC server srv on the common listen address
// until SIGINT or SIGTERM, marking services SERVING once the engine is
// ready. It returns the process exit code.
func (c *Common) Serve(log hclog.Logger, srv *rpc.Server, engine Engine, services ...string) int {
	listen, grace := c.Listen, c.Grace
	reg := c.registry(c.name, srv.Metrics, engine.Collector())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go c.reloadOnHangup(ctx, log)
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		log.Error("cannot listen", "address", listen, "error", err)
		return 1
	}
	log.Info("grpc listening", "address", lis.Addr().String())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := c.serveHTTP(ctx, log, reg); err != nil {
		log.Error("cannot serve metrics", "address", c.MetricsAddr, "error", err)
		lis.Close()
		return 1
	}
	engineErr := make(chan error, 1)
	go func() { engineErr <- engine.Run(ctx) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ctx, lis, grace) }()
	go func() {
		select {
		case <-engine.Ready():
			srv.SetServing(true, services...)
			log.Info("serving")
		case <-ctx.Done():
		}
	}()

	code := 0
	select {
	case err := <-engineErr:
		if err != nil {
			log.Error("stopped on error", "error", err)
			code = 1
		}
		cancel()
		if err := <-serveErr; err != nil {
			log.Error("grpc server", "error", err)
		}
	case err := <-serveErr:
		if err != nil {
			log.Error("grpc server stopped", "error", err)
			code = 1
		}
		cancel()
		if err := <-engineErr; err != nil {
			log.Error("engine", "error", err)
		}
	}
	log.Info("stopped")
	return code
}

// Build creates a service's engine once its configuration is parsed, and
// registers the engine's gRPC services on srv.
type Build func(log hclog.Logger, srv *rpc.Server) (Engine, error)

// Main is the whole life of a service process: parse args into fs (flags,
// environment, config file), make the logger, build the engine, log the
// effective configuration, and serve until a signal. services names the
// gRPC services whose health follows the engine's readiness. It returns
// the process exit code: 2 for bad configuration, 1 for a failure.
func Main(name string, fs *flag.FlagSet, common *Common, args []string, build Build, services ...string) int {
	src, err := ParseSources(fs, args)
	common.Transport.Sources = src
	if common.Version {
		// Even with a bad value in the environment or config file: an
		// operator asking which build this is should get the answer.
		fmt.Println(name, version.Get().String())
		return 0
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	if common.HealthCheck {
		return common.healthCheck(name)
	}
	common.name = name
	log, err := common.Logger(name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	if err := common.Transport.Setup(log.Named("tls")); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	if common.Transport.Secure() {
		if err := common.Policy.Validate(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: authorization policy: %v\n", name, err)
			return 2
		}
	}
	log.Info("grpc transport", "security", common.Transport.String())
	opts := common.Transport.ServerOptions(common.Policy)
	if common.ServerOptions != nil {
		opts = append(opts, common.ServerOptions()...)
	}
	srv := rpc.NewServer(log.Named("grpc"), opts...)
	engine, err := build(log, srv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 2
	}
	LogEffective(log, fs)
	return common.Serve(log, srv, engine, services...)
}
