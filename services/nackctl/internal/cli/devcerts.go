package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nackcast/nackcast/pkg/manifest"
	"github.com/nackcast/nackcast/pkg/tlsconf"
)

// cmdDevCerts makes, offline, a development CA and certificates signed by
// it for the cloud's mutual TLS: ca.pem and ca.key, then NAME.pem and
// NAME.key for each NAME:ROLE of -certs. Each certificate is valid for
// server and client authentication, with Subject CommonName NAME,
// OrganizationalUnit ROLE and subject alternative names NAME, localhost,
// 127.0.0.1, ::1 and -hosts. Keys are readable by their owner only. A
// directory that already holds ca.pem and ca.key keeps its CA, so that
// certificates can be added, unless -force asks for a new one.
func cmdDevCerts(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("dev-certs", flag.ContinueOnError)
	fs.SetOutput(c.env.Stderr)
	out := fs.String("out", "certs", "directory to write the files to")
	certs := fs.String("certs", "", "comma-separated NAME:ROLE of the certificates to issue (roles: sender, backup, receiver, admin)")
	hosts := fs.String("hosts", "", "comma-separated extra DNS names and IP addresses of every certificate")
	days := fs.Int("days", 90, "validity of the certificates, in days")
	caDays := fs.Int("ca-days", 3650, "validity of a new CA, in days")
	force := fs.Bool("force", false, "make a new CA even if -out has one")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	leaves, err := parseCerts(*certs)
	if err != nil {
		return err
	}
	if *days <= 0 || *caDays <= 0 {
		return usagef("-days and -ca-days must be positive")
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
		fmt.Fprintf(c.env.Stdout, "wrote new CA %s and %s, valid until %s\n", caCert, caKey, date(ca.Cert.NotAfter))
	} else {
		fmt.Fprintf(c.env.Stdout, "reusing CA %s, valid until %s\n", caCert, date(ca.Cert.NotAfter))
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
		cert, err := p.Certificate()
		if err != nil {
			return err
		}
		fmt.Fprintf(c.env.Stdout, "wrote %s and %s: name %s, role %s, DNS %v, IP %v, valid until %s\n",
			certFile, keyFile, cert.Subject.CommonName, l.role, cert.DNSNames, cert.IPAddresses, date(cert.NotAfter))
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

// cmdManifestKey writes a new Ed25519 key pair for signing manifests:
// DIR/manifest.key (for the senders' -manifest-key, mode 0600) and
// DIR/manifest.pub (for the receivers' -manifest-pubkey).
func cmdManifestKey(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("manifest-key", flag.ContinueOnError)
	out := fs.String("out", "certs", "directory to write manifest.key and manifest.pub to")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected arguments %q", pos)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	priv, pub := filepath.Join(*out, "manifest.key"), filepath.Join(*out, "manifest.pub")
	for _, p := range []string{priv, pub} {
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("%s exists: not overwriting a key", p)
		}
	}
	if err := manifest.WriteKeyPair(priv, pub); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "wrote %s (senders: -manifest-key) and %s (receivers: -manifest-pubkey)\n", priv, pub)
	return nil
}
