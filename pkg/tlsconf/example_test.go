package tlsconf_test

import (
	"net"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/nackcast/nackcast/pkg/tlsconf"
)

// A sender serves with mutual TLS and lets only admins publish, and
// nackctl calls it with its own certificate.
func Example() {
	log := hclog.Default()

	// Server.
	srvTLS, err := tlsconf.New(tlsconf.Files{CA: "certs/ca.pem", Cert: "certs/sender.pem", Key: "certs/sender.key"}, log)
	if err != nil {
		log.Error("tls", "error", err)
		return
	}
	policy := tlsconf.Policy{Rules: []tlsconf.Rule{
		tlsconf.AllowAny("/grpc.health.v1.Health/"),
		tlsconf.AllowAny("/grpc.reflection."),
		tlsconf.Allow("/nackcast.v1.SenderService/", "admin"),
		tlsconf.Allow("/nackcast.v1.SenderService/Nack", "receiver", "backup"),
	}}
	gs := grpc.NewServer(grpc.Creds(srvTLS.ServerCredentials()),
		grpc.ChainUnaryInterceptor(tlsconf.UnaryInterceptor(policy)),
		grpc.ChainStreamInterceptor(tlsconf.StreamInterceptor(policy)))
	lis, err := net.Listen("tcp", ":7000")
	if err != nil {
		log.Error("listen", "error", err)
		return
	}
	go gs.Serve(lis)

	// Client.
	cliTLS, err := tlsconf.New(tlsconf.Files{CA: "certs/ca.pem", Cert: "certs/nackctl.pem", Key: "certs/nackctl.key"}, log)
	if err != nil {
		log.Error("tls", "error", err)
		return
	}
	cc, err := grpc.NewClient("sender.example:7000", grpc.WithTransportCredentials(cliTLS.ClientCredentials("")))
	if err != nil {
		log.Error("dial", "error", err)
		return
	}
	defer cc.Close()
}
