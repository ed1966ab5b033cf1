package cli

import (
	"bytes"
	"strings"
	"testing"
)

func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Run(args, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

// TestCommandHelp: -h on a command prints its usage and its flags with
// their descriptions, and exits 0.
func TestCommandHelp(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"watch", "-h"}, []string{"usage: nackctl watch", "-until-complete", "exit 0 as soon as every receiver is complete", "-interval"}},
		{[]string{"publish", "-h"}, []string{"usage: nackctl publish", "-create", "create the channel"}},
		{[]string{"alerts", "-help"}, []string{"usage: nackctl alerts", "-for"}},
		{[]string{"version", "-h"}, []string{"usage: nackctl version"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := run(tt.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("help %q lacks %q", out, w)
				}
			}
		})
	}
	if code, _, errOut := run("watch", "-nope"); code != 2 || !strings.Contains(errOut, "-nope") {
		t.Errorf("unknown flag: exit %d, %q; want 2 naming it", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"-version"}} {
		code, out, _ := run(args...)
		if code != 0 || !strings.HasPrefix(out, "nackctl ") || !strings.Contains(out, "revision") {
			t.Errorf("%v: exit %d, %q", args, code, out)
		}
	}
}

// TestUnavailable: the transport's descriptions of a failed connection
// become one line, with what to do about a TLS mismatch.
func TestUnavailable(t *testing.T) {
	tests := []struct{ msg, want string }{
		{`connection error: desc = "error reading server preface: EOF"`, "-tls-ca"},
		{`connection error: desc = "transport: authentication handshake failed: tls: first record does not look like a TLS handshake"`, "speaks plaintext"},
		{`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7001: connect: connection refused"`, "connection refused"},
		{`error reading from server: EOF, received prior goaway: code: NO_ERROR, debug data: "graceful_stop"`, "shutting down"},
		{`connection closed before server preface received`, "-tls-ca"},
	}
	for _, tt := range tests {
		if got := unavailable(tt.msg); !strings.Contains(got, tt.want) || strings.Contains(got, `"`) {
			t.Errorf("unavailable(%q) = %q, want it to say %q without quotes", tt.msg, got, tt.want)
		}
	}
}
