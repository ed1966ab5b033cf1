package chunks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
)

// Bitmap records which chunks of an object of N chunks are held.
type Bitmap struct {
	n     uint32
	count uint32
	words []uint64
}

// NewBitmap returns an empty bitmap for n chunks.
func NewBitmap(n uint32) *Bitmap {
	return &Bitmap{n: n, words: make([]uint64, (uint64(n)+63)/64)}
}

// Len returns the number of chunks the bitmap covers.
func (b *Bitmap) Len() uint32 { return b.n }

// Count returns the number of chunks held.
func (b *Bitmap) Count() uint32 { return b.count }

// Full reports whether every chunk is held.
func (b *Bitmap) Full() bool { return b.count == b.n }

// Has reports whether chunk i is held. Out-of-range indexes are not held.
func (b *Bitmap) Has(i uint32) bool {
	if i >= b.n {
		return false
	}
	return b.words[i/64]&(1<<(i%64)) != 0
}

// Set marks chunk i held and reports whether it was new. Out-of-range
// indexes are ignored and reported as not new.
func (b *Bitmap) Set(i uint32) bool {
	if i >= b.n {
		return false
	}
	w, m := i/64, uint64(1)<<(i%64)
	if b.words[w]&m != 0 {
		return false
	}
	b.words[w] |= m
	b.count++
	return true
}

// Reset clears every chunk.
func (b *Bitmap) Reset() {
	clear(b.words)
	b.count = 0
}

// Missing returns the chunks not held, as a List.
func (b *Bitmap) Missing() List {
	var out List
	for i := b.next(0, false); i < b.n; {
		j := b.next(i, true)
		out = append(out, Range{First: i, Count: j - i})
		i = b.next(j, false)
	}
	return out
}

// next returns the first index at or after i whose bit equals set, or Len().
func (b *Bitmap) next(i uint32, set bool) uint32 {
	for j := uint64(i); j < uint64(b.n); j = (j/64 + 1) * 64 {
		w := b.words[j/64]
		if !set {
			w = ^w
		}
		if w >>= j % 64; w != 0 {
			return uint32(min(j+uint64(bits.TrailingZeros64(w)), uint64(b.n)))
		}
	}
	return b.n
}

// Bitmap encoding: magic "NCBM", count of chunks (32 bits), the words, and a
// CRC-32C (Castagnoli) of everything before it. All big-endian.
const bitmapMagic = "NCBM"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt reports a persisted bitmap that fails its checks.
var ErrCorrupt = errors.New("corrupt bitmap")

// MarshalBinary encodes b with a checksum, for persisting.
func (b *Bitmap) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, 8+8*len(b.words)+4)
	out = append(out, bitmapMagic...)
	out = binary.BigEndian.AppendUint32(out, b.n)
	for _, w := range b.words {
		out = binary.BigEndian.AppendUint64(out, w)
	}
	return binary.BigEndian.AppendUint32(out, crc32.Checksum(out, crcTable)), nil
}

// UnmarshalBitmap decodes a bitmap written by MarshalBinary. It rejects a
// wrong length, a bad checksum and bits set past the last chunk.
func UnmarshalBitmap(data []byte) (*Bitmap, error) {
	if len(data) < 12 || string(data[:4]) != bitmapMagic {
		return nil, fmt.Errorf("header: %w", ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(data[4:])
	nw := (uint64(n) + 63) / 64
	if uint64(len(data)) != 8+8*nw+4 {
		return nil, fmt.Errorf("length %d for %d chunks: %w", len(data), n, ErrCorrupt)
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, fmt.Errorf("checksum: %w", ErrCorrupt)
	}
	b := NewBitmap(n)
	for i := range b.words {
		b.words[i] = binary.BigEndian.Uint64(data[8+8*i:])
		b.count += uint32(bits.OnesCount64(b.words[i]))
	}
	if rem := n % 64; rem != 0 && len(b.words) > 0 && b.words[len(b.words)-1]>>rem != 0 {
		return nil, fmt.Errorf("bits past chunk %d: %w", n, ErrCorrupt)
	}
	return b, nil
}
