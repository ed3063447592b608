package fakeserver_test

import (
	"io"
	"net"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
)

var _ = Describe("bad input", func() {
	var (
		srv  *fakeserver.Server
		addr string
		c    *raw
	)
	BeforeEach(func() {
		srv, addr = startServer(fakeserver.Options{MaxLiteralSize: 1000})
		deliver(srv, "INBOX", "m1", "m2")
		c = login(addr)
		c.ok("SELECT INBOX")
	})

	DescribeTable("gets a clear response and the connection keeps working",
		func(cmd, want string) {
			_, status := c.do(cmd)
			Expect(status).To(MatchRegexp(want))
			c.ok("SELECT INBOX") // a failed SELECT leaves no mailbox selected
			Expect(c.ok("FETCH 1:* (UID)")).To(HaveLen(2))
		},
		Entry("an unknown command", "FROB 1", `^BAD`),
		// go-imap's parser answers these before the backend sees them, with NO [SERVERBUG].
		Entry("a malformed sequence set", "FETCH 1:x (UID)", `^(BAD|NO)`),
		Entry("a zero sequence number", "FETCH 0 (UID)", `^(BAD|NO)`),
		Entry("a missing argument", "UID STORE 1", `^BAD`),
		Entry("an unknown fetch item", "FETCH 1 (FROB)", `^BAD`),
		Entry("APPEND to a missing mailbox", "APPEND Nope {3+}\r\nabc", `^NO \[TRYCREATE\]`),
		Entry("COPY to a missing mailbox", "COPY 1 Nope", `^NO \[TRYCREATE\]`),
		Entry("MOVE to a missing mailbox", "MOVE 1 Nope", `^NO \[TRYCREATE\]`),
		Entry("SELECT of a missing mailbox", "SELECT Nope", `^NO \[NONEXISTENT\]`),
		Entry("STATUS of a missing mailbox", "STATUS Nope (MESSAGES)", `^NO \[NONEXISTENT\]`),
		Entry("CREATE of an existing mailbox", "CREATE INBOX", `^NO \[ALREADYEXISTS\]`),
		Entry("RENAME onto an existing mailbox", "RENAME INBOX INBOX", `^NO`),
		Entry("DELETE of INBOX", "DELETE INBOX", `^NO`),
		Entry("a sequence number past the end", "FETCH 99 (UID)", `^OK`),
	)

	It("refuses an APPEND over the literal limit and advertises the limit", func() {
		caps := c.ok("CAPABILITY")
		Expect(caps[0]).To(ContainSubstring("APPENDLIMIT=1000"))
		_, status := c.do("APPEND INBOX {2000}")
		Expect(status).To(HavePrefix("NO [TOOBIG]"))
		big := strings.Repeat("x", 999)
		tag := c.send("APPEND INBOX {999}")
		Expect(c.line()).To(HavePrefix("+"))
		_, err := c.conn.Write([]byte(big + "\r\n"))
		Expect(err).NotTo(HaveOccurred())
		_, status = c.until(tag)
		Expect(status).To(HavePrefix("OK [APPENDUID"))
	})

	It("stores nothing of an APPEND whose literal the connection's end cut short", func() {
		tag := c.send("APPEND INBOX {999}")
		Expect(c.line()).To(HavePrefix("+"))
		_, err := c.conn.Write([]byte(strings.Repeat("x", 100)))
		Expect(err).NotTo(HaveOccurred())
		Expect(c.conn.(*net.TCPConn).CloseWrite()).To(Succeed())
		// Whatever the server says before it hangs up, it has dealt with the APPEND.
		Expect(c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
		rest, err := io.ReadAll(c.r)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(rest)).NotTo(ContainSubstring(tag + " OK"))
		other := login(addr)
		Expect(other.ok("STATUS INBOX (MESSAGES)")).To(ContainElement(ContainSubstring("(MESSAGES 2)")))
	})

	It("answers NO on the session's own deleted selected mailbox and serves the others", func() {
		c.ok("CREATE Box")
		c.ok("SELECT Box")
		other := login(addr)
		c.ok("DELETE Box")
		_, status := c.do("FETCH 1:* (UID)")
		Expect(status).To(HavePrefix("NO [NONEXISTENT]"))
		_, status = c.do("STORE 1 +FLAGS (\\Seen)")
		Expect(status).To(HavePrefix("NO [NONEXISTENT]"))
		_, status = c.do("SELECT Box")
		Expect(status).To(HavePrefix("NO"))
		c.ok("SELECT INBOX")
		other.ok("NOOP")
	})

	It("refuses STORE, EXPUNGE and MOVE in an EXAMINEd mailbox", func() {
		c.ok("CREATE Archive")
		c.ok("EXAMINE INBOX")
		for _, cmd := range []string{`STORE 1 +FLAGS (\Seen)`, "EXPUNGE", "MOVE 1 Archive"} {
			_, status := c.do(cmd)
			Expect(status).To(HavePrefix("NO [READ-ONLY]"), cmd)
		}
	})

	It("refuses a wrong password", func() {
		d := dialRaw(addr)
		_, status := d.do("LOGIN alice wrong")
		Expect(status).To(HavePrefix("NO [AUTHENTICATIONFAILED]"))
		d.ok("LOGIN alice secret")
	})
})
