package vecio

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

type iovec = unix.Iovec

// maxIov is the kernel's limit of iovecs per call.
const maxIov = 1024

// fill points v.iov at bufs from byte done on; it returns the count.
func (v *Vec) fill(bufs [][]byte, done int) int {
	i, off := skip(bufs, done)
	v.iov = v.iov[:0]
	for ; i < len(bufs) && len(v.iov) < maxIov; i++ {
		b := bufs[i][off:]
		off = 0
		if len(b) == 0 {
			continue
		}
		var io unix.Iovec
		io.Base = &b[0]
		io.SetLen(len(b))
		v.iov = append(v.iov, io)
	}
	return len(v.iov)
}

func (v *Vec) preadv(f *os.File, bufs [][]byte, done int, off int64) (int, error) {
	return v.call(unix.SYS_PREADV, f, bufs, done, off)
}

func (v *Vec) pwritev(f *os.File, bufs [][]byte, done int, off int64) (int, error) {
	return v.call(unix.SYS_PWRITEV, f, bufs, done, off)
}

func (v *Vec) call(trap uintptr, f *os.File, bufs [][]byte, done int, off int64) (int, error) {
	cnt := v.fill(bufs, done)
	if cnt == 0 {
		return 0, nil
	}
	fd := f.Fd()
	for {
		r, _, errno := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&v.iov[0])), uintptr(cnt), uintptr(off), uintptr(uint64(off)>>32), 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, &os.PathError{Op: opName(trap), Path: f.Name(), Err: errno}
		}
		return int(r), nil
	}
}

func opName(trap uintptr) string {
	if trap == unix.SYS_PREADV {
		return "preadv"
	}
	return "pwritev"
}
