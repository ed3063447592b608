package harness

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/fakeserver"
	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/harness/proxy"
)

// RunFolderPrefix starts the name of the folder a remote run works in.
const RunFolderPrefix = "syncharness-"

// RemoteOptions configure a RemoteTarget.
type RemoteOptions struct {
	// URL is imap://USER@HOST[:PORT] (plain; add ?starttls for STARTTLS) or
	// imaps://USER@HOST[:PORT] (implicit TLS). A password in the URL is refused.
	URL string
	// Password is the account's password. It never appears in any output.
	Password string
	// StartTLS upgrades a plain connection with STARTTLS (as ?starttls does).
	StartTLS bool
	// CAFile, if set, holds the PEM certificates to trust instead of the system's.
	CAFile string
	// InsecureSkipVerify accepts any certificate (test servers only).
	InsecureSkipVerify bool
	// User2 and Password2 name a second account, for scenarios that need one.
	User2, Password2 string
	// DedicatedAccount declares that the account is for testing only, so scenarios that
	// must use its real INBOX may run. Check then refuses an account that holds any mail
	// or any folder besides INBOX and syncharness-* folders.
	DedicatedAccount bool
	// Admin performs administrator faults; nil: such scenarios are skipped.
	Admin Admin
	// RunID names the run's folder (syncharness-RUNID); empty: a fresh random one.
	RunID string
	// DialTimeout bounds each connection's TCP connect, TLS handshake and greeting
	// together; zero: 10 seconds.
	DialTimeout time.Duration
	// HeartbeatInterval is how often the run refreshes its marker; zero: DefaultHeartbeat.
	HeartbeatInterval time.Duration
	// AllowPlaintext lets the password cross the network in clear: without it, imap://
	// without STARTTLS is refused for a server that is not on this machine's loopback.
	AllowPlaintext bool
}

// RemoteTarget runs scenarios against a third-party IMAP server, confined to a fresh
// folder syncharness-RUNID of the account: each scenario works in its own subfolder, every
// connection (devices, the harness's own reads and server steps) is rewritten by
// proxy.Confine so that its INBOX and mailboxes are the subfolder's children, and nothing
// outside can be named. Close removes the run's folder, and only it.
type RemoteTarget struct {
	opts     RemoteOptions
	user     string
	addr     string
	host     string
	implicit bool // imaps
	starttls bool
	tls      *tls.Config
	root     string // syncharness-RUNID

	mu      sync.Mutex
	sep     byte
	created bool // root exists on the server
	closed  bool
	started time.Time     // when the run folder was created
	stopHB  chan struct{} // closed to stop the heartbeat
	hbDone  chan struct{} // closed when the heartbeat has stopped
}

// NewRemoteTarget validates opts and returns the target. It does not connect: call Check
// to verify the server and the credentials before a run.
func NewRemoteTarget(opts RemoteOptions) (*RemoteTarget, error) {
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("server URL: %v", redactURLError(err))
	}
	t := &RemoteTarget{opts: opts, starttls: opts.StartTLS}
	switch u.Scheme {
	case "imap":
	case "imaps":
		t.implicit = true
	default:
		return nil, fmt.Errorf("server URL: scheme %q: want imap:// or imaps://", u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return nil, errors.New("server URL: no user (want imap://USER@HOST:PORT)")
	}
	if _, set := u.User.Password(); set {
		return nil, errors.New("server URL: a password in the URL is not accepted; use SYNCHARNESS_PASSWORD or --password-file")
	}
	t.user = u.User.Username()
	if u.Hostname() == "" {
		return nil, errors.New("server URL: no host")
	}
	q := u.Query()
	if _, ok := q["starttls"]; ok {
		t.starttls = true
	}
	if t.starttls && t.implicit {
		return nil, errors.New("server URL: imaps:// already uses TLS; STARTTLS is for imap://")
	}
	port := u.Port()
	if port == "" {
		port = "143"
		if t.implicit {
			port = "993"
		}
	}
	t.host = u.Hostname()
	t.addr = net.JoinHostPort(t.host, port)
	if opts.Password == "" {
		return nil, errors.New("no password: set SYNCHARNESS_PASSWORD or use --password-file")
	}
	if t.implicit || t.starttls {
		cfg := &tls.Config{ServerName: t.host, InsecureSkipVerify: opts.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
		if opts.CAFile != "" {
			pem, err := os.ReadFile(opts.CAFile)
			if err != nil {
				return nil, fmt.Errorf("CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA file %s: no PEM certificate in it", opts.CAFile)
			}
			cfg.RootCAs = pool
		}
		t.tls = cfg
	} else if opts.CAFile != "" || opts.InsecureSkipVerify {
		return nil, errors.New("--ca and --insecure-skip-verify need imaps:// or STARTTLS")
	}
	id := opts.RunID
	if id == "" {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		id = time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
	}
	if strings.ContainsAny(id, "/.%*\"\\ ") {
		return nil, fmt.Errorf("run id %q: letters, digits, '-' and '_' only", id)
	}
	t.root = RunFolderPrefix + id
	return t, nil
}

func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err // the URL itself may hold a password
	}
	return err
}

