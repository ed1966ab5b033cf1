// Package tlsconf configures TLS and mutual TLS for nackcast's gRPC servers
// and clients from PEM files, and reloads those files without a restart.
//
// Every service is given three files: a CA bundle, which verifies the
// peer, and its own certificate and private key, which it presents. A
// server requires and verifies a client certificate (mutual TLS); a client
// verifies the server's certificate and name. Both sides check the files
// lazily, at most once per ReloadInterval, when a handshake needs them, so
// replacing the files (a certificate renewal or a CA rotation) takes effect
// on the next connection without restarting the service; connections
// already open keep the material they were established with.
//
// The identity of a peer is the Subject CommonName of its certificate and
// its role is the first Subject OrganizationalUnit or, for issuers that
// cannot set one, a URI subject alternative name urn:nackcast:role:ROLE
// (RoleOf). A Policy maps gRPC
// methods to the roles allowed to call them; UnaryInterceptor and
// StreamInterceptor enforce it.
//
// DevCA makes a development CA and certificates for it; see
// scripts/devca.
package tlsconf

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/credentials"
)

// ReloadInterval is the shortest time between two checks of the files for
// changes.
const ReloadInterval = time.Second

// Files names the PEM files of a TLS configuration. Either all of them are
// set or none is, which means plaintext.
type Files struct {
	// CA is the bundle of trusted CA certificates that verify the peer.
	CA string
	// Cert is this side's certificate, optionally followed by
	// intermediate certificates.
	Cert string
	// Key is the private key of Cert.
	Key string
}

// Enabled reports whether any file is set, that is whether TLS is wanted.
// Validate tells whether the configuration is complete.
func (f Files) Enabled() bool {
	return f.CA != "" || f.Cert != "" || f.Key != ""
}

// Validate reports every problem of the configuration, joined with
// errors.Join: a file missing from a partial configuration, or a file that
// does not exist or is not a regular file. A configuration with no file at
// all is valid (TLS is disabled). Validate does not parse the files; New
// does.
func (f Files) Validate() error {
	if !f.Enabled() {
		return nil
	}
	var errs []error
	for _, file := range f.list() {
		if file.path == "" {
			errs = append(errs, fmt.Errorf("TLS %s file not set (all of CA, certificate and key are needed)", file.what))
			continue
		}
		fi, err := os.Stat(file.path)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("TLS %s file: %w", file.what, err))
		case !fi.Mode().IsRegular():
			errs = append(errs, fmt.Errorf("TLS %s file %s is not a regular file", file.what, file.path))
		}
	}
	return errors.Join(errs...)
}

type namedFile struct{ what, path string }

func (f Files) list() [3]namedFile {
	return [3]namedFile{{"CA", f.CA}, {"certificate", f.Cert}, {"key", f.Key}}
}

// material is one consistent set of loaded files.
type material struct {
	cert *tls.Certificate
	pool *x509.CertPool
}

// stamp identifies a version of a file by its modification time and size.
type stamp struct {
	mod     time.Time
	size    int64
	missing bool
}

func (s stamp) equal(o stamp) bool {
	return s.mod.Equal(o.mod) && s.size == o.size && s.missing == o.missing
}

// A Reloader holds the key pair and CA pool loaded from Files and reloads
// them when a file changes. Its methods are safe for concurrent use.
type Reloader struct {
	files Files
	log   hclog.Logger
	// now is the clock of the reload checks; tests replace it.
	now func() time.Time

	mu      sync.Mutex
	cur     material
	checked time.Time // when the files were last looked at
	seen    [3]stamp  // the files as last loaded or tried
}

// New loads the files and returns a Reloader for them. It fails if the
// configuration is invalid or disabled, or if a file cannot be loaded; the
// error names the file.
func New(f Files, log hclog.Logger) (*Reloader, error) {
	if !f.Enabled() {
		return nil, errors.New("TLS files not set")
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	r := &Reloader{files: f, log: log, now: time.Now}
	r.seen = r.stat()
	m, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cur = m
	r.checked = r.now()
	r.logLoaded("loaded TLS material", m)
	return r, nil
}

// Reload loads the files now, whether they changed or not, for example on
// SIGHUP. If loading fails the previous material stays in use and the
// error, naming the file, is returned but not logged.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = r.now()
	r.seen = r.stat()
	m, err := r.load()
	if err != nil {
		return err
	}
	r.cur = m
	r.logLoaded("reloaded TLS material", m)
	return nil
}

