package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/proxy"
)

const (
	testUser     = "alice"
	testPassword = "correct-horse-battery"
	// literalPassword is not ASCII, so imapclient has to send it as a literal.
	literalPassword = "pässwörd-staple"
)

// serverOptions configure a test upstream.
type serverOptions struct {
	literalPlus bool   // advertise LITERAL+ (clients then send non-synchronizing literals)
	password    string // alice's password; testPassword if empty
}

// newMemServer builds go-imap's in-memory server with user alice and an INBOX.
func newMemServer(opts serverOptions) (*imapserver.Server, error) {
	password := opts.password
	if password == "" {
		password = testPassword
	}
	mem := imapmemserver.New()
	user := imapmemserver.NewUser(testUser, password)
	if err := user.Create("INBOX", nil); err != nil {
		return nil, err
	}
	mem.AddUser(user)
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapMove: {}, imap.CapUIDPlus: {}}
	if opts.literalPlus {
		caps[imap.CapLiteralPlus] = struct{}{}
	}
	return imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         caps,
		InsecureAuth: true,
		Logger:       discardLogger{},
	}), nil
}

// startServer runs the in-memory server on loopback and returns its address. It is closed
// when the spec ends.
func startServer(opts serverOptions) string {
	GinkgoHelper()
	srv, err := newMemServer(opts)
	Expect(err).NotTo(HaveOccurred())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	served := make(chan error, 1)
	go func() {
		defer GinkgoRecover()
		served <- srv.Serve(ln)
	}()
	DeferCleanup(func() {
		Expect(srv.Close()).To(Succeed())
		Eventually(served).Should(Receive(BeNil()))
	})
	return ln.Addr().String()
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// dialer returns an Upstream function that connects to addr.
func dialer(addr string) func(ctx context.Context) (net.Conn, error) {
	return func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
}

// startProxy starts a proxy for device "phone" in front of addr, closed when the spec ends.
func startProxy(addr string, gate proxy.Gate) *proxy.Proxy {
	GinkgoHelper()
	p, err := proxy.New(proxy.Options{Name: "phone", Upstream: dialer(addr), Gate: gate})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(p.Close)
	return p
}

// syncBuffer is a bytes.Buffer safe for the client's reader and writer goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recordConn records what a client reads and writes on its connection, separately.
type recordConn struct {
	net.Conn
	read, written syncBuffer
}

func (r *recordConn) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	_, _ = r.read.Write(b[:n]) // a syncBuffer never fails
	return n, err
}

func (r *recordConn) Write(b []byte) (int, error) {
	n, err := r.Conn.Write(b)
	_, _ = r.written.Write(b[:n]) // a syncBuffer never fails
	return n, err
}

// connect opens an imapclient session over conn; raw, if not nil, receives every byte the
// client sends and receives. The client is closed when the spec ends.
func connect(conn net.Conn, raw *syncBuffer) *imapclient.Client {
	GinkgoHelper()
	opts := &imapclient.Options{}
	if raw != nil {
		opts.DebugWriter = raw
	}
	c := imapclient.New(conn, opts)
	DeferCleanup(func() { _ = c.Close() }) // may already be closed by a fault
	Expect(c.WaitGreeting()).To(Succeed())
	return c
}

// dialClient connects an imapclient through p and logs in as alice.
func dialClient(p *proxy.Proxy, raw *syncBuffer) *imapclient.Client {
	GinkgoHelper()
	conn, err := p.Dial(context.Background())
	Expect(err).NotTo(HaveOccurred())
	c := connect(conn, raw)
	Expect(c.Login(testUser, testPassword).Wait()).To(Succeed())
	return c
}

// directClient connects an imapclient straight to addr and logs in as alice.
func directClient(addr string, raw *syncBuffer) *imapclient.Client {
	GinkgoHelper()
	conn, err := net.Dial("tcp", addr)
	Expect(err).NotTo(HaveOccurred())
	c := connect(conn, raw)
	Expect(c.Login(testUser, testPassword).Wait()).To(Succeed())
	return c
}

// mailboxes lists alice's mailboxes on addr, bypassing any proxy.
func mailboxes(addr string) []string {
	GinkgoHelper()
	c := directClient(addr, nil)
	list, err := c.List("", "*", nil).Collect()
	Expect(err).NotTo(HaveOccurred())
	names := make([]string, 0, len(list))
	for _, m := range list {
		names = append(names, m.Mailbox)
	}
	Expect(c.Logout().Wait()).To(Succeed())
	return names
}

// testMessage returns an RFC 5322 message with a body of about size bytes.
func testMessage(label string, size int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Message-ID: <%s.1@syncharness.invalid>\r\nSubject: %s\r\nFrom: a@example.org\r\n\r\n%s\r\n", label, label, label)
	line := strings.Repeat("x", 76) + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return []byte(b.String())
}

// appendMessage appends msg to mailbox with a fixed INTERNALDATE, so two servers given the
// same session answer identically.
func appendMessage(c *imapclient.Client, mailbox string, msg []byte, flags ...imap.Flag) *imap.AppendData {
	GinkgoHelper()
	cmd := c.Append(mailbox, int64(len(msg)), &imap.AppendOptions{
		Flags: flags,
		Time:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	})
	_, err := cmd.Write(msg)
	Expect(err).NotTo(HaveOccurred())
	Expect(cmd.Close()).To(Succeed())
	data, err := cmd.Wait()
	Expect(err).NotTo(HaveOccurred())
	return data
}

// startScripted runs a minimal line-based upstream on loopback: it sends greeting, then
// answers each line it receives with answer(line) (lines without CRLF). It is closed when
// the spec ends.
func startScripted(greeting string, answer func(line string) []string) string {
	GinkgoHelper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer GinkgoRecover()
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				defer conn.Close()
				if _, err := fmt.Fprintf(conn, "%s\r\n", greeting); err != nil {
					return
				}
				r := bufio.NewReader(conn)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					for _, out := range answer(strings.TrimRight(line, "\r\n")) {
						if _, err := fmt.Fprintf(conn, "%s\r\n", out); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	DeferCleanup(func() {
		Expect(ln.Close()).To(Succeed())
		mu.Lock()
		for _, c := range conns {
			_ = c.Close() // may already be closed by its peer
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// rawConn is a line-oriented client for talking IMAP by hand.
type rawConn struct {
	conn net.Conn
	r    *bufio.Reader
}

// dialRaw connects to the proxy by hand and reads the greeting.
func dialRaw(p *proxy.Proxy) (*rawConn, string) {
	GinkgoHelper()
	conn, err := p.Dial(context.Background())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = conn.Close() }) // may already be closed by a fault
	Expect(conn.SetDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
	rc := &rawConn{conn: conn, r: bufio.NewReader(conn)}
	return rc, rc.readLine()
}

func (rc *rawConn) send(line string) {
	GinkgoHelper()
	_, err := fmt.Fprintf(rc.conn, "%s\r\n", line)
	Expect(err).NotTo(HaveOccurred())
}

func (rc *rawConn) readLine() string {
	GinkgoHelper()
	line, err := rc.r.ReadString('\n')
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimRight(line, "\r\n")
}

// until reads lines up to and including the first that starts with prefix.
func (rc *rawConn) until(prefix string) []string {
	GinkgoHelper()
	var lines []string
	for {
		l := rc.readLine()
		lines = append(lines, l)
		if strings.HasPrefix(l, prefix) {
			return lines
		}
	}
}