// Name implements Target: the URL without credentials.
func (t *RemoteTarget) Name() string {
	scheme := "imap"
	if t.implicit {
		scheme = "imaps"
	}
	return scheme + "://" + t.addr
}

// Kind implements Target.
func (t *RemoteTarget) Kind() string { return "remote" }

// Root returns the run's folder on the server, syncharness-RUNID.
func (t *RemoteTarget) Root() string { return t.root }

// User returns the account the devices log in to.
func (t *RemoteTarget) User() string { return t.user }

func (t *RemoteTarget) timeout() time.Duration {
	if t.opts.DialTimeout > 0 {
		return t.opts.DialTimeout
	}
	return 10 * time.Second
}

// dial opens a connection to the server, TLS set up, and returns it with the greeting
// read and checked but still to be read by the client (after STARTTLS, a greeting made up
// by the harness, with the capabilities the server gives over TLS, stands in for the
// server's). DialTimeout bounds the TCP connect, the TLS handshake and the greeting
// together. It sends no byte of a password and refuses the connection when a LOGIN would
// be unsafe: the server advertises LOGINDISABLED, or the connection has no TLS and the
// server is not on this machine (unless AllowPlaintext).
func (t *RemoteTarget) dial(ctx context.Context) (net.Conn, error) {
	deadline := time.Now().Add(t.timeout())
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", t.addr)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return nil, fmt.Errorf("cannot connect to %s: no answer within %s (--connect-timeout)", t.addr, t.timeout())
		}
		return nil, fmt.Errorf("cannot connect to %s: %v", t.addr, errors.Unwrap(err))
	}
	if !t.implicit && !t.starttls && !t.opts.AllowPlaintext && !isLoopback(conn.RemoteAddr()) {
		conn.Close()
		return nil, fmt.Errorf("%s is not on this machine and imap:// without STARTTLS has no TLS: the password would cross the network in clear; "+
			"use imaps://, add ?starttls to the URL (or --starttls), or pass --allow-plaintext to send it in clear anyway", t.Name())
	}
	// The deadline covers every step below; an interrupt cuts them short too.
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	c, err := t.greet(conn)
	if !stop() && err == nil {
		c.Close()
		return nil, fmt.Errorf("connecting to %s: %w", t.addr, ctx.Err())
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return c, nil
}

// greet sets up TLS, reads the greeting and learns the capabilities, within conn's
// deadline.
func (t *RemoteTarget) greet(conn net.Conn) (net.Conn, error) {
	step := func(what string, err error) error {
		if isTimeout(err) {
			return fmt.Errorf("%s: %s: no answer within %s (--connect-timeout)", t.addr, what, t.timeout())
		}
		return fmt.Errorf("%s: %s: %v", t.addr, what, err)
	}
	var tc net.Conn = conn
	if t.implicit {
		c := tls.Client(conn, t.tls)
		if err := c.Handshake(); err != nil {
			return nil, step("TLS handshake failed", err)
		}
		tc = c
	}
	br := bufio.NewReader(tc)
	greeting, err := br.ReadString('\n')
	if err != nil {
		if isTimeout(err) {
			return nil, step("waiting for the IMAP greeting", err)
		}
		return nil, fmt.Errorf("%s closed the connection before its greeting (is it an IMAP server?)", t.addr)
	}
	if !strings.HasPrefix(greeting, "* OK") {
		return nil, fmt.Errorf("%s does not greet like an IMAP server (%q)", t.addr, clip(greeting))
	}
	caps, ok := greetingCaps(greeting)
	if !ok {
		if caps, err = askCaps(tc, br, "S0"); err != nil {
			return nil, step("CAPABILITY", err)
		}
	}
	if t.starttls {
		if _, err := io.WriteString(tc, "S1 STARTTLS\r\n"); err != nil {
			return nil, step("STARTTLS", err)
		}
		line, err := untilTagged(br, "S1", nil)
		if err != nil {
			return nil, step("STARTTLS", err)
		}
		if !strings.HasPrefix(line, "S1 OK") {
			return nil, fmt.Errorf("%s refused STARTTLS: %s", t.addr, clip(line))
		}
		if br.Buffered() > 0 {
			return nil, fmt.Errorf("STARTTLS with %s: data after the answer (possible injection)", t.addr)
		}
		c := tls.Client(conn, t.tls)
		if err := c.Handshake(); err != nil {
			return nil, step("TLS handshake failed", err)
		}
		tc = c
		br = bufio.NewReader(tc)
		// RFC 3501 §6.2.1: capabilities learnt before TLS are void.
		if caps, err = askCaps(tc, br, "S2"); err != nil {
			return nil, step("CAPABILITY after STARTTLS", err)
		}
		greeting = "* OK [CAPABILITY " + strings.Join(caps, " ") + "] TLS established by syncharness\r\n"
	}
	for _, c := range caps {
		if strings.EqualFold(c, "LOGINDISABLED") {
			how := "use imaps:// or add ?starttls to the URL (or --starttls)"
			if t.implicit || t.starttls {
				how = "the server takes no LOGIN even over TLS; check its configuration"
			}
			return nil, fmt.Errorf("%s advertises LOGINDISABLED: it takes no password on this connection and syncharness sent none; %s", t.Name(), how)
		}
	}
	return &greetedConn{Conn: tc, r: io.MultiReader(strings.NewReader(greeting), br)}, nil
}

