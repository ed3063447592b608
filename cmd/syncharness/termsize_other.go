//go:build !unix

package main

import "os"

// terminalSize returns 0, 0: the size is not known here, and callers fall back to 80
// columns.
func terminalSize(f *os.File) (cols, rows int) { return 0, 0 }
