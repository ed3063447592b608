// Command syncharness runs IMAP synchronisation scenarios against a fake or real server and
// checks that every device converged without losing, duplicating or resurrecting mail.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // a scenario failed
	exitUsage   = 2 // usage or setup error
	exitSignals = 130
)

// usageError marks errors that are the user's input (bad flags, bad files, unreachable server):
// they exit with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// failedError marks a run in which at least one scenario failed: exit code 1, or code
// when it is set (3: a failure was not confirmed by a second run).
type failedError struct {
	msg  string
	code int
}

// exitCode is the exit status of f.
func (f failedError) exitCode() int {
	if f.code != 0 {
		return f.code
	}
	return exitFailed
}

func (e failedError) Error() string { return e.msg }

var rootCmd = &cobra.Command{
	Use:   "syncharness",
	Short: "Test harness and conformance suite for two-way IMAP synchronisation",
	Long: `syncharness runs scenario files in which several simulated devices share one mail
account, each with its own two-way IMAP sync engine and local replica. It scripts what
users and the server do (reads, flag changes, moves, deletes, folder changes, offline work,
crashes, dropped connections, UIDVALIDITY resets), lets every device settle and checks that
all replicas converged without losing, duplicating or resurrecting mail.

Without arguments, "syncharness run" runs the built-in conformance catalogue against an
embedded fake IMAP server.`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

func main() {
	os.Exit(execute())
}

func execute() int {
	err := rootCmd.Execute()
	if err == nil {
		return exitOK
	}
	var f failedError
	if errors.As(err, &f) {
		if f.msg != "" {
			fmt.Fprintln(os.Stderr, f.msg)
		}
		return f.exitCode()
	}
	fmt.Fprintln(os.Stderr, "syncharness:", err)
	return exitUsage
}
