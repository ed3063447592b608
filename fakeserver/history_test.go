package fakeserver_test

import (
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"

	"github.com/syncharness/syncharness/fakeserver"
)

var _ = Describe("the history", func() {
	It("records every change with a strictly increasing clock, who made it and the UIDs", func() {
		srv, addr := startServer(fakeserver.Options{})
		deliver(srv, "INBOX", "m1", "m2")
		c := login(addr)
		c.ok("CREATE Archive")
		c.ok("SELECT INBOX")
		c.ok(`UID STORE 1 +FLAGS (\Flagged)`)
		c.ok("UID MOVE 2 Archive")
		c.ok("RENAME Archive Old")
		Expect(srv.Apply(fakeserver.UIDValidityBump{User: "alice", Mailbox: "Old"})).To(Succeed())
		c.ok("DELETE Old")

		events := srv.History()
		var kinds []string
		for i, e := range events {
			if i > 0 {
				Expect(e.Clock).To(BeNumerically(">", events[i-1].Clock))
			}
			kinds = append(kinds, e.Kind)
		}
		Expect(kinds).To(Equal([]string{"append", "append", "login", "create", "store", "move", "rename", "uidvalidity-bump", "delete"}))
		Expect(events[0]).To(MatchFields(IgnoreExtras, Fields{"User": Equal("alice"), "Session": BeZero(), "Mailbox": Equal("INBOX"), "UIDs": Equal([]uint32{1})}))
		session := events[2].Session
		Expect(session).NotTo(BeZero())
		Expect(events[4]).To(MatchFields(IgnoreExtras, Fields{"Session": Equal(session), "UIDs": Equal([]uint32{1}), "Flags": Equal([]string{`\Flagged`}), "Detail": Equal("+FLAGS")}))
		Expect(events[5]).To(MatchFields(IgnoreExtras, Fields{"Mailbox": Equal("INBOX"), "Dest": Equal("Archive"), "UIDs": Equal([]uint32{2}), "DestUIDs": Equal([]uint32{1})}))
		Expect(events[6]).To(MatchFields(IgnoreExtras, Fields{"Mailbox": Equal("Archive"), "Dest": Equal("Old")}))
		Expect(events[7]).To(MatchFields(IgnoreExtras, Fields{"Session": BeZero(), "UIDs": Equal([]uint32{1}), "DestUIDs": Equal([]uint32{1})}))
		Expect(events[8]).To(MatchFields(IgnoreExtras, Fields{"Mailbox": Equal("Old"), "UIDs": Equal([]uint32{1})}))
	})

	It("is a copy the caller may change", func() {
		srv, _ := startServer(fakeserver.Options{})
		deliver(srv, "INBOX", "m1")
		h := srv.History()
		h[0].UIDs[0] = 99
		Expect(srv.History()[0].UIDs).To(Equal([]uint32{1}))
	})
})

var _ = Describe("a snapshot", func() {
	It("shows mailboxes sorted by name with their attributes and messages", func() {
		srv, addr := startServer(fakeserver.Options{})
		Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Sent", SpecialUse: []string{`\sent`}})).To(Succeed())
		Expect(srv.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Archive/2024"})).To(Succeed())
		deliver(srv, "Sent", "s1")
		c := login(addr)
		c.ok("SUBSCRIBE Sent")
		c.ok("DELETE Archive")
		snap, err := srv.Snapshot("alice")
		Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, m := range snap.Mailboxes {
			names = append(names, m.Name)
		}
		Expect(slices.IsSorted(names)).To(BeTrue())
		Expect(names).To(Equal([]string{"Archive", "Archive/2024", "INBOX", "Sent"}))
		Expect(snap.Mailboxes[0].NoSelect).To(BeTrue())
		sent := snap.Mailboxes[3]
		Expect(sent.SpecialUse).To(Equal([]string{`\Sent`}))
		Expect(sent.Subscribed).To(BeTrue())
		Expect(sent.Messages).To(HaveLen(1))
		Expect(sent.HighestModSeq).To(BeNumerically(">=", sent.Messages[0].ModSeq))
		_, err = srv.Snapshot("nobody")
		Expect(err).To(MatchError(ContainSubstring(`no user "nobody"`)))
	})

	It("raises MODSEQ on every change of a message", func() {
		srv, addr := startServer(fakeserver.Options{})
		deliver(srv, "INBOX", "m1")
		before, _ := srv.Snapshot("alice")
		c := login(addr)
		c.ok("SELECT INBOX")
		c.ok(`STORE 1 +FLAGS (\Seen)`)
		after, _ := srv.Snapshot("alice")
		Expect(after.Mailboxes[0].Messages[0].ModSeq).To(BeNumerically(">", before.Mailboxes[0].Messages[0].ModSeq))
		Expect(after.Mailboxes[0].HighestModSeq).To(Equal(after.Mailboxes[0].Messages[0].ModSeq))
	})
})
