package engine_test

import (
	"context"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

// Messages that leave their mailbox while a round scans: found again, or let go, never
// forgotten with work pending while they may only have moved.
var _ = DescribeVanished(storeKinds[0])
var _ = DescribeVanished(storeKinds[1])

// DescribeVanished declares the vanished-message specs for devices on one kind of store.
func DescribeVanished(kind storeKind) bool {
	return Describe("a message gone from its mailbox ("+kind.name+" store)", func() {
		var w *world
		var laptop, phone *engine.Device
		var cut *cutter
		BeforeEach(func() {
			w = newWorld(fakeserver.Options{Seed: 1})
			w.store = kind.open
			w.create("Archive")
			w.create("Trash")
			w.deliver("INBOX", "m3", "m5")
			laptop, cut = w.cutDevice("laptop", kind.open())
			phone = w.device("phone")
			settle(laptop, phone)
		})
		// beforeSelect runs fn once, just before the laptop's next SELECT of mailbox.
		beforeSelect := func(mailbox string, fn func()) {
			var once sync.Once
			cut.setBefore(func(cmd string) {
				if strings.Contains(cmd, "SELECT "+mailbox+"\r") || strings.Contains(cmd, `SELECT "`+mailbox+`"`) {
					once.Do(fn)
				}
			})
			DeferCleanup(func() { cut.setBefore(nil) })
		}
		moveOnServer := func(from, label, dest string) {
			GinkgoHelper()
			Expect(w.srv.Apply(fakeserver.MoveMessages{User: user, Mailbox: from,
				UIDs: []uint32{w.uid(from, label)}, Dest: dest})).To(Succeed())
		}

		// renamedByPhone puts a1 and a2 in Archive, which the phone then renames Done.
		renamedByPhone := func() {
			GinkgoHelper()
			w.deliver("Archive", "a1", "a2")
			settle(laptop, phone)
			do(phone, clients.Action{Kind: clients.ActRenameMailbox, Mailbox: "Archive", Dest: "Done"})
			syncOK(phone)
		}

		// Found by seeded exploration: the laptop scanned Archive before m3 arrived there
		// and Trash after it left, and forgot its pending \Answered.
		It("keeps a pending flag on a message moved into a mailbox already scanned", func() {
			do(laptop, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m3"}, Flag: `\Answered`})
			moveOnServer("INBOX", "m3", "Trash")
			beforeSelect("Trash", func() { moveOnServer("Trash", "m3", "Archive") })
			st := syncOK(laptop)
			Expect(st.Conflicts).To(BeZero(), "nothing was expunged")
			w.expectConverged([]string{`Archive: m3[\Answered]`, "INBOX: m5", "Trash:"}, laptop, phone)
		})

		It("lets a message with a pending flag go when the server expunged it", func() {
			do(laptop, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m3"}, Flag: `\Answered`})
			Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m3")}})).To(Succeed())
			st := syncOK(laptop)
			Expect(st.Conflicts).To(Equal(1), "expunge beats flag")
			Expect(replica(laptop)).To(Equal([]string{"Archive:", "INBOX: m5", "Trash:"}))
		})

		It("lets a held message go in the next round when it was expunged after all", func() {
			do(laptop, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m3"}, Flag: `\Answered`})
			Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m3")}})).To(Succeed())
			beforeSelect("Trash", func() { w.deliver("Archive", "m6") })
			syncOK(laptop)
			Expect(replica(laptop)).To(ContainElement(`INBOX: m3[\Answered] m5`), "held while mail moved")
			st := syncOK(laptop)
			Expect(st.Conflicts).To(Equal(1), "expunge beats flag")
			w.expectConverged([]string{"Archive: m6", "INBOX: m5", "Trash:"}, laptop, phone)
		})

		// Found by the corruption sweep (a BYE in the round): the round retried on a new
		// connection skipped the records the first one had left stranded when it found
		// Archive gone, downloaded Done's messages as new, and the pending \Flagged
		// stayed behind on the stranded record, out of sight.
		It("keeps a pending flag in a mailbox another device renamed when the connection drops after the rename is noticed", func() {
			renamedByPhone()
			do(laptop, clients.Action{Kind: clients.ActFlag, Mailbox: "Archive", Labels: []string{"a2"}, Flag: `\Flagged`})
			Expect(w.srv.Apply(fakeserver.Fail{N: 1, Command: "UID FETCH", Response: "BYE going away"})).To(Succeed())
			st := syncOK(laptop) // the round is retried on a new connection
			Expect(st.Downloaded).To(BeZero(), "the renamed mailbox's messages downloaded again")
			w.expectConverged([]string{`Done: a1 a2[\Flagged]`, "INBOX: m3 m5", "Trash:"}, laptop, phone)
		})

		// Without OBJECTID a renamed mailbox is one gone and one new: its records wait,
		// stranded, for the scan of the new one to claim them. A round cut short in
		// between left them out of the replica's view until the next round.
		It("shows a renamed mailbox's messages where they were while a round cut short has not found them", func() {
			renamedByPhone()
			Expect(w.srv.Apply(fakeserver.Fail{N: 1, Command: "UID FETCH", Response: "NO try later"})).To(Succeed())
			_, err := laptop.Sync(context.Background())
			Expect(err).To(MatchError(ContainSubstring("try later")))
			Expect(replica(laptop)).To(Equal([]string{"Archive: a1 a2", "Done:", "INBOX: m3 m5", "Trash:"}))
			st := syncOK(laptop)
			Expect(st.Downloaded).To(BeZero(), "the renamed mailbox's messages downloaded again")
			w.expectConverged([]string{"Done: a1 a2", "INBOX: m3 m5", "Trash:"}, laptop, phone)
		})

		// A mailbox another device deleted: its messages, found nowhere, stay a round (as a
		// LIST that left out the new name of a renamed mailbox looks the same), then go.
		It("lets a deleted mailbox's messages go in the round after the one that found it gone", func() {
			w.deliver("Archive", "a1", "a2")
			settle(laptop, phone)
			do(phone, clients.Action{Kind: clients.ActDeleteMailbox, Mailbox: "Archive"})
			syncOK(phone)
			syncOK(laptop)
			Expect(replica(laptop)).To(ContainElement("Archive: a1 a2"), "held for a round")
			st := syncOK(laptop)
			Expect(st.LocalChanges).To(BeNumerically(">", 0))
			w.expectConverged([]string{"INBOX: m3 m5", "Trash:"}, laptop, phone)
			Expect(syncOK(laptop).Changed()).To(BeFalse())
		})

		// Found by the corruption sweep: a round that could not select the new name held
		// the records it had found gone, but ended without marking them for the next
		// round, which downloaded the mailbox again and lost the pending flag.
		It("keeps a pending flag in a renamed mailbox when the new name cannot be selected for a round", func() {
			renamedByPhone()
			do(laptop, clients.Action{Kind: clients.ActFlag, Mailbox: "Archive", Labels: []string{"a2"}, Flag: `\Flagged`})
			beforeSelect("Done", func() {
				Expect(w.srv.Apply(fakeserver.Fail{N: 1, Command: "SELECT", Response: "NO try later"})).To(Succeed())
			})
			_, _ = laptop.Sync(context.Background())
			Expect(replica(laptop)).To(ContainElement(`Archive: a1 a2[\Flagged]`))
			st := syncOK(laptop)
			Expect(st.Downloaded).To(BeZero(), "the renamed mailbox's messages downloaded again")
			w.expectConverged([]string{`Done: a1 a2[\Flagged]`, "INBOX: m3 m5", "Trash:"}, laptop, phone)
		})
	})
}
