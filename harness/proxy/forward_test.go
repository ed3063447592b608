package proxy_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/proxy"
)

// fullSession drives a client through LOGIN, CREATE, SELECT, APPEND (with literals), FETCH
// of whole messages, STORE, MOVE, NOOP and LOGOUT, and returns the bodies it fetched.
func fullSession(c *imapclient.Client) [][]byte {
	GinkgoHelper()
	Expect(c.Login(testUser, testPassword).Wait()).To(Succeed())
	Expect(c.Create("Archive", nil).Wait()).To(Succeed())
	_, err := c.Select("INBOX", nil).Wait()
	Expect(err).NotTo(HaveOccurred())
	for i := 1; i <= 3; i++ {
		// One flag a message at most: the server writes flag sets in random order.
		appendMessage(c, "INBOX", testMessage(fmt.Sprintf("m%d", i), 10<<10), imap.FlagSeen)
	}
	// One map-ordered item per FETCH: imapclient writes those in random order.
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{
		UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{{}},
	}).Collect()
	Expect(err).NotTo(HaveOccurred())
	_, err = c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{Envelope: true}).Collect()
	Expect(err).NotTo(HaveOccurred())
	bodies := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		bodies = append(bodies, m.FindBodySection(&imap.FetchItemBodySection{}))
	}
	_, err = c.Store(imap.UIDSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsSet, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect()
	Expect(err).NotTo(HaveOccurred())
	_, err = c.Move(imap.UIDSetNum(2), "Archive").Wait()
	Expect(err).NotTo(HaveOccurred())
	Expect(c.Noop().Wait()).To(Succeed())
	Expect(c.Logout().Wait()).To(Succeed())
	return bodies
}

var _ = Describe("Forwarding", func() {
	DescribeTable("a full session through the proxy sends and receives exactly the bytes of a direct one",
		func(literalPlus bool) {
			directAddr := startServer(serverOptions{literalPlus: literalPlus})
			conn, err := net.Dial("tcp", directAddr)
			Expect(err).NotTo(HaveOccurred())
			direct := &recordConn{Conn: conn}
			directBodies := fullSession(connect(direct, nil))

			p := startProxy(startServer(serverOptions{literalPlus: literalPlus}), nil)
			conn, err = p.Dial(context.Background())
			Expect(err).NotTo(HaveOccurred())
			proxied := &recordConn{Conn: conn}
			proxiedBodies := fullSession(connect(proxied, nil))

			Expect(proxiedBodies).To(HaveLen(3))
			Expect(proxiedBodies[0]).To(Equal(testMessage("m1", 10<<10)))
			Expect(proxiedBodies).To(Equal(directBodies))
			Expect(proxied.written.String()).To(Equal(direct.written.String()))
			Expect(proxied.read.String()).To(Equal(direct.read.String()))
			Expect(proxied.read.String()).To(ContainSubstring("BODY[] {"), "the session must carry literals")
			Expect(p.Commands()).To(Equal(12), "LOGIN CREATE SELECT 3×APPEND 2×FETCH STORE MOVE NOOP LOGOUT")
		},
		Entry("with synchronizing literals", false),
		Entry("with non-synchronizing literals (LITERAL+)", true),
	)

	It("counts tagged commands only", func() {
		p := startProxy(startServer(serverOptions{}), nil)
		c := dialClient(p, nil)
		_, err := c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		appendMessage(c, "INBOX", testMessage("m1", 2000))
		idle, err := c.Idle()
		Expect(err).NotTo(HaveOccurred())
		Expect(idle.Close()).To(Succeed())
		Expect(idle.Wait()).To(Succeed())
		Expect(c.Noop().Wait()).To(Succeed())
		Expect(p.Commands()).To(Equal(5), "LOGIN SELECT APPEND IDLE NOOP; not the literal, its continuation or DONE")
	})

	It("forwards a 1 MB literal intact in both directions", func() {
		p := startProxy(startServer(serverOptions{}), nil)
		c := dialClient(p, nil)
		_, err := c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		big := testMessage("big", 1<<20)
		appendMessage(c, "INBOX", big)
		msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(msgs).To(HaveLen(1))
		Expect(msgs[0].FindBodySection(&imap.FetchItemBodySection{})).To(Equal(big))
	})
})

