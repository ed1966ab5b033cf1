package sender

import (
	"google.golang.org/grpc"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
	"github.com/nackcast/nackcast/pkg/rpc"
)

// LimitedMethods are the calls each client may make at most
// Config.ClientRate times a second: the control calls any receiver may
// send. Pull is not counted: a receiver told to pull many small objects
// makes one call per object, and pulls are bounded by bandwidth.
var LimitedMethods = []string{
	"/" + pb.SenderService_ServiceDesc.ServiceName + "/Nack",
	"/" + pb.SenderService_ServiceDesc.ServiceName + "/GetManifest",
	"/" + pb.SenderService_ServiceDesc.ServiceName + "/ListChannels",
}

// ServerOptions returns the gRPC server options that apply the per-client
// limit of c (none when it is off).
func (c *Config) ServerOptions() []grpc.ServerOption {
	return rpc.NewClientLimiter(c.ClientRate, c.ClientBurst, LimitedMethods...).ServerOptions()
}
