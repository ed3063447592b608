//go:build !unix

package maildir

import "os"

func rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
