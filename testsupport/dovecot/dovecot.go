// Package dovecot starts a private Dovecot IMAP server for tests: its own configuration,
// written at run time into a private directory, a loopback port, users with static
// passwords and Maildirs, and administration helpers that produce the server-side faults
// the harness needs (UIDVALIDITY bump and reset).
//
// The server runs in the foreground (dovecot -F) as a child of the test process, in a
// process group of its own, and dies with the test process (see package proc). The
// master process must start as root (as it does in CI): mail processes then run as the
// dovecot user and login processes as dovenull, as the configuration says. Where the
// binary is missing or the process is not root, Start returns an error for which
// Unavailable reports true, and the caller skips with that reason.
package dovecot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/syncharness/syncharness/testsupport/proc"
)

// Errors for which a caller skips instead of failing.
var (
	// ErrNotInstalled: the dovecot binary is not where Options.Binary says.
	ErrNotInstalled = errors.New("dovecot: not installed")
	// ErrNotRoot: the test process is not root, so Dovecot cannot switch to its users.
	ErrNotRoot = errors.New("dovecot: must run as root to drop privileges to the dovecot user")
)

// RequireEnv names the environment variable that makes Dovecot required: when it is set
// (CI sets it), Unavailable reports false, so a test that would skip fails instead.
const RequireEnv = "SYNCHARNESS_REQUIRE_DOVECOT"

// Unavailable reports whether err means Dovecot cannot run here at all (not installed,
// not root), as opposed to a failure of a server that could have run. It reports false
// when RequireEnv is set.
func Unavailable(err error) bool {
	if os.Getenv(RequireEnv) != "" {
		return false
	}
	return errors.Is(err, ErrNotInstalled) || errors.Is(err, ErrNotRoot)
}

// DefaultBinary is where Debian's dovecot-core package installs the server.
const DefaultBinary = "/usr/sbin/dovecot"

// A User is one account on the test server.
type User struct {
	Name     string
	Password string
}

// Options configures Start.
type Options struct {
	// Binary is the dovecot executable; empty: DefaultBinary. doveadm is looked for next
	// to it (../bin/doveadm) and then on PATH.
	Binary string
	// Users are the accounts to create; empty: one user "user" with password "pass".
	Users []User
	// ParentDir is where the server's private directory is created; empty: the system's
	// temporary directory. Keep it short: Dovecot's unix sockets live below it and socket
	// paths are limited to about 100 bytes.
	ParentDir string
	// StartTimeout bounds the wait for the greeting; zero: 20 seconds.
	StartTimeout time.Duration
	// Settings are extra lines of dovecot.conf, after the generated ones (for example
	// "mailbox_list_index_very_dirty_syncs = yes"): Dovecot takes the last value of a
	// setting.
	Settings []string
}

// A Server is one running Dovecot. Stop it when done (DeferCleanup(srv.Stop)).
type Server struct {
	// Users are the accounts of the server, with their passwords.
	Users []User

	settings   []string
	dir        string // private directory, removed by Stop
	conf       string
	log        string
	addr       string
	doveadmBin string
	cmd        *exec.Cmd
	exited     chan struct{} // closed when the master process exited
	waitErr    error         // valid once exited is closed
	uid        int           // the dovecot user
	gid        int

	stopOnce sync.Once
	stopErr  error
}

// Start starts a Dovecot server and returns once it greets on its port with "* OK". Two
// servers started side by side share nothing: each has its own directory, port, base_dir,
// state_dir and instance name.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin := opts.Binary
	if bin == "" {
		bin = DefaultBinary
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotInstalled, bin, err)
	}
	doveadm, err := findDoveadm(bin)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	uid, gid, err := lookupUser("dovecot")
	if err != nil {
		return nil, err
	}
	if _, _, err := lookupUser("dovenull"); err != nil {
		return nil, err
	}
	users := opts.Users
	if len(users) == 0 {
		users = []User{{Name: "user", Password: "pass"}}
	}
	for _, u := range users {
		if u.Name == "" || strings.ContainsAny(u.Name+u.Password, ":\n/") {
			return nil, fmt.Errorf("dovecot: invalid user %q: names and passwords must be non-empty and free of ':', '/' and newlines", u.Name)
		}
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}

	dir, err := os.MkdirTemp(opts.ParentDir, "dovecot")
	if err != nil {
		return nil, fmt.Errorf("dovecot: create directory: %w", err)
	}
	s := &Server{Users: users, dir: dir, doveadmBin: doveadm, uid: uid, gid: gid, settings: opts.Settings,
		conf: filepath.Join(dir, "dovecot.conf"), log: filepath.Join(dir, "dovecot.log")}
	if err := s.prepare(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}

	// The port is chosen by the kernel and released before Dovecot binds it, so another
	// process may take it in between: then Dovecot exits and we try another port.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		err = s.launch(ctx, bin, timeout)
		if err == nil {
			return s, nil
		}
		addrInUse := strings.Contains(err.Error(), "Address already in use") // stderr and log are in err
		if !addrInUse || attempt == attempts || ctx.Err() != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// prepare creates the directory tree, the passwd-file and the users' homes.
