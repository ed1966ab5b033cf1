package manifest

import (
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "m.key"), filepath.Join(dir, "m.pub")
	if err := WriteKeyPair(priv, pub); err != nil {
		t.Fatal(err)
	}
	sk, err := LoadSigningKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := LoadVerifyKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	var sum [32]byte
	o, err := NewObject("c", "a.bin", 10, sum, 1000)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New("c", []Object{o}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sig := Sign(m, sk)
	if err := Verify(m, sig, pk); err != nil {
		t.Fatalf("Verify of a fresh signature: %v", err)
	}
	_, other, _ := ed25519.GenerateKey(nil)
	o2 := o
	o2.Size = 11
	m2, err := New("c", []Object{o2}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	later, err := New("c", []Object{o}, time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), sig...)
	bad[0] ^= 1
	for name, c := range map[string]struct {
		m   *Manifest
		sig []byte
	}{
		"changed content": {m2, sig},
		"flipped bit":     {m, bad},
		"other key":       {m, Sign(m, other)},
		"no signature":    {m, nil},
		"other time":      {later, sig},
	} {
		if err := Verify(c.m, c.sig, pk); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: Verify = %v, want ErrSignature", name, err)
		}
	}
	if err := os.Chmod(priv, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigningKey(priv); err == nil {
		t.Error("a world-readable signing key was loaded")
	}
	if _, err := LoadVerifyKey(priv); err == nil {
		t.Error("a private key file was accepted as a public key")
	}
}
