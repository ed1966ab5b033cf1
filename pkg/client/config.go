package client

import (
	"fmt"

	"google.golang.org/grpc"

	"github.com/nackcast/nackcast/pkg/tlsconf"
)

// Config says how a manager reaches nackcast services: plaintext, or
// mutual TLS with a client certificate (role admin to publish, delete and
// change receivers' subscriptions) from the same files and NACKCAST_TLS_*
// variables nackctl reads.
type Config struct {
	// TLS names the CA bundle, client certificate and key; all empty
	// means plaintext.
	TLS tlsconf.Files
	// ServerName is the name expected in the services' certificates;
	// empty: the host dialled.
	ServerName string
}

// ConfigFromEnv reads NACKCAST_TLS_CA, NACKCAST_TLS_CERT, NACKCAST_TLS_KEY
// and NACKCAST_TLS_SERVER_NAME with getenv (os.Getenv, usually), as
// nackctl does.
func ConfigFromEnv(getenv func(string) string) Config {
	return Config{
		TLS:        tlsconf.Files{CA: getenv("NACKCAST_TLS_CA"), Cert: getenv("NACKCAST_TLS_CERT"), Key: getenv("NACKCAST_TLS_KEY")},
		ServerName: getenv("NACKCAST_TLS_SERVER_NAME"),
	}
}

// DialOptions returns the gRPC options of c: none for plaintext, or the
// client certificate's credentials (its files are reloaded when they
// change, so a renewed certificate is picked up without a restart).
func (c Config) DialOptions() ([]grpc.DialOption, error) {
	if !c.TLS.Enabled() {
		return nil, nil
	}
	if err := c.TLS.Validate(); err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	r, err := tlsconf.New(c.TLS, nil)
	if err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(r.ClientCredentials(c.ServerName))}, nil
}

// Dial connects to the service at addr with c's transport security (see
// Dial).
func (c Config) Dial(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base, err := c.DialOptions()
	if err != nil {
		return nil, err
	}
	return Dial(addr, append(base, opts...)...)
}
