package fakeserver_test

import (
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
)

var _ = Describe("the IMAP protocol", func() {
	var (
		srv  *fakeserver.Server
		addr string
	)
	BeforeEach(func() {
		srv, addr = startServer(fakeserver.Options{Seed: 7})
	})

	It("advertises the capabilities of the issue once logged in", func() {
		c := login(addr)
		untagged := c.ok("CAPABILITY")
		Expect(untagged).To(HaveLen(1))
		for _, capName := range []string{"IMAP4rev1", "UIDPLUS", "MOVE", "IDLE", "ESEARCH", "LIST-STATUS", "SPECIAL-USE", "LITERAL+", "NAMESPACE", "UNSELECT"} {
			Expect(strings.Fields(untagged[0])).To(ContainElement(capName))
		}
	})

	It("answers APPEND with APPENDUID and honours its flags and INTERNALDATE", func() {
		c := dialClient(addr, nil)
		body := message("m1")
		date := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
		cmd := c.Append("INBOX", int64(len(body)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen, "$Label1"}, Time: date})
		_, err := cmd.Write(body)
		Expect(err).NotTo(HaveOccurred())
		Expect(cmd.Close()).To(Succeed())
		data, err := cmd.Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(data.UID).To(Equal(imap.UID(1)))
		snap, err := srv.Snapshot("alice")
		Expect(err).NotTo(HaveOccurred())
		inbox, _ := snap.Mailbox("INBOX")
		Expect(data.UIDValidity).To(Equal(inbox.UIDValidity))
		Expect(inbox.UIDNext).To(Equal(uint32(2)))
		Expect(inbox.Messages).To(HaveLen(1))
		Expect(inbox.Messages[0].Flags).To(Equal([]string{"$Label1", `\Seen`}))
		Expect(inbox.Messages[0].InternalDate.Equal(date)).To(BeTrue())
		Expect(inbox.Messages[0].Body).To(Equal(body))
		Expect(inbox.Messages[0].Size).To(Equal(int64(len(body))))
	})

	It("keeps UIDs ascending, never reuses one and keeps UIDNEXT above every UID", func() {
		c := login(addr)
		c.ok("CREATE Archive")
		deliver(srv, "INBOX", "m1", "m2", "m3")
		c.ok("SELECT INBOX")
		c.ok(`STORE 3 +FLAGS (\Deleted)`)
		c.ok("EXPUNGE")
		deliver(srv, "INBOX", "m4")
		c.ok("MOVE 1 Archive")
		c.ok("COPY 1 INBOX")
		snap, err := srv.Snapshot("alice")
		Expect(err).NotTo(HaveOccurred())
		inbox, _ := snap.Mailbox("INBOX")
		var uids []uint32
		for _, m := range inbox.Messages {
			uids = append(uids, m.UID)
		}
		Expect(uids).To(Equal([]uint32{2, 4, 5}))
		Expect(inbox.UIDNext).To(Equal(uint32(6)))
	})

	It("answers COPY with COPYUID", func() {
		deliver(srv, "INBOX", "m1", "m2")
		c := login(addr)
		c.ok("CREATE Archive")
		c.ok("SELECT INBOX")
		_, status := c.do("UID COPY 1:2 Archive")
		Expect(status).To(MatchRegexp(`^OK \[COPYUID \d+ 1:2 1:2\]`))
	})

	Describe("with several sessions on one account", func() {
		var a, b, d *raw
		BeforeEach(func() {
			deliver(srv, "INBOX", "m1", "m2", "m3", "m4")
			a, b, d = login(addr), login(addr), login(addr)
			for _, c := range []*raw{a, b, d} {
				c.ok("SELECT INBOX")
			}
		})

		It("tells the others about a new message with EXISTS", func() {
			c := login(addr)
			c.ok("APPEND INBOX {" + itoa(len(message("m5"))) + "+}\r\n" + string(message("m5")))
			Expect(b.ok("NOOP")).To(Equal([]string{"* 5 EXISTS"}))
			Expect(d.ok("NOOP")).To(Equal([]string{"* 5 EXISTS"}))
		})

		It("tells the others about flag changes but not the one who stored them silently", func() {
			a.ok(`STORE 2 +FLAGS.SILENT (\Flagged)`)
			Expect(a.ok("NOOP")).To(BeEmpty())
			Expect(b.ok("NOOP")).To(Equal([]string{`* 2 FETCH (UID 2 FLAGS (\Flagged))`}))
		})

		It("numbers EXPUNGEs for each session's own view", func() {
			// b has not yet heard that message 1 went away when message 3 (now 2) goes too.
			a.ok(`UID STORE 1,3 +FLAGS.SILENT (\Deleted)`)
			Expect(a.ok("UID EXPUNGE 1")).To(Equal([]string{"* 1 EXPUNGE"}))
			Expect(a.ok("UID EXPUNGE 3")).To(Equal([]string{"* 2 EXPUNGE"}))
			Expect(b.ok("NOOP")).To(Equal([]string{
				`* 1 FETCH (UID 1 FLAGS (\Deleted))`,
				`* 3 FETCH (UID 3 FLAGS (\Deleted))`,
				"* 1 EXPUNGE",
				"* 2 EXPUNGE",
			}))
			Expect(b.ok("FETCH 1:* (UID)")).To(Equal([]string{"* 1 FETCH (UID 2)", "* 2 FETCH (UID 4)"}))
		})

		It("numbers a run of EXPUNGEs right whatever their order", func() {
			Expect(srv.Apply(fakeserver.ExpungeMessages{User: "alice", Mailbox: "INBOX", UIDs: []uint32{4}})).To(Succeed())
			Expect(srv.Apply(fakeserver.ExpungeMessages{User: "alice", Mailbox: "INBOX", UIDs: []uint32{1, 3}})).To(Succeed())
			Expect(b.ok("NOOP")).To(Equal([]string{"* 4 EXPUNGE", "* 1 EXPUNGE", "* 2 EXPUNGE"}))
			Expect(b.ok("FETCH 1:* (UID)")).To(Equal([]string{"* 1 FETCH (UID 2)"}))
			Expect(srv.Apply(fakeserver.ExpungeMessages{User: "alice", Mailbox: "INBOX", UIDs: []uint32{2}})).To(Succeed())
			deliver(srv, "INBOX", "m5", "m6", "m7")
			Expect(srv.Apply(fakeserver.ExpungeMessages{User: "alice", Mailbox: "INBOX", UIDs: []uint32{5, 6, 7}})).To(Succeed())
			Expect(d.ok("NOOP")).To(Equal([]string{"* 4 EXPUNGE", "* 1 EXPUNGE", "* 2 EXPUNGE", "* 1 EXPUNGE", "* 3 EXISTS", "* 1 EXPUNGE", "* 1 EXPUNGE", "* 1 EXPUNGE"}))
		})

		It("holds EXPUNGEs back during FETCH, STORE and SEARCH and sends them on NOOP", func() {
			a.ok(`UID STORE 2 +FLAGS.SILENT (\Deleted)`)
			a.ok("UID EXPUNGE 2")
			untagged := b.ok("FETCH 1:* (UID)")
			Expect(untagged).NotTo(ContainElement(ContainSubstring("EXPUNGE")))
			Expect(untagged).To(ContainElement("* 3 FETCH (UID 3)"), "message 3 keeps its number until b hears of the EXPUNGE")
			Expect(b.ok("NOOP")).To(ContainElement("* 2 EXPUNGE"))
			Expect(b.ok("FETCH 2 (UID)")).To(Equal([]string{"* 2 FETCH (UID 3)"}))
		})

		It("tells IDLE clients at once", func() {
			tag := b.send("IDLE")
			Expect(b.line()).To(HavePrefix("+"))
			deliver(srv, "INBOX", "m5")
			Expect(b.line()).To(Equal("* 5 EXISTS"))
			Expect(srv.Apply(fakeserver.ExpungeMessages{User: "alice", Mailbox: "INBOX", UIDs: []uint32{1}})).To(Succeed())
			Expect(b.line()).To(Equal("* 1 EXPUNGE"))
			_, err := b.conn.Write([]byte("DONE\r\n"))
			Expect(err).NotTo(HaveOccurred())
			_, status := b.until(tag)
			Expect(status).To(HavePrefix("OK"))
		})
	})

	It("answers UID SEARCH with ESEARCH when asked", func() {
		deliver(srv, "INBOX", "m1", "m2", "m3")
		c := login(addr)
		c.ok("SELECT INBOX")
		c.ok(`UID STORE 2 +FLAGS (\Seen)`)
		Expect(c.ok("UID SEARCH RETURN (MIN MAX COUNT) UNSEEN")).To(ConsistOf(MatchRegexp(`^\* ESEARCH \(TAG "t\d+"\) UID MIN 1 MAX 3 COUNT 2$`)))
		Expect(c.ok("SEARCH SUBJECT m2")).To(Equal([]string{"* SEARCH 2"}))
		Expect(c.ok("UID SEARCH BODY \"m3 body\"")).To(Equal([]string{"* SEARCH 3"}))
	})

	It("lists with LIST-STATUS, SPECIAL-USE and subscriptions", func() {
		Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Trash", SpecialUse: []string{`\Trash`}})).To(Succeed())
		deliver(srv, "Trash", "t1", "t2")
		c := login(addr)
		c.ok("SUBSCRIBE Trash")
		untagged := c.ok(`LIST "" "Trash" RETURN (STATUS (MESSAGES UIDNEXT UNSEEN) SUBSCRIBED)`)
		Expect(untagged).To(Equal([]string{
			`* LIST (\HasNoChildren \Subscribed \Trash) "/" "Trash"`,
			`* STATUS "Trash" (MESSAGES 2 UIDNEXT 3 UNSEEN 2)`,
		}))
		Expect(c.ok(`LIST (SPECIAL-USE) "" "*"`)).To(Equal([]string{`* LIST (\HasNoChildren \Trash) "/" "Trash"`}))
		Expect(c.ok(`LSUB "" "*"`)).To(ConsistOf(ContainSubstring(`INBOX`), ContainSubstring(`"Trash"`)))
		c.ok("UNSUBSCRIBE Trash")
		Expect(c.ok(`LSUB "" "*"`)).To(ConsistOf(ContainSubstring(`INBOX`)))
		Expect(c.ok(`LIST "" ""`)).To(Equal([]string{`* LIST (\Noselect) "/" ""`}))
	})

	It("answers NAMESPACE with one personal namespace", func() {
		c := login(addr)
		Expect(c.ok("NAMESPACE")).To(Equal([]string{`* NAMESPACE (("" "/")) NIL NIL`}))
	})

	It("leaves a mailbox with UNSELECT without expunging, and with CLOSE expunging", func() {
		deliver(srv, "INBOX", "m1", "m2")
		c := login(addr)
		c.ok("SELECT INBOX")
		c.ok(`STORE 1 +FLAGS (\Deleted)`)
		c.ok("UNSELECT")
		Expect(uidsOf(srv, "INBOX")).To(Equal([]uint32{1, 2}))
		c.ok("SELECT INBOX")
		c.ok("CLOSE")
		Expect(uidsOf(srv, "INBOX")).To(Equal([]uint32{2}))
	})

	It("sets \\Seen when a body is fetched without PEEK, and not on EXAMINE", func() {
		deliver(srv, "INBOX", "m1", "m2")
		c := login(addr)
		c.ok("EXAMINE INBOX")
		c.ok("FETCH 1 BODY[]")
		c.ok("SELECT INBOX")
		Expect(c.ok("FETCH 2 BODY[TEXT]")).To(ConsistOf(ContainSubstring(`FLAGS (\Seen)`)))
		Expect(c.ok("FETCH 1:2 (FLAGS)")).To(Equal([]string{"* 1 FETCH (UID 1 FLAGS ())", `* 2 FETCH (UID 2 FLAGS (\Seen))`}))
	})

	It("serves imapclient's FETCH of envelope, body structure and body", func() {
		deliver(srv, "INBOX", "m1")
		c := dialClient(addr, nil)
		_, err := c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		msgs, err := c.Fetch(imap.UIDSetNum(1), &imap.FetchOptions{
			Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{}, RFC822Size: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(msgs).To(HaveLen(1))
		Expect(msgs[0].Envelope.Subject).To(Equal("m1"))
		Expect(msgs[0].RFC822Size).To(Equal(int64(len(message("m1")))))
		Expect(msgs[0].FindBodySection(&imap.FetchItemBodySection{})).To(Equal(message("m1")))
	})

	It("notifies an imapclient through its unilateral data handler", func() {
		deliver(srv, "INBOX", "m1")
		exists := make(chan uint32, 10)
		c := dialClient(addr, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					exists <- *d.NumMessages
				}
			},
		}})
		_, err := c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		deliver(srv, "INBOX", "m2")
		Expect(c.Noop().Wait()).To(Succeed())
		Eventually(exists).Should(Receive(Equal(uint32(2))))
	})
})

func itoa(n int) string { return strconv.Itoa(n) }
