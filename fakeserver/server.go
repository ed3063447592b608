package fakeserver

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/syncharness/syncharness/internal/deadline"
)

// DefaultMaxLiteralSize is the APPEND size limit when Options.MaxLiteralSize is zero.
const DefaultMaxLiteralSize = 64 << 20

// Options configures a Server.
type Options struct {
	Seed           int64        // seeds UIDVALIDITY values and reset orders; same seed, same run
	DisabledCaps   []string     // capabilities switched off from the start, e.g. "MOVE", "IDLE"
	MaxLiteralSize int64        // largest APPEND message in bytes; 0 means DefaultMaxLiteralSize
	Logger         *slog.Logger // nil discards
}

// Server is an in-process IMAP server with fault injection. Its methods are safe for
// concurrent use.
type Server struct {
	opts     Options
	logger   *slog.Logger
	maxLit   uint32
	latency  atomic.Int64 // time.Duration added before every response
	sessions sync.WaitGroup
	serving  sync.WaitGroup
	byes     sync.WaitGroup // goroutines writing BYE to evicted sessions
	// closedAddrs holds the client addresses of connections the server closed or is
	// closing (ClosedConn).
	closedAddrs sync.Map

	mu          sync.Mutex
	users       map[string]*user
	conns       map[*trackedConn]struct{}
	byID        map[uint64]*session
	nextSession uint64
	listeners   map[net.Listener]struct{}
	addr        net.Addr
	closed      bool
	initErr     error             // a bad Options value, reported by Listen and Serve
	caps        map[imap.Cap]bool // switchable capabilities and whether they are on
	capsGen     uint64
	fails       []*failRule

	bugMu       sync.Mutex      // guards bugs, brokenNames, selections, renamedOpen, bugScanned
	bugs        map[string]bool // wire bugs switched on (fault_wire.go)
	brokenNames map[string]bool // serverbug-on-rename: mailbox names every SELECT fails on
	selections  []*selection    // serverbug-on-rename: which mailbox each connection had selected, and when
	renamedOpen map[string]bool // serverbug-on-rename: names renamed away while a session had them selected
	bugScanned  uint64          // serverbug-on-rename: the history is read up to this clock

	capsGenA  atomic.Uint64                        // capsGen, readable without mu
	failsLeft atomic.Int64                         // number of installed fail rules, readable without mu
	logical   atomic.Pointer[func() time.Duration] // SetClock; nil: changes are not dated

	histMu  sync.Mutex
	clock   uint64
	history []Event
}

// New returns a server with no users. An unknown name in opts.DisabledCaps makes Listen
// and Serve fail with an error that names it.
func New(opts Options) *Server {
	s := &Server{
		opts:      opts,
		logger:    opts.Logger,
		users:     make(map[string]*user),
		conns:     make(map[*trackedConn]struct{}),
		byID:      make(map[uint64]*session),
		listeners: make(map[net.Listener]struct{}),
		caps:      make(map[imap.Cap]bool),
	}
	if s.logger == nil {
		s.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	lim := opts.MaxLiteralSize
	if lim <= 0 {
		lim = DefaultMaxLiteralSize
	}
	if lim > int64(^uint32(0)) {
		lim = int64(^uint32(0))
	}
	s.maxLit = uint32(lim)
	for _, c := range switchableCaps {
		s.caps[c] = true
	}
	if err := s.setCaps(opts.DisabledCaps, nil); err != nil {
		s.initErr = fmt.Errorf("fakeserver: Options.DisabledCaps: %w", err)
	}
	return s
}

// AddUser creates an account with an empty INBOX.
func (s *Server) AddUser(name, password string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[name]; ok {
		return fmt.Errorf("fakeserver: add user %q: already exists", name)
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	u := &user{
		name:      name,
		password:  password,
		mailboxes: make(map[string]*mailbox),
		rng:       rand.New(rand.NewPCG(uint64(s.opts.Seed), h.Sum64())),
	}
	u.lastUIDValidity = 1 + uint32(u.rng.IntN(1<<20))
	inbox := u.newMailbox("INBOX", nil)
	inbox.subscribed = true
	s.users[name] = u
	return nil
}

func (s *Server) lookupUser(name string) (*user, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[name]
	if !ok {
		return nil, fmt.Errorf("no user %q", name)
	}
	return u, nil
}

// Listen listens on addr (such as "127.0.0.1:0") and serves in the background until Close.
func (s *Server) Listen(addr string) (net.Addr, error) {
	if s.initErr != nil {
		return nil, s.initErr
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakeserver: listen: %w", err)
	}
	if err := s.addListener(ln); err != nil {
		ln.Close()
		return nil, err
	}
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		if err := s.serve(ln); err != nil {
			s.logger.Error("fakeserver: serve", "err", err)
		}
	}()
	return ln.Addr(), nil
}

// Serve accepts connections on ln until Close, and returns nil then.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.addListener(ln); err != nil {
		return err
	}
	return s.serve(ln)
}

func (s *Server) addListener(ln net.Listener) error {
	if s.initErr != nil {
		return s.initErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("fakeserver: server closed")
	}
	s.listeners[ln] = struct{}{}
	if s.addr == nil {
		s.addr = ln.Addr()
	}
	return nil
}

func (s *Server) serve(ln net.Listener) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("fakeserver: accept: %w", err)
		}
		s.handleConn(nc)
	}
}

// Addr returns the address of the first listener, or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Close closes every listener and connection and waits until every session has ended.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var errs []error
	for ln := range s.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	s.serving.Wait()
	s.byes.Wait()
	s.sessions.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fakeserver: close: %w", err)
	}
	return nil
}

