package fakeserver_test

import (
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
)

// withMode starts a server with user alice and the given modes on.
func withMode(modes ...string) (*fakeserver.Server, string) {
	GinkgoHelper()
	srv, addr := startServer(fakeserver.Options{Seed: 1})
	for _, s := range modes {
		m, err := fakeserver.ParseMode(s)
		Expect(err).NotTo(HaveOccurred())
		m.User = "alice"
		Expect(srv.Apply(m)).To(Succeed())
	}
	return srv, addr
}

func mailboxNames(srv *fakeserver.Server) []string {
	GinkgoHelper()
	snap, err := srv.Snapshot("alice")
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, m := range snap.Mailboxes {
		out = append(out, m.Name)
	}
	return out
}

var mailboxIDRE = regexp.MustCompile(`MAILBOXID \(([A-Za-z0-9_-]+)\)`)

// mailboxID returns the MAILBOXID a SELECT of name announces.
func (c *raw) mailboxID(name string) string {
	GinkgoHelper()
	for _, l := range c.ok("EXAMINE " + name) {
		if m := mailboxIDRE.FindStringSubmatch(l); m != nil && strings.HasPrefix(l, "* OK [MAILBOXID") {
			return m[1]
		}
	}
	Fail("EXAMINE " + name + " announced no MAILBOXID")
	return ""
}

