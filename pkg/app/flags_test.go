package app

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
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

func TestCheckEnv(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		want    []string // substrings of the error; none: accepted
	}{
		{"own flag", []string{"NACKCAST_WAIT_TIME=2s"}, nil},
		{"another program's flag", []string{"NACKCAST_DATA=/data", "NACKCAST_ORIGIN=/origin"}, nil},
		{"nackctl's variable", []string{"NACKCAST_ADDR=127.0.0.1:7001"}, nil},
		{"read by other tools", []string{"NACKCAST_PACKET_KEYS=k1 00", "NACKCAST_REQUIRE_ROOT_TESTS=1"}, nil},
		{"not nackcast's", []string{"HOME=/root", "nackcast_wait_time=x", "NACKCASTX=1"}, nil},
		{"own flag misspelt", []string{"NACKCAST_WAIT_TIM=2s"},
			[]string{"NACKCAST_WAIT_TIM (environment): not a setting of any nackcast program", "did you mean NACKCAST_WAIT_TIME (-wait-time)?"}},
		{"another program's flag misspelt", []string{"NACKCAST_NACK_TIMOUT=2s"},
			[]string{"NACKCAST_NACK_TIMOUT (environment)", "did you mean NACKCAST_NACK_TIMEOUT (-nack-timeout of receiver)?"}},
		{"nackctl's variable misspelt", []string{"NACKCAST_ADRR=x"}, []string{"did you mean NACKCAST_ADDR (-addr of nackctl)?"}},
		{"a tool's variable misspelt", []string{"NACKCAST_PACKET_KEY=x"}, []string{"did you mean NACKCAST_PACKET_KEYS (the services' packet keys"}},
		{"empty name", []string{"NACKCAST_=1"}, []string{"NACKCAST_ (environment): not a setting"}},
		{"every one reported", []string{"NACKCAST_WAIT_TIM=1", "NACKCAST_COUNTT=2"},
			[]string{"NACKCAST_WAIT_TIM (environment)", "NACKCAST_COUNTT (environment)", "did you mean NACKCAST_COUNT (-count)?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v testFlags
			err := CheckEnv(newTestFlagSet(&v), tt.environ)
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("CheckEnv(%q) = %v, want accepted", tt.environ, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckEnv(%q) accepted, want an error", tt.environ)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckEnv(%q) = %q, want it to mention %q", tt.environ, err, w)
				}
			}
		})
	}
}

func TestParseRejectsUnknownEnvironment(t *testing.T) {
	t.Setenv("NACKCAST_NAEM", "x")
	var v testFlags
	err := Parse(newTestFlagSet(&v), nil)
	if err == nil || !strings.Contains(err.Error(), "did you mean NACKCAST_NAME (-name)?") {
		t.Errorf("Parse with NACKCAST_NAEM set = %v, want the misspelling reported", err)
	}
}

func TestParseSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.conf")
	if err := os.WriteFile(file, []byte("name = f\ncount = 3\nsize = 1k\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NACKCAST_COUNT", "7")
	t.Setenv("NACKCAST_SIZE", "2k")
	var v testFlags
	src, err := ParseSources(newTestFlagSet(&v), []string{"-config", file, "-size", "3k"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ flag, want string }{
		{"config", "the command line"},
		{"size", "the command line"},
		{"count", "NACKCAST_COUNT in the environment"},
		{"name", "config file " + file},
		{"wait-time", "its default"},
	}
	for _, tt := range tests {
		if got := src.Of(tt.flag); got != tt.want {
			t.Errorf("source of -%s = %q, want %q", tt.flag, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"NACK_TIMOUT", "NACK_TIMEOUT", 1},
		{"ADRR", "ADDR", 1},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestRepositoryNamesKnownEnv checks every NACKCAST_ variable that the
// repository's programs, scripts, deployment files and documentation name
// (tests aside, which make up their own): each must be a flag of some
// program or one of otherEnv, or the services would reject it.
func TestRepositoryNamesKnownEnv(t *testing.T) {
	root := "../.."
	re := regexp.MustCompile(`NACKCAST_[A-Z0-9_]+`)
	skipDirs := map[string]bool{".git": true, ".tools": true, "bin": true, "results": true, "gen": true, "testdata": true, "certs": true}
	exts := []string{".go", ".md", ".yml", ".yaml", ".sh", ".json"}
	names := []string{"Makefile", "Dockerfile", "run"}
	checked := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			return nil
		}
		base := d.Name()
		if strings.HasSuffix(base, "_test.go") || (!slices.Contains(names, base) && !slices.ContainsFunc(exts, func(e string) bool { return strings.HasSuffix(base, e) })) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for _, loc := range re.FindAllIndex(b, -1) {
			name := string(b[loc[0]:loc[1]])
			if strings.HasSuffix(name, "_") { // NACKCAST_TLS_* and the like
				continue
			}
			if bytes.HasPrefix(b[loc[1]:], []byte(" (environment):")) { // an example of the error about it
				continue
			}
			_, flag := flagEnv[name]
			_, other := otherEnv[name]
			if !flag && !other {
				line := 1 + bytes.Count(b[:loc[0]], []byte("\n"))
				t.Errorf("%s:%d names %s, which no nackcast program reads (a flag renamed? or add it to otherEnv)", path, line, name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked only %d files: is the repository root at %s?", checked, root)
	}
}
