package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncfs flushes the file system holding f (syncfs(2)).
func syncfs(f *os.File) error {
	return unix.Syncfs(int(f.Fd()))
}
