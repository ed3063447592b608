package external

import "syscall"

// sysProcAttr runs the engine in a process group of its own (so that a stop or a kill
// reaches every process it started) that dies with the harness.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
