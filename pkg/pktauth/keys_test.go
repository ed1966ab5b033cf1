package pktauth

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	hex1 = strings.Repeat("0123456789abcdef", 4) // 64 digits
	hex2 = strings.Repeat("FEDCBA9876543210", 4)
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		ids     []uint8 // the ring on success, sealing key first
		wantErr string  // substring of the error
	}{
		{name: "one key", text: "1 " + hex1, ids: []uint8{1}},
		{name: "two keys, first seals", text: "7 " + hex1 + "\n3 " + hex2 + "\n", ids: []uint8{7, 3}},
		{name: "comments and blanks", text: "# ring\n\n  \t\n200 " + hex1 + "  # current\r\n# old:\n0 " + hex2 + "\n", ids: []uint8{200, 0}},
		{name: "semicolons", text: "1 " + hex1 + ";2 " + hex2 + ";", ids: []uint8{1, 2}},
		{name: "semicolon in a comment", text: "1 " + hex1 + " # retired; 2 " + hex2 + "\n3 " + hex2, ids: []uint8{1, 3}},
		{name: "longer secret", text: "255 " + hex1 + hex2, ids: []uint8{255}},
		{name: "upper-case hex", text: "9 " + strings.ToUpper(hex1), ids: []uint8{9}},
		{name: "empty", text: "", wantErr: "no key"},
		{name: "only comments", text: "# nothing\n\n", wantErr: "no key"},
		{name: "bad hex", text: "1 " + hex1[:10] + "zz" + hex1[12:], wantErr: "line 1: key 1: secret is not hex: bad character at position 11"},
		{name: "odd hex", text: "# c\n1 " + hex1 + "a", wantErr: "line 2: key 1: secret has an odd number"},
		{name: "short secret", text: "1 " + hex1[:62], wantErr: "line 1: key 1: secret of 62 hex digits, need at least 64"},
		{name: "three keys", text: "1 " + hex1 + "\n2 " + hex2 + "\n3 " + hex1, wantErr: "line 3: a third key"},
		{name: "duplicate id", text: "1 " + hex1 + "\n\n1 " + hex2, wantErr: "line 3: duplicate key id 1 (also on line 1)"},
		{name: "duplicate id, semicolons", text: "4 " + hex1 + "; 4 " + hex2, wantErr: "line 2: duplicate key id 4"},
		{name: "id too large", text: "256 " + hex1, wantErr: `line 1: key id "256" is not a number`},
		{name: "negative id", text: "-1 " + hex1, wantErr: `line 1: key id "-1"`},
		{name: "id not decimal", text: "0x1 " + hex1, wantErr: `line 1: key id "0x1"`},
		{name: "missing secret", text: "1", wantErr: "line 1: want \"ID HEX\", found 1 fields"},
		{name: "extra field", text: "1 " + hex1 + " x", wantErr: "line 1: want \"ID HEX\", found 3 fields"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := Parse(tc.text)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), hex1[:16]) || strings.Contains(err.Error(), hex2[:16]) {
					t.Fatalf("error %q shows a secret", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			keys := kr.Keys()
			if len(keys) != len(tc.ids) || kr.SealingKeyID() != tc.ids[0] {
				t.Fatalf("ring %v, want ids %v", keys, tc.ids)
			}
			for i, k := range keys {
				if k.ID != tc.ids[i] || len(k.Secret) < MinSecretLen {
					t.Fatalf("key %d: %v", i, k)
				}
			}
		})
	}
}

func TestNewKeyring(t *testing.T) {
	k3 := testKey(3, 0x30)
	tests := []struct {
		name string
		keys []Key
		ok   bool
	}{
		{"none", nil, false},
		{"one", []Key{k1}, true},
		{"two", []Key{k1, k2}, true},
		{"three", []Key{k1, k2, k3}, false},
		{"duplicate", []Key{k1, k1other}, false},
		{"short", []Key{{ID: 1, Secret: make([]byte, MinSecretLen-1)}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewKeyring(tc.keys...)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok %v", err, tc.ok)
			}
		})
	}
	// The ring copies the secrets.
	k := testKey(5, 1)
	kr := ring(t, k)
	k.Secret[0] ^= 0xFF
	if kr.Keys()[0].Secret[0] == k.Secret[0] {
		t.Fatal("ring shares the caller's secret")
	}
}

func TestNewKeyFormat(t *testing.T) {
	a, err := NewKey(3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKey(4)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != 3 || len(a.Secret) != MinSecretLen || bytes.Equal(a.Secret, b.Secret) {
		t.Fatalf("NewKey: %v %v", a, b)
	}
	kr, err := Parse(Format(b, a))
	if err != nil {
		t.Fatal(err)
	}
	got := kr.Keys()
	if got[0].ID != 4 || got[1].ID != 3 || !bytes.Equal(got[0].Secret, b.Secret) || !bytes.Equal(got[1].Secret, a.Secret) {
		t.Fatal("Format/Parse round trip")
	}
	// Printing a key does not print its secret, in hex or as %v prints a
	// byte slice ("[12 34 ...").
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a), fmt.Sprint([]Key{a})} {
		if strings.Contains(s, fmt.Sprintf("%x", a.Secret[:8])) || strings.Contains(s, fmt.Sprintf("%v", a.Secret[:8])[1:10]) {
			t.Fatalf("%q shows the secret", s)
		}
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	good := "# test ring\n2 " + hex2 + "\n1 " + hex1 + "\n"
	tests := []struct {
		name    string
		text    string
		mode    os.FileMode
		wantErr string
	}{
		{"0600", good, 0o600, ""},
		{"0400", good, 0o400, ""},
		{"group readable", good, 0o640, "mode 0640: group or others may access it"},
		{"world readable", good, 0o604, "mode 0604"},
		{"group writable", good, 0o620, "mode 0620"},
		{"bad content", "1 " + hex1 + "\n1 " + hex2, 0o600, "line 2: duplicate key id 1"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, fmt.Sprintf("keys%d", i))
			if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			kr, err := LoadFile(path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want one with %q and the path", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kr.SealingKeyID() != 2 || len(kr.Keys()) != 2 {
				t.Fatalf("ring %v", kr.Keys())
			}
		})
	}
	if _, err := LoadFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := LoadFile(dir); err == nil {
		t.Error("directory accepted")
	}
}

func TestFromEnv(t *testing.T) {
	const name = "NACKCAST_PKTAUTH_TEST_KEYS"
	t.Setenv(name, "2 "+hex2+"; 1 "+hex1)
	kr, err := FromEnv(name)
	if err != nil {
		t.Fatal(err)
	}
	if kr.SealingKeyID() != 2 || len(kr.Keys()) != 2 {
		t.Fatalf("ring %v", kr.Keys())
	}
	t.Setenv(name, "1 "+hex1+";1 "+hex2)
	if _, err := FromEnv(name); err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("error %v", err)
	}
	os.Unsetenv(name)
	if _, err := FromEnv(name); err == nil || !strings.Contains(err.Error(), "not set") {
		t.Fatalf("unset variable: %v", err)
	}
}
