// Package app is the scaffolding shared by the nackcast service mains:
// configuration from flags, environment variables and a config file; the
// logger; signals; and serving gRPC around a running engine.
package app

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// EnvPrefix starts the environment variable of every flag: flag
// "nack-timeout" is NACKCAST_NACK_TIMEOUT.
const EnvPrefix = "NACKCAST_"

// EnvName returns the environment variable that sets flag name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Parse parses args into fs. A flag not given on the command line takes
// its value from its environment variable, else from the config file
// named by the "config" flag, if fs has one (lines of "name = value", '#'
// starts a comment), else keeps its default. Every bad value is reported
// at once, with the flag's name and where the value came from, and so is
// every NACKCAST_ variable of the environment that no nackcast program
// reads (CheckEnv).
func Parse(fs *flag.FlagSet, args []string) error {
	_, err := ParseSources(fs, args)
	return err
}

// Sources says where Parse took each flag's value from, by flag name:
// "the command line", "NACKCAST_<FLAG> in the environment" or "config
// file F". A flag left at its default has no entry.
type Sources map[string]string

// Of describes where flag name's value came from ("its default" for a
// flag that was not set).
func (s Sources) Of(name string) string {
	if src, ok := s[name]; ok {
		return src
	}
	return "its default"
}

// ParseSources is Parse, and also returns where each value came from, for
// errors about settings that conflict.
func ParseSources(fs *flag.FlagSet, args []string) (Sources, error) {
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	src := Sources{}
	fs.Visit(func(f *flag.Flag) { src[f.Name] = "the command line" })
	errs := []error{CheckEnv(fs, os.Environ())}
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := src[f.Name]; ok {
			return
		}
		name := EnvName(f.Name)
		if v, ok := os.LookupEnv(name); ok {
			src[f.Name] = name + " in the environment"
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (environment): %w", name, v, err))
			}
		}
	})
	var file string
	if f := fs.Lookup("config"); f != nil {
		file = f.Value.String()
	}
	if file != "" {
		vals, err := readConfigFile(file)
		if err != nil {
			errs = append(errs, err)
		}
		names := make([]string, 0, len(vals))
		for n := range vals {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if fs.Lookup(n) == nil || n == "config" {
				errs = append(errs, fmt.Errorf("%s: unknown setting %q", file, n))
				continue
			}
			if _, ok := src[n]; ok {
				continue
			}
			src[n] = "config file " + file
			if err := fs.Set(n, vals[n]); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s = %q: %w", file, n, vals[n], err))
			}
		}
	}
	return src, errors.Join(errs...)
}

// otherEnv are the NACKCAST_ variables that are not a flag of any nackcast
// program but that nackcast's tools read, by what reads them. A service
// accepts them silently: they sit in the shells, CI jobs and ConfigMaps
// that start services.
var otherEnv = map[string]string{
	"NACKCAST_PACKET_KEYS":              "the services' packet keys (text of a -packet-key-file)",
	"NACKCAST_IMAGE":                    "deploy/compose: the image",
	"NACKCAST_SAMPLE_LARGE":             "deploy/compose: the sample channel's large file",
	"NACKCAST_PRIMARY_FIRST_PASS_DELAY": "deploy/compose: the primary's -first-pass-delay",
	"NACKCAST_REQUIRE_ROOT_TESTS":       "tests: fail rather than skip the tests that need root",
	"NACKCAST_REQUIRE_PROMETHEUS":       "tests: fail rather than skip the monitoring test without a prometheus binary",
	"NACKCAST_REQUIRE_PYCLIENT":         "CI: fail rather than skip make pyclient without python3-grpc-tools",
	"NACKCAST_REQUIRE_GRPCURL":          "tests: fail rather than skip the JSON comparison with grpcurl",
	"NACKCAST_NETNS":                    "tests: run the network namespace tests",
	"NACKCAST_SIM_SEEDS":                "tests: seeds of the simulator",
	"NACKCAST_SIM_TRACE":                "tests: the simulator's trace",
	"NACKCAST_TEST_DEBUG":               "tests: keep the end-to-end tests' logs",
}

