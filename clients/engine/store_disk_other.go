//go:build !linux

package engine

// dropMapped does nothing where madvise is not at hand: the pages stay mapped.
func dropMapped(addr uintptr, size int64) error { return nil }
