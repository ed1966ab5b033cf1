// Command flagdoc writes the configuration tables of README.md from the
// services' real flag sets, between markers of the form
// "<!-- flags:NAME -->" and "<!-- /flags:NAME -->". With -check it only
// reports whether README.md is up to date.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/nackcast/nackcast/pkg/app"
	"github.com/nackcast/nackcast/pkg/flagsets"
)

func main() {
	check := flag.Bool("check", false, "only check that the file is up to date")
	file := flag.String("file", "README.md", "file to update")
	flag.Parse()
	old, err := os.ReadFile(*file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flagdoc:", err)
		os.Exit(2)
	}
	updated, err := Update(old)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flagdoc:", err)
		os.Exit(2)
	}
	if bytes.Equal(old, updated) {
		return
	}
	if *check {
		fmt.Fprintf(os.Stderr, "flagdoc: %s is out of date: run make docs\n", *file)
		os.Exit(1)
	}
	if err := os.WriteFile(*file, updated, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "flagdoc:", err)
		os.Exit(2)
	}
}

// Update replaces every marked table in doc.
func Update(doc []byte) ([]byte, error) {
	out := string(doc)
	for name, fs := range flagsets.All() {
		begin, end := "<!-- flags:"+name+" -->", "<!-- /flags:"+name+" -->"
		i, j := strings.Index(out, begin), strings.Index(out, end)
		if i < 0 || j < i {
			return nil, fmt.Errorf("markers for %q not found", name)
		}
		out = out[:i+len(begin)] + "\n" + Table(fs) + out[j:]
	}
	return []byte(out), nil
}

// Table renders a flag set as a Markdown table.
func Table(fs *flag.FlagSet) string {
	host, _ := os.Hostname()
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if host != "" {
			def = strings.ReplaceAll(def, host, "$HOSTNAME")
		}
		if def == "" {
			def = " "
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(&b, "| `-%s` | `%s` | %s | %s |\n", f.Name, app.EnvName(f.Name), def, strings.ReplaceAll(f.Usage, "|", "\\|"))
	})
	return b.String()
}
