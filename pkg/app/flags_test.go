package app

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

type testFlags struct {
	name  string
	count int
	wait  time.Duration
	list  []string
	size  int64
	cfg   string
}

func newTestFlagSet(v *testFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.StringVar(&v.name, "name", "default", "")
	fs.IntVar(&v.count, "count", 1, "")
	fs.DurationVar(&v.wait, "wait-time", time.Second, "")
	fs.Var(NewStringList(&v.list), "list", "")
	fs.Var(NewByteSize(&v.size), "size", "")
	fs.StringVar(&v.cfg, "config", "", "")
	return fs
}

func TestParsePrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.conf")
	if err := os.WriteFile(file, []byte("# comment\nname = from-file\ncount = 3 # trailing\nwait-time = \"5s\"\nsize = 8Mi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NACKCAST_COUNT", "7")
	t.Setenv("NACKCAST_LIST", "a, b,,c")
	var v testFlags
	fs := newTestFlagSet(&v)
	if err := Parse(fs, []string{"-config", file, "-wait-time", "2s"}); err != nil {
		t.Fatal(err)
	}
	if v.name != "from-file" || v.count != 7 || v.wait != 2*time.Second || v.size != 8<<20 || !slices.Equal(v.list, []string{"a", "b", "c"}) {
		t.Errorf("got %+v", v)
	}
}

func TestParseConfigFromEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.conf")
	if err := os.WriteFile(file, []byte("name = env-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NACKCAST_CONFIG", file)
	var v testFlags
	if err := Parse(newTestFlagSet(&v), nil); err != nil {
		t.Fatal(err)
	}
	if v.name != "env-file" {
		t.Errorf("name = %q: config file named in the environment not read", v.name)
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.conf")
	if err := os.WriteFile(file, []byte("bogus = 1\ncount = many\nno equals sign\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NACKCAST_WAIT_TIME", "soon")
	var v testFlags
	err := Parse(newTestFlagSet(&v), []string{"-config", file})
	if err == nil {
		t.Fatal("bad values accepted")
	}
	for _, want := range []string{"NACKCAST_WAIT_TIME", `unknown setting "bogus"`, "count", `want "name = value"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if err := Parse(newTestFlagSet(&v), []string{"extra"}); err == nil {
		t.Error("stray argument accepted")
	}
}

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1500", 1500, true},
		{"100M", 100_000_000, true},
		{"100MB", 100_000_000, true},
		{"8Mi", 8 << 20, true},
		{"1.5G", 1_500_000_000, true},
		{"2k", 2000, true},
		{"", 0, false},
		{"-1", 0, false},
		{"ten", 0, false},
		{"1e30", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("nack-timeout"); got != "NACKCAST_NACK_TIMEOUT" {
		t.Errorf("EnvName = %q", got)
	}
}
