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
// its value from its environment variable, else from the config file named
// named by the "config" flag, if fs has one (lines of "name = value", '#'
// starts a comment), else keeps its
// default. Every bad value is reported at once, with the flag's name and
// where the value came from.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fromEnv := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v, ok := os.LookupEnv(EnvName(f.Name)); ok {
			fromEnv[f.Name] = true
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (environment): %w", EnvName(f.Name), v, err))
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
			if set[n] || fromEnv[n] {
				continue
			}
			if err := fs.Set(n, vals[n]); err != nil {
				errs = append(errs, fmt.Errorf("%s: %s = %q: %w", file, n, vals[n], err))
			}
		}
	}
	return errors.Join(errs...)
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