// current returns the material to use for a handshake, first reloading
// the files if they changed and were not looked at for ReloadInterval. A
// failed reload (a half-written file, say) is logged and the previous
// material is kept; it is retried when a file changes again.
func (r *Reloader) current() material {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if d := now.Sub(r.checked); d >= 0 && d < ReloadInterval {
		return r.cur
	}
	r.checked = now
	st := r.stat()
	if st[0].equal(r.seen[0]) && st[1].equal(r.seen[1]) && st[2].equal(r.seen[2]) {
		return r.cur
	}
	r.seen = st
	m, err := r.load()
	if err != nil {
		r.log.Warn("TLS files changed but cannot be loaded; keeping the previous material", "error", err)
		return r.cur
	}
	r.cur = m
	r.logLoaded("reloaded TLS material", m)
	return r.cur
}

func (r *Reloader) logLoaded(msg string, m material) {
	leaf := m.cert.Leaf
	r.log.Info(msg, "cert", r.files.Cert, "name", leaf.Subject.CommonName,
		"role", RoleOf(leaf), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "ca", r.files.CA)
	if time.Now().After(leaf.NotAfter) {
		r.log.Warn("TLS certificate has expired", "cert", r.files.Cert, "not_after", leaf.NotAfter)
	}
}

// stat looks at the files before they are read, so that a change made
// while reading is seen by the next check.
func (r *Reloader) stat() [3]stamp {
	var st [3]stamp
	for i, f := range r.files.list() {
		fi, err := os.Stat(f.path)
		if err != nil {
			st[i] = stamp{missing: true}
			continue
		}
		st[i] = stamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return st
}

func (r *Reloader) load() (material, error) {
	certPEM, err := readPEM(r.files.Cert)
	if err != nil {
		return material{}, fmt.Errorf("TLS certificate: %w", err)
	}
	keyPEM, err := readPEM(r.files.Key)
	if err != nil {
		return material{}, fmt.Errorf("TLS key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return material{}, fmt.Errorf("TLS certificate %s with key %s: %w", r.files.Cert, r.files.Key, err)
	}
	if cert.Leaf == nil { // with GODEBUG=x509keypairleaf=0
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return material{}, fmt.Errorf("TLS certificate %s: %w", r.files.Cert, err)
		}
	}
	pool, err := loadPool(r.files.CA)
	if err != nil {
		return material{}, err
	}
	return material{cert: &cert, pool: pool}, nil
}

// readPEM reads a PEM file and rejects trailing data that is not PEM,
// which is what a truncated (half-written) file looks like.
func readPEM(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rest := data
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		n++
	}
	switch {
	case bytes.Contains(rest, []byte("-----BEGIN")):
		return nil, fmt.Errorf("%s: incomplete PEM block (truncated file?)", path)
	case n == 0:
		return nil, fmt.Errorf("%s: no PEM data", path)
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, fmt.Errorf("%s: data after the last PEM block (truncated file?)", path)
	}
	return data, nil
}

// loadPool parses a CA bundle, failing on any certificate that does not
// parse rather than skipping it as x509.CertPool.AppendCertsFromPEM does.
func loadPool(path string) (*x509.CertPool, error) {
	data, err := readPEM(path)
	if err != nil {
		return nil, fmt.Errorf("TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		n++
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("TLS CA %s: certificate %d: %w", path, n, err)
		}
		pool.AddCert(c)
	}
	if n == 0 {
		return nil, fmt.Errorf("TLS CA %s: no CERTIFICATE block", path)
	}
	return pool, nil
}

