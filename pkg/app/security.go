package app

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/nackcast/nackcast/pkg/tlsconf"
)

// Transport is a process's gRPC transport security: mutual TLS with the
// certificates of TLS, or plaintext when Plaintext is set explicitly.
type Transport struct {
	TLS       tlsconf.Files
	Plaintext bool
	// ServerName overrides the name checked in servers' certificates
	// (default: the host of the address dialled).
	ServerName string
	// Sources says where the flags' values came from (ParseSources), for
	// the error about conflicting settings.
	Sources Sources

	tls *tlsconf.Reloader
}

// Register adds the transport flags to fs.
func (t *Transport) Register(fs *flag.FlagSet) {
	fs.StringVar(&t.TLS.CA, "tls-ca", t.TLS.CA, "PEM bundle of the CA(s) that sign the cloud's certificates (mutual TLS)")
	fs.StringVar(&t.TLS.Cert, "tls-cert", t.TLS.Cert, "PEM certificate of this process (CN = its name; its role, sender, backup, receiver or admin, in the first OU or a URI SAN urn:nackcast:role:ROLE); reloaded when it changes")
	fs.StringVar(&t.TLS.Key, "tls-key", t.TLS.Key, "PEM private key of -tls-cert")
	fs.StringVar(&t.ServerName, "tls-server-name", t.ServerName, "name expected in servers' certificates (default: the host dialled)")
	fs.BoolVar(&t.Plaintext, "plaintext", t.Plaintext, "run gRPC without transport security (only on a trusted network: anyone who reaches the port can NACK, pull, publish and delete)")
}

// ErrNoTransport is returned when neither TLS nor plaintext was chosen.
var ErrNoTransport = errors.New("no gRPC transport security configured: give -tls-ca, -tls-cert and -tls-key (make dev-certs creates a development set), or -plaintext to run without")

// Setup checks the choice and loads the certificates.
func (t *Transport) Setup(log hclog.Logger) error {
	switch {
	case t.TLS.Enabled() && t.Plaintext:
		return t.conflict()
	case t.Plaintext:
		return nil
	case !t.TLS.Enabled():
		return ErrNoTransport
	}
	if err := t.TLS.Validate(); err != nil {
		return err
	}
	r, err := tlsconf.New(t.TLS, log)
	if err != nil {
		return err
	}
	t.tls = r
	return nil
}

// conflict explains that plaintext and TLS were both asked for, and where
// each setting came from: a NACKCAST_PLAINTEXT left in a shell that now
// starts a TLS service is the usual cause.
func (t *Transport) conflict() error {
	var tls []string // "-tls-ca, -tls-key (from the command line)"
	var names []string
	src := ""
	flush := func() {
		if len(names) > 0 {
			tls = append(tls, fmt.Sprintf("%s (from %s)", strings.Join(names, ", "), src))
		}
		names = nil
	}
	for _, f := range []struct{ name, value string }{{"tls-ca", t.TLS.CA}, {"tls-cert", t.TLS.Cert}, {"tls-key", t.TLS.Key}} {
		if f.value == "" {
			continue
		}
		if s := t.Sources.Of(f.name); s != src {
			flush()
			src = s
		}
		names = append(names, "-"+f.name)
	}
	flush()
	return fmt.Errorf("-plaintext (from %s) and %s are exclusive: choose mutual TLS or plaintext, not both", t.Sources.Of("plaintext"), strings.Join(tls, "; "))
}

// Secure reports whether mutual TLS is in use.
func (t *Transport) Secure() bool { return t.tls != nil }

// Reload reloads the certificates now (they are also reloaded when their
// files change).
func (t *Transport) Reload() error {
	if t.tls == nil {
		return nil
	}
	return t.tls.Reload()
}

// ServerOptions returns the gRPC server options: TLS credentials and the
// authorization of policy, or none in plaintext.
func (t *Transport) ServerOptions(p tlsconf.Policy) []grpc.ServerOption {
	if t.tls == nil {
		return nil
	}
	return []grpc.ServerOption{
		// A plaintext client is told that TLS is required (not a bare EOF).
		grpc.Creds(tlsconf.RefusePlaintext(t.tls.ServerCredentials())),
		grpc.ChainUnaryInterceptor(tlsconf.UnaryInterceptor(p)),
		grpc.ChainStreamInterceptor(tlsconf.StreamInterceptor(p)),
	}
}

// DialOptions returns the options for dialling other services: TLS
// credentials with this process's certificate, or none in plaintext (the
// dialler's default).
func (t *Transport) DialOptions() []grpc.DialOption {
	if t.tls == nil {
		return nil
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(t.tls.ClientCredentials(t.ServerName))}
}

// String describes the transport for logs.
func (t *Transport) String() string {
	if t.tls != nil {
		return fmt.Sprintf("mutual TLS (cert %s)", t.TLS.Cert)
	}
	return "plaintext"
}

// Roles of the cloud's certificates (their first OU).
const (
	RoleSender   = "sender"
	RoleBackup   = "backup"
	RoleReceiver = "receiver"
	RoleAdmin    = "admin"
)

// Service names, for policies.
const (
	senderService   = "/nackcast.v1.SenderService/"
	receiverService = "/nackcast.v1.ReceiverService/"
)

// SenderPolicy is who may call a primary or backup sender: receivers
// NACK, fetch manifests and pull; the other sender checks liveness,
// reclaims and reads status; only admins publish and delete; anyone with
// a certificate of the cloud may check health and use reflection.
func SenderPolicy() tlsconf.Policy {
	peers := []string{RoleSender, RoleBackup}
	all := []string{RoleSender, RoleBackup, RoleReceiver, RoleAdmin}
	return tlsconf.Policy{Rules: []tlsconf.Rule{
		tlsconf.AllowAny("/grpc.health.v1.Health/"),
		tlsconf.AllowAny("/grpc.reflection."),
		tlsconf.Allow(senderService+"Nack", all...),
		tlsconf.Allow(senderService+"GetManifest", all...),
		tlsconf.Allow(senderService+"StreamManifest", all...),
		tlsconf.Allow(senderService+"Pull", all...),
		tlsconf.Allow(senderService+"ListChannels", all...),
		tlsconf.Allow(senderService+"GetStatus", append(peers, RoleAdmin)...),
		tlsconf.Allow(senderService+"WatchStatus", append(peers, RoleAdmin)...),
		tlsconf.Allow(senderService+"WatchAlerts", append(peers, RoleAdmin)...),
		tlsconf.Allow(senderService+"Reclaim", append(peers, RoleAdmin)...),
		tlsconf.Allow(senderService+"PublishObject", RoleAdmin),
		tlsconf.Allow(senderService+"DeleteObject", RoleAdmin),
	}}
}

// ReceiverPolicy is who may call a receiver: admins read its status and
// alerts; anyone with a certificate of the cloud may check health.
func ReceiverPolicy() tlsconf.Policy {
	return tlsconf.Policy{Rules: []tlsconf.Rule{
		tlsconf.AllowAny("/grpc.health.v1.Health/"),
		tlsconf.AllowAny("/grpc.reflection."),
		tlsconf.Allow(receiverService, RoleAdmin),
	}}
}