func (s *Server) prepare() error {
	// Every directory above the Maildirs must be traversable by the dovecot user; a
	// temporary directory is created 0700.
	if err := makeTraversable(s.dir); err != nil {
		return err
	}
	for _, sub := range []string{"run", "state", "home"} {
		if err := os.Mkdir(filepath.Join(s.dir, sub), 0o755); err != nil {
			return fmt.Errorf("dovecot: create %q: %w", sub, err)
		}
	}
	var passwd strings.Builder
	for _, u := range s.Users {
		home := s.home(u.Name)
		if err := os.Mkdir(home, 0o700); err != nil {
			return fmt.Errorf("dovecot: create home of %q: %w", u.Name, err)
		}
		if err := os.Chown(home, s.uid, s.gid); err != nil {
			return fmt.Errorf("dovecot: chown home of %q: %w", u.Name, err)
		}
		fmt.Fprintf(&passwd, "%s:{PLAIN}%s:%d:%d::%s::\n", u.Name, u.Password, s.uid, s.gid, home)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "passwd"), []byte(passwd.String()), 0o644); err != nil {
		return fmt.Errorf("dovecot: write passwd-file: %w", err)
	}
	// The log file is created by the master (root) before it forks; make sure it exists
	// and is ours so LogTail can always read it.
	if err := os.WriteFile(s.log, nil, 0o644); err != nil {
		return fmt.Errorf("dovecot: create log: %w", err)
	}
	return nil
}

// launch writes the configuration for a fresh port, starts the master and waits for the
// greeting.
func (s *Server) launch(ctx context.Context, bin string, timeout time.Duration) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	conf := renderConfig(configParams{
		Port: port, Passwd: filepath.Join(s.dir, "passwd"), Log: s.log,
		BaseDir: filepath.Join(s.dir, "run"), StateDir: filepath.Join(s.dir, "state"),
		Instance: "syncharness-" + filepath.Base(s.dir), Settings: s.settings,
	})
	if err := os.WriteFile(s.conf, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("dovecot: write configuration: %w", err)
	}

	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-F", "-c", s.conf)
	cmd.Dir = s.dir
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	// The master runs in a process group of its own, which Stop kills, and gets SIGKILL
	// when the test process dies however it dies; its children (running as the dovecot
	// users) exit when the master is gone and the dead process's connections are closed.
	if err := proc.Start(cmd); err != nil {
		return fmt.Errorf("dovecot: start %s: %w", bin, err)
	}
	s.cmd = cmd
	s.exited = make(chan struct{})
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if greets(ctx, s.addr) {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("dovecot: exited before greeting (%v): %s\nlog:\n%s", s.waitErr,
				strings.TrimSpace(stderr.String()), s.LogTail())
		case <-ctx.Done():
			s.kill()
			<-s.exited
			return fmt.Errorf("dovecot: no greeting on %s: %w\nlog:\n%s", s.addr, ctx.Err(), s.LogTail())
		case <-tick.C:
		}
	}
}

// greets reports whether an IMAP server at addr answers with an "* OK" greeting.
func greets(ctx context.Context, addr string) bool {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "* OK")
}

// Addr returns the server's host:port on 127.0.0.1.
func (s *Server) Addr() string { return s.addr }

// Dir returns the server's private directory (configuration, log, homes).
func (s *Server) Dir() string { return s.dir }

// ConfigPath returns the path of the generated dovecot.conf.
func (s *Server) ConfigPath() string { return s.conf }

// MaildirPath returns the root Maildir of user (INBOX lives there; other mailboxes are
// Maildir++ subfolders such as ".Archive").
func (s *Server) MaildirPath(user string) string {
	return filepath.Join(s.home(user), "Maildir")
}

func (s *Server) home(user string) string { return filepath.Join(s.dir, "home", user) }

// logTailLines is how many lines LogTail returns.
const logTailLines = 40

// LogTail returns the last lines of the server's log, for failure messages.
func (s *Server) LogTail() string {
	n := logTailLines
	b, err := os.ReadFile(s.log)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop stops the server: it kills every process of its process group (SIGKILL), waits for
// the master and removes the server's directory. Nothing of the server is kept, so there
// is nothing to shut down gently: on SIGTERM the master took more than half a second,
// waiting for its imap processes, and tests start many servers. It is safe to call more
// than once; later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			s.kill()
			<-s.exited
		}
		if err := os.RemoveAll(s.dir); err != nil {
			s.stopErr = fmt.Errorf("dovecot: remove %q: %w", s.dir, err)
		}
	})
	return s.stopErr
}

// kill kills the master's whole process group.
func (s *Server) kill() {
	if s.cmd != nil {
		_ = proc.KillGroup(s.cmd) // already gone is fine
	}
}

// ProcessGroup returns the process group of the server's processes (the master's pid),
// or 0 before the server started.
func (s *Server) ProcessGroup() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("dovecot: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("dovecot: find a free port: %w", err)
	}
	return port, nil
}

func findDoveadm(bin string) (string, error) {
	next := filepath.Join(filepath.Dir(filepath.Dir(bin)), "bin", "doveadm")
	if _, err := os.Stat(next); err == nil {
		return next, nil
	}
	p, err := exec.LookPath("doveadm")
	if err != nil {
		return "", fmt.Errorf("%w: doveadm not found next to %s or on PATH", ErrNotInstalled, bin)
	}
	return p, nil
}

func lookupUser(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: system user %q missing: %v", ErrNotInstalled, name, err)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, fmt.Errorf("dovecot: uid of %q: %w", name, err)
	}
	gid, err = strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, fmt.Errorf("dovecot: gid of %q: %w", name, err)
	}
	return uid, gid, nil
}

// makeTraversable adds search permission for everyone to dir and every directory above
// it that lacks it, so that the dovecot user can reach the Maildirs below dir.
func makeTraversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("dovecot: %w", err)
	}
	for p := abs; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("dovecot: stat %q: %w", p, err)
		}
		if mode := fi.Mode().Perm(); mode&0o011 != 0o011 {
			if err := os.Chmod(p, fi.Mode()&(os.ModeSticky|os.ModeSetgid|os.ModeSetuid)|mode|0o011); err != nil {
				return fmt.Errorf("dovecot: make %q traversable: %w", p, err)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}
