package engine_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

var _ = Describe("mailbox changes", func() {
	var w *world
	var phone, laptop clients.Device
	BeforeEach(func() {
		w = newWorld(fakeserver.Options{Seed: 1})
		w.create("Archive")
		w.deliver("INBOX", "m1", "m2")
		w.deliver("Archive", "a1")
		phone, laptop = w.device("phone"), w.device("laptop")
		settle(phone, laptop)
	})

	It("creates a mailbox and fills it offline, then everywhere", func() {
		do(phone, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "Projects"})
		do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Projects"})
		do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "Projects", Message: msg("p1")})
		w.expectConverged([]string{"Archive: a1", "INBOX: m2", "Projects: m1 p1"}, phone, laptop)
	})

	It("renames a mailbox with its messages, even after moving mail into it", func() {
		do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
		do(phone, clients.Action{Kind: clients.ActRenameMailbox, Mailbox: "Archive", Dest: "2025"})
		do(phone, clients.Action{Kind: clients.ActRead, Mailbox: "2025", Labels: []string{"a1"}})
		w.expectConverged([]string{`2025: a1[\Seen] m1`, "INBOX: m2"}, phone, laptop)
	})

	It("removes a mailbox after moving a message out of it", func() {
		do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "Archive", Labels: []string{"a1"}, Dest: "INBOX"})
		do(phone, clients.Action{Kind: clients.ActDeleteMailbox, Mailbox: "Archive"})
		w.expectConverged([]string{"INBOX: a1 m1 m2"}, phone, laptop)
	})

	// Found by exploration: the create's entry, in flight after the NO, kept its old name;
	// the removal forgot only a creation under the new one, and the next round created and
	// renamed the mailbox on the server, and never deleted it.
	It("removes from the server a mailbox whose creation was refused once, then renamed and removed", func() {
		do(phone, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "D1"})
		Expect(w.srv.Apply(fakeserver.Fail{N: 1, Command: "CREATE", Response: "NO [UNAVAILABLE] try again later"})).To(Succeed())
		_, err := phone.Sync(context.Background())
		Expect(err).To(MatchError(ContainSubstring("try again later")))
		do(phone, clients.Action{Kind: clients.ActRenameMailbox, Mailbox: "D1", Dest: "D2"})
		do(phone, clients.Action{Kind: clients.ActDeleteMailbox, Mailbox: "D2"})
		w.expectConverged([]string{"Archive: a1", "INBOX: m1 m2"}, phone, laptop)
	})

	It("never resurrects a mailbox deleted elsewhere: mail never uploaded there goes to INBOX", func() {
		do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "Archive", Message: msg("d1")})
		do(laptop, clients.Action{Kind: clients.ActDeleteMailbox, Mailbox: "Archive"})
		syncOK(laptop)
		w.expectConverged([]string{"INBOX: d1 m1 m2"}, phone, laptop)
	})

	It("never resurrects a mailbox renamed elsewhere: mail never uploaded there goes to INBOX", func() {
		do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "Archive", Message: msg("d1")})
		Expect(w.srv.Apply(fakeserver.RenameMailbox{User: user, Old: "Archive", New: "Old"})).To(Succeed())
		w.expectConverged([]string{"INBOX: d1 m1 m2", "Old: a1"}, phone, laptop)
	})

	It("trashes to the mailbox named Trash when none has the \\Trash attribute", func() {
		w.create("Trash")
		settle(phone, laptop)
		do(phone, clients.Action{Kind: clients.ActTrash, Mailbox: "INBOX", Labels: []string{"m1"}})
		w.expectConverged([]string{"Archive: a1", "INBOX: m2", "Trash: m1"}, phone, laptop)
	})

	It("reports UIDs, watermarks and the journal in its sync state", func() {
		st, err := clients.SyncStater(phone.(*engine.Device)).SyncState(context.Background())
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Pending).To(BeZero())
		snap, err := w.srv.Snapshot(user)
		Expect(err).NotTo(HaveOccurred())
		for _, mb := range st.Mailboxes {
			sm, ok := snap.Mailbox(mb.Name)
			Expect(ok).To(BeTrue())
			Expect(mb.UIDValidity).To(Equal(sm.UIDValidity))
			Expect(mb.UIDNext).To(Equal(sm.UIDNext))
			Expect(mb.Messages).To(HaveLen(len(sm.Messages)))
			for _, m := range mb.Messages {
				Expect(m.UID).To(Equal(w.uid(mb.Name, m.Label)))
			}
		}
		do(phone, clients.Action{Kind: clients.ActRead, Mailbox: "INBOX", Labels: []string{"m2"}})
		st, err = clients.SyncStater(phone.(*engine.Device)).SyncState(context.Background())
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Pending).To(Equal(1))
		Expect(st.PendingDesc).To(ConsistOf(MatchRegexp(`^pending flags m2 in "INBOX" \(local id \d+\)$`)))
	})
})