var _ = Describe("server modes", func() {
	It("parses names and values, and names the known modes in its errors", func() {
		m, err := fakeserver.ParseMode("idle-every=60s")
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Every.Seconds()).To(Equal(60.0))
		_, err = fakeserver.ParseMode("idle-every")
		Expect(err).To(MatchError(ContainSubstring("idle-every=DURATION")))
		_, err = fakeserver.ParseMode("mailboxid=1")
		Expect(err).To(MatchError(ContainSubstring("takes no value")))
		_, err = fakeserver.ParseMode("nonsense")
		Expect(err).To(MatchError(ContainSubstring("specialuse-toplevel")))
	})

	Describe("specialuse-toplevel", func() {
		It("refuses a special use below the top level and creates nothing, parents included", func() {
			srv, addr := withMode("specialuse-toplevel")
			c := login(addr)
			_, status := c.do(`CREATE "Run/Scenario/Sent" (USE (\Sent))`)
			Expect(status).To(Equal("NO SPECIAL-USE flag conflict"))
			Expect(mailboxNames(srv)).To(ConsistOf("INBOX"))
			c.ok(`CREATE "Run/Scenario/Sent"`)
			c.ok(`CREATE "Sent" (USE (\Sent))`)
			Expect(c.ok(`LIST "" "Sent"`)).To(ConsistOf(ContainSubstring(`\Sent`)))
		})

		It("refuses DELETE of a mailbox holding a special use until SETMETADATA removes it", func() {
			srv, addr := withMode("specialuse-toplevel")
			c := login(addr)
			Expect(strings.Join(c.ok("CAPABILITY"), " ")).To(SatisfyAll(ContainSubstring(" METADATA"), ContainSubstring(" CREATE-SPECIAL-USE")))
			c.ok(`CREATE "Trash" (USE (\Trash))`)
			_, status := c.do(`DELETE "Trash"`)
			Expect(status).To(HavePrefix("NO [USEATTR]"))
			Expect(mailboxNames(srv)).To(ContainElement("Trash"))
			_, status = c.do(`SETMETADATA "Trash" (/private/comment "x")`)
			Expect(status).To(HavePrefix("NO"))
			c.ok(`SETMETADATA "Trash" (/private/specialuse NIL)`)
			Expect(c.ok(`LIST "" "Trash"`)).NotTo(ContainElement(ContainSubstring(`\Trash`)))
			c.ok(`DELETE "Trash"`)
			Expect(mailboxNames(srv)).To(ConsistOf("INBOX"))
		})

		It("is off by default: a special use anywhere, DELETE as usual", func() {
			srv, addr := startServer(fakeserver.Options{Seed: 1})
			c := login(addr)
			c.ok(`CREATE "Run/Sent" (USE (\Sent))`)
			c.ok(`DELETE "Run/Sent"`)
			Expect(mailboxNames(srv)).To(ConsistOf("INBOX", "Run"))
		})
	})

	Describe("uidvalidity-clock", func() {
		It("gives mailboxes made with no message changed in between one UIDVALIDITY, kept by RENAME", func() {
			srv, addr := withMode("uidvalidity-clock")
			Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Work"})).To(Succeed())
			Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Archive"})).To(Succeed())
			deliver(srv, "Work", "w1")
			Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Later"})).To(Succeed())
			uv := func(name string) uint32 {
				snap, err := srv.Snapshot("alice")
				Expect(err).NotTo(HaveOccurred())
				m, ok := snap.Mailbox(name)
				Expect(ok).To(BeTrue())
				return m.UIDValidity
			}
			work := uv("Work")
			Expect(uv("Archive")).To(Equal(work))
			Expect(uv("Later")).To(BeNumerically(">", work))
			Expect(srv.Apply(fakeserver.RenameMailbox{User: "alice", Old: "Work", New: "Tmp"})).To(Succeed())
			Expect(uv("Tmp")).To(Equal(work))
			_ = addr
		})

		It("is off by default: every mailbox its own UIDVALIDITY", func() {
			srv, _ := startServer(fakeserver.Options{Seed: 1})
			Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Work"})).To(Succeed())
			Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Archive"})).To(Succeed())
			snap, err := srv.Snapshot("alice")
			Expect(err).NotTo(HaveOccurred())
			a, _ := snap.Mailbox("Work")
			b, _ := snap.Mailbox("Archive")
			Expect(a.UIDValidity).NotTo(Equal(b.UIDValidity))
		})
	})

	Describe("mailboxid", func() {
		It("advertises OBJECTID and gives a MAILBOXID that RENAME keeps and a re-created mailbox does not", func() {
			srv, addr := withMode("mailboxid")
			c := login(addr)
			Expect(strings.Join(c.ok("CAPABILITY"), " ")).To(ContainSubstring(" OBJECTID"))
			_, status := c.do(`CREATE "Work"`)
			m := mailboxIDRE.FindStringSubmatch(status)
			Expect(m).NotTo(BeNil(), status)
			work := m[1]
			Expect(c.mailboxID(`"Work"`)).To(Equal(work))
			Expect(c.mailboxID("INBOX")).NotTo(Equal(work))
			Expect(c.ok(`STATUS "Work" (MESSAGES MAILBOXID)`)).To(ConsistOf(`* STATUS "Work" (MESSAGES 0 MAILBOXID (` + work + `))`))
			c.ok("UNSELECT")
			Expect(srv.Apply(fakeserver.RenameMailbox{User: "alice", Old: "Work", New: "Old"})).To(Succeed())
			Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Work"})).To(Succeed())
			Expect(c.mailboxID(`"Old"`)).To(Equal(work))
			Expect(c.mailboxID(`"Work"`)).NotTo(Equal(work))
		})

		It("is off by default: no OBJECTID, no MAILBOXID", func() {
			_, addr := startServer(fakeserver.Options{Seed: 1})
			c := login(addr)
			Expect(strings.Join(c.ok("CAPABILITY"), " ")).NotTo(ContainSubstring("OBJECTID"))
			Expect(strings.Join(c.ok("EXAMINE INBOX"), " ")).NotTo(ContainSubstring("MAILBOXID"))
		})
	})

	Describe("idle-every", func() {
		It("tells IDLE clients of a change only at the next poll, every period", func() {
			const every = 800 * time.Millisecond
			srv, addr := startServer(fakeserver.Options{Seed: 1})
			c := login(addr)
			c.ok("SELECT INBOX")
			tag := c.send("IDLE")
			Expect(c.line()).To(HavePrefix("+"))
			m, err := fakeserver.ParseMode("idle-every=800ms")
			Expect(err).NotTo(HaveOccurred())
			m.User = "alice"
			start := time.Now()
			Expect(srv.Apply(m)).To(Succeed())
			Expect(srv.IdleEvery("alice")).To(Equal(every))
			deliver(srv, "INBOX", "m1")
			lines := make(chan string, 1)
			go func() {
				defer GinkgoRecover()
				lines <- c.line()
			}()
			Consistently(lines).WithTimeout(every / 2).ShouldNot(Receive())
			var got string
			Eventually(lines).WithTimeout(5 * time.Second).Should(Receive(&got))
			Expect(got).To(Equal("* 1 EXISTS"))
			Expect(time.Since(start)).To(BeNumerically(">=", every-50*time.Millisecond), "held until the poll")
			_, err = c.conn.Write([]byte("DONE\r\n"))
			Expect(err).NotTo(HaveOccurred())
			_, status := c.until(tag)
			Expect(status).To(HavePrefix("OK"))
		})

		It("is off by default: IDLE clients are told at once", func() {
			srv, addr := startServer(fakeserver.Options{Seed: 1})
			Expect(srv.IdleEvery("alice")).To(BeZero())
			c := login(addr)
			c.ok("SELECT INBOX")
			c.send("IDLE")
			Expect(c.line()).To(HavePrefix("+"))
			start := time.Now()
			deliver(srv, "INBOX", "m1")
			Expect(c.line()).To(Equal("* 1 EXISTS"))
			Expect(time.Since(start)).To(BeNumerically("<", 400*time.Millisecond))
		})
	})
})
