package fakeserver_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
)

// startServer starts a server with user alice (password secret) on loopback.
func startServer(opts fakeserver.Options) (*fakeserver.Server, string) {
	GinkgoHelper()
	srv := fakeserver.New(opts)
	Expect(srv.AddUser("alice", "secret")).To(Succeed())
	addr, err := srv.Listen("127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(srv.Close)
	return srv, addr.String()
}

// message returns a small RFC 5322 message whose Subject and body name label.
func message(label string) []byte {
	return []byte(fmt.Sprintf("From: a@example.org\r\nTo: b@example.org\r\nSubject: %s\r\nMessage-ID: <%s@example.org>\r\n\r\n%s body\r\n", label, label, label))
}

func deliver(srv *fakeserver.Server, mailbox string, labels ...string) {
	GinkgoHelper()
	for _, l := range labels {
		Expect(srv.Apply(fakeserver.Deliver{User: "alice", Mailbox: mailbox, Body: message(l)})).To(Succeed())
	}
}

// raw is a line-level IMAP client for exact assertions on what the server sends.
type raw struct {
	conn net.Conn
	r    *bufio.Reader
	n    int
}

// dialRaw connects and reads the greeting.
func dialRaw(addr string) *raw {
	GinkgoHelper()
	conn, err := net.Dial("tcp", addr)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(conn.Close)
	c := &raw{conn: conn, r: bufio.NewReader(conn)}
	Expect(c.line()).To(HavePrefix("* OK"))
	return c
}

// login dials and logs in as alice.
func login(addr string) *raw {
	GinkgoHelper()
	c := dialRaw(addr)
	c.ok("LOGIN alice secret")
	return c
}

var literalRE = regexp.MustCompile(`\{(\d+)\+?\}$`)

// line reads one response line, with any literals inlined.
func (c *raw) line() string {
	GinkgoHelper()
	Expect(c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
	var sb strings.Builder
	for {
		l, err := c.r.ReadString('\n')
		Expect(err).NotTo(HaveOccurred(), "reading a response line after %q", sb.String())
		l = strings.TrimRight(l, "\r\n")
		sb.WriteString(l)
		m := literalRE.FindStringSubmatch(l)
		if m == nil {
			return sb.String()
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		_, err = io.ReadFull(c.r, buf)
		Expect(err).NotTo(HaveOccurred())
		sb.Write(buf)
	}
}

// send writes a command and returns its tag.
func (c *raw) send(cmd string) string {
	GinkgoHelper()
	c.n++
	tag := fmt.Sprintf("t%d", c.n)
	_, err := fmt.Fprintf(c.conn, "%s %s\r\n", tag, cmd)
	Expect(err).NotTo(HaveOccurred())
	return tag
}

// do sends a command and returns its untagged responses and the tagged status line
// without the tag.
func (c *raw) do(cmd string) (untagged []string, status string) {
	GinkgoHelper()
	tag := c.send(cmd)
	return c.until(tag)
}

func (c *raw) until(tag string) (untagged []string, status string) {
	GinkgoHelper()
	for {
		l := c.line()
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			return untagged, rest
		}
		untagged = append(untagged, l)
	}
}

// ok runs a command that must succeed and returns its untagged responses.
func (c *raw) ok(cmd string) []string {
	GinkgoHelper()
	untagged, status := c.do(cmd)
	Expect(status).To(HavePrefix("OK"), "command %q", cmd)
	return untagged
}

// dialClient connects an imapclient and logs in as alice.
func dialClient(addr string, opts *imapclient.Options) *imapclient.Client {
	GinkgoHelper()
	c, err := imapclient.DialInsecure(addr, opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.Close)
	Expect(c.Login("alice", "secret").Wait()).To(Succeed())
	return c
}

// uidsOf lists the UIDs of a mailbox in a snapshot.
func uidsOf(srv *fakeserver.Server, mailbox string) []uint32 {
	GinkgoHelper()
	snap, err := srv.Snapshot("alice")
	Expect(err).NotTo(HaveOccurred())
	m, ok := snap.Mailbox(mailbox)
	Expect(ok).To(BeTrue(), "mailbox %q exists", mailbox)
	var out []uint32
	for _, msg := range m.Messages {
		out = append(out, msg.UID)
	}
	return out
}