var _ = Describe("a mailbox another client renamed", func() {
	// Messages without a Message-ID: only their content tells them apart, which takes
	// their bodies.
	deliverBare := func(w *world, mailbox string, labels ...string) {
		GinkgoHelper()
		for _, l := range labels {
			body := clients.MakeMessage(clients.MessageSpec{Label: l, Run: run, NoMessageID: true, Size: 600})
			Expect(w.srv.Apply(fakeserver.Deliver{User: user, Mailbox: mailbox, Body: body})).To(Succeed())
		}
	}
	// world builds a server (with MAILBOXID, RFC 8474, when objectID) holding Work with
	// two messages, and a device that synced them and then flagged w1 offline.
	world := func(objectID bool) (*world, *engine.Device) {
		GinkgoHelper()
		w := newWorld(fakeserver.Options{Seed: 1})
		if objectID {
			Expect(w.srv.Apply(fakeserver.Mode{User: user, Mode: "mailboxid", On: true})).To(Succeed())
		}
		w.create("Work")
		deliverBare(w, "Work", "w1", "w2")
		phone := w.device("phone")
		syncOK(phone)
		do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "Work", Labels: []string{"w1"}, Flag: "$Todo"})
		Expect(w.srv.Apply(fakeserver.RenameMailbox{User: user, Old: "Work", New: "Projects"})).To(Succeed())
		return w, phone
	}

	It("is followed by its MAILBOXID: nothing downloaded again, the offline flag kept", func() {
		w, phone := world(true)
		st := syncOK(phone)
		Expect(st.Downloaded).To(BeZero())
		w.expectConverged([]string{"INBOX:", "Projects: w1[$Todo] w2"}, phone)
	})

	It("is matched again by content without MAILBOXID (the bodies are downloaded)", func() {
		w, phone := world(false)
		st := syncOK(phone)
		Expect(st.Downloaded).To(Equal(2))
		w.expectConverged([]string{"INBOX:", "Projects: w1[$Todo] w2"}, phone)
	})

	It("is not followed where the MAILBOXID is another mailbox's (re-created under a new name)", func() {
		w, phone := world(true)
		// The renamed mailbox goes, and a new one takes a new name with the same messages.
		Expect(w.srv.Apply(fakeserver.DeleteMailbox{User: user, Mailbox: "Projects"})).To(Succeed())
		w.create("Later")
		deliverBare(w, "Later", "w1", "w2")
		st := syncOK(phone)
		// Read as a new mailbox: its messages are matched by content (so the offline
		// flag finds w1 there), not taken for the old mailbox's by UID.
		Expect(st.Downloaded).To(Equal(2), "a mailbox with another MAILBOXID is read as a new one")
		w.expectConverged([]string{"INBOX:", "Later: w1[$Todo] w2"}, phone)
	})

	// A mailbox's mail, found nowhere after the mailbox left, is held a round, stranded
	// under the old name; not where another mailbox took the name, where it would pass
	// for that mailbox's own.
	It("lets the old mailbox's mail go where a new mailbox took the name (MAILBOXID changed)", func() {
		w, phone := world(true)
		Expect(w.srv.Apply(fakeserver.DeleteMailbox{User: user, Mailbox: "Projects"})).To(Succeed())
		w.create("Work")
		deliverBare(w, "Work", "n1")
		syncOK(phone)
		Expect(replica(phone)).To(Equal([]string{"INBOX:", "Work: n1"}))
		Expect(syncOK(phone).Changed()).To(BeFalse())
		w.expectConverged([]string{"INBOX:", "Work: n1"}, phone)
	})
})
