package fakeserver_test

import (
	"io"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
)

// closed reports whether the server has closed c, after reading what is left.
func closedAfter(c *raw) func() error {
	return func() error {
		_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadAll(c.r)
		return err
	}
}

// drainToEOF reads everything the server still sends and returns it once it closes.
func drainToEOF(c *raw) string {
	GinkgoHelper()
	Expect(c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))).To(Succeed())
	b, err := io.ReadAll(c.r)
	Expect(err).NotTo(HaveOccurred(), "the server closes the connection")
	return string(b)
}

var _ = Describe("faults", func() {
	var (
		srv  *fakeserver.Server
		addr string
	)
	BeforeEach(func() {
		srv, addr = startServer(fakeserver.Options{Seed: 42})
		deliver(srv, "INBOX", "m1", "m2", "m3", "m4", "m5")
	})

	It("lists every fault name", func() {
		Expect(fakeserver.FaultNames()).To(ConsistOf(
			"uidvalidity-bump", "uidvalidity-reset", "renumber-silently", "drop", "fail", "latency",
			"caps", "deliver", "flag", "unflag", "move", "copy", "expunge", "create", "rename", "remove",
			"reuse-expunged-uids", "omit-expunge-notifications",
		))
	})

	Describe("that change UIDs or UIDVALIDITY", func() {
		var before fakeserver.MailboxSnapshot
		var selected, other *raw
		BeforeEach(func() {
			snap, err := srv.Snapshot("alice")
			Expect(err).NotTo(HaveOccurred())
			before, _ = snap.Mailbox("INBOX")
			selected = login(addr)
			selected.ok("SELECT INBOX")
			other = login(addr)
		})
		after := func() fakeserver.MailboxSnapshot {
			snap, err := srv.Snapshot("alice")
			Expect(err).NotTo(HaveOccurred())
			m, _ := snap.Mailbox("INBOX")
			return m
		}
		byeAndOthersServed := func() {
			GinkgoHelper()
			Expect(drainToEOF(selected)).To(ContainSubstring("* BYE"))
			Expect(other.ok("NOOP")).To(BeEmpty())
		}

		It("bump UIDVALIDITY and keep the UIDs, disconnecting the selected session", func() {
			Expect(srv.Apply(fakeserver.UIDValidityBump{User: "alice", Mailbox: "INBOX"})).To(Succeed())
			m := after()
			Expect(m.UIDValidity).To(BeNumerically(">", before.UIDValidity))
			Expect(m.Messages).To(HaveLen(5))
			for i, msg := range m.Messages {
				Expect(msg.UID).To(Equal(before.Messages[i].UID))
				Expect(msg.Body).To(Equal(before.Messages[i].Body))
			}
			byeAndOthersServed()
			Expect(other.ok("SELECT INBOX")).To(ContainElement(ContainSubstring("UIDVALIDITY " + itoa(int(m.UIDValidity)))))
		})

		It("reset UIDVALIDITY and renumber 1..n in a seeded order", func() {
			Expect(srv.Apply(fakeserver.UIDValidityReset{User: "alice", Mailbox: "INBOX"})).To(Succeed())
			m := after()
			Expect(m.UIDValidity).To(BeNumerically(">", before.UIDValidity))
			Expect(m.UIDNext).To(Equal(uint32(6)))
			var order []string
			for i, msg := range m.Messages {
				Expect(msg.UID).To(Equal(uint32(i + 1)))
				order = append(order, strings.Fields(string(msg.Body))[len(strings.Fields(string(msg.Body)))-2])
			}
			Expect(order).To(ConsistOf("m1", "m2", "m3", "m4", "m5"))
			byeAndOthersServed()

			// The same seed gives the same order.
			srv2, _ := startServer(fakeserver.Options{Seed: 42})
			deliver(srv2, "INBOX", "m1", "m2", "m3", "m4", "m5")
			Expect(srv2.Apply(fakeserver.UIDValidityReset{User: "alice", Mailbox: "INBOX"})).To(Succeed())
			snap2, err := srv2.Snapshot("alice")
			Expect(err).NotTo(HaveOccurred())
			m2, _ := snap2.Mailbox("INBOX")
			Expect(m2.UIDValidity).To(Equal(m.UIDValidity))
			for i := range m.Messages {
				Expect(m2.Messages[i].Body).To(Equal(m.Messages[i].Body))
			}
			last := srv.History()[len(srv.History())-1]
			Expect(last.Kind).To(Equal("uidvalidity-reset"))
			Expect(last.DestUIDs).To(Equal([]uint32{1, 2, 3, 4, 5}))
			Expect(last.UIDs).To(ConsistOf(uint32(1), uint32(2), uint32(3), uint32(4), uint32(5)))
		})

		It("renumber silently: new UIDs, same UIDVALIDITY", func() {
			Expect(srv.Apply(fakeserver.RenumberSilently{User: "alice", Mailbox: "INBOX"})).To(Succeed())
			m := after()
			Expect(m.UIDValidity).To(Equal(before.UIDValidity))
			var uids []uint32
			for i, msg := range m.Messages {
				uids = append(uids, msg.UID)
				Expect(msg.Body).To(Equal(before.Messages[i].Body))
			}
			Expect(uids).To(Equal([]uint32{6, 7, 8, 9, 10}))
			Expect(m.UIDNext).To(Equal(uint32(11)))
			byeAndOthersServed()
		})

		It("fail on a missing mailbox or user with a clear error", func() {
			Expect(srv.Apply(fakeserver.UIDValidityBump{User: "alice", Mailbox: "Nope"})).To(MatchError(ContainSubstring(`uidvalidity-bump "Nope"`)))
			Expect(srv.Apply(fakeserver.UIDValidityReset{User: "bob", Mailbox: "INBOX"})).To(MatchError(ContainSubstring(`no user "bob"`)))
		})
	})

	Describe("drop", func() {
		It("closes every connection", func() {
			a, b := login(addr), dialRaw(addr)
			Expect(srv.Apply(fakeserver.Drop{})).To(Succeed())
			Eventually(closedAfter(a)).Should(Succeed())
			Eventually(closedAfter(b)).Should(Succeed())
			login(addr).ok("NOOP")
		})

		It("closes only one user's connections", func() {
			Expect(srv.AddUser("bob", "pw")).To(Succeed())
			a := login(addr)
			b := dialRaw(addr)
			b.ok("LOGIN bob pw")
			Expect(srv.Apply(fakeserver.Drop{User: "alice"})).To(Succeed())
			Eventually(closedAfter(a)).Should(Succeed())
			b.ok("NOOP")
		})

		It("closes only one session", func() {
			a := login(addr)
			b := login(addr)
			var sid uint64
			for _, e := range srv.History() {
				if e.Kind == "login" {
					sid = e.Session // the last login is b's
				}
			}
			Expect(srv.Apply(fakeserver.Drop{Session: sid})).To(Succeed())
			Eventually(closedAfter(b)).Should(Succeed())
			a.ok("NOOP")
		})
	})

	Describe("fail", func() {
		It("fails the next N commands with the response and its code", func() {
			c := login(addr)
			Expect(srv.Apply(fakeserver.Fail{N: 2, Response: "NO [UNAVAILABLE] try later"})).To(Succeed())
			_, status := c.do("SELECT INBOX")
			Expect(status).To(Equal("NO [UNAVAILABLE] try later"))
			_, status = c.do("STATUS INBOX (MESSAGES)")
			Expect(status).To(Equal("NO [UNAVAILABLE] try later"))
			c.ok("SELECT INBOX")
			Expect(srv.History()).To(ContainElement(HaveField("Kind", "fail")))
		})

		It("fails only the named command, with or without UID", func() {
			c := login(addr)
			c.ok("SELECT INBOX")
			Expect(srv.Apply(fakeserver.Fail{N: 2, Command: "fetch", Response: "BAD [CLIENTBUG] nope"})).To(Succeed())
			c.ok("UID SEARCH ALL")
			_, status := c.do("UID FETCH 1 (FLAGS)")
			Expect(status).To(Equal("BAD [CLIENTBUG] nope"))
			_, status = c.do("FETCH 1 (FLAGS)")
			Expect(status).To(Equal("BAD [CLIENTBUG] nope"))
			c.ok("FETCH 1 (FLAGS)")
		})

		It("disconnects with BYE", func() {
			c := login(addr)
			Expect(srv.Apply(fakeserver.Fail{N: 1, Response: "BYE going away"})).To(Succeed())
			c.send("SELECT INBOX")
			Expect(drainToEOF(c)).To(HavePrefix("* BYE going away"))
		})

		DescribeTable("rejects a malformed response",
			func(resp, want string) {
				Expect(srv.Apply(fakeserver.Fail{N: 1, Response: resp})).To(MatchError(want))
			},
			Entry("not a failure", "XYZ", `fakeserver: fail: response "XYZ": want NO, BAD or BYE`),
			Entry("OK", "OK fine", `fakeserver: fail: response "OK fine": want NO, BAD or BYE`),
			Entry("an open code", "NO [UNAVAILABLE try", `fakeserver: fail: response "NO [UNAVAILABLE try": unterminated response code`),
		)
	})

	It("adds latency to every response", func() {
		c := login(addr)
		Expect(srv.Apply(fakeserver.Latency{D: 150 * time.Millisecond})).To(Succeed())
		start := time.Now()
		c.ok("NOOP")
		Expect(time.Since(start)).To(BeNumerically(">=", 150*time.Millisecond))
		Expect(srv.Apply(fakeserver.Latency{})).To(Succeed())
		c.ok("NOOP")
	})

	Describe("capability switches", func() {
		caps := func(c *raw) []string {
			GinkgoHelper()
			untagged := c.ok("CAPABILITY")
			Expect(untagged).To(HaveLen(1))
			return strings.Fields(untagged[0])
		}

		It("run without MOVE, UIDPLUS, ESEARCH and IDLE", func() {
			Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Archive"})).To(Succeed())
			Expect(srv.Apply(fakeserver.SetCaps{Disable: []string{"MOVE", "uidplus", "ESEARCH", "IDLE"}})).To(Succeed())
			c := login(addr)
			Expect(caps(c)).NotTo(ContainElements("MOVE", "UIDPLUS", "ESEARCH"))
			c.ok("SELECT INBOX")
			_, status := c.do("MOVE 1 Archive")
			Expect(status).To(HavePrefix("BAD"))
			_, status = c.do("UID COPY 1 Archive")
			Expect(status).To(Equal("OK COPY completed"))
			_, status = c.do("UID EXPUNGE 1")
			Expect(status).To(HavePrefix("BAD"))
			tag := c.send("IDLE")
			Expect(c.line()).To(HavePrefix("+"))
			_, err := c.conn.Write([]byte("DONE\r\n"))
			Expect(err).NotTo(HaveOccurred())
			_, status = c.until(tag)
			Expect(status).To(HavePrefix("BAD"))
			_, status = c.do("APPEND INBOX {3+}\r\nabc")
			Expect(status).To(Equal("OK APPEND completed"))
		})

		It("switch back on for open connections from their next command", func() {
			Expect(srv.Apply(fakeserver.SetCaps{Disable: []string{"MOVE"}})).To(Succeed())
			c := login(addr)
			Expect(caps(c)).NotTo(ContainElement("MOVE"))
			Expect(srv.Apply(fakeserver.SetCaps{Enable: []string{"MOVE"}})).To(Succeed())
			c.ok("NOOP")
			Expect(caps(c)).To(ContainElement("MOVE"))
		})

		It("reject an unknown capability", func() {
			Expect(srv.Apply(fakeserver.SetCaps{Disable: []string{"CONDSTORE"}})).To(MatchError(ContainSubstring(`unknown capability "CONDSTORE"`)))
		})

		It("refuse to serve with an unknown capability in the options", func() {
			bad := fakeserver.New(fakeserver.Options{DisabledCaps: []string{"FROB"}})
			_, err := bad.Listen("127.0.0.1:0")
			Expect(err).To(MatchError(ContainSubstring(`Options.DisabledCaps: fakeserver: caps: unknown capability "FROB"`)))
		})

		It("can start disabled", func() {
			_, addr2 := startServer(fakeserver.Options{DisabledCaps: []string{"UIDPLUS"}})
			Expect(caps(login(addr2))).NotTo(ContainElement("UIDPLUS"))
		})
	})

	Describe("outside-client mutations", func() {
		var watcher *raw
		BeforeEach(func() {
			Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Archive"})).To(Succeed())
			watcher = login(addr)
			watcher.ok("SELECT INBOX")
		})

		It("deliver, flag, unflag, copy, move and expunge with notifications", func() {
			deliver(srv, "INBOX", "m6")
			Expect(watcher.ok("NOOP")).To(Equal([]string{"* 6 EXISTS"}))
			Expect(srv.Apply(fakeserver.Store{User: "alice", Mailbox: "INBOX", UIDs: []uint32{2}, Add: true, Flags: []string{`\Seen`, "$Work"}})).To(Succeed())
			Expect(watcher.ok("NOOP")).To(Equal([]string{`* 2 FETCH (UID 2 FLAGS ($Work \Seen))`}))
			Expect(srv.Apply(fakeserver.Store{User: "alice", Mailbox: "INBOX", UIDs: []uint32{2}, Flags: []string{"$Work"}})).To(Succeed())
			Expect(watcher.ok("NOOP")).To(Equal([]string{`* 2 FETCH (UID 2 FLAGS (\Seen))`}))
			Expect(srv.Apply(fakeserver.CopyMessages{User: "alice", Mailbox: "INBOX", UIDs: []uint32{1}, Dest: "Archive"})).To(Succeed())
			Expect(watcher.ok("NOOP")).To(BeEmpty())
			Expect(srv.Apply(fakeserver.MoveMessages{User: "alice", Mailbox: "INBOX", UIDs: []uint32{3}, Dest: "Archive"})).To(Succeed())
			Expect(watcher.ok("NOOP")).To(Equal([]string{"* 3 EXPUNGE"}))
			Expect(srv.Apply(fakeserver.ExpungeMessages{User: "alice", Mailbox: "INBOX", UIDs: []uint32{1, 6}})).To(Succeed())
			Expect(watcher.ok("NOOP")).To(Equal([]string{"* 1 EXPUNGE", "* 4 EXPUNGE"}))
			Expect(uidsOf(srv, "INBOX")).To(Equal([]uint32{2, 4, 5}))
			Expect(uidsOf(srv, "Archive")).To(Equal([]uint32{1, 2}))
			Expect(srv.Apply(fakeserver.MoveMessages{User: "alice", Mailbox: "INBOX", UIDs: []uint32{99}, Dest: "Archive"})).To(MatchError(ContainSubstring("no UID [99]")))
		})

		It("create, rename and remove mailboxes", func() {
			Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Sent", SpecialUse: []string{`\Sent`}})).To(Succeed())
			Expect(srv.Apply(fakeserver.RenameMailbox{User: "alice", Old: "Archive", New: "Old"})).To(Succeed())
			Expect(watcher.ok(`LIST "" "*"`)).To(ConsistOf(
				ContainSubstring("INBOX"), ContainSubstring(`"Old"`), `* LIST (\HasNoChildren \Sent) "/" "Sent"`))
			Expect(srv.Apply(fakeserver.DeleteMailbox{User: "alice", Mailbox: "Old"})).To(Succeed())
			Expect(srv.Apply(fakeserver.DeleteMailbox{User: "alice", Mailbox: "INBOX"})).To(MatchError(ContainSubstring("INBOX cannot be deleted")))
			Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "X", SpecialUse: []string{`\Bogus`}})).To(HaveOccurred())
		})

		It("disconnect sessions that have a renamed or removed mailbox selected", func() {
			a := login(addr)
			a.ok("SELECT Archive")
			Expect(srv.Apply(fakeserver.RenameMailbox{User: "alice", Old: "Archive", New: "Old"})).To(Succeed())
			Expect(drainToEOF(a)).To(ContainSubstring("* BYE"))
			b := login(addr)
			b.ok("SELECT Old")
			Expect(srv.Apply(fakeserver.DeleteMailbox{User: "alice", Mailbox: "Old"})).To(Succeed())
			Expect(drainToEOF(b)).To(ContainSubstring("* BYE"))
			watcher.ok("NOOP")
		})
	})

	Describe("known-bad modes", func() {
		It("reuse expunged UIDs", func() {
			Expect(srv.Apply(fakeserver.ExpungeMessages{User: "alice", Mailbox: "INBOX", UIDs: []uint32{2}})).To(Succeed())
			Expect(srv.Apply(fakeserver.ReuseExpungedUIDs{User: "alice", On: true})).To(Succeed())
			deliver(srv, "INBOX", "again")
			Expect(uidsOf(srv, "INBOX")).To(Equal([]uint32{1, 2, 3, 4, 5}))
			Expect(srv.Apply(fakeserver.ReuseExpungedUIDs{User: "alice", On: false})).To(Succeed())
			deliver(srv, "INBOX", "new")
			Expect(uidsOf(srv, "INBOX")).To(Equal([]uint32{1, 2, 3, 4, 5, 6}))
		})

		It("omit EXPUNGE notifications to other sessions", func() {
			a, b := login(addr), login(addr)
			a.ok("SELECT INBOX")
			b.ok("SELECT INBOX")
			Expect(srv.Apply(fakeserver.OmitExpungeNotifications{User: "alice", On: true})).To(Succeed())
			a.ok(`UID STORE 1 +FLAGS.SILENT (\Deleted)`)
			Expect(a.ok("UID EXPUNGE 1")).To(Equal([]string{"* 1 EXPUNGE"}))
			Expect(b.ok("NOOP")).To(Equal([]string{`* 1 FETCH (UID 1 FLAGS (\Deleted))`}))
			Expect(b.ok("FETCH 2 (UID)")).To(Equal([]string{"* 2 FETCH (UID 2)"}), "b still counts the expunged message")
		})
	})
})
