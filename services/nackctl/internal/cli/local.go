package cli

import (
	"context"
	"flag"
	"fmt"
	"sort"

	"github.com/nackcast/nackcast/pkg/app"
	"github.com/nackcast/nackcast/pkg/cloud"
)

// cmdSample writes a sample channel: an empty and a one-byte file, small
// files and one large file of reproducible content.
func cmdSample(_ context.Context, c *ctx, args []string) error {
	fs := flag.NewFlagSet("sample", flag.ContinueOnError)
	small := fs.Int("small", 300, "number of small files (1 B to 64 KiB)")
	large := int64(64 << 20)
	fs.Var(app.NewByteSize(&large), "large", "size of the large file, e.g. 64Mi")
	seed := fs.Uint64("seed", 2026, "seed of the content")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want one DIR")
	}
	total, err := cloud.Sample{SmallFiles: *small, MaxSmall: 64 << 10, LargeBytes: large, Empty: true, Seed: *seed}.Generate(pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "wrote %d files, %s, into %s\n", *small+3, human(uint64(total)), pos[0])
	return nil
}

// cmdSum prints sha256sum-style lines for every file under DIR, skipping
// nackcast's state directories.
func cmdSum(_ context.Context, c *ctx, args []string) error {
	args, err := parse(flag.NewFlagSet("sum", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usagef("want one DIR")
	}
	sums, err := cloud.Digests(args[0])
	if err != nil {
		return err
	}
	paths := make([]string, 0, len(sums))
	for p := range sums {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		fmt.Fprintf(c.env.Stdout, "%s  %s\n", sums[p], p)
	}
	return nil
}
