// Command backup is the nackcast backup sender (the seed's Figure 5): it
// stands by with the same origin and multicast group as the primary, keeps
// no state shared with it, and takes over when receivers' NACKs reach it
// while the primary is down; it hands the role back when the primary
// returns. Every flag can also be set with NACKCAST_<FLAG> or in a -config
// file.
package main

import (
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/nackcast/nackcast/pkg/app"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/rpc"
	"github.com/nackcast/nackcast/pkg/sender"
)

func main() {
	cfg := sender.DefaultBackupConfig()
	common := app.Common{Policy: app.SenderPolicy()}
	common.ServerOptions = cfg.ServerOptions
	fs := sender.NewFlagSet("backup", &cfg, &common)
	os.Exit(app.Main("backup", fs, &common, os.Args[1:], func(log hclog.Logger, srv *rpc.Server) (app.Engine, error) {
		cfg.DialOptions = common.DialOptions()
		s, err := sender.New(cfg, log)
		if err != nil {
			return nil, err
		}
		pb.RegisterSenderServiceServer(srv.GRPC, sender.NewService(s))
		return s, nil
	}, pb.SenderService_ServiceDesc.ServiceName))
}
