package pktauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

const (
	// MinSecretLen is the shortest secret a key may have, in bytes.
	MinSecretLen = 32
	// MaxKeys is the number of keys a Keyring holds at most: the current
	// key and, during a rollover, one more.
	MaxKeys = 2
	// maxKeyFile bounds what LoadFile reads.
	maxKeyFile = 64 << 10
)

// HKDF info strings: one per derived key, so that the secret is never used
// for two purposes.
const (
	infoMAC  = "nackcast pktauth v1 hmac-sha256-128"
	infoSeal = "nackcast pktauth v1 aes-256-gcm"
)

// Key is one cloud key: an id carried in every trailer and a secret of at
// least MinSecretLen bytes. Its String method does not print the secret.
type Key struct {
	ID     uint8
	Secret []byte
}

// String names the key without its secret.
func (k Key) String() string { return "pktauth key " + strconv.Itoa(int(k.ID)) }

// GoString names the key without its secret, for %#v.
func (k Key) GoString() string {
	return "pktauth.Key{ID: " + strconv.Itoa(int(k.ID)) + ", Secret: <redacted>}"
}

// NewKey returns a key with the given id and a fresh random secret of
// MinSecretLen bytes from crypto/rand.
func NewKey(id uint8) (Key, error) {
	s := make([]byte, MinSecretLen)
	if _, err := rand.Read(s); err != nil {
		return Key{}, fmt.Errorf("pktauth: new key %d: %w", id, err)
	}
	return Key{ID: id, Secret: s}, nil
}

// Format renders keys in the key file format that Parse, LoadFile and
// FromEnv read, one per line after a comment, the first key first (it is
// the one that seals). It does not validate the keys; NewKeyring does.
func Format(keys ...Key) string {
	var b strings.Builder
	b.WriteString("# nackcast pktauth key ring: id and hex secret, the first key seals\n")
	for _, k := range keys {
		b.WriteString(strconv.Itoa(int(k.ID)))
		b.WriteByte(' ')
		const digits = "0123456789abcdef"
		for _, c := range k.Secret {
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&15])
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// derived is what a key turns into: the HMAC key and the AEAD, both
// derived from the secret with HKDF.
type derived struct {
	id     uint8
	macKey []byte
	aead   cipher.AEAD
}

// Keyring is one or two keys: the first seals, both open. It is immutable
// and safe for concurrent use.
type Keyring struct {
	keys []Key
	d    []derived
}

// NewKeyring returns a ring of one or two keys with distinct ids and
// secrets of at least MinSecretLen bytes; keys[0] seals. The secrets are
// copied.
func NewKeyring(keys ...Key) (*Keyring, error) {
	kr, err := newKeyring(keys)
	if err != nil {
		return nil, fmt.Errorf("pktauth: %w", err)
	}
	return kr, nil
}

func newKeyring(keys []Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("a key ring needs a key")
	}
	if len(keys) > MaxKeys {
		return nil, fmt.Errorf("%d keys: a key ring holds at most %d", len(keys), MaxKeys)
	}
	kr := &Keyring{}
	for i, k := range keys {
		if len(k.Secret) < MinSecretLen {
			return nil, fmt.Errorf("key %d: secret of %d bytes, need at least %d", k.ID, len(k.Secret), MinSecretLen)
		}
		for _, o := range keys[:i] {
			if o.ID == k.ID {
				return nil, fmt.Errorf("duplicate key id %d", k.ID)
			}
		}
		d, err := derive(k)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", k.ID, err)
		}
		kr.keys = append(kr.keys, Key{ID: k.ID, Secret: append([]byte(nil), k.Secret...)})
		kr.d = append(kr.d, d)
	}
	return kr, nil
}

