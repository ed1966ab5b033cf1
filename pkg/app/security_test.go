package app

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestPolicies(t *testing.T) {
	const s, r = "/nackcast.v1.SenderService/", "/nackcast.v1.ReceiverService/"
	tests := []struct {
		method, role string
		sender, recv bool // allowed by SenderPolicy, ReceiverPolicy
	}{
		{s + "Nack", RoleReceiver, true, false},
		{s + "Pull", RoleReceiver, true, false},
		{s + "GetManifest", RoleReceiver, true, false},
		{s + "PublishObject", RoleReceiver, false, false},
		{s + "DeleteObject", RoleReceiver, false, false},
		{s + "DeleteObject", RoleBackup, false, false},
		{s + "PublishObject", RoleAdmin, true, false},
		{s + "DeleteObject", RoleAdmin, true, false},
		{s + "Reclaim", RoleSender, true, false},
		{s + "Reclaim", RoleReceiver, false, false},
		{s + "GetStatus", RoleReceiver, false, false},
		{s + "SomethingNew", RoleAdmin, false, false},
		{r + "GetStatus", RoleAdmin, false, true},
		{r + "VerifyChannel", RoleReceiver, false, false},
		{r + "VerifyChannel", RoleAdmin, false, true},
		{"/grpc.health.v1.Health/Check", RoleReceiver, true, true},
	}
	sp, rp := SenderPolicy(), ReceiverPolicy()
	if err := errors.Join(sp.Validate(), rp.Validate()); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if got := sp.Allowed(tt.method, tt.role); got != tt.sender {
			t.Errorf("SenderPolicy %s as %s = %v, want %v", tt.method, tt.role, got, tt.sender)
		}
		if got := rp.Allowed(tt.method, tt.role); got != tt.recv {
			t.Errorf("ReceiverPolicy %s as %s = %v, want %v", tt.method, tt.role, got, tt.recv)
		}
	}
}

func TestTransportChoice(t *testing.T) {
	var none Transport
	if err := none.Setup(hclog.NewNullLogger()); !errors.Is(err, ErrNoTransport) {
		t.Errorf("neither TLS nor plaintext: %v, want ErrNoTransport", err)
	}
	both := Transport{Plaintext: true}
	both.TLS.CA = "ca.pem"
	if err := both.Setup(hclog.NewNullLogger()); err == nil {
		t.Error("TLS and plaintext together accepted")
	}
	plain := Transport{Plaintext: true}
	if err := plain.Setup(hclog.NewNullLogger()); err != nil || plain.Secure() || plain.ServerOptions(SenderPolicy()) != nil || plain.DialOptions() != nil {
		t.Errorf("explicit plaintext: %v", err)
	}
}

// TestTransportConflictSaysWhere checks that the error about -plaintext
// with -tls-* names where each setting came from: a NACKCAST_PLAINTEXT
// exported for one service and still set when starting another with TLS
// is the usual cause.
func TestTransportConflictSaysWhere(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		config string
		want   string
	}{
		{"plaintext from the environment", []string{"-tls-ca", "ca.pem", "-tls-cert", "c.pem", "-tls-key", "c.key"}, map[string]string{"NACKCAST_PLAINTEXT": "true"}, "",
			"-plaintext (from NACKCAST_PLAINTEXT in the environment) and -tls-ca, -tls-cert, -tls-key (from the command line) are exclusive"},
		{"TLS from the environment", []string{"-plaintext"}, map[string]string{"NACKCAST_TLS_CA": "ca.pem", "NACKCAST_TLS_CERT": "c.pem", "NACKCAST_TLS_KEY": "c.key"}, "",
			"-plaintext (from the command line) and -tls-ca (from NACKCAST_TLS_CA in the environment); -tls-cert (from NACKCAST_TLS_CERT in the environment); -tls-key (from NACKCAST_TLS_KEY in the environment) are exclusive"},
		{"plaintext from a config file", []string{"-tls-ca", "ca.pem"}, nil, "plaintext = true\n",
			"-plaintext (from config file CONFIG) and -tls-ca (from the command line) are exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args, want := tt.args, tt.want
			if tt.config != "" {
				file := filepath.Join(t.TempDir(), "c.conf")
				if err := os.WriteFile(file, []byte(tt.config), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "-config", file)
				want = strings.ReplaceAll(want, "CONFIG", file)
			}
			var tr Transport
			var cfg string
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.StringVar(&cfg, "config", "", "")
			tr.Register(fs)
			src, err := ParseSources(fs, args)
			if err != nil {
				t.Fatal(err)
			}
			tr.Sources = src
			err = tr.Setup(hclog.NewNullLogger())
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Setup = %v\nwant it to contain %q", err, want)
			}
		})
	}
}
