package fakeserver_test

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
)

// Each spec here covers a bug of go-imap's imapmemserver (v2.0.0-beta.8) that the fake
// server must not have.
var _ = Describe("where imapmemserver is wrong", func() {
	var (
		srv  *fakeserver.Server
		addr string
	)
	BeforeEach(func() {
		srv, addr = startServer(fakeserver.Options{Seed: 1})
		Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Archive"})).To(Succeed())
		deliver(srv, "INBOX", "m1", "m2", "m3")
	})

	// imapmemserver session.go:108-120 writes the expunge and also queues it.
	It("sends the mover exactly one EXPUNGE for MOVE of message 2 of 3", func() {
		c := login(addr)
		c.ok("SELECT INBOX")
		untagged := c.ok("MOVE 2 Archive")
		Expect(untagged).To(HaveLen(2))
		Expect(untagged[0]).To(MatchRegexp(`^\* OK \[COPYUID \d+ 2 1\]`))
		Expect(untagged[1]).To(Equal("* 2 EXPUNGE"))
		Expect(c.ok("NOOP")).To(BeEmpty())
	})

	// imapmemserver mailbox.go:332 answers "* 0 FETCH" for unannounced messages.
	It("never answers UID FETCH n:* with a FETCH for a message the session was not told about", func() {
		c := login(addr)
		c.ok("SELECT INBOX")
		deliver(srv, "INBOX", "m4")
		untagged, status := c.do("UID FETCH 1:* (FLAGS)")
		Expect(status).To(HavePrefix("OK"))
		var fetches []string
		for _, l := range untagged {
			Expect(l).NotTo(HavePrefix("* 0 "))
			if strings.Contains(l, "FETCH") {
				fetches = append(fetches, l)
			}
		}
		Expect(fetches).To(HaveLen(3), "only the three announced messages: %v", untagged)
		Expect(untagged).To(ContainElement("* 4 EXISTS"))
		Expect(c.ok("UID FETCH 4 (FLAGS)")).To(ConsistOf(MatchRegexp(`^\* 4 FETCH \(UID 4 FLAGS \(\)\)$`)))
	})

	// imapmemserver mailbox.go:482 resolves "*" against the server's count.
	It("resolves * to the last message of the session's own view", func() {
		c := login(addr)
		c.ok("SELECT INBOX")
		deliver(srv, "INBOX", "m4")
		untagged, status := c.do("FETCH * (UID)")
		Expect(status).To(HavePrefix("OK"))
		Expect(untagged).To(ContainElement("* 3 FETCH (UID 3)"))
		Expect(untagged).NotTo(ContainElement(ContainSubstring("UID 4")))
	})

	// imapmemserver session.go:70 and :103 lock the two mailboxes in opposite orders.
	It("finishes COPY and MOVE in opposite directions, 1,000 times each, without deadlock", func(ctx SpecContext) {
		deliver(srv, "Archive", "a1", "a2", "a3")
		done := make(chan error, 2)
		run := func(from, to string) {
			defer GinkgoRecover()
			c := dialClient(addr, nil)
			_, err := c.Select(from, nil).Wait()
			if err != nil {
				done <- err
				return
			}
			for i := range 1000 {
				var err error
				if i%2 == 0 {
					_, err = c.Copy(imap.SeqSetNum(1), to).Wait()
				} else {
					_, err = c.Move(imap.SeqSetNum(1), to).Wait()
				}
				if err != nil {
					done <- fmt.Errorf("%s -> %s, round %d: %w", from, to, i, err)
					return
				}
			}
			done <- nil
		}
		go run("INBOX", "Archive")
		go run("Archive", "INBOX")
		for range 2 {
			Eventually(ctx, done).WithTimeout(60 * 1e9).Should(Receive(BeNil()))
		}
		snap, err := srv.Snapshot("alice")
		Expect(err).NotTo(HaveOccurred())
		total := 0
		for _, m := range snap.Mailboxes {
			total += len(m.Messages)
		}
		copies := 0
		for _, e := range srv.History() {
			if e.Kind == "copy" {
				copies += len(e.UIDs)
			}
		}
		Expect(copies).To(BeNumerically(">", 0))
		Expect(total).To(Equal(6+copies), "every message is somewhere, and only once")
	}, SpecTimeout(120*1e9))

	// imapmemserver writes "OK [COPYUID 1 T3 NO [SERVERBUG]…" and the client drops.
	DescribeTable("answers OK without COPYUID for a UID another session expunged, and stays usable",
		func(cmd string) {
			a := login(addr)
			a.ok("SELECT INBOX")
			b := login(addr)
			b.ok("SELECT INBOX")
			b.ok("UID STORE 2 +FLAGS.SILENT (\\Deleted)")
			b.ok("UID EXPUNGE 2")
			untagged, status := a.do("UID " + cmd + " 2 Archive")
			Expect(status).To(HavePrefix("OK"))
			Expect(status).NotTo(ContainSubstring("COPYUID"))
			for _, l := range untagged {
				Expect(l).NotTo(ContainSubstring("COPYUID"))
			}
			Expect(untagged).To(ContainElement("* 2 EXPUNGE"))
			Expect(a.ok("UID FETCH 1:* (UID)")).To(Equal([]string{"* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)"}))
			Expect(uidsOf(srv, "Archive")).To(BeEmpty())
		},
		Entry("for COPY", "COPY"),
		Entry("for MOVE", "MOVE"),
	)

	It("moves INBOX's messages to the new name on RENAME INBOX and leaves INBOX empty", func() {
		c := login(addr)
		c.ok("RENAME INBOX Old")
		Expect(uidsOf(srv, "INBOX")).To(BeEmpty())
		Expect(uidsOf(srv, "Old")).To(Equal([]uint32{1, 2, 3}))
		Expect(c.ok("SELECT INBOX")).To(ContainElement("* 0 EXISTS"))
		untagged := c.ok(`UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])`)
		Expect(untagged).To(BeEmpty())
		c.ok("SELECT Old")
		Expect(c.ok(`FETCH 2 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])`)).To(ConsistOf(ContainSubstring("Subject: m2")))
	})

	It("tells sessions on INBOX about RENAME INBOX with EXPUNGEs and keeps the renamer on its mailbox", func() {
		watcher := login(addr)
		watcher.ok("SELECT INBOX")
		c := login(addr)
		c.ok("SELECT Archive")
		c.ok("RENAME INBOX Old")
		Expect(watcher.ok("NOOP")).To(Equal([]string{"* 1 EXPUNGE", "* 1 EXPUNGE", "* 1 EXPUNGE"}))
		c.ok("RENAME Archive Older")
		deliver(srv, "Older", "n1")
		Expect(c.ok("NOOP")).To(Equal([]string{"* 1 EXISTS"}))
		Expect(c.ok("UID FETCH 1 (UID)")).To(Equal([]string{"* 1 FETCH (UID 1)"}))
	})

	It("renames a mailbox's children with it", func() {
		Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Archive/2024/Q1"})).To(Succeed())
		c := login(addr)
		c.ok("RENAME Archive Old/Archive")
		untagged := c.ok(`LIST "" "*"`)
		Expect(untagged).To(ConsistOf(
			ContainSubstring(`INBOX`),
			ContainSubstring(`"Old"`),
			ContainSubstring(`"Old/Archive"`),
			ContainSubstring(`"Old/Archive/2024"`),
			ContainSubstring(`"Old/Archive/2024/Q1"`),
		))
	})

	It("creates missing parents on CREATE a/b/c", func() {
		c := login(addr)
		c.ok("CREATE a/b/c")
		untagged := c.ok(`LIST "" "a*"`)
		Expect(untagged).To(ConsistOf(
			`* LIST (\HasChildren) "/" "a"`,
			`* LIST (\HasChildren) "/" "a/b"`,
			`* LIST (\HasNoChildren) "/" "a/b/c"`,
		))
	})

	It("keeps a deleted mailbox with children as \\Noselect", func() {
		c := login(addr)
		c.ok("CREATE a/b")
		c.ok("DELETE a")
		Expect(c.ok(`LIST "" "a"`)).To(ConsistOf(`* LIST (\Noselect \HasChildren) "/" "a"`))
		_, status := c.do("SELECT a")
		Expect(status).To(HavePrefix("NO"))
		_, status = c.do("DELETE a")
		Expect(status).To(HavePrefix("NO"))
		c.ok("DELETE a/b")
		c.ok("DELETE a")
		Expect(c.ok(`LIST "" "a*"`)).To(BeEmpty())
	})
})

