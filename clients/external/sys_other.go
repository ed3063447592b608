//go:build !linux

package external

import "syscall"

// sysProcAttr runs the engine in a process group of its own, so that a stop or a kill
// reaches every process it started.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