// greetingCaps returns the capabilities of a greeting's [CAPABILITY …] code.
func greetingCaps(greeting string) ([]string, bool) {
	_, rest, ok := strings.Cut(greeting, "[")
	if !ok {
		return nil, false
	}
	code, _, ok := strings.Cut(rest, "]")
	if !ok {
		return nil, false
	}
	if after, ok := cutFold(code, "CAPABILITY "); ok {
		return strings.Fields(after), true
	}
	return nil, false
}

func cutFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return "", false
	}
	return s[len(prefix):], true
}

// askCaps sends CAPABILITY with tag and returns the capabilities the server lists.
func askCaps(w io.Writer, br *bufio.Reader, tag string) ([]string, error) {
	if _, err := io.WriteString(w, tag+" CAPABILITY\r\n"); err != nil {
		return nil, err
	}
	var caps []string
	line, err := untilTagged(br, tag, func(l string) {
		if after, ok := cutFold(l, "* CAPABILITY "); ok {
			caps = append(caps, strings.Fields(after)...)
		}
	})
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, tag+" OK") {
		return nil, fmt.Errorf("refused: %s", clip(line))
	}
	return caps, nil
}

// untilTagged reads lines up to the tagged completion of tag, which it returns; untagged
// lines go to each.
func untilTagged(br *bufio.Reader, tag string, each func(string)) (string, error) {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(line, tag+" ") {
			return line, nil
		}
		if each != nil {
			each(strings.TrimRight(line, "\r\n"))
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isLoopback reports whether addr is on this machine's loopback interface.
func isLoopback(addr net.Addr) bool {
	ta, ok := addr.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// greetedConn yields a greeting, and what was read past it, before the connection's own
// data.
type greetedConn struct {
	net.Conn
	r io.Reader
}

func (g *greetedConn) Read(b []byte) (int, error) { return g.r.Read(b) }

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// login opens an unconfined session for the harness's own bookkeeping (the run folder).
func (t *RemoteTarget) login(ctx context.Context, conn net.Conn, user, pass string) (*imapclient.Client, error) {
	_ = conn.SetDeadline(time.Now().Add(t.timeout()))
	c := imapclient.New(conn, nil)
	if err := c.WaitGreeting(); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s sent no IMAP greeting (is it an IMAP server?)", t.addr)
	}
	if err := c.Login(user, pass).Wait(); err != nil {
		c.Close()
		var ie *imap.Error
		if errors.As(err, &ie) {
			return nil, fmt.Errorf("login as %s on %s refused: %s", user, t.addr, ie.Text)
		}
		return nil, fmt.Errorf("login as %s on %s failed: the server does not speak IMAP or closed the connection", user, t.addr)
	}
	_ = conn.SetDeadline(time.Time{})
	return c, nil
}

func (t *RemoteTarget) admin(ctx context.Context) (*imapclient.Client, error) {
	conn, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	return t.login(ctx, conn, t.user, t.opts.Password)
}

// Check connects, logs in, learns the hierarchy delimiter, and makes sure the run's folder
// does not exist yet. Its errors are one line each, fit for the user.
func (t *RemoteTarget) Check(ctx context.Context) error {
	sep, err := t.check(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	t.sep = sep
	t.mu.Unlock()
	return nil
}

func (t *RemoteTarget) check(ctx context.Context) (byte, error) {
	c, err := t.admin(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	list, err := c.List("", "", nil).Collect()
	if err != nil {
		return 0, fmt.Errorf("LIST on %s: %v", t.addr, err)
	}
	sep := byte('/')
	if len(list) > 0 && list[0].Delim != 0 {
		sep = byte(list[0].Delim)
	}
	existing, err := c.List("", t.root, nil).Collect()
	if err != nil {
		return 0, fmt.Errorf("LIST on %s: %v", t.addr, err)
	}
	if len(existing) > 0 {
		return 0, fmt.Errorf("folder %s already exists on %s: choose another run id", t.root, t.addr)
	}
	if t.opts.DedicatedAccount {
		if err := t.checkEmpty(c); err != nil {
			return 0, err
		}
	}
	if t.opts.User2 != "" {
		conn, err := t.dial(ctx)
		if err != nil {
			return 0, err
		}
		c2, err := t.login(ctx, conn, t.opts.User2, t.opts.Password2)
		if err != nil {
			return 0, err
		}
		_ = c2.Logout().Wait()
	}
	_ = c.Logout().Wait()
	return sep, nil
}

// checkEmpty refuses an account that holds mail or folders of its own.
func (t *RemoteTarget) checkEmpty(c *imapclient.Client) error {
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return fmt.Errorf("LIST on %s: %v", t.addr, err)
	}
	for _, l := range list {
		name := l.Mailbox
		if strings.HasPrefix(name, RunFolderPrefix) {
			continue
		}
		if !strings.EqualFold(name, "INBOX") {
			return fmt.Errorf("--dedicated-account: the account holds the folder %q; use an account that holds nothing", name)
		}
		st, err := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait()
		if err != nil {
			return fmt.Errorf("STATUS INBOX on %s: %v", t.addr, err)
		}
		if st.NumMessages != nil && *st.NumMessages > 0 {
			return fmt.Errorf("--dedicated-account: the account's INBOX holds %d messages; use an account that holds nothing", *st.NumMessages)
		}
	}
	return nil
}

func (t *RemoteTarget) ensureRoot(ctx context.Context) (byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, errors.New("remote target: closed")
	}
	if t.created {
		return t.sep, nil
	}
	if t.sep == 0 {
		sep, err := t.check(ctx)
		if err != nil {
			return 0, err
		}
		t.sep = sep
	}
	c, err := t.admin(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := createMailbox(c, t.root, nil); err != nil {
		return 0, fmt.Errorf("create %s: %w", t.root, err)
	}
	t.created = true
	t.started = time.Now()
	if err := createMailbox(c, t.root+string(t.sep)+MarkerFolder, nil); err != nil {
		return 0, fmt.Errorf("create %s%c%s: %w", t.root, t.sep, MarkerFolder, err)
	}
	if err := t.writeMarker(c, t.started); err != nil {
		return 0, fmt.Errorf("run marker in %s: %w", t.root, err)
	}
	t.stopHB, t.hbDone = make(chan struct{}), make(chan struct{})
	go t.heartbeat(t.stopHB, t.hbDone)
	_ = c.Logout().Wait()
	return t.sep, nil
}

// Open implements Target: it creates the scenario's folder syncharness-RUNID/SCENARIO
// with its INBOX.
func (t *RemoteTarget) Open(ctx context.Context, cfg ServerConfig) (Server, error) {
	sep, err := t.ensureRoot(ctx)
	if err != nil {
		return nil, err
	}
	name := strings.Map(func(r rune) rune {
		if r == '.' || r == rune(sep) || r == '%' || r == '*' || r < ' ' {
			return '_'
		}
		return r
	}, cfg.Scenario)
	if name == MarkerFolder {
		name = "_" + name
	}
	s := &remoteServer{t: t, ns: proxy.Namespace{Root: t.root + string(sep) + name, Sep: sep}}
	c, err := s.client(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := createMailbox(c, "INBOX", nil); err != nil {
		return nil, fmt.Errorf("create %s%cINBOX: %w", s.ns.Root, sep, err)
	}
	_ = c.Logout().Wait()
	return s, nil
}

// Close removes the run's folder and everything below it: only what the run created. It
// is safe to call more than once and after an interrupted run.
func (t *RemoteTarget) Close(ctx context.Context) error {
	t.mu.Lock()
	created := t.created
	t.closed = true
	t.created = false
	stop, done := t.stopHB, t.hbDone
	t.stopHB = nil
	t.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	if !created {
		return nil
	}
	c, err := t.admin(ctx)
	if err != nil {
		return fmt.Errorf("remove %s: %w", t.root, err)
	}
	defer c.Close()
	if err := removeTree(c, t.root); err != nil {
		return err
	}
	_ = c.Logout().Wait()
	return nil
}

// removeTree deletes root and every mailbox below it, deepest first.
func removeTree(c *imapclient.Client, root string) error {
	list, err := c.List("", root+"*", nil).Collect()
	if err != nil {
		return fmt.Errorf("remove %s: LIST: %w", root, err)
	}
	var names []string
	for _, l := range list {
		sep := string(l.Delim)
		if l.Mailbox == root || (sep != "" && strings.HasPrefix(l.Mailbox, root+sep)) {
			names = append(names, l.Mailbox)
		}
	}
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	var errs []error
	for _, n := range names {
		if err := deleteMailbox(c, n); err != nil {
			var ie *imap.Error
			if errors.As(err, &ie) && ie.Code == imap.ResponseCodeNonExistent {
				continue
			}
			errs = append(errs, fmt.Errorf("remove %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}

// deleteMailbox deletes name. A server that refuses to delete a folder holding a special
// use until the use is removed gets SETMETADATA name (/private/specialuse NIL) (RFC 6154
// §5.4, RFC 5464) and the DELETE once more, when it offers METADATA.
func deleteMailbox(c *imapclient.Client, name string) error {
	err := c.Delete(name).Wait()
	var ie *imap.Error
	if err == nil || !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo || ie.Code == imap.ResponseCodeNonExistent {
		return err
	}
	if !c.Caps().Has(imap.CapMetadata) {
		return err
	}
	if merr := c.SetMetadata(name, map[string]*[]byte{"/private/specialuse": nil}).Wait(); merr != nil {
		return fmt.Errorf("%w (then SETMETADATA /private/specialuse NIL: %v)", err, merr)
	}
	return c.Delete(name).Wait()
}

// remoteServer is one scenario's view of the remote account: the folder ns.Root.
type remoteServer struct {
	t  *RemoteTarget
	ns proxy.Namespace

	// pause is held for writing while a reset replaces a mailbox: device connections wait
	// for it before they are dialled and before each command.
	pause sync.RWMutex

	mu      sync.Mutex
	conns   []net.Conn // device connections, for drop
	fails   []*failRule
	latency time.Duration
	hidden  []string
	special map[string]string // emulated special uses, by client mailbox name
}

type failRule struct {
	left     int
	command  string
	response string
}

// Dial implements Server: a device connection, confined, with the scenario's wire faults.
func (s *remoteServer) Dial(ctx context.Context) (net.Conn, error) {
	s.pause.RLock()
	s.pause.RUnlock()
	conn, err := s.t.dial(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.conns = append(s.conns, conn)
	s.mu.Unlock()
	return proxy.Confine(conn, proxy.ConfineOptions{Namespace: s.ns, Intercept: s.intercept, Hidden: s.hiddenCaps,
		SpecialUse: s.specialUse}), nil
}

// emulateSpecialUse makes the confinement show use on mailbox in LIST answers.
func (s *remoteServer) emulateSpecialUse(mailbox, use string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.special == nil {
		s.special = map[string]string{}
	}
	s.special[mailbox] = use
}

func (s *remoteServer) specialUse(mailbox string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.special[mailbox]
}

// dialPlain is a confined connection without wire faults, for the harness's own work.
func (s *remoteServer) dialPlain(ctx context.Context) (net.Conn, error) {
	conn, err := s.t.dial(ctx)
	if err != nil {
		return nil, err
	}
	return proxy.Confine(conn, proxy.ConfineOptions{Namespace: s.ns, SpecialUse: s.specialUse}), nil
}

func (s *remoteServer) client(ctx context.Context) (*imapclient.Client, error) {
	conn, err := s.dialPlain(ctx)
	if err != nil {
		return nil, err
	}
	return s.t.login(ctx, conn, s.t.user, s.t.opts.Password)
}

func (s *remoteServer) intercept(cmd string) string {
	s.pause.RLock()
	s.pause.RUnlock()
	s.mu.Lock()
	d := s.latency
	var resp string
	for i, r := range s.fails {
		if r.command == "" || r.command == cmd || "UID "+r.command == cmd {
			resp = r.response
			r.left--
			if r.left == 0 {
				s.fails = append(s.fails[:i], s.fails[i+1:]...)
			}
			break
		}
	}
	s.mu.Unlock()
	if d > 0 {
		time.Sleep(d)
	}
	return resp
}

func (s *remoteServer) hiddenCaps() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hidden
}

// Credentials implements Server.
func (s *remoteServer) Credentials() (string, string) { return s.t.user, s.t.opts.Password }

// Close implements Server: it removes the scenario's folder.
func (s *remoteServer) Close() error {
	s.drop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := s.t.admin(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := removeTree(c, s.ns.Root); err != nil {
		return err
	}
	_ = c.Logout().Wait()
	return nil
}

func (s *remoteServer) drop() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.Close() // already closed by its client is fine
	}
}

// State implements Server.
func (s *remoteServer) State(ctx context.Context) (check.ServerState, error) {
	c, err := s.client(ctx)
	if err != nil {
		return check.ServerState{}, err
	}
	defer c.Close()
	st, err := check.ReadServer(ctx, c, check.ReadOptions{})
	if err != nil {
		return st, err
	}
	_ = c.Logout().Wait()
	return st, nil
}

// uids resolves labels to UIDs in the selected mailbox.
func uidsOf(c *imapclient.Client, mailbox string, labels []string) (imap.UIDSet, error) {
	sel, err := c.Select(mailbox, nil).Wait()
	if err != nil {
		return nil, fmt.Errorf("SELECT %s: %w", mailbox, err)
	}
	found := map[string]bool{}
	var set imap.UIDSet
	if sel.NumMessages > 0 {
		var all imap.UIDSet
		all.AddRange(1, 0)
		msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			return nil, fmt.Errorf("FETCH in %s: %w", mailbox, err)
		}
		want := map[string]bool{}
		for _, l := range labels {
			want[l] = true
		}
		for _, m := range msgs {
			var raw []byte
			for _, b := range m.BodySection {
				raw = b.Bytes
			}
			if l := clients.Label(raw); want[l] && m.UID != 0 {
				set.AddNum(m.UID)
				found[l] = true
			}
		}
	}
	if err := missingLabels(mailbox, labels, found); err != nil {
		return nil, err
	}
	return set, nil
}

// Do implements Server. Changes are made as an outside IMAP client inside the scenario's
// folder; UIDVALIDITY faults go to the admin profile; drop, fail, latency and caps are
// made on the scenario's device connections.
func (s *remoteServer) Do(ctx context.Context, op ServerOp) error {
	switch op.Kind {
	case "drop":
		s.drop()
		return nil
	case "fail":
		if op.N < 1 {
			return fmt.Errorf("server fail: count %d: want at least 1", op.N)
		}
		if _, err := fakeserver.ParseResponse(op.Response); err != nil {
			return err
		}
		s.mu.Lock()
		s.fails = append(s.fails, &failRule{left: op.N, command: strings.ToUpper(strings.TrimSpace(op.Command)), response: op.Response})
		s.mu.Unlock()
		return nil
	case "latency":
		s.mu.Lock()
		s.latency = op.Duration
		s.mu.Unlock()
		return nil
	case "caps":
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range op.Caps {
			name := strings.ToUpper(strings.TrimLeft(c, "+-"))
			var kept []string
			for _, h := range s.hidden {
				if h != name {
					kept = append(kept, h)
				}
			}
			s.hidden = kept
			if strings.HasPrefix(c, "-") {
				s.hidden = append(s.hidden, name)
			}
		}
		return nil
	case "uidvalidity-bump", "uidvalidity-reset":
		err := s.adminFault(ctx, op)
		if op.Kind == "uidvalidity-reset" && errors.Is(err, ErrUnsupported) {
			return s.recreate(ctx, op.Mailbox)
		}
		return err
	case "renumber-silently":
		return fmt.Errorf("server renumber-silently: a server bug only the fake server can be told to have: %w", ErrUnsupported)
	case "deliver", "flag", "unflag", "move", "copy", "expunge", "create", "rename", "remove":
	default:
		return fmt.Errorf("server %s on a remote server: %w", op.Kind, ErrUnsupported)
	}
	c, err := s.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := s.do(c, op); err != nil {
		return fmt.Errorf("server %s: %w", op.Kind, err)
	}
	_ = c.Logout().Wait()
	return nil
}

func (s *remoteServer) do(c *imapclient.Client, op ServerOp) error {
	switch op.Kind {
	case "deliver":
		for _, m := range op.Messages {
			flags := make([]imap.Flag, len(m.Flags))
			for i, f := range m.Flags {
				flags[i] = imap.Flag(f)
			}
			cmd := c.Append(op.Mailbox, int64(len(m.Body)), &imap.AppendOptions{Flags: flags, Time: m.Date})
			if _, err := cmd.Write(m.Body); err != nil {
				return err
			}
			if err := cmd.Close(); err != nil {
				return err
			}
			if _, err := cmd.Wait(); err != nil {
				return err
			}
		}
		return nil
	case "create":
		var opts *imap.CreateOptions
		if op.SpecialUse != "" {
			if !c.Caps().Has("CREATE-SPECIAL-USE") {
				// Like Dovecot, the server gives special uses by its configuration only:
				// the confinement shows the attribute, as such a configuration would.
				s.emulateSpecialUse(op.Mailbox, op.SpecialUse)
			} else {
				opts = &imap.CreateOptions{SpecialUse: []imap.MailboxAttr{imap.MailboxAttr(op.SpecialUse)}}
			}
		}
		if l, err := c.List("", op.Mailbox, nil).Collect(); err != nil || len(l) > 0 {
			if err == nil {
				err = c.Create(op.Mailbox, opts).Wait() // the server's own answer
			}
			return err
		}
		err := createMailbox(c, op.Mailbox, opts)
		var ie *imap.Error
		if opts != nil && errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeNo {
			// Some servers give special uses to top-level folders only and answer a CREATE
			// with USE below them NO (SPECIAL-USE flag conflict) and create nothing: the
			// run's folders are never top level, so emulate the use as for a server
			// without CREATE-SPECIAL-USE.
			if l, lerr := c.List("", op.Mailbox, nil).Collect(); lerr == nil && len(l) == 0 {
				s.emulateSpecialUse(op.Mailbox, op.SpecialUse)
				return createMailbox(c, op.Mailbox, nil)
			}
		}
		return err
	case "rename":
		return c.Rename(op.Mailbox, op.Dest, nil).Wait()
	case "remove":
		return c.Delete(op.Mailbox).Wait()
	}
	set, err := uidsOf(c, op.Mailbox, op.Labels)
	if err != nil {
		return err
	}
	switch op.Kind {
	case "flag", "unflag":
		sf := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.Flag(op.Flag)}}
		if op.Kind == "unflag" {
			sf.Op = imap.StoreFlagsDel
		}
		return c.Store(set, sf, nil).Close()
	case "move":
		if c.Caps().Has(imap.CapMove) {
			_, err := c.Move(set, op.Dest).Wait()
			return err
		}
		// go-imap's fallback would EXPUNGE other clients' \Deleted mail without UIDPLUS.
		if _, err := c.Copy(set, op.Dest).Wait(); err != nil {
			return err
		}
		return expungeOnly(c, set)
	case "copy":
		_, err := c.Copy(set, op.Dest).Wait()
		return err
	case "expunge":
		return expungeOnly(c, set)
	}
	return fmt.Errorf("%w", ErrUnsupported)
}

// expungeOnly marks the messages set of the selected mailbox \Deleted and expunges them,
// and only them: with UID EXPUNGE where the server has UIDPLUS, else as RFC 4549 §4.2.4
// says (clear \Deleted on the other messages that have it, EXPUNGE, set it back), so that
// a server step never removes mail a device marked \Deleted.
func expungeOnly(c *imapclient.Client, set imap.UIDSet) error {
	deleted := &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
	if err := c.Store(set, deleted, nil).Close(); err != nil {
		return err
	}
	if c.Caps().Has(imap.CapUIDPlus) {
		return c.UIDExpunge(set).Close()
	}
	found, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
	if err != nil {
		return fmt.Errorf("UID SEARCH DELETED: %w", err)
	}
	var others imap.UIDSet
	for _, uid := range found.AllUIDs() {
		if !set.Contains(uid) {
			others.AddNum(uid)
		}
	}
	if len(others) > 0 {
		undelete := &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}
		if err := c.Store(others, undelete, nil).Close(); err != nil {
			return err
		}
	}
	expErr := c.Expunge().Close()
	if len(others) > 0 {
		// Set back even when the EXPUNGE failed: another client's \Deleted is never lost.
		if err := c.Store(others, deleted, nil).Close(); err != nil {
			return errors.Join(expErr, err)
		}
	}
	return expErr
}

func (s *remoteServer) adminFault(ctx context.Context, op ServerOp) error {
	if s.t.opts.Admin == nil {
		return fmt.Errorf("server %s needs an admin profile (--admin): %w", op.Kind, ErrUnsupported)
	}
	real, err := s.ns.ToServer(op.Mailbox)
	if err != nil {
		return err
	}
	before, err := s.t.status(ctx, real)
	if err != nil {
		return fmt.Errorf("server %s: STATUS %s before the admin command: %w", op.Kind, op.Mailbox, err)
	}
	if err := s.t.opts.Admin.Fault(ctx, AdminFault{Kind: op.Kind, User: s.t.user, Mailbox: real}); err != nil {
		return err
	}
	after, err := s.t.status(ctx, real)
	if err != nil {
		return fmt.Errorf("server %s: STATUS %s after the admin command: %w", op.Kind, op.Mailbox, err)
	}
	return verifyAdmin(s.t.opts.Admin.Name(), op.Kind, op.Mailbox, before, after)
}

// status reads a mailbox's UIDVALIDITY, UIDNEXT and message count on a connection of its
// own (the server's full name).
func (t *RemoteTarget) status(ctx context.Context, mailbox string) (*imap.StatusData, error) {
	c, err := t.admin(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st, err := c.Status(mailbox, &imap.StatusOptions{UIDValidity: true, UIDNext: true, NumMessages: true}).Wait()
	if err != nil {
		return nil, err
	}
	_ = c.Logout().Wait()
	return st, nil
}

// verifyAdmin checks that an admin profile's fault did what it says, from STATUS before
// and after: an admin command that exits 0 and changes nothing must not make a scenario
// pass that it never tested. Both faults change UIDVALIDITY and keep every message; a bump
// keeps every UID too, so UIDNEXT stays.
func verifyAdmin(profile, kind, mailbox string, before, after *imap.StatusData) error {
	msgs := func(st *imap.StatusData) uint32 {
		if st.NumMessages == nil {
			return 0
		}
		return *st.NumMessages
	}
	what := fmt.Sprintf("admin %s: %s of %q", profile, kind, mailbox)
	switch {
	case after.UIDValidity == before.UIDValidity:
		return fmt.Errorf("%s: the command succeeded but the server still shows UIDVALIDITY %d (STATUS before and after): it did not change anything", what, after.UIDValidity)
	case msgs(after) != msgs(before):
		return fmt.Errorf("%s: the mailbox held %d messages before and %d after (STATUS): the command lost or added mail", what, msgs(before), msgs(after))
	case kind == "uidvalidity-bump" && after.UIDNext != before.UIDNext:
		return fmt.Errorf("%s: UIDNEXT went from %d to %d (STATUS): a bump keeps every UID", what, before.UIDNext, after.UIDNext)
	}
	return nil
}

// resetParking is where recreate keeps a mailbox's old incarnation; scenario mailbox names
// never start with it.
const resetParking = "syncharness-reset-"

// recreate makes a genuine UIDVALIDITY reset of mailbox over IMAP, as a restore from
// backup looks to clients: device connections wait, those open are dropped, the mailbox is
// renamed aside, created anew (a new UIDVALIDITY), its messages are appended back with
// their flags, keywords and dates in the reverse of their old UID order (so the UIDs
// change too), and the old incarnation is deleted. If the server gave the new mailbox its
// old UIDVALIDITY, the admin profile bumps it; without one that is an error.
func (s *remoteServer) recreate(ctx context.Context, mailbox string) error {
	s.pause.Lock()
	defer s.pause.Unlock()
	s.drop()
	c, err := s.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	st, err := c.Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		return fmt.Errorf("server uidvalidity-reset: STATUS %s: %w", mailbox, err)
	}
	old := st.UIDValidity
	// The rename is the moment of the reset: a change that reached the mailbox before it
	// is carried over, one after it fails on its (dropped) connection.
	parked := resetParking + strings.ReplaceAll(mailbox, string(s.ns.Sep), "_")
	if err := c.Rename(mailbox, parked, nil).Wait(); err != nil {
		return fmt.Errorf("server uidvalidity-reset: RENAME %s: %w", mailbox, err)
	}
	sel, err := c.Select(parked, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return fmt.Errorf("server uidvalidity-reset: EXAMINE %s: %w", parked, err)
	}
	var msgs []*imapclient.FetchMessageBuffer
	if sel.NumMessages > 0 {
		var all imap.UIDSet
		all.AddRange(1, 0)
		msgs, err = c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, InternalDate: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			return fmt.Errorf("server uidvalidity-reset: FETCH in %s: %w", parked, err)
		}
	}
	if err := c.Unselect().Wait(); err != nil {
		return fmt.Errorf("server uidvalidity-reset: %w", err)
	}
	if err := createMailbox(c, mailbox, nil); err != nil {
		return fmt.Errorf("server uidvalidity-reset: CREATE %s: %w", mailbox, err)
	}
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].UID > msgs[j].UID })
	for _, m := range msgs {
		var raw []byte
		for _, b := range m.BodySection {
			raw = b.Bytes
		}
		var flags []imap.Flag
		for _, f := range m.Flags {
			if !strings.EqualFold(string(f), `\Recent`) {
				flags = append(flags, f)
			}
		}
		cmd := c.Append(mailbox, int64(len(raw)), &imap.AppendOptions{Flags: flags, Time: m.InternalDate})
		if _, err := cmd.Write(raw); err != nil {
			return fmt.Errorf("server uidvalidity-reset: APPEND: %w", err)
		}
		if err := cmd.Close(); err != nil {
			return fmt.Errorf("server uidvalidity-reset: APPEND: %w", err)
		}
		if _, err := cmd.Wait(); err != nil {
			return fmt.Errorf("server uidvalidity-reset: APPEND: %w", err)
		}
	}
	if err := c.Delete(parked).Wait(); err != nil {
		return fmt.Errorf("server uidvalidity-reset: DELETE %s: %w", parked, err)
	}
	st, err = c.Status(mailbox, &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil {
		return fmt.Errorf("server uidvalidity-reset: STATUS %s: %w", mailbox, err)
	}
	_ = c.Logout().Wait()
	if st.UIDValidity == old {
		if err := s.adminFault(ctx, ServerOp{Kind: "uidvalidity-bump", Mailbox: mailbox}); err != nil {
			return fmt.Errorf("server uidvalidity-reset: the recreated %s kept UIDVALIDITY %d: %w", mailbox, old, err)
		}
	}
	return nil
}

// createMailbox creates a mailbox the caller knows does not exist (a setup step in the
// scenario's fresh folder, or the name a reset just renamed away). Dovecot with Maildir++
// sometimes answers NO [ALREADYEXISTS] to such a CREATE while other sessions of the account
// create, rename and delete folders (seen about once per catalogue run), either having
// created the mailbox after all or from a stale mailbox list: the mailbox counts as created
// when STATUS finds it, and the CREATE is tried again when it does not.
func createMailbox(c *imapclient.Client, name string, opts *imap.CreateOptions) error {
	var err error
	for range 3 {
		err = c.Create(name, opts).Wait()
		var ie *imap.Error
		if err == nil || !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAlreadyExists {
			return err
		}
		if _, serr := c.Status(name, &imap.StatusOptions{NumMessages: true}).Wait(); serr == nil {
			return nil
		}
	}
	return err
}
