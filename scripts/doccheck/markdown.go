package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Block is one fenced code block of a Markdown file and what the
// doccheck comments right before it say about it.
type Block struct {
	File string
	Line int    // of the opening fence
	Lang string // the fence's info string's first word
	Text string // the lines between the fences

	Skip       string        // skip: REASON
	NeedDocker bool          // needs docker
	Timeout    time.Duration // timeout DURATION (0: the default)
	Omit       []Omit        // omit "PREFIX": REASON
	Cleanup    []string      // cleanup: COMMAND
}

// Omit drops the lines of a block that start with Prefix.
type Omit struct{ Prefix, Reason string }

// shellLangs are the fences whose blocks are commands to run; every other
// language (text for output, diagrams and transcripts) is shown only.
var shellLangs = map[string]bool{"sh": true, "bash": true, "shell": true}

// Runs reports whether the block is commands to run.
func (b *Block) Runs() bool { return shellLangs[b.Lang] }

// Script is the block's text without its omitted lines.
func (b *Block) Script() string {
	if len(b.Omit) == 0 {
		return b.Text
	}
	var out []string
	for _, line := range strings.Split(b.Text, "\n") {
		keep := true
		for _, o := range b.Omit {
			if strings.HasPrefix(strings.TrimSpace(line), o.Prefix) {
				keep = false
			}
		}
		if keep {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

var (
	fenceRE     = regexp.MustCompile("^( {0,3})(```+|~~~+)\\s*([^`\\s]*)")
	directiveRE = regexp.MustCompile(`^<!--\s*doccheck:\s*(.*?)\s*-->$`)
	omitRE      = regexp.MustCompile(`^omit\s+"([^"]+)":\s*(\S.*)$`)
)

// Parse returns the fenced blocks of a Markdown file, with their doccheck
// directives: HTML comments `<!-- doccheck: ... -->`, each on a line of
// its own, right before the block (blank lines between are allowed):
//
//	skip: REASON             not run; listed with its reason
//	needs docker             run only where a Docker engine answers
//	timeout DURATION         the block's time limit (default: -timeout)
//	omit "PREFIX": REASON    run without its lines that start with PREFIX
//	cleanup: COMMAND         run at the end of the file, even on failure
//
// A block without a language is an error: ```sh marks commands, ```text
// output. So is a directive it does not know, or one that no block
// follows.
func Parse(file, text string) ([]*Block, error) {
	var blocks []*Block
	var errs []string
	var pending *Block // directives waiting for their block
	pendingLine := 0
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if m := directiveRE.FindStringSubmatch(trimmed); m != nil {
			if pending == nil {
				pending, pendingLine = &Block{}, i+1
			}
			if err := pending.directive(m[1]); err != nil {
				errs = append(errs, fmt.Sprintf("%s:%d: %v", file, i+1, err))
			}
			continue
		}
		m := fenceRE.FindStringSubmatch(line)
		if m == nil {
			if trimmed != "" && pending != nil {
				errs = append(errs, fmt.Sprintf("%s:%d: a doccheck comment must come right before a fenced block", file, pendingLine))
				pending = nil
			}
			continue
		}
		indent, fence, lang := len(m[1]), m[2], strings.ToLower(m[3])
		b := pending
		if b == nil {
			b = &Block{}
		}
		pending = nil
		b.File, b.Line, b.Lang = file, i+1, lang
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			l := lines[i]
			if t := strings.TrimSpace(l); strings.HasPrefix(t, fence[:1]) && strings.Trim(t, fence[:1]) == "" && len(t) >= len(fence) {
				closed = true
				break
			}
			for n := 0; n < indent && strings.HasPrefix(l, " "); n++ {
				l = l[1:]
			}
			body = append(body, l)
		}
		if !closed {
			errs = append(errs, fmt.Sprintf("%s:%d: fenced block not closed", file, b.Line))
		}
		b.Text = strings.Join(body, "\n")
		for _, o := range b.Omit {
			if !slices.ContainsFunc(body, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), o.Prefix) }) {
				errs = append(errs, fmt.Sprintf("%s:%d: omit %q: no line of the block starts with it", file, b.Line, o.Prefix))
			}
		}
		if b.Lang == "" && b.Skip == "" {
			errs = append(errs, fmt.Sprintf("%s:%d: fenced block without a language: ```sh if it is commands to run, ```text if it is output (or a doccheck skip comment)", file, b.Line))
		}
		blocks = append(blocks, b)
	}
	if pending != nil {
		errs = append(errs, fmt.Sprintf("%s:%d: a doccheck comment must come right before a fenced block", file, pendingLine))
	}
	if len(errs) > 0 {
		return blocks, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return blocks, nil
}

// directive applies one doccheck comment to b.
func (b *Block) directive(d string) error {
	switch {
	case strings.HasPrefix(d, "skip:"):
		r := strings.TrimSpace(strings.TrimPrefix(d, "skip:"))
		if r == "" {
			return fmt.Errorf("skip needs a reason: <!-- doccheck: skip: REASON -->")
		}
		b.Skip = r
	case d == "needs docker":
		b.NeedDocker = true
	case strings.HasPrefix(d, "timeout "):
		t, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(d, "timeout ")))
		if err != nil || t <= 0 {
			return fmt.Errorf("timeout: want a positive duration such as 5m, got %q", d)
		}
		b.Timeout = t
	case strings.HasPrefix(d, "omit "):
		m := omitRE.FindStringSubmatch(d)
		if m == nil {
			return fmt.Errorf(`omit: want omit "PREFIX": REASON, got %q`, d)
		}
		b.Omit = append(b.Omit, Omit{Prefix: m[1], Reason: m[2]})
	case strings.HasPrefix(d, "cleanup:"):
		c := strings.TrimSpace(strings.TrimPrefix(d, "cleanup:"))
		if c == "" {
			return fmt.Errorf("cleanup needs a command")
		}
		b.Cleanup = append(b.Cleanup, c)
	default:
		return fmt.Errorf("unknown doccheck directive %q (know: skip: REASON, needs docker, timeout DURATION, omit \"PREFIX\": REASON, cleanup: COMMAND)", d)
	}
	return nil
}
