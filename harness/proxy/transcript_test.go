package proxy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/proxy"
)

// transcriptText returns what WriteTranscript writes.
func transcriptText(p *proxy.Proxy) string {
	GinkgoHelper()
	var out bytes.Buffer
	Expect(p.WriteTranscript(&out)).To(Succeed())
	return out.String()
}

// texts returns the texts of the transcript lines in direction dir, or of the events.
func texts(p *proxy.Proxy, dir byte) []string {
	lines := p.Transcript()
	if dir == proxy.DirEvent {
		lines = p.Events()
	}
	var out []string
	for _, l := range lines {
		if l.Dir == dir {
			out = append(out, l.Text)
		}
	}
	return out
}

var _ = Describe("Transcript", func() {
	It("records both directions with time offsets, one line per protocol line, literals summarised", func() {
		p := startProxy(startServer(serverOptions{}), nil)
		c := dialClient(p, nil)
		_, err := c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		msg := testMessage("m1", 10<<10)
		appendMessage(c, "INBOX", msg, imap.FlagSeen)
		_, err = c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Logout().Wait()).To(Succeed())
		Eventually(c.Closed()).Should(BeClosed())

		Expect(texts(p, proxy.DirClient)).To(ContainElements(
			`T1 LOGIN "alice" [REDACTED]`,
			`T2 SELECT INBOX`,
			fmt.Sprintf(`T3 APPEND INBOX (\Seen) " 2-Jan-2026 03:04:05 +0000" {%d bytes}`, len(msg)),
			`T4 FETCH 1 (UID BODY[])`,
			`T5 LOGOUT`,
		))
		Expect(texts(p, proxy.DirServer)).To(ContainElements(
			HavePrefix("* OK [CAPABILITY IMAP4rev1"),
			"+ Ready for literal data",
			fmt.Sprintf("* 1 FETCH (UID 1 BODY[] {%d bytes})", len(msg)),
			"T5 OK LOGOUT completed",
		))
		Eventually(func() []string { return texts(p, proxy.DirEvent) }).Should(Equal([]string{
			"connection 1 opened", "connection 1 closed by server",
		}))

		written := transcriptText(p)
		Expect(written).NotTo(ContainSubstring("xxxxxxxx"), "literal contents stay out")
		lines := strings.Split(strings.TrimSuffix(written, "\n"), "\n")
		Expect(lines).To(HaveLen(len(p.Transcript()) + len(p.Events())))
		for _, l := range lines {
			Expect(l).To(MatchRegexp(`^\+\d+\.\d{3}s [CS*] \S`))
		}
		Expect(lines).To(ContainElement(MatchRegexp(`^\+0\.\d{3}s C T2 SELECT INBOX$`)))
		for _, l := range p.Transcript() {
			Expect(l.Time).To(BeNumerically(">=", 0))
			Expect(l.Conn).To(Equal(1))
			Expect(l.Dir).To(BeElementOf(proxy.DirClient, proxy.DirServer))
		}
		Expect(p.Events()).To(HaveEach(HaveField("Dir", proxy.DirEvent)))
	})

	It("shortens long lines and says how much it left out", func() {
		p := startProxy(startServer(serverOptions{}), nil)
		c := dialClient(p, nil)
		long := strings.Repeat("n", 1000)
		Expect(c.Create(long, nil).Wait()).To(Succeed())
		Expect(texts(p, proxy.DirClient)).To(ContainElement(And(
			HavePrefix(`T2 CREATE "nnnn`),
			HaveSuffix("... (712 more bytes)"),
			HaveLen(300+len("... (712 more bytes)")),
		)))
	})

	DescribeTable("never shows the LOGIN password",
		func(password, wire string) {
			p := startProxy(startServer(serverOptions{password: password}), nil)
			conn, err := p.Dial(context.Background())
			Expect(err).NotTo(HaveOccurred())
			rec := &recordConn{Conn: conn}
			c := connect(rec, nil)
			Expect(c.Login(testUser, password).Wait()).To(Succeed())
			Expect(c.Noop().Wait()).To(Succeed())
			Expect(rec.written.String()).To(MatchRegexp(wire), "the client sent the password this way")

			written := transcriptText(p)
			Expect(written).NotTo(ContainSubstring(password))
			Expect(written).NotTo(ContainSubstring("staple"))
			Expect(written).NotTo(ContainSubstring("horse"))
			Expect(written).To(MatchRegexp(`(?m)^\+\d+\.\d{3}s C T1 LOGIN "alice" \[REDACTED\]$`))
			Expect(p.Commands()).To(Equal(2))
		},
		Entry("as a quoted string", testPassword, `T1 LOGIN "alice" "correct-horse-battery"`),
		Entry("as a non-synchronizing literal", literalPassword, `T1 LOGIN "alice" \{17\+\}\r\n`),
	)

	It("never shows the LOGIN password sent as a synchronizing literal, after a user name literal", func() {
		p := startProxy(startServer(serverOptions{password: literalPassword}), nil)
		rc, _ := dialRaw(p)
		rc.send("a1 LOGIN {5}")
		Expect(rc.readLine()).To(HavePrefix("+"))
		rc.send("alice {17}")
		Expect(rc.readLine()).To(HavePrefix("+"))
		rc.send(literalPassword)
		Expect(rc.readLine()).To(HavePrefix("a1 OK"))
		rc.send("a2 NOOP")
		Expect(rc.until("a2 ")).To(ContainElement(HavePrefix("a2 OK")))

		Expect(transcriptText(p)).NotTo(ContainSubstring("staple"))
		Expect(texts(p, proxy.DirClient)).To(Equal([]string{"a1 LOGIN {5 bytes} [REDACTED]", "a2 NOOP"}))
		Expect(p.Commands()).To(Equal(2))
	})

	It("never shows AUTHENTICATE data, with or without an initial response", func() {
		p := startProxy(startServer(serverOptions{}), nil)
		secret := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + testPassword))

		rc, _ := dialRaw(p)
		rc.send("a1 AUTHENTICATE PLAIN")
		Expect(rc.readLine()).To(HavePrefix("+"))
		rc.send(secret)
		Expect(rc.readLine()).To(HavePrefix("a1 OK"))
		rc.send("a2 NOOP")
		Expect(rc.until("a2 ")).To(ContainElement(HavePrefix("a2 OK")))

		rc2, _ := dialRaw(p)
		rc2.send("b1 AUTHENTICATE PLAIN " + secret)
		Expect(rc2.readLine()).To(HavePrefix("b1 OK"))
		rc2.send("b2 AUTHENTICATE PLAIN")
		Expect(rc2.readLine()).To(HavePrefix("b2 BAD"), "already authenticated")

		rc3, _ := dialRaw(p)
		rc3.send("c1 AUTHENTICATE PLAIN")
		Expect(rc3.readLine()).To(HavePrefix("+"))
		rc3.send("*")
		Expect(rc3.readLine()).To(HavePrefix("c1 BAD"))
		rc3.send("c2 NOOP")
		Expect(rc3.until("c2 ")).To(ContainElement(HavePrefix("c2 OK")))

		written := transcriptText(p)
		Expect(written).NotTo(ContainSubstring(secret))
		Expect(written).NotTo(ContainSubstring(testPassword))
		Expect(texts(p, proxy.DirClient)).To(Equal([]string{
			"a1 AUTHENTICATE PLAIN", "[REDACTED]", "a2 NOOP",
			"b1 AUTHENTICATE PLAIN [REDACTED]", "b2 AUTHENTICATE PLAIN",
			"c1 AUTHENTICATE PLAIN", "*", "c2 NOOP",
		}))
		Expect(p.Commands()).To(Equal(6), "the SASL response and the cancel are not commands")
	})
})
