// Package cli is nackctl: the command line a person (or a script, with
// -o json) uses to look at and drive a nackcast cloud through its gRPC
// API.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/nackcast/nackcast/pkg/client"
	"github.com/nackcast/nackcast/pkg/tlsconf"
	"github.com/nackcast/nackcast/pkg/version"
)

// Env is what a command runs against.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// TTY says whether Stdout is a terminal (live redraws in watch).
	TTY bool
}

type command struct {
	name, args, help string
	run              func(ctx context.Context, c *ctx, args []string) error
}

// ctx carries the global options of one invocation.
type ctx struct {
	env     Env
	addr    string
	output  string
	timeout time.Duration
	tls     tlsconf.Files
	tlsName string
	opts    []grpc.DialOption
}

// dial connects to addr with the invocation's transport security.
func (c *ctx) dial(addr string) (*grpc.ClientConn, error) {
	return dial(addr, c.opts...)
}

// setupTLS loads the client certificate when -tls-* are given: nackctl
// then speaks mutual TLS, else plaintext.
func (c *ctx) setupTLS() error {
	opts, err := client.Config{TLS: c.tls, ServerName: c.tlsName}.DialOptions()
	c.opts = opts
	return err
}

var commands []command

func init() {
	commands = []command{
		{"status", "[ADDR...]", "show the state of senders, backups and receivers", cmdStatus},
		{"watch", "[-for DUR] [-interval DUR] [-until-complete] ADDR...", "live progress of one or more receivers, with rates and ETA", cmdWatch},
		{"wait", "[-for DUR] [-objects N] ADDR...", "wait until receivers are complete (holding at least N objects); exit 1 if time runs out", cmdWait},
		{"channels", "", "list a sender's channels", cmdChannels},
		{"manifest", "CHANNEL", "show a channel's manifest", cmdManifest},
		{"publish", "-channel C [-path P] [-create] FILE", "upload FILE into channel C (its first multicast pass follows)", cmdPublish},
		{"delete", "-channel C PATH", "delete an object from a channel", cmdDelete},
		{"alerts", "[-for DUR] [ADDR]", "follow the alert stream of a sender, backup or receiver", cmdAlerts},
		{"sample", "[-small N] [-large SIZE] DIR", "write a sample channel into DIR (for demos and drills)", cmdSample},
		{"verify", "-channel C [-for DUR] ADDR...", "scrub a channel on receivers: re-read every object, check its SHA-256, fetch damaged ones again (exit 1 if any)", cmdVerify},
		{"fleet", "[-sender ADDR] [-f FILE] ADDR|dns:HOST:PORT...", "many receivers at once: per channel how many are complete, behind, in progress or stuck; per receiver where it stands, whom it follows, why it is stuck", cmdFleet},
		{"subscribe", "-channel C ADDR...", "subscribe receivers to channel C at runtime (kept across their restarts)", cmdSubscribe},
		{"unsubscribe", "-channel C [-remove] ADDR...", "unsubscribe receivers from channel C; -remove also deletes its content from their disks", cmdUnsubscribe},
		{"confirm-manifest", "-channel C -version HEX ADDR...", "install a manifest receivers hold back because it removes much of the channel (their status shows it)", cmdConfirmManifest},
		{"sum", "DIR", "print the SHA-256 of every file under DIR, like sha256sum, sorted by path", cmdSum},
		{"manifest-key", "-out DIR", "make an Ed25519 key pair that signs manifests (senders -manifest-key, receivers -manifest-pubkey)", cmdManifestKey},
		{"dev-certs", "-out DIR -certs NAME:ROLE,... [-hosts H,...] [-days N] [-force]", "make a development CA and certificates for mutual TLS, offline", cmdDevCerts},
		{"version", "", "print nackctl's version (the services' is in their status)", cmdVersion},
	}
}

