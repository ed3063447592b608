package engine_test

import (
	"context"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

var _ = DescribeMisbehavingServer(storeKinds[0])
var _ = DescribeMisbehavingServer(storeKinds[1])

// DescribeMisbehavingServer declares the specs of a server that breaks an RFC rule the
// engine can live with (the fake server's wire bugs), for devices on one kind of store:
// the engine settles, and one more round sends nothing.
func DescribeMisbehavingServer(kind storeKind) bool {
	return Describe("a misbehaving server ("+kind.name+" store)", func() {
		var w *world
		var rw *rewriter
		BeforeEach(func() {
			w = newWorld(fakeserver.Options{Seed: 1})
			w.store = kind.open
			w.deliver("INBOX", "m1", "m2")
			rw = newRewriter(w.addr)
			w.dial = rw.dial
		})
		bug := func(name string) {
			GinkgoHelper()
			Expect(w.srv.Apply(fakeserver.WireBug{Bug: name, On: true})).To(Succeed())
		}
		flag := func(d clients.Device, kind clients.ActionKind, label, f string) {
			GinkgoHelper()
			do(d, clients.Action{Kind: kind, Mailbox: "INBOX", Labels: []string{label}, Flag: f})
		}
		// idle asserts that one more round of each device sends no mutating command and
		// changes nothing (I8).
		idle := func(devs ...clients.Device) {
			GinkgoHelper()
			for _, d := range devs {
				st := syncOK(d)
				Expect(st.Mutations).To(BeZero(), "device %s: mutations after settling", d.Name())
				Expect(st.LocalChanges).To(BeZero(), "device %s: local changes after settling", d.Name())
				ss, err := d.(clients.SyncStater).SyncState(context.Background())
				Expect(err).NotTo(HaveOccurred())
				Expect(ss.PendingDesc).To(BeEmpty(), "device %s: journal", d.Name())
			}
		}
		stores := func() int {
			n := 0
			for _, c := range rw.sent() {
				if strings.Contains(c, "STORE") {
					n++
				}
			}
			return n
		}

		Context("that lower-cases keywords (lowercase-keywords)", func() {
			var laptop, phone *engine.Device
			BeforeEach(func() {
				bug("lowercase-keywords")
				laptop = w.device("laptop")
				phone = w.device("phone")
				settle(laptop, phone)
			})

			It("compares keywords without case, keeps the user's spelling locally and settles", func() {
				flag(laptop, clients.ActFlag, "m1", "$Label1")
				settle(laptop, phone)
				Expect(w.server()).To(Equal([]string{"INBOX: m1[$label1] m2"}))
				Expect(replica(laptop)).To(Equal([]string{"INBOX: m1[$Label1] m2"}), "the user's spelling")
				Expect(replica(phone)).To(Equal([]string{"INBOX: m1[$label1] m2"}))
				before := stores()
				idle(laptop, phone)
				Expect(stores()).To(Equal(before), "a STORE after settling")

				// The keyword is one flag whatever its case: clearing it on either side
				// clears it everywhere.
				flag(phone, clients.ActUnflag, "m1", "$label1")
				settle(laptop, phone)
				Expect(w.server()).To(Equal([]string{"INBOX: m1 m2"}))
				Expect(replica(laptop)).To(Equal([]string{"INBOX: m1 m2"}))
				idle(laptop, phone)
			})

			It("clears a keyword the server spells otherwise when the user clears it in their spelling", func() {
				flag(laptop, clients.ActFlag, "m2", "$Work")
				settle(laptop, phone)
				flag(laptop, clients.ActUnflag, "m2", "$Work")
				settle(laptop, phone)
				w.expectConverged([]string{"INBOX: m1 m2"}, laptop, phone)
			})

			It("does not send again a keyword the server holds in another case", func() {
				flag(phone, clients.ActFlag, "m1", "$Label2")
				settle(phone, laptop)
				// The laptop sets it in yet another spelling: the server has it already.
				flag(laptop, clients.ActFlag, "m1", "$LABEL2")
				settle(laptop, phone)
				Expect(w.server()).To(Equal([]string{"INBOX: m1[$label2] m2"}))
				idle(laptop, phone)
			})

			It("takes system flags in any case", func() {
				flag(laptop, clients.ActFlag, "m2", `\SEEN`)
				settle(laptop, phone)
				w.expectConverged([]string{`INBOX: m1 m2[\Seen]`}, laptop, phone)
			})
		})

		Context("that answers NO to CREATE of an existing mailbox without [ALREADYEXISTS] (create-exists-without-code)", func() {
			var laptop *engine.Device
			BeforeEach(func() {
				bug("create-exists-without-code")
				laptop = w.device("laptop")
				settle(laptop)
			})

			It("checks with LIST that the mailbox exists and carries on", func() {
				do(laptop, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "Projects"})
				w.create("Projects")
				w.deliver("Projects", "p1")
				syncOK(laptop)
				creates := 0
				for _, c := range rw.sent() {
					if strings.Contains(c, " CREATE ") {
						creates++
					}
				}
				Expect(creates).To(Equal(1), "CREATE sent again")
				w.expectConverged([]string{"INBOX: m1 m2", "Projects: p1"}, laptop)
			})

			It("keeps the error when LIST does not show the mailbox", func() {
				do(laptop, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "Refused"})
				Expect(w.srv.Apply(fakeserver.Fail{N: 1, Command: "CREATE", Response: "NO Mailbox already exists"})).To(Succeed())
				_, err := laptop.Sync(context.Background())
				Expect(err).To(MatchError(ContainSubstring("Mailbox already exists")))
				Expect(w.server()).To(Equal([]string{"INBOX: m1 m2"}))
				// The next round sends the CREATE again, which now succeeds.
				w.expectConverged([]string{"INBOX: m1 m2", "Refused:"}, laptop)
			})
		})
	})
}
