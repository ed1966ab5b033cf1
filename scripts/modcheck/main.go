// Command modcheck proves that a release of nackcast can be imported by
// another Go module: it builds a module proxy in a temporary directory
// from a git tag of this repository (the same zip the Go module proxy
// would serve, made by golang.org/x/mod/zip), then builds a small program
// of a fresh module that requires github.com/nackcast/nackcast at that
// version through it and uses pkg/client and the generated API.
//
//	go run ./scripts/modcheck            # the newest tag (v*) of HEAD's history
//	go run ./scripts/modcheck -tag v0.5.0
//
// Without any tag it checks HEAD under a pseudo-version and says so.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

const modulePath = "github.com/nackcast/nackcast"

// consumer is the program of the importing module.
const consumer = `package main

import (
	"fmt"

	"github.com/nackcast/nackcast/pkg/client"
	nackcastv1 "github.com/nackcast/nackcast/pkg/gen/nackcast/v1"
)

func main() {
	cfg := client.ConfigFromEnv(func(string) string { return "" })
	req := &nackcastv1.SubscribeRequest{Channel: "news"}
	fmt.Println("imported:", req.GetChannel(), cfg.TLS.Enabled())
}
`

func main() {
	tag := flag.String("tag", "", "version tag to check (default: the newest v* tag reachable from HEAD)")
	keep := flag.Bool("keep", false, "keep the temporary directory")
	flag.Parse()
	if err := run(*tag, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "modcheck:", err)
		os.Exit(1)
	}
}

func git(args ...string) (string, error) {
	out, err := exec.Command("git", args...).Output()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, ee.Stderr)
	}
	return strings.TrimSpace(string(out)), err
}

func run(tag string, keep bool) error {
	root, err := git("rev-parse", "--show-toplevel")
	if err != nil {
		return err
	}
	rev, version := "", ""
	if tag == "" {
		tag, _ = git("describe", "--tags", "--abbrev=0", "--match", "v*", "HEAD")
	}
	if tag != "" {
		if rev, err = git("rev-list", "-n", "1", tag); err != nil {
			return err
		}
		version = tag
	} else {
		if rev, err = git("rev-parse", "HEAD"); err != nil {
			return err
		}
		ts, err := git("show", "-s", "--format=%ct", rev)
		if err != nil {
			return err
		}
		secs, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return fmt.Errorf("commit time %q: %w", ts, err)
		}
		version = module.PseudoVersion("v0", "", time.Unix(secs, 0), rev[:12])
		fmt.Printf("modcheck: no v* tag in HEAD's history; checking HEAD as %s\n", version)
	}
	m := module.Version{Path: modulePath, Version: version}
	if err := module.Check(m.Path, m.Version); err != nil {
		return fmt.Errorf("version %s: %w", version, err)
	}

	tmp, err := os.MkdirTemp("", "nackcast-modcheck-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("modcheck: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	// The proxy: list, info, mod and zip of the version, as a module
	// proxy serves them.
	vdir := filepath.Join(tmp, "proxy", modulePath, "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	var zbuf bytes.Buffer
	if err := zip.CreateFromVCS(&zbuf, m, root, rev, ""); err != nil {
		return fmt.Errorf("module zip of %s: %w", version, err)
	}
	gomod, err := git("show", rev+":go.mod")
	if err != nil {
		return err
	}
	info, _ := json.Marshal(map[string]string{"Version": version, "Time": time.Now().UTC().Format(time.RFC3339)})
	for name, data := range map[string][]byte{
		"list":            []byte(version + "\n"),
		version + ".info": info,
		version + ".mod":  []byte(gomod + "\n"),
		version + ".zip":  zbuf.Bytes(),
	} {
		if err := os.WriteFile(filepath.Join(vdir, name), data, 0o644); err != nil {
			return err
		}
	}

	// The importing module.
	app := filepath.Join(tmp, "app")
	if err := os.MkdirAll(app, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(app, "main.go"), []byte(consumer), 0o644); err != nil {
		return err
	}
	upstream, _ := exec.Command("go", "env", "GOPROXY").Output()
	env := append(os.Environ(),
		"GOPROXY=file://"+filepath.Join(tmp, "proxy")+","+strings.TrimSpace(string(upstream)),
		// The checksum database does not know an unpublished version.
		"GONOSUMDB="+modulePath, "GOFLAGS=-mod=mod", "GOWORK=off")
	steps := [][]string{
		{"go", "mod", "init", "example.com/manager"},
		{"go", "get", modulePath + "@" + version},
		{"go", "build", "-o", filepath.Join(tmp, "manager"), "."},
		{filepath.Join(tmp, "manager")},
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Dir, cmd.Env = app, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(s, " "), err, out)
		}
		if s[0] == filepath.Join(tmp, "manager") {
			fmt.Print(string(out))
		}
	}
	fmt.Printf("modcheck: %s@%s imports and builds in another module (go get through a module proxy made from %s)\n", modulePath, version, rev[:12])
	return nil
}
