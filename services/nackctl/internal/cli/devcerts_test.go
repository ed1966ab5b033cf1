package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/nackcast/nackcast/pkg/tlsconf"
)

// devCerts runs nackctl dev-certs with args.
func devCerts(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Run(append([]string{"dev-certs"}, args...), Env{Stdout: &o, Stderr: &e, Getenv: func(string) string { return "" }})
	return code, o.String(), e.String()
}

func runOK(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := devCerts(args...)
	if code != 0 {
		t.Fatalf("dev-certs %q: exit %d\n%s", args, code, errOut)
	}
	return out
}

func certFiles(dir, name string) tlsconf.Files {
	return tlsconf.Files{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key")}
}

// handshake serves health with the certificate of server and checks it
// with the certificate of client, both from dir.
func handshake(t *testing.T, dir, server, client string) error {
	t.Helper()
	srv, err := tlsconf.New(certFiles(dir, server), nil)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := tlsconf.New(certFiles(dir, client), nil)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpc.Creds(srv.ServerCredentials()))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := gs.Serve(lis); err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	defer func() {
		gs.Stop()
		<-done
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(cli.ClientCredentials(server)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestDevCerts(t *testing.T) {
	dir := t.TempDir()
	out := runOK(t, "-out", dir, "-certs", "sender:sender,nackctl:admin", "-hosts", "sender.example,10.0.0.1", "-days", "30")
	if !strings.Contains(out, "wrote new CA") || !strings.Contains(out, "sender.pem") || !strings.Contains(out, "role admin") {
		t.Errorf("output:\n%s", out)
	}
	for name, want := range map[string]os.FileMode{
		"ca.pem": 0o644, "ca.key": 0o600, "sender.pem": 0o644, "sender.key": 0o600, "nackctl.pem": 0o644, "nackctl.key": 0o600,
	} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want)
		}
	}
	if err := handshake(t, dir, "sender", "nackctl"); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	caBefore, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}

	// A rerun reuses the CA: the new certificate works with the old ones.
	out = runOK(t, "-out", dir, "-certs", "backup:backup")
	if !strings.Contains(out, "reusing CA") {
		t.Errorf("rerun output:\n%s", out)
	}
	caAfter, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(caBefore, caAfter) {
		t.Error("rerun replaced the CA")
	}
	if err := handshake(t, dir, "backup", "nackctl"); err != nil {
		t.Fatalf("handshake with the added certificate: %v", err)
	}

	// -force makes a new CA, which the old certificates do not chain to.
	out = runOK(t, "-out", dir, "-force", "-certs", "sender:sender")
	if !strings.Contains(out, "wrote new CA") {
		t.Errorf("forced output:\n%s", out)
	}
	if err := handshake(t, dir, "sender", "nackctl"); err == nil {
		t.Error("certificate of the old CA accepted after -force")
	}
}

func TestDevCertsErrors(t *testing.T) {
	halfCA := t.TempDir()
	if err := os.WriteFile(filepath.Join(halfCA, "ca.pem"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no role", []string{"-certs", "sender"}, "not NAME:ROLE"},
		{"empty role", []string{"-certs", "sender:"}, "not NAME:ROLE"},
		{"name ca", []string{"-certs", "ca:admin"}, "cannot be a certificate name"},
		{"path name", []string{"-certs", "../x:admin"}, "cannot be a certificate name"},
		{"twice", []string{"-certs", "a:x,a:y"}, "given twice"},
		{"days", []string{"-days", "0"}, "must be positive"},
		{"arguments", []string{"extra"}, "unexpected arguments"},
		{"half a CA", []string{"-out", halfCA, "-certs", "a:x"}, "-force"},
		{"bad flag", []string{"-nope"}, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !strings.HasPrefix(strings.Join(args, " "), "-out") {
				args = append([]string{"-out", t.TempDir()}, args...)
			}
			code, _, errOut := devCerts(args...)
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Errorf("dev-certs %q: exit %d, %q, want an error with %q", args, code, errOut, tt.want)
			}
		})
	}
}
