package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, p := range []string{ca, cert, key} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name    string
		files   Files
		enabled bool
		want    []string // substrings of the error; none means no error
	}{
		{"none", Files{}, false, nil},
		{"all", Files{CA: ca, Cert: cert, Key: key}, true, nil},
		{"cert without key", Files{CA: ca, Cert: cert}, true, []string{"key file not set"}},
		{"key without cert", Files{CA: ca, Key: key}, true, []string{"certificate file not set"}},
		{"no CA", Files{Cert: cert, Key: key}, true, []string{"CA file not set"}},
		{"only CA", Files{CA: ca}, true, []string{"certificate file not set", "key file not set"}},
		{"nonexistent CA", Files{CA: missing, Cert: cert, Key: key}, true, []string{"TLS CA file", missing, "no such file"}},
		{"directory as cert", Files{CA: ca, Cert: dir, Key: key}, true, []string{"certificate file " + dir + " is not a regular file"}},
		{"every problem", Files{CA: missing, Cert: dir}, true, []string{"TLS CA file", "not a regular file", "key file not set"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.files.Enabled(); got != tt.enabled {
				t.Errorf("Enabled() = %v, want %v", got, tt.enabled)
			}
			err := tt.files.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error with %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	ca := newCA(t)
	good := peerFiles(t, ca, "sender", "sender", ca)
	other := peerFiles(t, ca, "backup", "backup", ca)
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caData, err := os.ReadFile(good.CA)
	if err != nil {
		t.Fatal(err)
	}
	keyData, err := os.ReadFile(good.Key)
	if err != nil {
		t.Fatal(err)
	}
	garbage := write("garbage.pem", "not PEM at all\n")
	truncated := write("truncated.pem", string(caData[:len(caData)/2]))
	keyOnly := write("keyonly.pem", string(keyData))
	badCert := write("badcert.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
	tests := []struct {
		name  string
		files Files
		want  []string
	}{
		{"disabled", Files{}, []string{"TLS files not set"}},
		{"incomplete", Files{CA: good.CA, Cert: good.Cert}, []string{"key file not set"}},
		{"CA not PEM", Files{CA: garbage, Cert: good.Cert, Key: good.Key}, []string{"TLS CA", garbage, "no PEM data"}},
		{"CA truncated", Files{CA: truncated, Cert: good.Cert, Key: good.Key}, []string{"TLS CA", truncated, "truncated"}},
		{"CA without certificate", Files{CA: keyOnly, Cert: good.Cert, Key: good.Key}, []string{keyOnly, "no CERTIFICATE block"}},
		{"CA certificate bad", Files{CA: badCert, Cert: good.Cert, Key: good.Key}, []string{badCert, "certificate 1"}},
		{"cert not PEM", Files{CA: good.CA, Cert: garbage, Key: good.Key}, []string{"TLS certificate", garbage}},
		{"key not PEM", Files{CA: good.CA, Cert: good.Cert, Key: garbage}, []string{"TLS key", garbage}},
		{"key of another cert", Files{CA: good.CA, Cert: good.Cert, Key: other.Key}, []string{good.Cert, other.Key, "does not match"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.files, nil)
			if err == nil {
				t.Fatalf("New() = %v, nil; want an error", r)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New() error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestHandshake(t *testing.T) {
	ca, otherCA := newCA(t), newCA(t)
	srv, _, _ := newReloader(t, peerFiles(t, ca, "sender", "sender", ca))
	addr := startServer(t, srv.ServerCredentials())

	client := func(issuer *DevCA, trust ...*DevCA) *Reloader {
		r, _, _ := newReloader(t, peerFiles(t, issuer, "nackctl", "admin", trust...))
		return r
	}
	good := client(ca, ca)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	tests := []struct {
		name  string
		creds credentials.TransportCredentials
		want  string // substring of the error; "" for success, "*" for any error
	}{
		{"same CA", good.ClientCredentials("sender"), ""},
		{"name from IP target", good.ClientCredentials(""), ""},
		{"localhost", good.ClientCredentials("localhost"), ""},
		{"trusting both CAs", client(ca, otherCA, ca).ClientCredentials("sender"), ""},
		{"client certificate from another CA", client(otherCA, ca).ClientCredentials("sender"), "*"},
		{"no client certificate", credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: "sender", MinVersion: tls.VersionTLS13}), "*"},
		{"server certificate for another name", good.ClientCredentials("backup"), "certificate is valid for sender"},
		{"server from an untrusted CA", client(ca, otherCA).ClientCredentials("sender"), "certificate signed by unknown authority"},
		{"plaintext", insecure.NewCredentials(), "*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := check(t, addr, tt.creds)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Check succeeded, want a handshake failure")
			}
			if c := status.Code(err); c != codes.Unavailable {
				t.Errorf("Check: code %v, want Unavailable: %v", c, err)
			}
			if tt.want != "*" && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check: %v; want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestServerConfigMinVersion(t *testing.T) {
	ca := newCA(t)
	srv, _, _ := newReloader(t, peerFiles(t, ca, "sender", "sender", ca))
	cli, _, _ := newReloader(t, peerFiles(t, ca, "nackctl", "admin", ca))
	addr := startServer(t, srv.ServerCredentials())
	cfg := cli.ClientConfig("sender")
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err == nil {
		conn.Close()
		t.Fatal("TLS 1.2 handshake succeeded")
	}
	cfg = cli.ClientConfig("sender")
	cfg.NextProtos = []string{"h2"}
	conn, err = tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS 1.3 handshake: %v", err)
	}
	defer conn.Close()
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("version %x, want TLS 1.3", v)
	}
}

func TestClientConfigNeedsName(t *testing.T) {
	ca := newCA(t)
	r, _, _ := newReloader(t, peerFiles(t, ca, "sender", "sender", ca))
	err := r.ClientConfig("").VerifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{ca.Cert}})
	if err == nil || !strings.Contains(err.Error(), "no server name") {
		t.Errorf("VerifyConnection without a name = %v, want a no server name error", err)
	}
}

func TestReload(t *testing.T) {
	caA, caB := newCA(t), newCA(t)
	serverDir := t.TempDir()
	srvFiles := writeFiles(t, serverDir, issue(t, caA, "sender", "sender"), caA)
	srv, clock, log := newReloader(t, srvFiles)
	addr := startServer(t, srv.ServerCredentials())

	clientA, _, _ := newReloader(t, peerFiles(t, caA, "nackctl", "admin", caA))
	clientB, _, _ := newReloader(t, peerFiles(t, caB, "nackctl", "admin", caB))
	credsA, credsB := clientA.ClientCredentials("sender"), clientB.ClientCredentials("sender")

	// A connection open before the rotation keeps working after it.
	open := dial(t, addr, credsA)
	healthCheck := func() error {
		_, err := healthClientCheck(open)
		return err
	}
	if err := healthCheck(); err != nil {
		t.Fatalf("before rotation: %v", err)
	}

	steps := []struct {
		name          string
		do            func()
		wantA, wantB  bool // whether clients of CA A and B connect
		wantLog       string
		wantReloadErr string
	}{
		{"initial", func() {}, true, false, "", ""},
		{"rotated, not yet checked", func() {
			writeFiles(t, serverDir, issue(t, caB, "sender", "sender"), caB)
			clock.Advance(ReloadInterval / 2)
		}, true, false, "", ""},
		{"rotated and checked", func() { clock.Advance(ReloadInterval) }, false, true, "reloaded TLS material", ""},
		{"half-written certificate", func() {
			data, err := os.ReadFile(srvFiles.Cert)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(srvFiles.Cert, data[:len(data)/2], 0o644); err != nil {
				t.Fatal(err)
			}
			touch(t, srvFiles.Cert)
			clock.Advance(2 * ReloadInterval)
		}, false, true, "keeping the previous material", "truncated"},
		{"garbage CA", func() {
			writeFiles(t, serverDir, issue(t, caB, "sender", "sender"), caB)
			if err := os.WriteFile(srvFiles.CA, []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
			touch(t, srvFiles.CA)
			clock.Advance(2 * ReloadInterval)
		}, false, true, "keeping the previous material", "TLS CA"},
		{"rotated back to A", func() {
			writeFiles(t, serverDir, issue(t, caA, "sender", "sender"), caA)
			clock.Advance(2 * ReloadInterval)
		}, true, false, "reloaded TLS material", ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := len(log.String())
			s.do()
			if err := check(t, addr, credsA); (err == nil) != s.wantA {
				t.Errorf("client of CA A: err %v, want success %v", err, s.wantA)
			}
			if err := check(t, addr, credsB); (err == nil) != s.wantB {
				t.Errorf("client of CA B: err %v, want success %v", err, s.wantB)
			}
			if got := log.String()[before:]; s.wantLog != "" && !strings.Contains(got, s.wantLog) {
				t.Errorf("log %q, want %q", got, s.wantLog)
			}
			if s.wantReloadErr != "" {
				err := srv.Reload()
				if err == nil || !strings.Contains(err.Error(), s.wantReloadErr) {
					t.Errorf("Reload() = %v, want an error with %q", err, s.wantReloadErr)
				}
				if err := check(t, addr, credsB); err != nil {
					t.Errorf("after a failed Reload: %v", err)
				}
			}
			if err := healthCheck(); err != nil {
				t.Errorf("connection open before the rotation: %v", err)
			}
		})
	}
}

// TestExplicitReload checks that Reload takes effect without waiting for
// the clock, on both sides: the client follows its own files too.
func TestExplicitReload(t *testing.T) {
	caA, caB := newCA(t), newCA(t)
	srvDir, cliDir := t.TempDir(), t.TempDir()
	srv, _, _ := newReloader(t, writeFiles(t, srvDir, issue(t, caA, "sender", "sender"), caA))
	cli, cliClock, _ := newReloader(t, writeFiles(t, cliDir, issue(t, caA, "nackctl", "admin"), caA))
	addr := startServer(t, srv.ServerCredentials())
	creds := cli.ClientCredentials("sender")
	if err := check(t, addr, creds); err != nil {
		t.Fatalf("before: %v", err)
	}
	writeFiles(t, srvDir, issue(t, caB, "sender", "sender"), caB)
	if err := srv.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if err := check(t, addr, creds); err == nil {
		t.Fatal("client of the old CA accepted after the server's Reload")
	}
	writeFiles(t, cliDir, issue(t, caB, "nackctl", "admin"), caB)
	cliClock.Advance(ReloadInterval)
	if err := check(t, addr, creds); err != nil {
		t.Fatalf("after both sides rotated: %v", err)
	}
}

func TestReloadIntervalClockBackwards(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	r, clock, _ := newReloader(t, writeFiles(t, dir, issue(t, ca, "a", "x"), ca))
	writeFiles(t, dir, issue(t, ca, "b", "y"), ca)
	clock.Advance(-time.Hour)
	if got := r.current().cert.Leaf.Subject.CommonName; got != "b" {
		t.Errorf("after the clock went back, certificate %q, want %q", got, "b")
	}
}

// TestServerRejects checks why the server refuses clients, which gRPC
// reports only as a broken connection.
func TestServerRejects(t *testing.T) {
	ca, otherCA := newCA(t), newCA(t)
	srv, _, _ := newReloader(t, peerFiles(t, ca, "sender", "sender", ca))
	addr := startServer(t, srv.ServerCredentials())
	foreign, _, _ := newReloader(t, peerFiles(t, otherCA, "nackctl", "admin", ca))
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	tests := []struct {
		name string
		cfg  *tls.Config
		want string
	}{
		{"client certificate from another CA", foreign.ClientConfig("sender"), "remote error: tls: unknown certificate authority"},
		{"no client certificate", &tls.Config{RootCAs: pool, ServerName: "sender", MinVersion: tls.VersionTLS13}, "remote error: tls: certificate required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.NextProtos = []string{"h2"}
			conn, err := tls.Dial("tcp", addr, tt.cfg)
			if err == nil {
				// In TLS 1.3 the server verifies the client after the
				// client's handshake is over: the alert comes next.
				defer conn.Close()
				if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
					t.Fatal(err)
				}
				_, err = conn.Read(make([]byte, 1))
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
