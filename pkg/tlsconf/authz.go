package tlsconf

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// PeerIdentity returns the name (Subject CommonName) and role (see
// RoleOf: the first Subject OrganizationalUnit, else the role of a
// urn:nackcast:role: URI, else "") of the certificate the peer of a gRPC
// server call presented. ok is false if the peer
// presented no certificate that was verified, as on a plaintext
// connection.
//
// On a client connection made with ClientConfig, the server's certificate
// is verified outside crypto/tls, which therefore records no verified
// chain, and ok is false.
func PeerIdentity(ctx context.Context) (name, role string, ok bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", "", false
	}
	var info credentials.TLSInfo
	switch ai := p.AuthInfo.(type) {
	case credentials.TLSInfo:
		info = ai
	case *credentials.TLSInfo:
		if ai == nil {
			return "", "", false
		}
		info = *ai
	default:
		return "", "", false
	}
	chains := info.State.VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return "", "", false
	}
	leaf := chains[0][0]
	return leaf.Subject.CommonName, RoleOf(leaf), true
}

// AnyRole, in the roles of a Rule or a Policy's Default, allows every peer
// with a verified certificate, whatever its role.
const AnyRole = "*"

// A Rule allows the methods matched by Pattern to the peers having one of
// Roles.
type Rule struct {
	// Pattern is a full gRPC method name ("/pkg.Service/Method") or, if it
	// ends in "/" or ".", a prefix of full method names: a service
	// ("/pkg.Service/") or a package ("/grpc.reflection.").
	Pattern string
	// Roles are the roles allowed. AnyRole allows every role; no roles
	// allows none.
	Roles []string
}

// Allow returns the rule allowing the methods matched by pattern to roles.
// With no roles, it denies them to everyone, overriding a shorter prefix.
func Allow(pattern string, roles ...string) Rule {
	return Rule{Pattern: pattern, Roles: roles}
}

// AllowAny returns the rule allowing the methods matched by pattern to
// every peer with a verified certificate. Health checks and reflection are
// subject to the policy like any other service, so a policy that wants them
// open says so:
//
//	tlsconf.AllowAny("/grpc.health.v1.Health/")
//	tlsconf.AllowAny("/grpc.reflection.")
func AllowAny(pattern string) Rule {
	return Allow(pattern, AnyRole)
}

// A Policy says which roles may call which gRPC methods. The rule of a
// method is the one whose Pattern is the method's full name, or else the
// one with the longest prefix Pattern matching it; if several rules have
// that pattern, their roles add up. Methods that no rule matches are
// allowed to Default, which, empty, denies them. The zero Policy denies
// everything.
type Policy struct {
	// Rules are the rules of the methods; their order does not matter.
	Rules []Rule
	// Default lists the roles allowed to call the methods no rule
	// matches.
	Default []string
}

// Validate reports malformed rules, which would never match: a pattern
// must start with "/" and name a method ("/pkg.Service/Method") unless it
// is a prefix.
func (p Policy) Validate() error {
	var errs []error
	for _, r := range p.Rules {
		switch {
		case !strings.HasPrefix(r.Pattern, "/"):
			errs = append(errs, fmt.Errorf("policy pattern %q does not start with /", r.Pattern))
		case !isPrefix(r.Pattern) && strings.Count(r.Pattern, "/") != 2:
			errs = append(errs, fmt.Errorf("policy pattern %q is neither /pkg.Service/Method nor a prefix ending in \"/\" or \".\"", r.Pattern))
		}
		for _, role := range r.Roles {
			if role == "" {
				errs = append(errs, fmt.Errorf("policy pattern %q: empty role", r.Pattern))
			}
		}
	}
	return errors.Join(errs...)
}

// Allowed reports whether a peer with role may call fullMethod.
func (p Policy) Allowed(fullMethod, role string) bool {
	return p.compile().allowed(fullMethod, role)
}

// Authorize returns nil if the peer of a server call may call fullMethod,
// an Unauthenticated status error if the peer has no verified certificate
// and a PermissionDenied one if its role is not allowed.
func (p Policy) Authorize(ctx context.Context, fullMethod string) error {
	return p.compile().authorize(ctx, fullMethod)
}

// UnaryInterceptor returns a server interceptor enforcing p on unary
// calls. p is copied: later changes to it have no effect.
func UnaryInterceptor(p Policy) grpc.UnaryServerInterceptor {
	c := p.compile()
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := c.authorize(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor returns a server interceptor enforcing p on streaming
// calls. p is copied: later changes to it have no effect.
func StreamInterceptor(p Policy) grpc.StreamServerInterceptor {
	c := p.compile()
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := c.authorize(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

func isPrefix(pattern string) bool {
	return strings.HasSuffix(pattern, "/") || strings.HasSuffix(pattern, ".")
}

type roleSet map[string]bool

func (s roleSet) has(role string) bool {
	return s[AnyRole] || (role != "" && s[role])
}

func newRoleSet(roles []string) roleSet {
	s := make(roleSet, len(roles))
	for _, r := range roles {
		s[r] = true
	}
	return s
}

type prefixRule struct {
	prefix string
	roles  roleSet
}

// compiledPolicy is a Policy indexed for lookups.
type compiledPolicy struct {
	exact    map[string]roleSet
	prefixes []prefixRule // longest first
	def      roleSet
}

func (p Policy) compile() *compiledPolicy {
	c := &compiledPolicy{exact: make(map[string]roleSet), def: newRoleSet(p.Default)}
	byPrefix := make(map[string]roleSet)
	for _, r := range p.Rules {
		m := c.exact
		if isPrefix(r.Pattern) {
			m = byPrefix
		}
		if m[r.Pattern] == nil {
			m[r.Pattern] = make(roleSet)
		}
		for _, role := range r.Roles {
			m[r.Pattern][role] = true
		}
	}
	for prefix, roles := range byPrefix {
		c.prefixes = append(c.prefixes, prefixRule{prefix, roles})
	}
	sort.Slice(c.prefixes, func(i, j int) bool { return len(c.prefixes[i].prefix) > len(c.prefixes[j].prefix) })
	return c
}

func (c *compiledPolicy) roles(method string) roleSet {
	if s, ok := c.exact[method]; ok {
		return s
	}
	for _, p := range c.prefixes {
		if strings.HasPrefix(method, p.prefix) {
			return p.roles
		}
	}
	return c.def
}

func (c *compiledPolicy) allowed(method, role string) bool {
	return c.roles(method).has(role)
}

func (c *compiledPolicy) authorize(ctx context.Context, method string) error {
	name, role, ok := PeerIdentity(ctx)
	if !ok {
		return status.Errorf(codes.Unauthenticated, "%s requires a verified client certificate", method)
	}
	if c.allowed(method, role) {
		return nil
	}
	if role == "" {
		return status.Errorf(codes.PermissionDenied, "%s is not allowed to peer %q: its certificate has no role (OrganizationalUnit or urn:nackcast:role: URI, not two different ones)", method, name)
	}
	return status.Errorf(codes.PermissionDenied, "%s is not allowed to role %q (peer %q)", method, role, name)
}