var _ = Describe("flag updates of other sessions", func() {
	var (
		srv  *fakeserver.Server
		addr string
	)
	BeforeEach(func() {
		srv, addr = startServer(fakeserver.Options{Seed: 1})
		deliver(srv, "INBOX", "m1")
	})

	It("never follow a STORE's or FETCH's answer with an older state of the same message", func() {
		a, b := login(addr), login(addr)
		a.ok("SELECT INBOX")
		b.ok("SELECT INBOX")
		b.ok(`UID STORE 1 +FLAGS (\Answered)`) // queued for a, not yet told
		untagged := a.ok(`UID STORE 1 +FLAGS (\Deleted)`)
		Expect(untagged).To(Equal([]string{`* 1 FETCH (UID 1 FLAGS (\Answered \Deleted))`}))
		Expect(a.ok("NOOP")).To(BeEmpty())

		b.ok(`UID STORE 1 +FLAGS (\Seen)`)
		untagged = a.ok("UID FETCH 1 (FLAGS)")
		Expect(untagged).To(Equal([]string{`* 1 FETCH (UID 1 FLAGS (\Answered \Deleted \Seen))`}))
		Expect(a.ok("NOOP")).To(BeEmpty())
	})

	It("still tell of another session's change to a message the STORE did not touch", func() {
		deliver(srv, "INBOX", "m2")
		a, b := login(addr), login(addr)
		a.ok("SELECT INBOX")
		b.ok("SELECT INBOX")
		b.ok(`UID STORE 2 +FLAGS (\Flagged)`)
		untagged := a.ok(`UID STORE 1 +FLAGS (\Seen)`)
		Expect(untagged).To(ContainElements(`* 1 FETCH (UID 1 FLAGS (\Seen))`, `* 2 FETCH (UID 2 FLAGS (\Flagged))`))
	})
})