var _ = Describe("Latency", func() {
	It("delays each line in both directions, on an open connection, until set back to zero", func() {
		p := startProxy(startServer(serverOptions{}), nil)
		c := dialClient(p, nil)

		p.SetLatency(100 * time.Millisecond)
		start := time.Now()
		Expect(c.Noop().Wait()).To(Succeed())
		Expect(time.Since(start)).To(BeNumerically(">=", 200*time.Millisecond), "a command and its answer each wait 100ms")

		p.SetLatency(0)
		start = time.Now()
		Expect(c.Noop().Wait()).To(Succeed())
		Expect(time.Since(start)).To(BeNumerically("<", 100*time.Millisecond))
	})

	It("delays lines that arrive together once, like a network, not one after the other", func() {
		p := startProxy(startServer(serverOptions{}), nil)
		c := dialClient(p, nil)
		_, err := c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		for i := range 20 {
			appendMessage(c, "INBOX", testMessage(fmt.Sprintf("m%d", i), 500))
		}

		p.SetLatency(100 * time.Millisecond)
		start := time.Now()
		msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20),
			&imap.FetchOptions{UID: true, Flags: true}).Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(msgs).To(HaveLen(20))
		elapsed := time.Since(start)
		Expect(elapsed).To(BeNumerically(">=", 200*time.Millisecond))
		Expect(elapsed).To(BeNumerically("<", 1500*time.Millisecond), "21 response lines must not wait 100ms each")
	})
})

// literalAnswer accepts literals announced by a1 and refuses those of a2.
func literalAnswer(line string) []string {
	switch {
	case line == "a1 APPEND INBOX {5}":
		return []string{"+ go ahead"}
	case line == "a2 APPEND INBOX {5}":
		return []string{"a2 NO [TOOBIG] too big"}
	case line == "hello":
		return []string{"a1 OK [APPENDUID 1 1] done"}
	case strings.HasPrefix(line, "a"):
		tag, _, _ := strings.Cut(line, " ")
		return []string{tag + " OK done"}
	}
	return []string{"* BAD unexpected " + line}
}

var _ = Describe("Synchronizing literals", func() {
	It("waits for the server's answer and follows a refusal without reading the next command as literal data", func() {
		p := startProxy(startScripted("* OK ready", literalAnswer), nil)
		rc, _ := dialRaw(p)
		rc.send("a1 APPEND INBOX {5}")
		Expect(rc.readLine()).To(Equal("+ go ahead"))
		rc.send("hello")
		Expect(rc.readLine()).To(Equal("a1 OK [APPENDUID 1 1] done"))

		rc.send("a2 APPEND INBOX {5}")
		Expect(rc.readLine()).To(Equal("a2 NO [TOOBIG] too big"))
		rc.send("a3 NOOP")
		Expect(rc.readLine()).To(Equal("a3 OK done"))

		Expect(texts(p, proxy.DirClient)).To(Equal([]string{"a1 APPEND INBOX {5 bytes}", "a2 APPEND INBOX {5 bytes}", "a3 NOOP"}))
		Expect(p.Commands()).To(Equal(3))
	})
})

// startTLSAnswer accepts STARTTLS from a1, refuses it from a2 and answers OK to the rest.
func startTLSAnswer(line string) []string {
	tag, _, _ := strings.Cut(line, " ")
	switch line {
	case "a1 STARTTLS":
		return []string{"a1 OK begin TLS negotiation now"}
	case "a2 STARTTLS":
		return []string{"a2 BAD no TLS here"}
	}
	return []string{tag + " OK done"}
}

var _ = Describe("STARTTLS", func() {
	It("passes the stream through unread once the server accepts it", func() {
		p := startProxy(startScripted("* OK ready", startTLSAnswer), nil)
		rc, _ := dialRaw(p)
		rc.send("a1 STARTTLS")
		Expect(rc.readLine()).To(Equal("a1 OK begin TLS negotiation now"))
		// Not IMAP any more: a literal announcement must not swallow the next line.
		rc.send("zz {3}")
		Expect(rc.readLine()).To(Equal("zz OK done"))
		rc.send("b1 NOOP")
		Expect(rc.readLine()).To(Equal("b1 OK done"))

		Expect(p.Commands()).To(Equal(1))
		Expect(texts(p, proxy.DirClient)).To(Equal([]string{"a1 STARTTLS"}))
		Expect(texts(p, proxy.DirEvent)).To(ContainElement("connection 1 passes bytes through unread after a1 OK begin TLS negotiation now"))
	})

	It("goes on reading lines when the server refuses it", func() {
		p := startProxy(startScripted("* OK ready", startTLSAnswer), nil)
		rc, _ := dialRaw(p)
		rc.send("a2 STARTTLS")
		Expect(rc.readLine()).To(Equal("a2 BAD no TLS here"))
		rc.send("a3 NOOP")
		Expect(rc.readLine()).To(Equal("a3 OK done"))
		Expect(p.Commands()).To(Equal(2))
		Expect(texts(p, proxy.DirClient)).To(Equal([]string{"a2 STARTTLS", "a3 NOOP"}))
	})
})
