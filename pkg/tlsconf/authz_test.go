package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

const (
	publish = "/nackcast.v1.SenderService/PublishObject"
	drain   = "/nackcast.v1.SenderService/Drain"
	nack    = "/nackcast.v1.SenderService/Nack"
	danger  = "/nackcast.v1.SenderService/Dangerous"
	rstatus = "/nackcast.v1.ReceiverService/GetStatus"
	rother  = "/nackcast.v1.ReceiverService/Other"
	hcheck  = "/grpc.health.v1.Health/Check"
	refl    = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
)

var testPolicy = Policy{
	Rules: []Rule{
		AllowAny("/grpc.health.v1.Health/"),
		AllowAny("/grpc.reflection."),
		Allow("/nackcast.v1.SenderService/", "admin"),
		Allow(publish, "admin", "publisher"),
		Allow(nack, "receiver"),
		Allow(nack, "backup"), // adds up with the rule above
		Allow(danger),         // nobody, not even admin
		Allow(rstatus, "admin", "receiver"),
	},
}

func TestPolicyAllowed(t *testing.T) {
	withDefault := testPolicy
	withDefault.Default = []string{"admin"}
	tests := []struct {
		policy Policy
		method string
		role   string
		want   bool
	}{
		{testPolicy, publish, "admin", true},
		{testPolicy, publish, "publisher", true},
		{testPolicy, publish, "receiver", false},
		{testPolicy, drain, "admin", true},      // service prefix
		{testPolicy, drain, "publisher", false}, // the exact rule is for PublishObject only
		{testPolicy, nack, "receiver", true},
		{testPolicy, nack, "backup", true},
		{testPolicy, nack, "admin", false}, // exact rule wins over the prefix
		{testPolicy, danger, "admin", false},
		{testPolicy, rstatus, "receiver", true},
		{testPolicy, rother, "admin", false}, // no rule, empty default
		{withDefault, rother, "admin", true},
		{withDefault, rother, "receiver", false},
		{testPolicy, hcheck, "receiver", true},
		{testPolicy, hcheck, "", true},
		{testPolicy, refl, "anything", true},
		{testPolicy, "/grpc.reflectionX/Foo", "admin", false}, // prefix ends at the dot
		{testPolicy, publish, "", false},
		{testPolicy, publish, "*", false}, // a role named * is not a wildcard
		{Policy{}, hcheck, "admin", false},
		{Policy{Default: []string{AnyRole}}, rother, "x", true},
	}
	for _, tt := range tests {
		if got := tt.policy.Allowed(tt.method, tt.role); got != tt.want {
			t.Errorf("Allowed(%q, %q) = %v, want %v (default %q)", tt.method, tt.role, got, tt.want, tt.policy.Default)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		p    Policy
		want []string
	}{
		{"test policy", testPolicy, nil},
		{"zero", Policy{}, nil},
		{"no slash", Policy{Rules: []Rule{Allow("nackcast.v1.SenderService/", "admin")}}, []string{"does not start with /"}},
		{"not a method", Policy{Rules: []Rule{Allow("/nackcast.v1.SenderService", "admin")}}, []string{"neither"}},
		{"empty role", Policy{Rules: []Rule{Allow(publish, "")}}, []string{"empty role"}},
		{"all", Policy{Rules: []Rule{Allow("x/"), Allow("/a/b/c"), Allow(publish, "")}}, []string{"does not start", "neither", "empty role"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want %q", err, w)
				}
			}
		})
	}
}

// peerContext returns the context of a call from a peer whose verified
// certificate has name and role.
func peerContext(t *testing.T, ca *DevCA, name, role string) context.Context {
	t.Helper()
	c, err := issue(t, ca, name, role).Certificate()
	if err != nil {
		t.Fatal(err)
	}
	info := credentials.TLSInfo{State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{c, ca.Cert}}}}
	return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: info})
}

func TestAuthorize(t *testing.T) {
	ca := newCA(t)
	unverified := peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{}})
	tests := []struct {
		name   string
		ctx    context.Context
		method string
		code   codes.Code
		msg    []string
	}{
		{"admin", peerContext(t, ca, "nackctl", "admin"), drain, codes.OK, nil},
		{"receiver", peerContext(t, ca, "receiver-1", "receiver"), drain, codes.PermissionDenied, []string{drain, `role "receiver"`, `peer "receiver-1"`}},
		{"no role", peerContext(t, ca, "odd", ""), publish, codes.PermissionDenied, []string{publish, `peer "odd"`, "no role"}},
		{"no role, open method", peerContext(t, ca, "odd", ""), hcheck, codes.OK, nil},
		{"no peer", context.Background(), hcheck, codes.Unauthenticated, []string{hcheck, "verified client certificate"}},
		{"unverified TLS", unverified, hcheck, codes.Unauthenticated, []string{hcheck}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := testPolicy.Authorize(tt.ctx, tt.method)
			if got := status.Code(err); got != tt.code {
				t.Fatalf("Authorize: %v, want code %v", err, tt.code)
			}
			for _, m := range tt.msg {
				if !strings.Contains(status.Convert(err).Message(), m) {
					t.Errorf("Authorize: %q, want %q in the message", err, m)
				}
			}
		})
	}
}

