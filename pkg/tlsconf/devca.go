package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// clockSkew backdates certificates so that peers whose clocks are a little
// behind accept them at once.
const clockSkew = 5 * time.Minute

// A DevCA is a development certificate authority: an ECDSA P-256 key and a
// self-signed CA certificate, made offline. It is meant for development and
// tests, not for production, whose CA should keep its key elsewhere.
type DevCA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// PEM is a PEM-encoded certificate and its PEM-encoded (PKCS #8) private
// key.
type PEM struct {
	Cert, Key []byte
}

// NewDevCA makes a development CA valid for validity.
func NewDevCA(validity time.Duration) (*DevCA, error) {
	if validity <= 0 {
		return nil, fmt.Errorf("CA validity %v is not positive", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "nackcast development CA", Organization: []string{"nackcast"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &DevCA{Cert: cert, Key: key}, nil
}

// LoadDevCA loads a CA written by PEM.WriteFiles.
func LoadDevCA(certFile, keyFile string) (*DevCA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no CERTIFICATE block", certFile)
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s: not a CA certificate", certFile)
	}
	b, _ = pem.Decode(keyPEM)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no PRIVATE KEY block", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ECDSA key", keyFile)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%s does not match %s", keyFile, certFile)
	}
	return &DevCA{Cert: cert, Key: key}, nil
}

// LoadOrNewDevCA loads the CA of certFile and keyFile if both exist and
// force is false; otherwise it makes a CA valid for validity and writes it
// to them. created reports which. Only one of the files existing is an
// error unless force is set, lest a CA key be lost.
func LoadOrNewDevCA(certFile, keyFile string, validity time.Duration, force bool) (ca *DevCA, created bool, err error) {
	if !force {
		_, certErr := os.Stat(certFile)
		_, keyErr := os.Stat(keyFile)
		switch {
		case certErr == nil && keyErr == nil:
			ca, err := LoadDevCA(certFile, keyFile)
			return ca, false, err
		case certErr == nil || keyErr == nil:
			return nil, false, fmt.Errorf("only one of %s and %s exists", certFile, keyFile)
		}
	}
	ca, err = NewDevCA(validity)
	if err != nil {
		return nil, false, err
	}
	p, err := ca.PEM()
	if err != nil {
		return nil, false, err
	}
	if err := p.WriteFiles(certFile, keyFile); err != nil {
		return nil, false, err
	}
	return ca, true, nil
}

// PEM returns the CA's certificate and key, PEM-encoded. The certificate
// is the CA bundle of Files.
func (ca *DevCA) PEM() (PEM, error) {
	return encodePEM(ca.Cert.Raw, ca.Key)
}

// Issue makes a certificate and key signed by the CA, valid for validity
// but never beyond the CA, for both server and client authentication. Its
// Subject CommonName is name and its first OrganizationalUnit role (none
// if role is empty); its subject alternative names are name, "localhost",
// 127.0.0.1, ::1 and hosts, each an IP address or a DNS name.
func (ca *DevCA) Issue(name, role string, hosts []string, validity time.Duration) (PEM, error) {
	req := CertRequest{Name: name}
	if role != "" {
		req.OrganizationalUnits = []string{role}
	}
	for _, h := range append([]string{name, "localhost", "127.0.0.1", "::1"}, hosts...) {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(req.IPAddresses, ip.Equal) {
				req.IPAddresses = append(req.IPAddresses, ip)
			}
		} else if !slices.Contains(req.DNSNames, h) {
			req.DNSNames = append(req.DNSNames, h)
		}
	}
	return ca.IssueRequest(req, validity)
}

// A CertRequest says what a certificate of IssueRequest names: what an
// issuer such as cert-manager is asked for.
type CertRequest struct {
	// Name is the Subject CommonName, the holder's nackcast name.
	Name string
	// OrganizationalUnits are the Subject's; the first is the role.
	OrganizationalUnits []string
	// DNSNames, IPAddresses and URIs are the subject alternative names;
	// a role can also be a URI (RoleURI).
	DNSNames    []string
	IPAddresses []net.IP
	URIs        []*url.URL
}

// IssueRequest makes a certificate and key signed by the CA for req, valid
// for validity but never beyond the CA, for both server and client
// authentication, with exactly the names of req.
func (ca *DevCA) IssueRequest(req CertRequest, validity time.Duration) (PEM, error) {
	if req.Name == "" {
		return PEM{}, errors.New("certificate name is empty")
	}
	if validity <= 0 {
		return PEM{}, fmt.Errorf("certificate validity %v is not positive", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return PEM{}, err
	}
	serial, err := newSerial()
	if err != nil {
		return PEM{}, err
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: req.Name, OrganizationalUnit: req.OrganizationalUnits},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
		URIs:                  req.URIs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return PEM{}, fmt.Errorf("create certificate %s: %w", req.Name, err)
	}
	return encodePEM(der, key)
}

// Certificate parses the certificate.
func (p PEM) Certificate() (*x509.Certificate, error) {
	b, _ := pem.Decode(p.Cert)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, errors.New("no CERTIFICATE block")
	}
	return x509.ParseCertificate(b.Bytes)
}

// WriteFiles writes the certificate to certFile, readable by all, and the
// key to keyFile, readable by the owner only. Each file is replaced
// atomically, so that a Reloader never reads one half-written.
func (p PEM) WriteFiles(certFile, keyFile string) error {
	if err := writeAtomic(keyFile, p.Key, 0o600); err != nil {
		return err
	}
	return writeAtomic(certFile, p.Cert, 0o644)
}

func encodePEM(certDER []byte, key *ecdsa.PrivateKey) (PEM, error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return PEM{}, err
	}
	return PEM{
		Cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}),
		Key:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// writeAtomic writes data to a temporary file in the directory of path
// and renames it to path.
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, a no-op
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
