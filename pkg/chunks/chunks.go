// Package chunks holds the two views of "which chunks of an object": a
// run-length List of ranges, the compact form NACKs carry (seed ¶37), and a
// Bitmap, the form a receiver keeps and persists for a partial object.
package chunks

import (
	"errors"
	"fmt"
	"slices"
)

// ErrInvalidRange reports a range that is empty, overflows, or lies outside
// the object.
var ErrInvalidRange = errors.New("invalid chunk range")

// Range is the run of chunk indexes [First, First+Count).
type Range struct {
	First uint32
	Count uint32
}

// End returns the index one past the last chunk of r.
func (r Range) End() uint64 { return uint64(r.First) + uint64(r.Count) }

// List is a set of chunk indexes as sorted, non-overlapping, non-adjacent
// ranges. The zero List is empty. Build one with Normalize or Add.
type List []Range

// Validate checks that every range is non-empty and lies in [0, n). It does
// not require order: Normalize a validated list before use.
func Validate(rs []Range, n uint32) error {
	for i, r := range rs {
		if r.Count == 0 {
			return fmt.Errorf("range %d: empty: %w", i, ErrInvalidRange)
		}
		if r.End() > uint64(n) {
			return fmt.Errorf("range %d: [%d,+%d) beyond %d chunks: %w", i, r.First, r.Count, n, ErrInvalidRange)
		}
	}
	return nil
}

// Normalize sorts rs and merges overlapping and adjacent ranges, returning a
// List. It reuses rs's storage. Empty ranges are dropped.
func Normalize(rs []Range) List {
	rs = slices.DeleteFunc(rs, func(r Range) bool { return r.Count == 0 })
	if len(rs) == 0 {
		return nil
	}
	slices.SortFunc(rs, func(a, b Range) int {
		switch {
		case a.First < b.First:
			return -1
		case a.First > b.First:
			return 1
		}
		return 0
	})
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if uint64(r.First) <= last.End() {
			if r.End() > last.End() {
				last.Count = uint32(r.End() - uint64(last.First))
			}
			continue
		}
		out = append(out, r)
	}
	return List(out)
}

// Union returns the union of l and other as a new List.
func (l List) Union(other List) List {
	merged := make([]Range, 0, len(l)+len(other))
	merged = append(merged, l...)
	merged = append(merged, other...)
	return Normalize(merged)
}

// Len returns the number of chunk indexes in l.
func (l List) Len() uint64 {
	var n uint64
	for _, r := range l {
		n += uint64(r.Count)
	}
	return n
}

// Contains reports whether index i is in l.
func (l List) Contains(i uint32) bool {
	_, found := slices.BinarySearchFunc(l, i, func(r Range, i uint32) int {
		switch {
		case r.End() <= uint64(i):
			return -1
		case r.First > i:
			return 1
		}
		return 0
	})
	return found
}

// Coalesce returns a list of at most max ranges that covers l, by merging
// the ranges separated by the smallest gaps first. The result may include
// chunks that l does not: a receiver that asks for a few extra chunks keeps
// its NACK small. max must be at least 1.
func (l List) Coalesce(max int) List {
	if max < 1 {
		max = 1
	}
	if len(l) <= max {
		return l
	}
	// Find the gap size threshold: merge every gap smaller than or equal to
	// the (len-max)-th smallest gap.
	gaps := make([]uint32, len(l)-1)
	for i := 1; i < len(l); i++ {
		gaps[i-1] = l[i].First - uint32(l[i-1].End())
	}
	sorted := slices.Clone(gaps)
	slices.Sort(sorted)
	threshold := sorted[len(l)-max-1]
	out := make(List, 0, max)
	out = append(out, l[0])
	merges := len(l) - max
	for i := 1; i < len(l); i++ {
		last := &out[len(out)-1]
		if merges > 0 && gaps[i-1] <= threshold {
			last.Count = uint32(l[i].End() - uint64(last.First))
			merges--
			continue
		}
		out = append(out, l[i])
	}
	return out
}

// Whole returns the list holding every chunk of an object of n chunks.
func Whole(n uint32) List {
	if n == 0 {
		return nil
	}
	return List{{First: 0, Count: n}}
}