// handleConn serves one connection with its own imapserver.Server, so that its
// capability set can change without racing with other connections.
func (s *Server) handleConn(nc net.Conn) {
	// imapserver sets a write deadline for every answer it writes: lazily applied, a
	// FETCH of 50,000 messages costs no 50,000 timer changes.
	tc := &trackedConn{Conn: s.wrapBugs(deadline.Wrap(nc)), srv: s}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[tc] = struct{}{}
	caps, gen := s.capSetLocked()
	s.sessions.Add(1)
	s.mu.Unlock()

	is := imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return s.newSession(c, tc, caps, gen), nil, nil
		},
		Caps:         caps,
		Logger:       imapLogger{s.logger},
		InsecureAuth: true,
	})
	if err := is.Serve(&oneConnListener{conn: tc}); err != nil {
		s.logger.Error("fakeserver: serve connection", "err", err)
	}
}

// switchableCaps are the capabilities a scenario can switch off and on.
var switchableCaps = []imap.Cap{
	imap.CapUIDPlus, imap.CapMove, imap.CapIdle, imap.CapESearch, imap.CapListExtended,
	imap.CapListStatus, imap.CapSpecialUse, imap.CapLiteralPlus, imap.CapNamespace,
}

// Capabilities returns the switchable capabilities that are on now, sorted.
func (s *Server) Capabilities() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for c, on := range s.caps {
		if on {
			out = append(out, string(c))
		}
	}
	slices.Sort(out)
	return out
}

// capSetLocked returns a fresh imapserver capability set for the current switches.
func (s *Server) capSetLocked() (imap.CapSet, uint64) {
	set := imap.CapSet{imap.CapIMAP4rev1: {}}
	for c, on := range s.caps {
		if on && c != imap.CapIdle {
			set[c] = struct{}{}
		}
	}
	return set, s.capsGen
}

func (s *Server) setCaps(disable, enable []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	check := func(names []string) ([]imap.Cap, error) {
		var out []imap.Cap
		for _, n := range names {
			c := imap.Cap(upper(n))
			if _, ok := s.caps[c]; !ok {
				return nil, fmt.Errorf("fakeserver: caps: unknown capability %q (known: %v)", n, switchableCaps)
			}
			out = append(out, c)
		}
		return out, nil
	}
	dis, err := check(disable)
	if err != nil {
		return err
	}
	en, err := check(enable)
	if err != nil {
		return err
	}
	for _, c := range dis {
		s.caps[c] = false
	}
	for _, c := range en {
		s.caps[c] = true
	}
	s.capsGen++
	s.capsGenA.Store(s.capsGen)
	return nil
}

// capOn reports whether a switchable capability is on now.
func (s *Server) capOn(c imap.Cap) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.caps[c]
}

// trackedConn is a server connection: it can be dropped from outside, adds the configured
// latency before the first write that follows a read, and coalesces writes.
//
// go-imap flushes after every response line, which on a 50,000-message FETCH means 50,000
// write system calls. trackedConn keeps written bytes until the server goes back to reading
// the client (the response is then complete), the buffer is large, or the connection
// closes. While a Read is waiting for the client, writes from other goroutines (IDLE
// updates, BYE from a fault) go out at once, so nothing is held back from a waiting client.
type trackedConn struct {
	net.Conn
	srv       *Server
	readSince atomic.Bool
	closeOnce sync.Once
	closeErr  error

	wmu     sync.Mutex // guards wbuf, reading
	wbuf    []byte
	reading bool // a Read is waiting for the client
}

// maxPendingWrite is the most a trackedConn keeps before writing it out.
const maxPendingWrite = 64 << 10

func (c *trackedConn) Read(p []byte) (int, error) {
	c.wmu.Lock()
	err := c.flushLocked()
	c.reading = err == nil
	c.wmu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	c.wmu.Lock()
	c.reading = false
	c.wmu.Unlock()
	if n > 0 {
		c.readSince.Store(true)
	}
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	if c.readSince.Swap(false) {
		if d := time.Duration(c.srv.latency.Load()); d > 0 {
			time.Sleep(d)
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf = append(c.wbuf, p...)
	if c.reading || len(c.wbuf) >= maxPendingWrite {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// flushLocked writes out what Write kept. The caller holds wmu.
func (c *trackedConn) flushLocked() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	if cap(c.wbuf) > maxPendingWrite*4 {
		c.wbuf = nil
	}
	return err
}

func (c *trackedConn) Close() error {
	c.closeOnce.Do(func() {
		// Best effort: a BYE written before closing still reaches the client. A writer
		// blocked on a client that does not read holds wmu; closing must not wait for it.
		if c.wmu.TryLock() {
			_ = c.flushLocked()
			c.wmu.Unlock()
		}
		c.srv.closedAddrs.Store(c.Conn.RemoteAddr().String(), true)
		c.closeErr = c.Conn.Close()
		c.srv.mu.Lock()
		delete(c.srv.conns, c)
		c.srv.mu.Unlock()
	})
	return c.closeErr
}

// oneConnListener hands one connection to an imapserver.Server, then reports itself closed.
type oneConnListener struct {
	mu   sync.Mutex
	conn net.Conn
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.conn
	l.conn = nil
	if c == nil {
		return nil, net.ErrClosed
	}
	return c, nil
}

func (l *oneConnListener) Close() error { return nil }

func (l *oneConnListener) Addr() net.Addr { return dummyAddr{} }

type dummyAddr struct{}

func (dummyAddr) Network() string { return "tcp" }
func (dummyAddr) String() string  { return "fakeserver" }

// imapLogger adapts slog to imapserver.Logger.
type imapLogger struct{ l *slog.Logger }

func (l imapLogger) Printf(format string, args ...any) {
	l.l.Debug(fmt.Sprintf(format, args...), "component", "imapserver")
}
