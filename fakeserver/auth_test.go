package fakeserver_test

import (
	"encoding/base64"
	"io"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
)

var _ = Describe("AUTHENTICATE", func() {
	var (
		srv  *fakeserver.Server
		addr string
	)
	BeforeEach(func() {
		srv = fakeserver.New(fakeserver.Options{Seed: 42})
		Expect(srv.AddUser("alice", "secret")).To(Succeed())
		a, err := srv.Listen("127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		addr = a.String()
		DeferCleanup(func() {
			// A session stuck inside the server would hold Close forever: bound it, so a
			// deadlock fails the spec instead of hanging the suite.
			closed := make(chan struct{})
			go func() { srv.Close(); close(closed) }()
			Eventually(closed).WithTimeout(5*time.Second).Should(BeClosed(), "the server closes: no session is stuck")
		})
	})
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00secret"))

	It("logs in with PLAIN, with an initial response or after a continuation", func() {
		c := dialRaw(addr)
		c.ok("AUTHENTICATE PLAIN " + plain)
		c.ok("SELECT INBOX")

		c = dialRaw(addr)
		c.send("AUTHENTICATE PLAIN")
		Expect(c.line()).To(HavePrefix("+"))
		_, err := io.WriteString(c.conn, plain+"\r\n")
		Expect(err).NotTo(HaveOccurred())
		_, status := c.until("t1")
		Expect(status).To(HavePrefix("OK"))

		c = dialRaw(addr)
		_, status = c.do("AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong")))
		Expect(status).To(HavePrefix("NO"))
		_, status = c.do("AUTHENTICATE CRAM-MD5")
		Expect(status).To(HavePrefix("NO"))
	})

	It("takes an injected BYE: the client reads the BYE and the server closes the connection", func() {
		Expect(srv.Apply(fakeserver.Fail{N: 1, Response: "BYE going away"})).To(Succeed())
		c := dialRaw(addr)
		c.send("AUTHENTICATE PLAIN " + plain)
		Expect(drainToEOF(c)).To(HavePrefix("* BYE going away"))
		// The failure is spent: the next session logs in.
		c = dialRaw(addr)
		c.ok("AUTHENTICATE PLAIN " + plain)
	})

	It("takes an injected NO for AUTHENTICATE; one for LOGIN waits for a LOGIN", func() {
		Expect(srv.Apply(fakeserver.Fail{N: 1, Command: "authenticate", Response: "NO [UNAVAILABLE] later"})).To(Succeed())
		c := dialRaw(addr)
		_, status := c.do("AUTHENTICATE PLAIN " + plain)
		Expect(status).To(Equal("NO [UNAVAILABLE] later"))
		c.ok("AUTHENTICATE PLAIN " + plain)

		Expect(srv.Apply(fakeserver.Fail{N: 1, Command: "login", Response: "BYE going away"})).To(Succeed())
		c = dialRaw(addr)
		c.ok("AUTHENTICATE PLAIN " + plain)
		c = dialRaw(addr)
		c.send("LOGIN alice secret")
		Expect(drainToEOF(c)).To(HavePrefix("* BYE going away"))
	})
})
