package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
	"time"
)

// grpcurlBin finds grpcurl: on PATH, or where make installs it
// (.tools/bin). CI installs it and sets NACKCAST_REQUIRE_GRPCURL.
func grpcurlBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("grpcurl"); err == nil {
		return p
	}
	if p, err := filepath.Abs("../../.tools/bin/grpcurl"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("NACKCAST_REQUIRE_GRPCURL") != "" {
		t.Fatal("grpcurl not found, and NACKCAST_REQUIRE_GRPCURL is set (make tools-grpcurl installs it)")
	}
	t.Skip("grpcurl not found (make tools-grpcurl installs it into .tools/bin)")
	return ""
}

// keys lists the JSON object paths of v, sorted: the fields present.
func keys(v any, prefix string, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			*out = append(*out, prefix+k)
			keys(e, prefix+k+".", out)
		}
	case []any:
		for _, e := range x {
			keys(e, prefix+"[].", out)
		}
	}
}

// TestJSONAgreesWithGrpcurl: nackctl -o json and grpcurl print the same
// message with the same field names and encodings (protojson's
// convention): a receiver's status and a sender's manifest.
func TestJSONAgreesWithGrpcurl(t *testing.T) {
	grpcurl := grpcurlBin(t)
	c := newCluster(t)
	origin := filepath.Join(c.dir, "origin")
	writeFile(t, filepath.Join(origin, "c", "a.txt"), []byte("hello"))
	writeFile(t, filepath.Join(origin, "c", "b/c.bin"), bytes.Repeat([]byte{7}, 5000))
	_, sn := c.sender(origin, nil)
	r, rn := c.receiver("r", sn.addr, nil)
	waitComplete(t, 20*time.Second, r)

	tests := []struct {
		name    string
		nackctl []string
		grpcurl []string
		inner   string // the field of grpcurl's response that holds nackctl's message
		same    []string
	}{
		{"receiver status", []string{"-o", "json", "status", rn.addr},
			[]string{"-plaintext", "-d", "{}", rn.addr, "nackcast.v1.ReceiverService/GetStatus"}, "status",
			[]string{"receiverId", "complete", "channels"}},
		{"manifest", []string{"-o", "json", "-addr", sn.addr, "manifest", "c"},
			[]string{"-plaintext", "-d", `{"channel":"c"}`, sn.addr, "nackcast.v1.SenderService/GetManifest"}, "manifest",
			[]string{"channel", "version", "objects", "generatedAt", "chunkSize"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := nackctl(t, tt.nackctl...)
			if code != 0 {
				t.Fatalf("nackctl: exit %d: %s", code, errOut)
			}
			g, err := exec.Command(grpcurl, tt.grpcurl...).Output()
			if err != nil {
				t.Fatalf("grpcurl: %v", err)
			}
			var mine, theirs map[string]any
			if err := json.Unmarshal([]byte(out), &mine); err != nil {
				t.Fatalf("nackctl JSON %q: %v", out, err)
			}
			var wrapped map[string]any
			if err := json.Unmarshal(g, &wrapped); err != nil {
				t.Fatalf("grpcurl JSON %q: %v", g, err)
			}
			theirs, _ = wrapped[tt.inner].(map[string]any)
			if theirs == nil {
				t.Fatalf("grpcurl's answer has no %q: %s", tt.inner, g)
			}
			// Times and counters move between the two calls: compare
			// the fields present everywhere, and the stable values.
			var a, b []string
			keys(mine, "", &a)
			keys(theirs, "", &b)
			sort.Strings(a)
			sort.Strings(b)
			if !reflect.DeepEqual(dedupe(a), dedupe(b)) {
				t.Errorf("fields differ:\nnackctl: %v\ngrpcurl: %v", dedupe(a), dedupe(b))
			}
			for _, f := range tt.same {
				if !reflect.DeepEqual(mine[f], theirs[f]) {
					t.Errorf("%s: nackctl %v, grpcurl %v", f, mine[f], theirs[f])
				}
			}
		})
	}
}

func dedupe(s []string) []string {
	out := s[:0:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
