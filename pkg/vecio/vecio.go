// Package vecio does positioned vectored file I/O (preadv/pwritev) with a
// caller-owned iovec array, so that moving a batch of chunks between a
// file and packet buffers costs one system call and no allocation.
package vecio

import (
	"io"
	"os"
)

// Vec holds the scratch space for vectored calls. The zero Vec is ready;
// it grows to the largest batch seen and is reused.
type Vec struct {
	iov []iovec
}

// ReadAt fills bufs, in order, from f starting at off. It returns the
// bytes read; a short read at the end of the file is io.ErrUnexpectedEOF.
func (v *Vec) ReadAt(f *os.File, bufs [][]byte, off int64) (int, error) {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	n := 0
	for n < total {
		k, err := v.preadv(f, bufs, n, off+int64(n))
		n += k
		if err != nil {
			return n, err
		}
		if k == 0 {
			return n, io.ErrUnexpectedEOF
		}
	}
	return n, nil
}

// WriteAt writes bufs, in order, to f starting at off.
func (v *Vec) WriteAt(f *os.File, bufs [][]byte, off int64) (int, error) {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	n := 0
	for n < total {
		k, err := v.pwritev(f, bufs, n, off+int64(n))
		n += k
		if err != nil {
			return n, err
		}
		if k == 0 {
			return n, io.ErrShortWrite
		}
	}
	return n, nil
}

// skip returns bufs without their first n bytes, as (index, offset).
func skip(bufs [][]byte, n int) (int, int) {
	for i, b := range bufs {
		if n < len(b) {
			return i, n
		}
		n -= len(b)
	}
	return len(bufs), 0
}
