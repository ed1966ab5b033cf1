//go:build !linux

package manifest

import "io/fs"

func sysIdentity(fs.FileInfo) (ino uint64, ctime int64) { return 0, 0 }
