// Command receiver is a nackcast receiver: it subscribes to channels,
// receives their objects by multicast, NACKs what it lacks (to the primary,
// then to the backup) and pulls over unicast when told to. Every flag can
// also be set with NACKCAST_<FLAG> or in a -config file.
package main

import (
	"os"

	"github.com/hashicorp/go-hclog"

	"github.com/nackcast/nackcast/pkg/app"
	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/receiver"
	"github.com/nackcast/nackcast/pkg/rpc"
)

func main() {
	cfg := receiver.DefaultConfig()
	common := app.Common{Policy: app.ReceiverPolicy()}
	fs := receiver.NewFlagSet("receiver", &cfg, &common)
	os.Exit(app.Main("receiver", fs, &common, os.Args[1:], func(log hclog.Logger, srv *rpc.Server) (app.Engine, error) {
		cfg.DialOptions = common.DialOptions()
		r, err := receiver.New(cfg, log)
		if err != nil {
			return nil, err
		}
		pb.RegisterReceiverServiceServer(srv.GRPC, receiver.NewService(r))
		return r, nil
	}, pb.ReceiverService_ServiceDesc.ServiceName))
}
