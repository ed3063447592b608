// Package proc starts the processes a test needs (a private IMAP server, a built binary)
// so that none outlives the test process: each child runs in a process group of its own,
// which KillGroup ends, and gets SIGKILL from the kernel when the test process dies, also
// when it is killed by `go test`'s timeout or by SIGKILL, so that no cleanup code runs.
//
// Linux delivers that parent-death signal (SysProcAttr.Pdeathsig) when the thread that
// started the child exits, not the process. Go may end an idle thread at any time, so every
// child is started from one goroutine locked to its thread for the life of the process.
package proc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

type launch struct {
	start func() error
	done  chan error
}

var (
	launcherOnce sync.Once
	launches     chan launch
)

// launcher starts children on a thread that lives as long as the process: the goroutine
// is locked to it and never returns, so the thread is never ended or reused.
func launcher() {
	runtime.LockOSThread()
	for l := range launches {
		l.done <- l.start()
	}
}

// Start starts cmd in a process group of its own, with SIGKILL as its parent-death
// signal. cmd.SysProcAttr is created if nil; Setpgid, Pgid and Pdeathsig are set, its
// other fields are kept.
func Start(cmd *exec.Cmd) error {
	return Launch(cmd, cmd.Start)
}

// Launch sets cmd up as Start does and calls start, which must start cmd (cmd.Start, or a
// wrapper such as gexec.Start), on the thread the parent-death signal is tied to.
func Launch(cmd *exec.Cmd, start func() error) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pgid = 0
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	launcherOnce.Do(func() {
		launches = make(chan launch)
		go launcher()
	})
	done := make(chan error, 1)
	launches <- launch{start: start, done: done}
	return <-done
}

// KillGroup sends SIGKILL to every process in cmd's process group (the group Start made
// for it). A group already gone is not an error.
func KillGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("proc: kill process group %d: %w", cmd.Process.Pid, err)
	}
	return nil
}

// Group returns the pids of the processes in process group pgid, read from /proc.
func Group(pgid int) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		g, err := processGroup(pid)
		if err != nil {
			continue // gone meanwhile
		}
		if g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// processGroup reads the process group of pid from /proc/PID/stat. A zombie (exited, not
// yet reaped by whoever inherited it) counts as gone: it reports an error.
func processGroup(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("proc: malformed /proc/%d/stat", pid)
	}
	var state byte
	var ppid, pgrp int
	if _, err := fmt.Sscanf(s[i+1:], " %c %d %d", &state, &ppid, &pgrp); err != nil {
		return 0, fmt.Errorf("proc: malformed /proc/%d/stat: %w", pid, err)
	}
	if state == 'Z' || state == 'X' {
		return 0, fmt.Errorf("proc: %d has exited", pid)
	}
	return pgrp, nil
}
