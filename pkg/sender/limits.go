package sender

import (
	"google.golang.org/grpc"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/rpc"
)

// LimitedMethods are the calls each client may make at most
// Config.ClientRate times a second: the control calls any receiver may
// send. Pulls have their own, higher limit (Config.ClientPullRate): a
// receiver told to pull many small objects makes one call per object.
var LimitedMethods = []string{
	"/" + pb.SenderService_ServiceDesc.ServiceName + "/Nack",
	"/" + pb.SenderService_ServiceDesc.ServiceName + "/Feedback",
	"/" + pb.SenderService_ServiceDesc.ServiceName + "/GetManifest",
	"/" + pb.SenderService_ServiceDesc.ServiceName + "/ListChannels",
}

// PullMethod is the unicast pull call.
var PullMethod = "/" + pb.SenderService_ServiceDesc.ServiceName + "/Pull"

// ServerOptions returns the gRPC server options that apply the per-client
// limits of c (none for a limit that is off).
func (c *Config) ServerOptions() []grpc.ServerOption {
	opts := rpc.NewClientLimiter(c.ClientRate, c.ClientBurst, LimitedMethods...).ServerOptions()
	return append(opts, rpc.NewClientLimiter(c.ClientPullRate, int(max(c.ClientPullRate, 1)), PullMethod).ServerOptions()...)
}
