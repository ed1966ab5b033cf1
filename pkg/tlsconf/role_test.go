package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

func uris(t *testing.T, ss ...string) []*url.URL {
	t.Helper()
	var us []*url.URL
	for _, s := range ss {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	return us
}

func TestRoleOf(t *testing.T) {
	tests := []struct {
		name string
		ous  []string
		uris []string
		want string
	}{
		{"none", nil, nil, ""},
		{"ou", []string{"receiver"}, nil, "receiver"},
		{"first ou", []string{"admin", "receiver"}, nil, "admin"},
		{"uri", nil, []string{"urn:nackcast:role:receiver"}, "receiver"},
		{"uri among others", nil, []string{"spiffe://cluster.local/ns/edge/sa/nackcast", "urn:nackcast:role:receiver", "https://example.com/x"}, "receiver"},
		{"nid in capitals", nil, []string{"URN:NACKCAST:role:receiver"}, "receiver"},
		{"role is case-sensitive", nil, []string{"urn:nackcast:role:Receiver"}, "Receiver"},
		{"same role twice", nil, []string{"urn:nackcast:role:sender", "urn:nackcast:role:sender"}, "sender"},
		{"two uri roles", nil, []string{"urn:nackcast:role:receiver", "urn:nackcast:role:admin"}, ""},
		{"ou and same uri", []string{"backup"}, []string{"urn:nackcast:role:backup"}, "backup"},
		{"ou and other uri", []string{"receiver"}, []string{"urn:nackcast:role:admin"}, ""},
		{"uri role with a colon", nil, []string{"urn:nackcast:role:a:b"}, "a:b"},
		{"empty uri role", nil, []string{"urn:nackcast:role:"}, ""},
		{"empty uri role beside an ou", []string{"receiver"}, []string{"urn:nackcast:role:"}, "receiver"},
		{"other namespace", nil, []string{"urn:other:role:admin"}, ""},
		{"not a role", nil, []string{"urn:nackcast:name:admin"}, ""},
		{"query", nil, []string{"urn:nackcast:role:admin?x=1"}, ""},
		{"fragment", nil, []string{"urn:nackcast:role:admin#x"}, ""},
		{"not a urn", nil, []string{"https://nackcast/role/admin", "nackcast:role:admin"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &x509.Certificate{Subject: pkix.Name{CommonName: "x", OrganizationalUnit: tt.ous}, URIs: uris(t, tt.uris...)}
			if got := RoleOf(c); got != tt.want {
				t.Errorf("RoleOf(OU %q, URIs %q) = %q, want %q", tt.ous, tt.uris, got, tt.want)
			}
		})
	}
}

func TestRoleURI(t *testing.T) {
	u := RoleURI("receiver")
	if got, want := u.String(), "urn:nackcast:role:receiver"; got != want {
		t.Errorf("RoleURI = %q, want %q", got, want)
	}
	if !strings.HasPrefix(u.String(), RoleURIPrefix) {
		t.Errorf("RoleURI %q does not start with %q", u, RoleURIPrefix)
	}
	if got := RoleOf(&x509.Certificate{URIs: []*url.URL{u}}); got != "receiver" {
		t.Errorf("RoleOf(RoleURI(receiver)) = %q", got)
	}
}

func TestIssueRequest(t *testing.T) {
	ca := newCA(t)
	tests := []struct {
		name    string
		req     CertRequest
		wantErr string
	}{
		{"csi-driver receiver", CertRequest{
			Name:        "nackcast-receiver-x7k2p",
			DNSNames:    []string{"nackcast-receiver-x7k2p"},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
			URIs:        []*url.URL{RoleURI("receiver")},
		}, ""},
		{"ou and uri", CertRequest{Name: "nackcast-primary", OrganizationalUnits: []string{"sender"}, URIs: []*url.URL{RoleURI("sender")}}, ""},
		{"bare", CertRequest{Name: "n"}, ""},
		{"no name", CertRequest{OrganizationalUnits: []string{"admin"}}, "name is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ca.IssueRequest(tt.req, time.Hour)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("IssueRequest: %v, want %q", err, tt.wantErr)
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
			var gotURIs, wantURIs []string
			for _, u := range c.URIs {
				gotURIs = append(gotURIs, u.String())
			}
			for _, u := range tt.req.URIs {
				wantURIs = append(wantURIs, u.String())
			}
			if c.Subject.CommonName != tt.req.Name || !slices.Equal(c.Subject.OrganizationalUnit, tt.req.OrganizationalUnits) ||
				!slices.Equal(c.DNSNames, tt.req.DNSNames) || len(c.IPAddresses) != len(tt.req.IPAddresses) || !slices.Equal(gotURIs, wantURIs) {
				t.Errorf("got CN %q OU %q DNS %q IP %v URIs %q; want %+v", c.Subject.CommonName, c.Subject.OrganizationalUnit, c.DNSNames, c.IPAddresses, gotURIs, tt.req)
			}
		})
	}
	if _, err := ca.IssueRequest(CertRequest{Name: "x"}, 0); err == nil {
		t.Error("IssueRequest with validity 0 succeeded")
	}
}

