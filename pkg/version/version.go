// Package version says which build of nackcast is running: the release
// version, the VCS revision and the Go toolchain, read from the binary's
// embedded build information (and from -ldflags when a release build sets
// them).
package version

import (
	"fmt"
	"runtime/debug"
	"sync"

	pb "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

// Version is the release version. Release builds set it with
//
//	-ldflags "-X github.com/nackcast/nackcast/pkg/version.Version=v0.5.0"
//
// (make build does, from git describe); otherwise it comes from the module
// version the binary was built at, or "devel".
var Version = ""

// Info describes a build.
type Info struct {
	Version   string
	Revision  string
	Modified  bool
	GoVersion string
}

var (
	once sync.Once
	info Info
)

// Get returns this binary's build information.
func Get() Info {
	once.Do(func() { info = read(Version, debug.ReadBuildInfo) })
	return info
}

// read assembles an Info from an ldflags version (may be empty) and the
// embedded build information.
func read(ldVersion string, readBuild func() (*debug.BuildInfo, bool)) Info {
	i := Info{Version: ldVersion}
	bi, ok := readBuild()
	if ok {
		i.GoVersion = bi.GoVersion
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Revision = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = "devel"
	}
	return i
}

// String is the one-line form printed by -version, such as
// "v0.5.0 (revision 1a2b3c4d5e6f, go1.26.8)".
func (i Info) String() string {
	rev := i.Revision
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev == "" {
		rev = "unknown"
	}
	if i.Modified {
		rev += "+modified"
	}
	return fmt.Sprintf("%s (revision %s, %s)", i.Version, rev, i.GoVersion)
}

// Proto returns the build information as carried in GetStatus.
func (i Info) Proto() *pb.BuildInfo {
	return &pb.BuildInfo{Version: i.Version, Revision: i.Revision, Modified: i.Modified, GoVersion: i.GoVersion}
}