func derive(k Key) (derived, error) {
	mk, err := hkdf.Key(sha256.New, k.Secret, nil, infoMAC, 32)
	if err != nil {
		return derived{}, err
	}
	sk, err := hkdf.Key(sha256.New, k.Secret, nil, infoSeal, 32)
	if err != nil {
		return derived{}, err
	}
	block, err := aes.NewCipher(sk)
	if err != nil {
		return derived{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return derived{}, err
	}
	return derived{id: k.ID, macKey: mk, aead: aead}, nil
}

// Keys returns copies of the ring's keys, the sealing key first, for
// example to Format a ring with a new key added.
func (kr *Keyring) Keys() []Key {
	out := make([]Key, len(kr.keys))
	for i, k := range kr.keys {
		out[i] = Key{ID: k.ID, Secret: append([]byte(nil), k.Secret...)}
	}
	return out
}

// SealingKeyID returns the id of the key that seals (the first).
func (kr *Keyring) SealingKeyID() uint8 { return kr.keys[0].ID }

// Parse reads a key ring in the key file format: one key per line, "ID HEX"
// with the id in decimal (0 to 255) and the secret in hex (at least 64
// digits); '#' starts a comment that runs to the next newline, blank lines
// are ignored, and ';' also ends a line (outside a comment). One or two
// keys, distinct ids; the first seals. Errors name the line, counting the
// parts that ';' separates as lines.
func Parse(text string) (*Keyring, error) {
	kr, err := parse(text)
	if err != nil {
		return nil, fmt.Errorf("pktauth: %w", err)
	}
	return kr, nil
}

func parse(text string) (*Keyring, error) {
	var (
		keys  []Key
		lines []int
	)
	n := 0
	for more := true; more; {
		n++
		// A line ends at a newline or ';', a comment at a newline only.
		line, rest := text, ""
		more = false
		switch i := strings.IndexAny(text, "\n;#"); {
		case i < 0:
		case text[i] == '#':
			line = text[:i]
			if j := strings.IndexByte(text[i:], '\n'); j >= 0 {
				rest, more = text[i+j+1:], true
			}
		default:
			line, rest, more = text[:i], text[i+1:], true
		}
		text = rest
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"ID HEX\", found %d fields", n, len(f))
		}
		id, err := strconv.ParseUint(f[0], 10, 8)
		if err != nil {
			return nil, fmt.Errorf("line %d: key id %q is not a number from 0 to 255", n, f[0])
		}
		secret, err := decodeHex(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: key %d: %w", n, id, err)
		}
		if len(secret) < MinSecretLen {
			return nil, fmt.Errorf("line %d: key %d: secret of %d hex digits, need at least %d", n, id, len(f[1]), 2*MinSecretLen)
		}
		for j, k := range keys {
			if k.ID == uint8(id) {
				return nil, fmt.Errorf("line %d: duplicate key id %d (also on line %d)", n, id, lines[j])
			}
		}
		if len(keys) == MaxKeys {
			return nil, fmt.Errorf("line %d: a third key, but a key ring holds at most %d", n, MaxKeys)
		}
		keys = append(keys, Key{ID: uint8(id), Secret: secret})
		lines = append(lines, n)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no key in %d lines (only blank lines and comments)", n)
	}
	return newKeyring(keys)
}

// decodeHex decodes s without putting any of its characters in an error,
// since they are secret.
func decodeHex(s string) ([]byte, error) {
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("secret has an odd number (%d) of hex digits", len(s))
	}
	out := make([]byte, len(s)/2)
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			at := i + 1
			if ok1 {
				at = i + 2
			}
			return nil, fmt.Errorf("secret is not hex: bad character at position %d", at)
		}
		out[i/2] = hi<<4 | lo
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// LoadFile reads a key ring from a file in the key file format (see
// Parse). It refuses a file that group or others may access (mode & 0o077
// != 0) and anything but a regular file.
func LoadFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("pktauth: key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("pktauth: key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("pktauth: key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("pktauth: key file %s has mode %04o: group or others may access it; chmod 600 it", path, perm)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("pktauth: key file %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("pktauth: key file %s is larger than %d bytes", path, maxKeyFile)
	}
	kr, err := parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("pktauth: key file %s: %w", path, err)
	}
	return kr, nil
}

// FromEnv reads a key ring from the environment variable name, in the key
// file format (see Parse); lines may be separated by ';' as well as by
// newlines.
func FromEnv(name string) (*Keyring, error) {
	v, ok := os.LookupEnv(name)
	if !ok {
		return nil, fmt.Errorf("pktauth: environment variable %s is not set", name)
	}
	kr, err := parse(v)
	if err != nil {
		return nil, fmt.Errorf("pktauth: environment variable %s: %w", name, err)
	}
	return kr, nil
}
