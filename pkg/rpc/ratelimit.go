package rpc

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// ClientLimiter caps the calls each client may make to a set of methods:
// a token bucket per client, keyed by the common name of its verified
// certificate under mutual TLS, else by its IP address. A call over the
// limit fails with ResourceExhausted at once (receivers back off and
// retry; they do not fail over on it). The number of clients tracked is
// bounded: buckets idle for a minute are forgotten, and past MaxClients
// the idlest go first.
type ClientLimiter struct {
	limit   rate.Limit
	burst   int
	methods map[string]bool
	now     func() time.Time

	mu      sync.Mutex
	clients map[string]*clientBucket
}

type clientBucket struct {
	lim  *rate.Limiter
	last time.Time
}

// MaxClients bounds the clients a ClientLimiter tracks at once.
const MaxClients = 100_000

const idleAfter = time.Minute

// NewClientLimiter limits each client to perSecond calls (burst burst) of
// the given full method names (e.g. "/nackcast.v1.SenderService/Nack").
// perSecond <= 0 means no limit (nil limiter).
func NewClientLimiter(perSecond float64, burst int, methods ...string) *ClientLimiter {
	if perSecond <= 0 {
		return nil
	}
	m := make(map[string]bool, len(methods))
	for _, s := range methods {
		m[s] = true
	}
	return &ClientLimiter{
		limit:   rate.Limit(perSecond),
		burst:   max(burst, 1),
		methods: m,
		now:     time.Now,
		clients: make(map[string]*clientBucket),
	}
}

// ClientKey names the client of ctx: "cn:NAME" for a verified certificate,
// else "ip:ADDRESS".
func ClientKey(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "unknown"
	}
	if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 && len(ti.State.VerifiedChains[0]) > 0 {
		return "cn:" + ti.State.VerifiedChains[0][0].Subject.CommonName
	}
	if p.Addr == nil {
		return "unknown"
	}
	host, _, err := net.SplitHostPort(p.Addr.String())
	if err != nil {
		host = p.Addr.String()
	}
	return "ip:" + host
}

// Allow reports whether the client key may make a call now.
func (l *ClientLimiter) Allow(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.clients[key]
	if b == nil {
		if len(l.clients) >= MaxClients {
			l.evict(now)
		}
		b = &clientBucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.clients[key] = b
	}
	b.last = now
	return b.lim.AllowN(now, 1)
}

// evict forgets idle buckets, or the idlest tenth when none is idle.
// Called with l.mu held.
func (l *ClientLimiter) evict(now time.Time) {
	for k, b := range l.clients {
		if now.Sub(b.last) > idleAfter {
			delete(l.clients, k)
		}
	}
	if len(l.clients) < MaxClients {
		return
	}
	cut := now
	for _, b := range l.clients {
		if b.last.Before(cut) {
			cut = b.last
		}
	}
	cut = cut.Add(now.Sub(cut) / 10)
	for k, b := range l.clients {
		if !b.last.After(cut) {
			delete(l.clients, k)
		}
	}
}

// Clients returns the number of clients tracked.
func (l *ClientLimiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

func (l *ClientLimiter) check(ctx context.Context, method string) error {
	if l == nil || !l.methods[method] {
		return nil
	}
	key := ClientKey(ctx)
	if l.Allow(key) {
		return nil
	}
	return status.Errorf(codes.ResourceExhausted, "%s: more than %g calls per second from %s; slow down", method[strings.LastIndex(method, "/")+1:], float64(l.limit), key)
}

// ServerOptions returns the interceptors that apply the limit (none for a
// nil limiter).
func (l *ClientLimiter) ServerOptions() []grpc.ServerOption {
	if l == nil {
		return nil
	}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if err := l.check(ctx, info.FullMethod); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if err := l.check(ss.Context(), info.FullMethod); err != nil {
				return err
			}
			return h(srv, ss)
		}),
	}
}