func TestPeerIdentity(t *testing.T) {
	ca := newCA(t)
	name, role, ok := PeerIdentity(peerContext(t, ca, "receiver-1", "receiver"))
	if name != "receiver-1" || role != "receiver" || !ok {
		t.Errorf("PeerIdentity = %q, %q, %v", name, role, ok)
	}
	if _, _, ok := PeerIdentity(context.Background()); ok {
		t.Error("PeerIdentity without a peer is ok")
	}
}

// TestInterceptors checks the policy over real mutual-TLS connections, for
// unary (Check) and streaming (Watch) calls.
func TestInterceptors(t *testing.T) {
	ca := newCA(t)
	srv, _, _ := newReloader(t, peerFiles(t, ca, "sender", "sender", ca))
	creds := func(name, role string) credentials.TransportCredentials {
		r, _, _ := newReloader(t, peerFiles(t, ca, name, role, ca))
		return r.ClientCredentials("sender")
	}
	admin, receiver, noRole := creds("nackctl", "admin"), creds("receiver-1", "receiver"), creds("odd", "")
	const (
		check = "/grpc.health.v1.Health/Check"
		watch = "/grpc.health.v1.Health/Watch"
	)
	policies := map[string]Policy{
		"health open":      {Rules: []Rule{AllowAny("/grpc.health.v1.Health/")}},
		"health for admin": {Rules: []Rule{Allow("/grpc.health.v1.Health/", "admin")}},
		"check for receiver, watch by default": {
			Rules:   []Rule{Allow(check, "receiver")},
			Default: []string{"admin"},
		},
		"zero": {},
	}
	tests := []struct {
		policy string
		creds  credentials.TransportCredentials
		role   string
		method string
		want   codes.Code
	}{
		{"health open", admin, "admin", check, codes.OK},
		{"health open", receiver, "receiver", watch, codes.OK},
		{"health open", noRole, "", check, codes.OK},
		{"health for admin", admin, "admin", check, codes.OK},
		{"health for admin", admin, "admin", watch, codes.OK},
		{"health for admin", receiver, "receiver", check, codes.PermissionDenied},
		{"health for admin", receiver, "receiver", watch, codes.PermissionDenied},
		{"health for admin", noRole, "", check, codes.PermissionDenied},
		{"check for receiver, watch by default", receiver, "receiver", check, codes.OK},
		{"check for receiver, watch by default", admin, "admin", check, codes.PermissionDenied},
		{"check for receiver, watch by default", admin, "admin", watch, codes.OK},
		{"check for receiver, watch by default", receiver, "receiver", watch, codes.PermissionDenied},
		{"zero", admin, "admin", check, codes.PermissionDenied},
	}
	addrs := make(map[string]string)
	for name, p := range policies {
		addrs[name] = startServer(t, srv.ServerCredentials(),
			grpc.UnaryInterceptor(UnaryInterceptor(p)), grpc.StreamInterceptor(StreamInterceptor(p)))
	}
	for _, tt := range tests {
		t.Run(tt.policy+"/"+tt.role+tt.method, func(t *testing.T) {
			err := call(t, dial(t, addrs[tt.policy], tt.creds), tt.method)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("%s: %v, want code %v", tt.method, err, tt.want)
			}
			if tt.want == codes.PermissionDenied {
				msg := status.Convert(err).Message()
				if !strings.Contains(msg, tt.method) || (tt.role != "" && !strings.Contains(msg, `role "`+tt.role+`"`)) {
					t.Errorf("message %q does not name the method and the role %q", msg, tt.role)
				}
			}
		})
	}
}

// TestInterceptorsPlaintext checks that calls without a verified
// certificate are unauthenticated, even to methods open to any role.
func TestInterceptorsPlaintext(t *testing.T) {
	p := Policy{Rules: []Rule{AllowAny("/grpc.health.v1.Health/")}, Default: []string{AnyRole}}
	addr := startServer(t, insecure.NewCredentials(),
		grpc.UnaryInterceptor(UnaryInterceptor(p)), grpc.StreamInterceptor(StreamInterceptor(p)))
	cc := dial(t, addr, insecure.NewCredentials())
	for _, m := range []string{"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"} {
		if err := call(t, cc, m); status.Code(err) != codes.Unauthenticated {
			t.Errorf("%s: %v, want Unauthenticated", m, err)
		}
	}
}

// call makes a health Check or the first receive of a health Watch.
func call(t *testing.T, cc *grpc.ClientConn, method string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hc := healthpb.NewHealthClient(cc)
	if strings.HasSuffix(method, "/Check") {
		_, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	st, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	_, err = st.Recv()
	if errors.Is(err, io.EOF) {
		t.Fatal("Watch ended without a status")
	}
	return err
}
