//go:build !linux

package store

import (
	"errors"
	"os"
)

// syncfs is not available here: CommitBatch falls back to one fsync per
// file and directory.
func syncfs(*os.File) error { return errors.ErrUnsupported }
