package tlsconf

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// TestRefusePlaintext: a plaintext client on a TLS port learns that TLS is
// required (the GOAWAY's code and text reach its error) instead of a bare
// EOF, and TLS clients are served as before.
func TestRefusePlaintext(t *testing.T) {
	ca := newCA(t)
	srv, _, _ := newReloader(t, peerFiles(t, ca, "sender", "sender", ca))
	cli, _, _ := newReloader(t, peerFiles(t, ca, "admin", "admin", ca))
	addr := startServer(t, RefusePlaintext(srv.ServerCredentials()))

	err := check(t, addr, insecure.NewCredentials())
	if status.Code(err) != codes.Unauthenticated || status.Convert(err).Message() != PlaintextRefusal {
		t.Errorf("plaintext client: %v; want Unauthenticated: %q", err, PlaintextRefusal)
	}
	if err := check(t, addr, cli.ClientCredentials("127.0.0.1")); err != nil {
		t.Errorf("TLS client: %v", err)
	}
	// Twice more each, interleaved: the wrapper holds no state.
	for range 2 {
		if err := check(t, addr, insecure.NewCredentials()); status.Convert(err).Message() != PlaintextRefusal {
			t.Errorf("plaintext client again: %v", err)
		}
		if err := check(t, addr, cli.ClientCredentials("127.0.0.1")); err != nil {
			t.Errorf("TLS client again: %v", err)
		}
	}
}
