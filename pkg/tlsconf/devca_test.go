package tlsconf

import (
	"bytes"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIssue(t *testing.T) {
	ca := newCA(t)
	tests := []struct {
		name, role string
		hosts      []string
		validity   time.Duration
		wantDNS    []string
		wantIPs    []string
		wantOU     []string
		wantErr    string
	}{
		{"sender", "sender", nil, time.Hour, []string{"sender", "localhost"}, []string{"127.0.0.1", "::1"}, []string{"sender"}, ""},
		{"receiver-1", "receiver", []string{"r1.example", "10.1.2.3", "localhost", "::1", ""}, time.Hour,
			[]string{"receiver-1", "localhost", "r1.example"}, []string{"127.0.0.1", "::1", "10.1.2.3"}, []string{"receiver"}, ""},
		{"norole", "", nil, time.Hour, []string{"norole", "localhost"}, []string{"127.0.0.1", "::1"}, nil, ""},
		{"", "x", nil, time.Hour, nil, nil, nil, "name is empty"},
		{"x", "x", nil, 0, nil, nil, nil, "not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ca.Issue(tt.name, tt.role, tt.hosts, tt.validity)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Issue: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := p.Certificate()
			if err != nil {
				t.Fatal(err)
			}
			var ips []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			if c.Subject.CommonName != tt.name || !slices.Equal(c.Subject.OrganizationalUnit, tt.wantOU) ||
				!slices.Equal(c.DNSNames, tt.wantDNS) || !slices.Equal(ips, tt.wantIPs) {
				t.Errorf("subject %v, DNS %q, IP %q; want CN %q OU %q, DNS %q, IP %q",
					c.Subject, c.DNSNames, ips, tt.name, tt.wantOU, tt.wantDNS, tt.wantIPs)
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca.Cert)
			for _, u := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
				if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: tt.name, KeyUsages: []x509.ExtKeyUsage{u}}); err != nil {
					t.Errorf("verify for usage %v: %v", u, err)
				}
			}
		})
	}
}

func TestIssueNotBeyondCA(t *testing.T) {
	ca := newCA(t) // valid for a day
	p, err := ca.Issue("long", "x", nil, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if !c.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("NotAfter %v, want the CA's %v", c.NotAfter, ca.Cert.NotAfter)
	}
}

func TestLoadOrNewDevCA(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	ca1, created, err := LoadOrNewDevCA(certFile, keyFile, time.Hour, false)
	if err != nil || !created {
		t.Fatalf("first: created %v, %v", created, err)
	}
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("key mode %v, want 0600", perm)
	}
	steps := []struct {
		name        string
		setup       func(t *testing.T)
		force       bool
		wantCreated bool
		wantSame    bool
		wantErr     string
	}{
		{"reuse", func(*testing.T) {}, false, false, true, ""},
		{"force", func(*testing.T) {}, true, true, false, ""},
		{"key missing", func(*testing.T) { os.Remove(keyFile) }, false, false, false, "only one of"},
		{"key missing, force", func(*testing.T) {}, true, true, false, ""},
		{"key of another CA", func(t *testing.T) {
			p, err := newCA(t).PEM()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(keyFile, p.Key, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false, false, false, "does not match"},
		{"not a CA", func(t *testing.T) {
			p := issue(t, ca1, "leaf", "x")
			if err := p.WriteFiles(certFile, keyFile); err != nil {
				t.Fatal(err)
			}
		}, false, false, false, "not a CA"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before, _ := os.ReadFile(certFile)
			s.setup(t)
			ca, created, err := LoadOrNewDevCA(certFile, keyFile, time.Hour, s.force)
			if s.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), s.wantErr) {
					t.Fatalf("got %v, want %q", err, s.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			after, _ := os.ReadFile(certFile)
			if created != s.wantCreated || bytes.Equal(before, after) != s.wantSame || !bytes.Equal(ca.Cert.Raw, pemDER(t, after)) {
				t.Errorf("created %v, same file %v; want %v, %v", created, bytes.Equal(before, after), s.wantCreated, s.wantSame)
			}
		})
	}
}

func pemDER(t *testing.T, data []byte) []byte {
	t.Helper()
	c, err := PEM{Cert: data}.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	return c.Raw
}

// TestDevCAHandshake checks that files written by the DevCA make a working
// mutual-TLS pair for names and addresses of the certificates.
func TestDevCAHandshake(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	for _, n := range []struct{ name, role string }{{"sender", "sender"}, {"nackctl", "admin"}} {
		p, err := ca.Issue(n.name, n.role, []string{"sender.example"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WriteFiles(filepath.Join(dir, n.name+".pem"), filepath.Join(dir, n.name+".key")); err != nil {
			t.Fatal(err)
		}
	}
	p, err := ca.PEM()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteFiles(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")); err != nil {
		t.Fatal(err)
	}
	files := func(name string) Files {
		return Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key")}
	}
	srv, err := New(files("sender"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := New(files("nackctl"), nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, srv.ServerCredentials())
	for _, name := range []string{"sender", "localhost", "sender.example", "127.0.0.1", ""} {
		if err := check(t, addr, cli.ClientCredentials(name)); err != nil {
			t.Errorf("server name %q: %v", name, err)
		}
	}
	if err := check(t, addr, cli.ClientCredentials("nackctl")); err == nil {
		t.Error("server certificate accepted for name nackctl")
	}
	// The name of an IPv6 target comes from the authority too.
	lis, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	lis.Close()
	addr6 := startServerOn(t, "[::1]:0", srv.ServerCredentials())
	if err := check(t, addr6, cli.ClientCredentials("")); err != nil {
		t.Errorf("server %s: %v", addr6, err)
	}
}
