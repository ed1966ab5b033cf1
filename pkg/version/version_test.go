package version

import (
	"runtime/debug"
	"testing"
)

func TestRead(t *testing.T) {
	build := func(main string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: main}, Settings: settings}, true
		}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	tests := []struct {
		name      string
		ld        string
		readBuild func() (*debug.BuildInfo, bool)
		want      string
	}{
		{"ldflags win", "v1.2.3", build("v0.0.1", rev), "v1.2.3 (revision 0123456789ab, go1.26.8)"},
		{"module version", "", build("v0.4.0"), "v0.4.0 (revision unknown, go1.26.8)"},
		{"checkout", "", build("(devel)", rev, dirty), "devel (revision 0123456789ab+modified, go1.26.8)"},
		{"no build info", "", func() (*debug.BuildInfo, bool) { return nil, false }, "devel (revision unknown, )"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := read(tt.ld, tt.readBuild)
			if got.String() != tt.want {
				t.Errorf("String() = %q, want %q", got.String(), tt.want)
			}
			if p := got.Proto(); p.GetVersion() != got.Version || p.GetRevision() != got.Revision {
				t.Errorf("Proto() = %v, want the same fields as %+v", p, got)
			}
		})
	}
}

func TestGetIsStable(t *testing.T) {
	if a, b := Get(), Get(); a != b || a.Version == "" {
		t.Fatalf("Get() = %+v then %+v", a, b)
	}
}
