package engine

import "golang.org/x/sys/unix"

// dropMapped tells the kernel this process no longer needs the first size bytes of the
// file mapping at addr (MADV_DONTNEED: clean file pages are read again on the next touch).
func dropMapped(addr uintptr, size int64) error {
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(size), unix.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