// Run runs nackctl with args and returns the exit code.
func Run(args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	c := &ctx{env: env}
	fs := flag.NewFlagSet("nackctl", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	defAddr := env.Getenv("NACKCAST_ADDR")
	if defAddr == "" {
		defAddr = "127.0.0.1:7001"
	}
	fs.StringVar(&c.addr, "addr", defAddr, "gRPC address of the service (env NACKCAST_ADDR)")
	fs.StringVar(&c.output, "o", "human", "output: human or json")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "deadline of each call")
	fs.StringVar(&c.tls.CA, "tls-ca", env.Getenv("NACKCAST_TLS_CA"), "CA bundle to verify the services with: speak mutual TLS (env NACKCAST_TLS_CA; without -tls-*: plaintext)")
	fs.StringVar(&c.tls.Cert, "tls-cert", env.Getenv("NACKCAST_TLS_CERT"), "client certificate, role admin to publish and delete (env NACKCAST_TLS_CERT)")
	fs.StringVar(&c.tls.Key, "tls-key", env.Getenv("NACKCAST_TLS_KEY"), "private key of -tls-cert (env NACKCAST_TLS_KEY)")
	fs.StringVar(&c.tlsName, "tls-server-name", env.Getenv("NACKCAST_TLS_SERVER_NAME"), "name expected in the services' certificates (default: the host dialled)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { usage(env.Stderr, fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(env.Stdout, "nackctl", version.Get())
		return 0
	}
	if c.output != "human" && c.output != "json" {
		fmt.Fprintf(env.Stderr, "nackctl: -o %q: want human or json\n", c.output)
		return 2
	}
	if fs.NArg() == 0 {
		usage(env.Stderr, fs)
		return 2
	}
	if err := c.setupTLS(); err != nil {
		fmt.Fprintf(env.Stderr, "nackctl: %v\n", err)
		return 2
	}
	name := fs.Arg(0)
	for _, cmd := range commands {
		if cmd.name != name {
			continue
		}
		err := cmd.run(context.Background(), c, fs.Args()[1:])
		if err == nil {
			return 0
		}
		var help helpShown
		if errors.As(err, &help) {
			fmt.Fprintf(env.Stdout, "usage: nackctl %s %s\n\n%s\n", name, cmd.args, cmd.help)
			if n := countFlags(help.fs); n > 0 {
				fmt.Fprintln(env.Stdout, "\nflags:")
				help.fs.SetOutput(env.Stdout)
				help.fs.PrintDefaults()
			}
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(env.Stderr, "nackctl %s: %v\nusage: nackctl %s %s\n", name, ue.err, name, cmd.args)
			return 2
		}
		fmt.Fprintf(env.Stderr, "nackctl %s: %v\n", name, err)
		return 1
	}
	fmt.Fprintf(env.Stderr, "nackctl: unknown command %q (try nackctl -h)\n", name)
	return 2
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintln(w, "nackctl: look at and drive a nackcast cloud")
	fmt.Fprintln(w, "\nusage: nackctl [-addr ADDR] [-o human|json] [-timeout DUR] COMMAND [ARGS]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n            %s\n", c.name, c.args, c.help)
	}
	fmt.Fprintln(w, "\nglobal flags:")
	fs.PrintDefaults()
}

// helpShown is what parse returns for -h: Run prints the command's usage
// and flags, and exits 0.
type helpShown struct{ fs *flag.FlagSet }

func (h helpShown) Error() string { return "help requested" }

func countFlags(fs *flag.FlagSet) int {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n
}

type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// dial connects to addr; the connection is lazy, so failures show on the
// first call and are explained by explain.
var dial = client.Dial

// explain turns a gRPC error into one line a person understands.
func explain(addr, service string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("cannot reach %s: %s", addr, unavailable(st.Message()))
	case codes.Unimplemented:
		return fmt.Errorf("%s does not serve %s (is it the right service and port?)", addr, service)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s did not answer in time", addr)
	case codes.NotFound, codes.InvalidArgument, codes.FailedPrecondition, codes.ResourceExhausted:
		return fmt.Errorf("%s: %s", addr, st.Message())
	}
	return fmt.Errorf("%s: %s: %s", addr, st.Code(), st.Message())
}

// unavailable shortens the transport's description of a failed connection
// and says what to do when the cause is a TLS mismatch, which otherwise
// shows as a bare EOF.
func unavailable(msg string) string {
	switch {
	case strings.Contains(msg, "INADEQUATE_SECURITY"), strings.Contains(msg, "requires TLS"):
		return "the service requires mutual TLS: pass -tls-ca, -tls-cert and -tls-key (or set NACKCAST_TLS_CA, NACKCAST_TLS_CERT and NACKCAST_TLS_KEY)"
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		return "the service speaks plaintext, not TLS: drop -tls-ca, -tls-cert and -tls-key (and unset NACKCAST_TLS_*)"
	case strings.Contains(msg, "server preface"), strings.HasSuffix(msg, "EOF") || strings.HasSuffix(msg, "EOF\""):
		return "the connection was closed at once (EOF); if the service runs mutual TLS, pass -tls-ca, -tls-cert and -tls-key (or set NACKCAST_TLS_*)"
	case strings.Contains(msg, "graceful_stop"), strings.Contains(msg, "NO_ERROR"):
		return "the service is shutting down"
	}
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return strings.Trim(msg, "\"")
}

// printJSON writes one protobuf message as a line of JSON.
func (c *ctx) printJSON(m proto.Message) error {
	// protojson's own convention, as grpcurl and every gRPC JSON gateway
	// print it: lowerCamelCase names, 64-bit integers (ids, versions,
	// epochs) as decimal strings, bytes (sha256) as base64, unset fields
	// left out. The human output's hex is a display format only.
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c.env.Stdout, "%s\n", b)
	return err
}

func (c *ctx) json() bool { return c.output == "json" }

func (c *ctx) call() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.timeout)
}

// parse parses a command's flags, allowing flags after positional
// arguments (nackctl publish FILE -channel C).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpShown{fs}
			}
			return nil, usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func human(n uint64) string {
	f := float64(n)
	switch {
	case f >= 1e9:
		return fmt.Sprintf("%.2f GB", f/1e9)
	case f >= 1e6:
		return fmt.Sprintf("%.1f MB", f/1e6)
	case f >= 1e3:
		return fmt.Sprintf("%.1f kB", f/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
