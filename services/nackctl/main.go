// Command nackctl looks at and drives a nackcast cloud through its gRPC
// API: status tables, live progress of receivers, channels and manifests,
// publishing and deleting objects, and alert streams. Human output by
// default, -o json for scripts.
package main

import (
	"os"

	"golang.org/x/term"

	"github.com/nackcast/nackcast/services/nackctl/internal/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], cli.Env{
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		TTY:    term.IsTerminal(int(os.Stdout.Fd())),
	}))
}
