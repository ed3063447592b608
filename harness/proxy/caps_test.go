package proxy_test

import (
	"context"
	"strings"

	"github.com/emersion/go-imap/v2"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// capsAnswer answers CAPABILITY and ENABLE like a server with CONDSTORE, QRESYNC and MOVE,
// and anything else with OK.
func capsAnswer(line string) []string {
	tag, rest, _ := strings.Cut(line, " ")
	switch strings.ToUpper(rest) {
	case "CAPABILITY":
		return []string{"* CAPABILITY IMAP4rev1 condstore QRESYNC MOVE UIDPLUS", tag + " OK done"}
	case "ENABLE CONDSTORE QRESYNC":
		return []string{"* ENABLED CONDSTORE QRESYNC", tag + " OK enabled"}
	case "LOGIN ALICE SECRET":
		return []string{tag + " OK [CAPABILITY IMAP4rev1 CONDSTORE QRESYNC MOVE] logged in"}
	}
	return []string{tag + " OK [READ-WRITE] done {5}"}
}

var _ = Describe("MaskCaps", func() {
	It("removes MOVE from the CAPABILITY response and the LOGIN capability code of a real server", func() {
		p := startProxy(startServer(serverOptions{}), nil)
		p.MaskCaps("move")

		conn, err := p.Dial(context.Background())
		Expect(err).NotTo(HaveOccurred())
		rec := &recordConn{Conn: conn}
		c := connect(rec, nil)
		Expect(c.Login(testUser, testPassword).Wait()).To(Succeed())
		Expect(c.Caps()).NotTo(HaveKey(imap.CapMove), "LOGIN")
		caps, err := c.Capability().Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(caps).NotTo(HaveKey(imap.CapMove), "CAPABILITY")
		Expect(caps).To(HaveKey(imap.CapUIDPlus), "CAPABILITY")

		read := rec.read.String()
		Expect(strings.Count(read, "[CAPABILITY ")).To(Equal(2), "greeting and LOGIN")
		Expect(read).To(ContainSubstring("UIDPLUS"))
		Expect(read).To(ContainSubstring("* CAPABILITY "))
		Expect(read).NotTo(ContainSubstring("MOVE"))

		direct := directClient(startServer(serverOptions{}), nil)
		Expect(direct.Caps()).To(HaveKey(imap.CapMove), "the server does offer MOVE")
	})

	It("masks QRESYNC with CONDSTORE, case-insensitively, in the greeting and every other place, on open connections", func() {
		p := startProxy(startScripted("* OK [CAPABILITY IMAP4rev1 CONDSTORE QRESYNC MOVE] ready", capsAnswer), nil)
		rc, greeting := dialRaw(p)
		Expect(greeting).To(Equal("* OK [CAPABILITY IMAP4rev1 CONDSTORE QRESYNC MOVE] ready"), "nothing masked yet")

		p.MaskCaps("CondStore")
		rc.send("a1 LOGIN alice secret")
		Expect(rc.readLine()).To(Equal("a1 OK [CAPABILITY IMAP4rev1 MOVE] logged in"))
		rc.send("a2 CAPABILITY")
		Expect(rc.until("a2 ")).To(Equal([]string{"* CAPABILITY IMAP4rev1 MOVE UIDPLUS", "a2 OK done"}))
		rc.send("a3 ENABLE CONDSTORE QRESYNC")
		Expect(rc.until("a3 ")).To(Equal([]string{"* ENABLED", "a3 OK enabled"}))

		_, greeting = dialRaw(p)
		Expect(greeting).To(Equal("* OK [CAPABILITY IMAP4rev1 MOVE] ready"))

		p.MaskCaps()
		rc.send("a4 CAPABILITY")
		Expect(rc.until("a4 ")).To(Equal([]string{"* CAPABILITY IMAP4rev1 condstore QRESYNC MOVE UIDPLUS", "a4 OK done"}))
	})

	It("does not read a literal into a status response's text", func() {
		p := startProxy(startScripted("* OK ready", capsAnswer), nil)
		rc, _ := dialRaw(p)
		rc.send("a1 NOOP")
		Expect(rc.readLine()).To(Equal("a1 OK [READ-WRITE] done {5}"))
		rc.send("a2 NOOP")
		Expect(rc.readLine()).To(Equal("a2 OK [READ-WRITE] done {5}"))
	})
})
