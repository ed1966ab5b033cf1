//go:build !linux

package vecio

import "os"

type iovec struct{}

// preadv and pwritev fall back to one positioned call per buffer.
func (v *Vec) preadv(f *os.File, bufs [][]byte, done int, off int64) (int, error) {
	i, o := skip(bufs, done)
	if i == len(bufs) {
		return 0, nil
	}
	return f.ReadAt(bufs[i][o:], off)
}

func (v *Vec) pwritev(f *os.File, bufs [][]byte, done int, off int64) (int, error) {
	i, o := skip(bufs, done)
	if i == len(bufs) {
		return 0, nil
	}
	return f.WriteAt(bufs[i][o:], off)
}