// CheckEnv reports every NACKCAST_ variable of environ (as os.Environ
// gives it) that is neither a flag of fs nor read by any nackcast
// program: a misspelt variable would otherwise be ignored without a word.
// A variable of another program (nackctl's NACKCAST_ADDR, a receiver flag
// in a sender's environment) is accepted, since shells and ConfigMaps
// share variables. Each error names the variable and the nearest known
// one.
func CheckEnv(fs *flag.FlagSet, environ []string) error {
	own := map[string]string{} // variable -> flag of fs
	fs.VisitAll(func(f *flag.Flag) { own[EnvName(f.Name)] = f.Name })
	var errs []error
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		if _, ok := own[name]; ok {
			continue
		}
		if _, ok := flagEnv[name]; ok {
			continue
		}
		if _, ok := otherEnv[name]; ok {
			continue
		}
		errs = append(errs, fmt.Errorf("%s (environment): not a setting of any nackcast program; did you mean %s?", name, nearestEnv(name, own)))
	}
	return errors.Join(errs...)
}

// nearestEnv returns the known variable closest to name (edit distance),
// preferring, at equal distance, a flag of the running program (own), then
// the alphabetical first; a flag is named with its flag.
func nearestEnv(name string, own map[string]string) string {
	best, bestD, bestOwn := "", -1, false
	consider := func(cand string, isOwn bool) {
		d := editDistance(name, cand)
		switch {
		case bestD < 0, d < bestD,
			d == bestD && isOwn && !bestOwn,
			d == bestD && isOwn == bestOwn && cand < best:
			best, bestD, bestOwn = cand, d, isOwn
		}
	}
	for cand := range own {
		consider(cand, true)
	}
	for cand := range flagEnv {
		consider(cand, false)
	}
	for cand := range otherEnv {
		consider(cand, false)
	}
	if f, ok := own[best]; ok {
		return fmt.Sprintf("%s (-%s)", best, f)
	}
	if who, ok := flagEnv[best]; ok {
		return fmt.Sprintf("%s (-%s of %s)", best, flagOf(best), who)
	}
	return fmt.Sprintf("%s (%s)", best, otherEnv[best])
}

// flagOf is the flag whose variable is env: NACKCAST_NACK_TIMEOUT is
// nack-timeout.
func flagOf(env string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(env, EnvPrefix), "_", "-"))
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func readConfigFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	vals := map[string]string{}
	var errs []error
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = strings.TrimSpace(text[:i])
		}
		if text == "" {
			continue
		}
		name, value, ok := strings.Cut(text, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("%s:%d: want \"name = value\"", path, line))
			continue
		}
		name = strings.TrimSpace(name)
		value = strings.TrimSpace(value)
		if uq, err := strconv.Unquote(value); err == nil {
			value = uq
		}
		vals[name] = value
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("config file: %w", err))
	}
	return vals, errors.Join(errs...)
}

// StringList is a flag holding a comma-separated list.
type StringList []string

// NewStringList binds a StringList flag to p.
func NewStringList(p *[]string) *StringListValue { return &StringListValue{p: p} }

// StringListValue implements flag.Value for a []string.
type StringListValue struct{ p *[]string }

func (v *StringListValue) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return strings.Join(*v.p, ",")
}

// Set replaces the list with the comma-separated items of s.
func (v *StringListValue) Set(s string) error {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	*v.p = out
	return nil
}

// ByteSize is a flag holding a byte count written with an optional
// decimal (k, M, G = 10^3, 10^6, 10^9) or binary (Ki, Mi, Gi) suffix.
type ByteSize struct{ p *int64 }

// NewByteSize binds a ByteSize flag to p.
func NewByteSize(p *int64) *ByteSize { return &ByteSize{p: p} }

func (b *ByteSize) String() string {
	if b == nil || b.p == nil {
		return "0"
	}
	return strconv.FormatInt(*b.p, 10)
}

// Set parses s.
func (b *ByteSize) Set(s string) error {
	n, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b.p = n
	return nil
}

// ParseByteSize parses "1500", "100M", "8Mi", "1.5G".
func ParseByteSize(s string) (int64, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSuffix(s, "B"), "b"))
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || f*mult > 1<<62 {
		return 0, fmt.Errorf("not a byte size: %q (examples: 1500, 100M, 8Mi)", s)
	}
	return int64(f * mult), nil
}
