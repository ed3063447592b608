package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/syncharness/syncharness/fakeserver"
)

type serveFlags struct {
	listen     string
	users      []string
	seed       int64
	disable    []string
	maxLiteral int64
	verbose    bool
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve --user NAME:PASSWORD [--user NAME:PASSWORD]... [--listen ADDR] [--seed N]",
		Short: "Run the fake IMAP server in the foreground",
		Long: `Run the fake IMAP server that scenarios run against, for trying other IMAP clients
against it. Every user starts with an empty INBOX. The server speaks IMAP4rev1 with
UIDPLUS, MOVE, IDLE, ESEARCH, LIST-STATUS, SPECIAL-USE, LITERAL+, NAMESPACE and UNSELECT,
without TLS, and accepts LOGIN and AUTHENTICATE PLAIN in clear text: listen on loopback
only (the default). On any other address (":1143", "0.0.0.0:1143", a public address) it
still serves, after a warning on standard error.

Once ready it prints "listening on ADDR". It stops on SIGINT or SIGTERM, closing every
connection; all mail is held in memory and is lost then.

Exit status: 0 after a signal, 2 on bad flags or when the address cannot be used.`,
		Example: `  syncharness serve --user alice:secret
  curl imap://127.0.0.1:1143/ -u alice:secret

  # two users, no MOVE or UIDPLUS, on another port
  syncharness serve --listen 127.0.0.1:2143 --user alice:secret --user bob:pw --disable MOVE --disable UIDPLUS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runServe(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:1143", "address to listen on (a non-loopback address gets a warning)")
	fl.StringArrayVar(&f.users, "user", nil, "a user as NAME:PASSWORD (repeatable, at least one)")
	fl.Int64Var(&f.seed, "seed", 0, "seed for UIDVALIDITY values")
	fl.StringArrayVar(&f.disable, "disable", nil, "a capability to switch off: UIDPLUS, MOVE, IDLE, ESEARCH, LIST-EXTENDED, LIST-STATUS, SPECIAL-USE, LITERAL+ or NAMESPACE (repeatable)")
	intVar(fl, &f.maxLiteral, "max-literal", fakeserver.DefaultMaxLiteralSize, 1, 0, "largest message APPEND accepts, in bytes")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log protocol errors to stderr")
	return cmd
}

func init() { rootCmd.AddCommand(newServeCmd()) }

// isLoopback reports whether addr only accepts connections from this machine. An
// unspecified address (":1143", "0.0.0.0:1143", "[::]:1143") listens on every interface.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// runServe runs the fake server until ctx is done.
func runServe(ctx context.Context, out, errOut io.Writer, f serveFlags) error {
	if len(f.users) == 0 {
		return usagef("serve: at least one --user NAME:PASSWORD is required")
	}
	if f.maxLiteral <= 0 {
		return usagef("serve: --max-literal %d: want a positive size", f.maxLiteral)
	}
	opts := fakeserver.Options{Seed: f.seed, MaxLiteralSize: f.maxLiteral}
	if f.verbose {
		opts.Logger = slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := fakeserver.New(opts)
	if err := srv.Apply(fakeserver.SetCaps{Disable: f.disable}); err != nil {
		return usagef("serve: --disable: %v", err)
	}
	for _, u := range f.users {
		name, pw, ok := strings.Cut(u, ":")
		if !ok || name == "" {
			return usagef("serve: --user %q: want NAME:PASSWORD", u)
		}
		if err := srv.AddUser(name, pw); err != nil {
			return usagef("serve: --user %q: %v", u, err)
		}
	}
	addr, err := srv.Listen(f.listen)
	if err != nil {
		return usagef("serve: %v", err)
	}
	if !isLoopback(addr) {
		fmt.Fprintf(errOut, "serve: warning: %s is not a loopback address: any client on the network can connect. "+
			"The fake server is for tests: no TLS (passwords and mail cross the network in clear text), "+
			"no limit on login attempts. Use --listen 127.0.0.1:PORT to keep it on this machine.\n", addr)
	}
	fmt.Fprintf(out, "listening on %s\n", addr)
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(errOut, "stopped")
	return nil
}
