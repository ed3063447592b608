package engine_test

import (
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
	})
}
