// Command devca makes, offline, a development CA and certificates signed by
// it for nackcast's mutual TLS:
//
//	go run ./scripts/devca -out certs -certs sender:sender,backup:backup,receiver-1:receiver,nackctl:admin
//
// It writes ca.pem and ca.key, then NAME.pem and NAME.key for each
// NAME:ROLE of -certs. Each certificate is valid for server and client
// authentication, with Subject CommonName NAME, OrganizationalUnit ROLE and
// subject alternative names NAME, localhost, 127.0.0.1, ::1 and -hosts.
// Keys are readable by their owner only. If the directory already holds
// ca.pem and ca.key, the CA is reused, so that certificates can be added,
// unless -force asks for a new one.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nackcast/nackcast/pkg/tlsconf"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "devca:", err)
		}
		os.Exit(2)
	}
}

// run is the command, with its arguments and outputs as parameters.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("devca", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "certs", "directory to write the files to")
	certs := fs.String("certs", "", "comma-separated NAME:ROLE of the certificates to issue")
	hosts := fs.String("hosts", "", "comma-separated extra DNS names and IP addresses of every certificate")
	days := fs.Int("days", 90, "validity of the certificates, in days")
	caDays := fs.Int("ca-days", 3650, "validity of a new CA, in days")
	force := fs.Bool("force", false, "make a new CA even if -out has one")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	leaves, err := parseCerts(*certs)
	if err != nil {
		return err
	}
	if *days <= 0 || *caDays <= 0 {
		return errors.New("-days and -ca-days must be positive")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	caCert, caKey := filepath.Join(*out, "ca.pem"), filepath.Join(*out, "ca.key")
	ca, created, err := tlsconf.LoadOrNewDevCA(caCert, caKey, time.Duration(*caDays)*24*time.Hour, *force)
	if err != nil {
		return fmt.Errorf("%w (-force makes a new CA)", err)
	}
	if created {
		fmt.Fprintf(stdout, "wrote new CA %s and %s, valid until %s\n", caCert, caKey, date(ca.Cert.NotAfter))
	} else {
		fmt.Fprintf(stdout, "reusing CA %s, valid until %s\n", caCert, date(ca.Cert.NotAfter))
	}
	var extra []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			extra = append(extra, h)
		}
	}
	for _, l := range leaves {
		p, err := ca.Issue(l.name, l.role, extra, time.Duration(*days)*24*time.Hour)
		if err != nil {
			return err
		}
		certFile, keyFile := filepath.Join(*out, l.name+".pem"), filepath.Join(*out, l.name+".key")
		if err := p.WriteFiles(certFile, keyFile); err != nil {
			return err
		}
		c, err := p.Certificate()
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s and %s: name %s, role %s, DNS %v, IP %v, valid until %s\n",
			certFile, keyFile, c.Subject.CommonName, l.role, c.DNSNames, c.IPAddresses, date(c.NotAfter))
	}
	return nil
}

func date(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// leaf is one NAME:ROLE of -certs.
type leaf struct{ name, role string }

// parseCerts parses the -certs list.
func parseCerts(s string) ([]leaf, error) {
	var leaves []leaf
	seen := make(map[string]bool)
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, role, ok := strings.Cut(item, ":")
		if !ok || name == "" || role == "" {
			return nil, fmt.Errorf("-certs: %q is not NAME:ROLE", item)
		}
		if name == "ca" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
			return nil, fmt.Errorf("-certs: %q cannot be a certificate name", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("-certs: %q given twice", name)
		}
		seen[name] = true
		leaves = append(leaves, leaf{name, role})
	}
	return leaves, nil
}
