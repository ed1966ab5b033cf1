package main

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		md      string
		want    []Block // File is always "f.md"
		wantErr string
	}{
		{
			name: "languages",
			md:   "# t\n\n```sh\nmake build\n```\n\n```text\n$ out\n```\n",
			want: []Block{{Line: 3, Lang: "sh", Text: "make build"}, {Line: 7, Lang: "text", Text: "$ out"}},
		},
		{
			name: "annotations stack, blank lines between",
			md: "<!-- doccheck: needs docker -->\n<!-- doccheck: timeout 10m -->\n<!-- doccheck: cleanup: make compose-down -->\n\n" +
				"```bash\nmake compose-up\n```\n",
			want: []Block{{Line: 5, Lang: "bash", Text: "make compose-up", NeedDocker: true, Timeout: 10 * time.Minute, Cleanup: []string{"make compose-down"}}},
		},
		{
			name: "skip, without a language",
			md:   "<!-- doccheck: skip: needs a Kubernetes cluster -->\n```\nkubectl apply -k x\n```\n",
			want: []Block{{Line: 2, Text: "kubectl apply -k x", Skip: "needs a Kubernetes cluster"}},
		},
		{
			name: "omit",
			md:   "<!-- doccheck: omit \"make test\": run by CI elsewhere -->\n```sh\nmake demo   # x\nmake test   # y\n```\n",
			want: []Block{{Line: 2, Lang: "sh", Text: "make demo   # x\nmake test   # y", Omit: []Omit{{"make test", "run by CI elsewhere"}}}},
		},
		{
			name: "indented in a list, tildes, longer fence",
			md:   "- step\n\n   ~~~~sh\n   echo a\n     echo b\n   ~~~~\n\n````text\n```\n````\n",
			want: []Block{{Line: 3, Lang: "sh", Text: "echo a\n  echo b"}, {Line: 8, Lang: "text", Text: "```"}},
		},
		{
			name:    "no language",
			md:      "```\nmake build\n```\n",
			wantErr: "f.md:1: fenced block without a language",
		},
		{
			name:    "unknown directive",
			md:      "<!-- doccheck: skipp: x -->\n```sh\nls\n```\n",
			wantErr: `f.md:1: unknown doccheck directive "skipp: x"`,
		},
		{
			name:    "skip without a reason",
			md:      "<!-- doccheck: skip: -->\n```sh\nls\n```\n",
			wantErr: "skip needs a reason",
		},
		{
			name:    "bad timeout",
			md:      "<!-- doccheck: timeout soon -->\n```sh\nls\n```\n",
			wantErr: "timeout: want a positive duration",
		},
		{
			name:    "directive not before a block",
			md:      "<!-- doccheck: needs docker -->\nSome text.\n\n```sh\nls\n```\n",
			wantErr: "f.md:1: a doccheck comment must come right before a fenced block",
		},
		{
			name:    "directive at the end",
			md:      "```sh\nls\n```\n<!-- doccheck: needs docker -->\n",
			wantErr: "f.md:4: a doccheck comment must come right before a fenced block",
		},
		{
			name:    "omit that matches nothing",
			md:      "<!-- doccheck: omit \"make bench\": slow -->\n```sh\nmake test\n```\n",
			wantErr: `omit "make bench": no line of the block starts with it`,
		},
		{
			name:    "not closed",
			md:      "```sh\nls\n",
			wantErr: "f.md:1: fenced block not closed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse("f.md", tt.md)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d blocks, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.File != "f.md" || g.Line != w.Line || g.Lang != w.Lang || g.Text != w.Text || g.Skip != w.Skip ||
					g.NeedDocker != w.NeedDocker || g.Timeout != w.Timeout || strings.Join(g.Cleanup, "|") != strings.Join(w.Cleanup, "|") ||
					len(g.Omit) != len(w.Omit) || (len(w.Omit) > 0 && g.Omit[0] != w.Omit[0]) {
					t.Errorf("block %d = %+v, want %+v", i, *g, w)
				}
			}
		})
	}
}

func TestScript(t *testing.T) {
	b := Block{Text: "make demo\n  make test -v\nmake tester", Omit: []Omit{{"make test ", "slow"}}}
	if got, want := b.Script(), "make demo\nmake tester"; got != want {
		t.Errorf("Script() = %q, want %q", got, want)
	}
}

// TestRepositoryDocsParse parses the documents make doccheck runs: every
// block has a language or an annotation, and every annotation is known.
func TestRepositoryDocsParse(t *testing.T) {
	for _, f := range defaultFiles {
		text, err := readRepoFile(f)
		if err != nil {
			t.Fatal(err)
		}
		blocks, err := Parse(f, text)
		if err != nil {
			t.Error(err)
		}
		runs := 0
		for _, b := range blocks {
			if b.Runs() && b.Skip == "" {
				runs++
			}
		}
		t.Logf("%s: %d blocks, %d to run", f, len(blocks), runs)
	}
}