// ServerConfig returns a server configuration for mutual TLS: TLS 1.3 at
// least, the current certificate, and a client certificate required and
// verified against the current CA pool.
//
// Since the CA pool follows reloads, the configuration of each handshake is
// made by GetConfigForClient from a copy of the returned Config, so fields
// set on it before use (NextProtos, say) apply to every handshake; its
// Certificates, ClientCAs and ClientAuth are overridden. Session tickets
// are disabled so that a rotated CA also applies to clients that would
// otherwise resume a session verified by the old one.
func (r *Reloader) ServerConfig() *tls.Config {
	cfg := &tls.Config{
		MinVersion:             tls.VersionTLS13,
		ClientAuth:             tls.RequireAndVerifyClientCert,
		SessionTicketsDisabled: true,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.current().cert, nil
		},
	}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		m := r.current()
		c := cfg.Clone()
		c.GetConfigForClient = nil
		c.GetCertificate = nil
		c.Certificates = []tls.Certificate{*m.cert}
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = m.pool
		c.SessionTicketsDisabled = true
		return c, nil
	}
	return cfg
}

// ClientConfig returns a client configuration for mutual TLS: TLS 1.3 at
// least, the current certificate presented to the server, and the server's
// certificate verified against the current CA pool for serverName, or for
// the configuration's ServerName if serverName is empty.
//
// The standard verification reads the static RootCAs field, which cannot
// follow a reload. So the configuration sets InsecureSkipVerify, which
// only turns the standard verification off, and verifies the chain and
// the server name itself in VerifyConnection, which runs on every
// handshake, resumed ones included. Do not clear VerifyConnection on the
// returned Config: without it, any server would be accepted.
//
// Dialing an IP address, give the address as serverName: TLS does not send
// IP addresses as server names, so VerifyConnection cannot learn it from
// the connection. ClientCredentials takes care of that for gRPC.
func (r *Reloader) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return r.current().cert, nil
		},
		// See above: VerifyConnection does the verification.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return r.verifyServer(cs, serverName)
		},
	}
}

// verifyServer does what crypto/tls does when InsecureSkipVerify is false,
// with the current CA pool.
func (r *Reloader) verifyServer(cs tls.ConnectionState, serverName string) error {
	name := serverName
	if name == "" {
		name = cs.ServerName
	}
	if name == "" {
		return errors.New("tls: no server name to verify the server certificate against")
	}
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: server sent no certificate")
	}
	opts := x509.VerifyOptions{
		Roots:         r.current().pool,
		Intermediates: x509.NewCertPool(),
		DNSName:       name,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
	}
	return nil
}

// ServerCredentials returns gRPC server credentials using ServerConfig.
func (r *Reloader) ServerCredentials() credentials.TransportCredentials {
	return credentials.NewTLS(r.ServerConfig())
}

// ClientCredentials returns gRPC client credentials using ClientConfig.
// The server's certificate is verified for serverName if it is set (and
// gRPC then uses it as the default authority), and otherwise for the host
// of the connection's authority, by default the host of the dialed target,
// IP addresses included.
func (r *Reloader) ClientCredentials(serverName string) credentials.TransportCredentials {
	return &clientCreds{r: r, serverName: serverName}
}

// clientCreds makes a ClientConfig per handshake, for the name of the
// server being dialed.
type clientCreds struct {
	r          *Reloader
	serverName string
}

// ClientHandshake does the TLS handshake with a configuration verifying
// the server for the name of the server being dialed.
func (c *clientCreds) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	name := c.serverName
	if name == "" {
		name = authority
		if host, _, err := net.SplitHostPort(authority); err == nil {
			name = host
		}
	}
	return credentials.NewTLS(c.r.ClientConfig(name)).ClientHandshake(ctx, authority, conn)
}

// ServerHandshake fails: these are client credentials.
func (c *clientCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("tlsconf: client credentials used by a server")
}

// Info returns the protocol, TLS, and the server name, if set.
func (c *clientCreds) Info() credentials.ProtocolInfo {
	return credentials.NewTLS(&tls.Config{ServerName: c.serverName}).Info()
}

// Clone returns a copy of c.
func (c *clientCreds) Clone() credentials.TransportCredentials {
	cc := *c
	return &cc
}

// OverrideServerName implements credentials.TransportCredentials.
//
// Deprecated: pass the name to ClientCredentials.
func (c *clientCreds) OverrideServerName(name string) error {
	c.serverName = name
	return nil
}
