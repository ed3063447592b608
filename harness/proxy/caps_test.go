package proxy_test

import (
	"context"
	"strings"

	"github.com/emersion/go-imap/v2"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/proxy"
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

	It("answers commands of a masked extension with BAD, as a server without it would, and forwards nothing", func() {
		p := startProxy(startServer(serverOptions{}), nil)
		p.MaskCaps("MOVE", "UIDPLUS", "IDLE")
		c := dialClient(p, nil)
		_, err := c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Create("Archive", nil).Wait()).To(Succeed())
		data := appendMessage(c, "INBOX", testMessage("m1", 500))
		Expect(data.UID).To(BeZero(), "APPENDUID is stripped with UIDPLUS")
		before := p.Commands()

		_, err = c.UIDExpunge(imap.UIDSetNum(1)).Collect()
		Expect(err).To(MatchError(ContainSubstring("UID EXPUNGE is not supported (UIDPLUS is masked by the proxy)")))
		_, err = c.Idle()
		Expect(err).To(HaveOccurred())
		Expect(p.Commands()).To(Equal(before), "refused commands never reach the server")

		_, err = c.Move(imap.SeqSetNum(1), "Archive").Wait()
		Expect(err).NotTo(HaveOccurred(), "imapclient falls back to COPY, STORE, EXPUNGE without MOVE")
		Expect(texts(p, proxy.DirClient)).NotTo(ContainElement(ContainSubstring("MOVE")))
		Expect(texts(p, proxy.DirServer)).NotTo(ContainElement(ContainSubstring("COPYUID")))
		Expect(texts(p, proxy.DirEvent)).To(ContainElement("connection 1 refused UID EXPUNGE: UIDPLUS is masked"))
		Expect(c.Noop().Wait()).To(Succeed())
	})

	It("reads past the literal of a refused command", func() {
		p := startProxy(startScripted("* OK ready", capsAnswer), nil)
		p.MaskCaps("ID")
		rc, _ := dialRaw(p)
		rc.send("a1 ID (\"name\" {3+}")
		rc.send("abc)")
		Expect(rc.readLine()).To(Equal("a1 BAD ID is not supported (ID is masked by the proxy)"))
		rc.send("a2 CAPABILITY")
		Expect(rc.until("a2 ")).To(HaveLen(2))
		Expect(texts(p, proxy.DirClient)).To(Equal([]string{`a1 ID ("name" {3 bytes})`, "a2 CAPABILITY"}))
		Expect(p.Commands()).To(Equal(1))
	})
})
