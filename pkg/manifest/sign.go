package manifest

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// signingContext separates manifest signatures from any other use of the
// key.
const signingContext = "nackcast manifest signature v1\x00"

// ErrSignature reports a manifest whose signature is missing or does not
// verify under the configured public key.
var ErrSignature = errors.New("manifest signature missing or invalid")

// signedMessage is what a manifest signature covers: a context string,
// the manifest's digest (channel, and every object's path, size, SHA-256
// and chunk size) and when it was generated (Unix nanoseconds), so that a
// receiver can refuse an older signed manifest replayed to it (rollback).
func signedMessage(m *Manifest) []byte {
	d := m.Digest()
	b := append([]byte(signingContext), d[:]...)
	return binary.BigEndian.AppendUint64(b, uint64(m.GeneratedAt.UnixNano()))
}

// Sign returns the Ed25519 signature of m under key.
func Sign(m *Manifest, key ed25519.PrivateKey) []byte {
	return ed25519.Sign(key, signedMessage(m))
}

// Verify checks sig, a signature of m, under pub.
func Verify(m *Manifest, sig []byte, pub ed25519.PublicKey) error {
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, signedMessage(m), sig) {
		return fmt.Errorf("channel %q version %016x: %w", m.Channel, m.Version, ErrSignature)
	}
	return nil
}

// LoadSigningKey reads an Ed25519 private key from a PEM file (PKCS #8,
// "PRIVATE KEY"), refusing a file group or others may read.
func LoadSigningKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("manifest key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("manifest key %s has mode %04o: group or others may read it; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("manifest key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("manifest key %s: no PEM \"PRIVATE KEY\" block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("manifest key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("manifest key %s: a %T, want Ed25519", path, k)
	}
	return ek, nil
}

// LoadVerifyKey reads an Ed25519 public key from a PEM file (PKIX,
// "PUBLIC KEY").
func LoadVerifyKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("manifest public key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("manifest public key %s: no PEM \"PUBLIC KEY\" block", path)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("manifest public key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("manifest public key %s: a %T, want Ed25519", path, k)
	}
	return ek, nil
}

// WriteKeyPair writes a new Ed25519 key pair: the private key to privPath
// (PKCS #8 PEM, mode 0600) and the public key to pubPath (PKIX PEM).
func WriteKeyPair(privPath, pubPath string) error {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	if err := os.WriteFile(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}