// TestRoleURIOverTLS checks the role of a certificate without an OU, as
// cert-manager's csi-driver issues them, over real mutual TLS: a receiver
// whose role is a URI may call what receivers may, its name is its CN,
// and a certificate naming two roles is refused what needs a role.
func TestRoleURIOverTLS(t *testing.T) {
	ca := newCA(t)
	srv, _, _ := newReloader(t, peerFiles(t, ca, "sender", "sender", ca))
	p := Policy{Rules: []Rule{Allow("/grpc.health.v1.Health/", "receiver")}}
	seen := make(chan [2]string, 1)
	identity := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		name, role, _ := PeerIdentity(ctx)
		seen <- [2]string{name, role}
		return h(ctx, req)
	}
	addr := startServer(t, srv.ServerCredentials(), grpc.ChainUnaryInterceptor(identity, UnaryInterceptor(p)))
	tests := []struct {
		name     string
		req      CertRequest
		want     codes.Code
		wantRole string
	}{
		{"uri role", CertRequest{Name: "nackcast-receiver-x7k2p", URIs: []*url.URL{RoleURI("receiver")}}, codes.OK, "receiver"},
		{"ou and uri agree", CertRequest{Name: "edge-1", OrganizationalUnits: []string{"receiver"}, URIs: []*url.URL{RoleURI("receiver")}}, codes.OK, "receiver"},
		{"ou and uri differ", CertRequest{Name: "edge-2", OrganizationalUnits: []string{"receiver"}, URIs: []*url.URL{RoleURI("admin")}}, codes.PermissionDenied, ""},
		{"uri of another role", CertRequest{Name: "nackctl", URIs: []*url.URL{RoleURI("admin")}}, codes.PermissionDenied, "admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pem, err := ca.IssueRequest(tt.req, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			r, _, _ := newReloader(t, writeFiles(t, t.TempDir(), pem, ca))
			select { // what an earlier failed case left
			case <-seen:
			default:
			}
			err = check(t, addr, r.ClientCredentials("sender"))
			if got := status.Code(err); got != tt.want {
				t.Fatalf("health check: %v, want %v", err, tt.want)
			}
			var id [2]string
			select {
			case id = <-seen:
			default:
				t.Fatal("the call did not reach the server's interceptors")
			}
			if gotName, gotRole := id[0], id[1]; gotName != tt.req.Name || gotRole != tt.wantRole {
				t.Errorf("server saw name %q role %q, want %q %q", gotName, gotRole, tt.req.Name, tt.wantRole)
			}
			if tt.want == codes.PermissionDenied && tt.wantRole == "" && !strings.Contains(status.Convert(err).Message(), "no role") {
				t.Errorf("refusal %q does not say the certificate has no role", status.Convert(err).Message())
			}
		})
	}
}

func TestPeerIdentityRoleURI(t *testing.T) {
	ca := newCA(t)
	pem, err := ca.IssueRequest(CertRequest{Name: "nackcast-receiver-abcde", URIs: []*url.URL{RoleURI("receiver")}}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pem.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	info := credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c, ca.Cert}}}}
	name, role, ok := PeerIdentity(peer.NewContext(context.Background(), &peer.Peer{AuthInfo: info}))
	if name != "nackcast-receiver-abcde" || role != "receiver" || !ok {
		t.Errorf("PeerIdentity = %q, %q, %v; want nackcast-receiver-abcde, receiver, true", name, role, ok)
	}
}
