package tlsconf_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/nackcast/nackcast/pkg/tlsconf"
)

// A service serves mutual TLS and lets only admins call its health
// service; an admin certificate gets an answer, a receiver certificate of
// the same CA is refused. Certificates come from a development CA written
// to a temporary directory (nackctl dev-certs does the same on disk).
func Example() {
	dir, err := os.MkdirTemp("", "tlsconf-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	files, err := issueExampleCerts(dir, map[string]string{"sender": "sender", "admin": "admin", "receiver-1": "receiver"})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Server: health answers admins only.
	srvTLS, err := tlsconf.New(files["sender"], nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	policy := tlsconf.Policy{Rules: []tlsconf.Rule{tlsconf.Allow("/grpc.health.v1.Health/", "admin")}}
	gs := grpc.NewServer(grpc.Creds(srvTLS.ServerCredentials()),
		grpc.ChainUnaryInterceptor(tlsconf.UnaryInterceptor(policy)),
		grpc.ChainStreamInterceptor(tlsconf.StreamInterceptor(policy)))
	healthpb.RegisterHealthServer(gs, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	defer func() {
		gs.Stop()
		if err := <-served; err != nil {
			fmt.Println("serve:", err)
		}
	}()

	// Clients, each with its own certificate.
	for _, name := range []string{"admin", "receiver-1"} {
		cliTLS, err := tlsconf.New(files[name], nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(cliTLS.ClientCredentials("")))
		if err != nil {
			fmt.Println(err)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		cc.Close()
		if err != nil {
			fmt.Printf("%s: %v\n", name, status.Code(err))
			continue
		}
		fmt.Printf("%s: %v\n", name, resp.GetStatus())
	}
	// Output:
	// admin: SERVING
	// receiver-1: PermissionDenied
}

// issueExampleCerts makes a development CA in dir and a certificate for
// each name with its role, and returns the files of each.
func issueExampleCerts(dir string, roles map[string]string) (map[string]tlsconf.Files, error) {
	ca, err := tlsconf.NewDevCA(time.Hour)
	if err != nil {
		return nil, err
	}
	caPEM, err := ca.PEM()
	if err != nil {
		return nil, err
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM.Cert, 0o644); err != nil {
		return nil, err
	}
	out := make(map[string]tlsconf.Files, len(roles))
	for name, role := range roles {
		p, err := ca.Issue(name, role, nil, time.Hour)
		if err != nil {
			return nil, err
		}
		f := tlsconf.Files{CA: caFile, Cert: filepath.Join(dir, name+".pem"), Key: filepath.Join(dir, name+".key")}
		if err := p.WriteFiles(f.Cert, f.Key); err != nil {
			return nil, err
		}
		out[name] = f
	}
	return out, nil
}
