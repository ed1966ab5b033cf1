// Command sender is the nackcast primary sender: it multicasts the channels
// of its origin directory and answers NACKs and unicast pulls over gRPC. At
// start-up it signals the backup, if one is configured, and waits for an
// active backup to hand the role back. Every flag can also be set with
// NACKCAST_<FLAG> or in a -config file.
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
	cfg := sender.DefaultConfig()
	common := app.Common{Policy: app.SenderPolicy()}
	common.ServerOptions = cfg.ServerOptions
	fs := sender.NewFlagSet("sender", &cfg, &common)
	os.Exit(app.Main("sender", fs, &common, os.Args[1:], func(log hclog.Logger, srv *rpc.Server) (app.Engine, error) {
		cfg.DialOptions = common.DialOptions()
		s, err := sender.New(cfg, log)
		if err != nil {
			return nil, err
		}
		pb.RegisterSenderServiceServer(srv.GRPC, sender.NewService(s))
		return s, nil
	}, pb.SenderService_ServiceDesc.ServiceName))
}
