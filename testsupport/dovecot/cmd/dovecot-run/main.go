// Command dovecot-run starts a private Dovecot on loopback (see package dovecot), runs one
// command with the server described in its environment, and stops the server:
//
//	go run ./testsupport/dovecot/cmd/dovecot-run -- syncharness run --server '$SYNCHARNESS_SERVER' ...
//
// The command gets SYNCHARNESS_SERVER (imap://alice@127.0.0.1:PORT), SYNCHARNESS_PASSWORD,
// SYNCHARNESS_DOVEADM (the doveadm command line for the server's configuration) and
// SYNCHARNESS_MAILDIR (alice's Maildir). Run it as root: Dovecot switches to its own users.
// The exit status is the command's; 2 if the server could not start.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/syncharness/syncharness/testsupport/dovecot"
)

func main() {
	os.Exit(run())
}

func run() int {
	user := flag.String("user", "alice", "the account to create")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: dovecot-run [-user NAME] -- COMMAND [ARG...]")
		return 2
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		fmt.Fprintln(os.Stderr, "dovecot-run:", err)
		return 2
	}
	pass := hex.EncodeToString(b[:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := dovecot.Start(ctx, dovecot.Options{Users: []dovecot.User{{Name: *user, Password: pass}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "dovecot-run:", err)
		return 2
	}
	defer func() {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "dovecot-run:", err)
		}
	}()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		"SYNCHARNESS_SERVER=imap://"+*user+"@"+srv.Addr(),
		"SYNCHARNESS_PASSWORD="+pass,
		"SYNCHARNESS_DOVEADM=doveadm -c "+srv.ConfigPath(),
		"SYNCHARNESS_MAILDIR="+srv.MaildirPath(*user),
	)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "dovecot-run:", err)
		return 2
	}
	// The command gets the interrupt from the terminal itself; wait for it to clean up.
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		if ee.ExitCode() < 0 {
			return 130
		}
		return ee.ExitCode()
	case err != nil:
		fmt.Fprintln(os.Stderr, "dovecot-run:", err)
		return 2
	}
	return 0
}
