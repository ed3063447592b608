package engine_test

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

// crashWorld is an account with a phone (behind a cutter) and a laptop, both synced, and
// an offline journal on the phone that mixes appends, moves, flag changes, deletes and a
// mailbox creation; the server meanwhile got new mail.
type crashWorld struct {
	*world
	cut           *cutter
	phone, laptop *engine.Device
}

func newCrashWorld(opts fakeserver.Options, kind storeKind) *crashWorld {
	GinkgoHelper()
	w := newWorld(opts)
	w.store = kind.open
	w.create("Archive")
	w.deliver("INBOX", "m1", "m2", "m3", "m4")
	cw := &crashWorld{world: w}
	cw.phone, cw.cut = w.cutDevice("phone", kind.open())
	cw.laptop = w.device("laptop")
	settle(cw.phone, cw.laptop)

	do(cw.phone, clients.Action{Kind: clients.ActAppend, Mailbox: "INBOX", Message: msg("d1"), Flags: []string{`\Seen`}})
	do(cw.phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
	do(cw.phone, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m2"}, Flag: `\Flagged`})
	do(cw.phone, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m3"}})
	do(cw.phone, clients.Action{Kind: clients.ActRead, Mailbox: "Archive", Labels: []string{"m1"}})
	do(cw.phone, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "Projects"})
	do(cw.phone, clients.Action{Kind: clients.ActAppend, Mailbox: "Projects", Message: msg("d2")})
	do(cw.phone, clients.Action{Kind: clients.ActCopy, Mailbox: "INBOX", Labels: []string{"m4"}, Dest: "Projects"})
	w.deliver("INBOX", "n1", "n2")
	// Another client marked n2 \Deleted: an expunge without UIDPLUS clears and restores it.
	Expect(w.srv.Apply(fakeserver.Store{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "n2")},
		Add: true, Flags: []string{`\Deleted`}})).To(Succeed())
	return cw
}

// crashPair makes a world on opts with a phone whose connections go through a cutter and
// a laptop, both on kind's stores.
func crashPair(opts fakeserver.Options, kind storeKind) (*world, *engine.Device, *cutter, *engine.Device) {
	GinkgoHelper()
	w := newWorld(opts)
	w.store = kind.open
	phone, cut := w.cutDevice("phone", kind.open())
	return w, phone, cut, w.device("laptop")
}

// crashAfter syncs d, cuts the connection after the first command containing match (the
// server did it, d never learns), and restarts d as after a crash.
func crashAfter(d *engine.Device, cut *cutter, match string) {
	GinkgoHelper()
	cut.armMatch(match)
	crashNow(d, cut)
}

// crashAfterNext is crashAfter one command later: what the command containing match
// started is committed.
func crashAfterNext(d *engine.Device, cut *cutter, match string) {
	GinkgoHelper()
	cut.armNext(match)
	crashNow(d, cut)
}

func crashNow(d *engine.Device, cut *cutter) {
	GinkgoHelper()
	_, err := d.Sync(context.Background())
	Expect(err).To(HaveOccurred())
	Expect(d.Crash()).To(Succeed())
	cut.arm(0)
}

var crashWant = []string{
	`Archive: m1[\Seen]`,
	`INBOX: d1[\Seen] m2[\Flagged] m4 n1 n2[\Deleted]`,
	"Projects: d2 m4",
}

var _ = DescribeCrashSafety(storeKinds[0])
var _ = DescribeCrashSafety(storeKinds[1])

// DescribeCrashSafety declares the crash specs for devices on one kind of store.
func DescribeCrashSafety(kind storeKind) bool {
	return Describe("crash safety ("+kind.name+" store)", func() {
		It("converges to the same state without a crash", func() {
			cw := newCrashWorld(fakeserver.Options{Seed: 1}, kind)
			cw.cut.arm(0)
			syncOK(cw.phone)
			cw.expectConverged(crashWant, cw.phone, cw.laptop)
		})

		DescribeTable("loses and duplicates nothing when the phone crashes after any command of the round (F5, F6)",
			func(opts fakeserver.Options, faults ...fakeserver.Fault) {
				world := func() *crashWorld {
					cw := newCrashWorld(opts, kind)
					for _, f := range faults {
						Expect(cw.srv.Apply(f)).To(Succeed())
					}
					return cw
				}
				clean := world()
				clean.cut.arm(0)
				st := syncOK(clean.phone)
				total := clean.cut.commands()
				if len(faults) == 0 {
					Expect(st.Commands).To(Equal(total), "commands counted vs commands on the wire")
				}
				Expect(total).To(BeNumerically(">", 10))
				for n := 1; n <= total; n++ {
					By(fmt.Sprintf("crashing after command %d of %d", n, total))
					cw := world()
					cw.cut.arm(n)
					_, err := cw.phone.Sync(context.Background())
					if cw.cut.commands() >= n && len(faults) == 0 {
						Expect(err).To(HaveOccurred(), "the round survived a cut after command %d", n)
					} // with faults, the server's BYE can end the round earlier than in the clean run

					Expect(cw.phone.Crash()).To(Succeed())
					cw.cut.arm(0)
					cw.expectConverged(crashWant, cw.phone, cw.laptop)
				}
			},
			Entry("with every capability", fakeserver.Options{Seed: 1}),
			Entry("without MOVE and UIDPLUS (COPY, RFC 4549 expunge, lookups by Message-ID)",
				fakeserver.Options{Seed: 1, DisabledCaps: []string{"MOVE", "UIDPLUS"}}),
			Entry("after a UIDVALIDITY reset of INBOX (F1)", fakeserver.Options{Seed: 1},
				fakeserver.UIDValidityReset{User: user, Mailbox: "INBOX"}),
			Entry("after UIDs were renumbered silently in INBOX (F4)", fakeserver.Options{Seed: 1},
				fakeserver.RenumberSilently{User: user, Mailbox: "INBOX"}),
		)

		It("keeps a flag changed after a crash that hid an APPEND's answer (F5)", func() {
			w, phone, cut, laptop := crashPair(fakeserver.Options{Seed: 1}, kind)
			settle(phone, laptop)
			do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "INBOX", Message: msg("d1"), Flags: []string{`\Seen`}})
			crashAfter(phone, cut, "APPEND")
			do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"d1"}, Flag: `\Flagged`})
			w.expectConverged([]string{`INBOX: d1[\Flagged,\Seen]`}, phone, laptop)
		})

		DescribeTable("finishes a move cut short without MOVE when its source's UIDVALIDITY then changes",
			func(cutOn string, change fakeserver.Fault) {
				w, phone, cut, laptop := crashPair(fakeserver.Options{Seed: 1, DisabledCaps: []string{"MOVE", "UIDPLUS"}}, kind)
				w.create("Archive")
				w.deliver("INBOX", "m1", "m2")
				settle(phone, laptop)
				do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
				crashAfter(phone, cut, cutOn)
				Expect(w.srv.Apply(change)).To(Succeed())
				w.expectConverged([]string{"Archive: m1", "INBOX: m2"}, phone, laptop)
			},
			Entry("cut after the COPY, then a bump", "COPY", fakeserver.UIDValidityBump{User: user, Mailbox: "INBOX"}),
			Entry(`cut after the STORE \Deleted, then a bump`, `+FLAGS (\Deleted)`, fakeserver.UIDValidityBump{User: user, Mailbox: "INBOX"}),
			Entry("cut after the COPY, then a reset", "COPY", fakeserver.UIDValidityReset{User: user, Mailbox: "INBOX"}),
		)

		DescribeTable("puts a message where the user last moved it after a crash that hid its first move's answer",
			func(opts fakeserver.Options, cutOn, then string, want []string) {
				w, phone, cut, laptop := crashPair(opts, kind)
				w.create("Archive")
				w.create("Bin")
				w.deliver("INBOX", "m1", "m2")
				settle(phone, laptop)
				do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
				crashAfter(phone, cut, cutOn)
				do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "Archive", Labels: []string{"m1"}, Dest: then})
				w.expectConverged(want, phone, laptop)
			},
			Entry("MOVE, then on to Bin", fakeserver.Options{Seed: 1}, "MOVE", "Bin",
				[]string{"Archive:", "Bin: m1", "INBOX: m2"}),
			Entry("MOVE, then back to INBOX", fakeserver.Options{Seed: 1}, "MOVE", "INBOX",
				[]string{"Archive:", "Bin:", "INBOX: m1 m2"}),
			Entry("COPY without MOVE, then on to Bin", fakeserver.Options{Seed: 1, DisabledCaps: []string{"MOVE", "UIDPLUS"}}, "COPY", "Bin",
				[]string{"Archive:", "Bin: m1", "INBOX: m2"}),
			Entry("COPY without MOVE, then back to INBOX", fakeserver.Options{Seed: 1, DisabledCaps: []string{"MOVE", "UIDPLUS"}}, "COPY", "INBOX",
				[]string{"Archive:", "Bin:", "INBOX: m1 m2"}),
			Entry("before the MOVE, then on to Bin", fakeserver.Options{Seed: 1}, "STATUS", "Bin",
				[]string{"Archive:", "Bin: m1", "INBOX: m2"}),
		)

		It("settles the messages of a mailbox the server removed when a crash cut the round after the mailbox list", func() {
			w, phone, cut, laptop := crashPair(fakeserver.Options{Seed: 1}, kind)
			w.create("Archive")
			w.deliver("Archive", "m1")
			w.deliver("INBOX", "m2")
			settle(phone, laptop)
			do(phone, clients.Action{Kind: clients.ActRead, Mailbox: "Archive", Labels: []string{"m1"}})
			do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m2"}, Dest: "Archive"})
			Expect(w.srv.Apply(fakeserver.DeleteMailbox{User: user, Mailbox: "Archive"})).To(Succeed())
			// The reconciliation has committed the mailbox's removal, the rest of the round is
			// lost.
			crashAfterNext(phone, cut, " LIST ")
			w.expectConverged([]string{"INBOX: m2"}, phone, laptop)
		})

		DescribeTable("moves a new message the user moved after a crash that hid its APPEND's answer (F5)",
			func(opts fakeserver.Options, cutOn string) {
				w, phone, cut, laptop := crashPair(opts, kind)
				w.create("Archive")
				w.deliver("INBOX", "m1")
				settle(phone, laptop)
				do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "INBOX", Message: msg("d1")})
				crashAfter(phone, cut, cutOn)
				do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"d1"}, Dest: "Archive"})
				w.expectConverged([]string{"Archive: d1", "INBOX: m1"}, phone, laptop)
			},
			Entry("the APPEND reached the server", fakeserver.Options{Seed: 1}, "APPEND"),
			Entry("the crash came before the APPEND", fakeserver.Options{Seed: 1}, "STATUS"),
			Entry("the APPEND reached a server without UIDPLUS and MOVE",
				fakeserver.Options{Seed: 1, DisabledCaps: []string{"MOVE", "UIDPLUS"}}, "APPEND"),
		)

		DescribeTable("finishes a move without MOVE cut before its EXPUNGE into a mailbox whose UIDVALIDITY had changed",
			func(change fakeserver.Fault, flagAfter bool, want []string) {
				w, phone, cut, laptop := crashPair(fakeserver.Options{Seed: 1, DisabledCaps: []string{"MOVE", "UIDPLUS"}}, kind)
				w.create("Archive")
				w.deliver("INBOX", "m1", "m2")
				settle(phone, laptop)
				do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
				Expect(w.srv.Apply(change)).To(Succeed())
				crashAfter(phone, cut, "DELETED") // the UID SEARCH before the EXPUNGE
				if flagAfter {
					// The flag reaches the original, still there; the scan then finds the copy.
					do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "Archive", Labels: []string{"m1"}, Flag: "$Work"})
				}
				w.expectConverged(want, phone, laptop)
			},
			Entry("after a reset", fakeserver.UIDValidityReset{User: user, Mailbox: "Archive"}, false,
				[]string{"Archive: m1", "INBOX: m2"}),
			Entry("after a bump, with a flag set after the crash", fakeserver.UIDValidityBump{User: user, Mailbox: "Archive"}, true,
				[]string{"Archive: m1[$Work]", "INBOX: m2"}),
		)

		It("ties the UID of a message appended before the mailbox's first scan to the UIDVALIDITY it came with", func() {
			w, phone, cut, laptop := crashPair(fakeserver.Options{Seed: 1, DisabledCaps: []string{"UIDPLUS"}}, kind)
			w.deliver("INBOX", "m1", "m2", "m3")
			crashAfter(phone, cut, "SELECT") // the first round dies before any scan
			do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "INBOX", Message: msg("d1")})
			// The next round appends d1, finds its UID, and dies before the scan.
			crashAfterNext(phone, cut, "UID FETCH 4:*")
			Expect(w.srv.Apply(fakeserver.UIDValidityReset{User: user, Mailbox: "INBOX"})).To(Succeed())
			w.expectConverged([]string{"INBOX: d1 m1 m2 m3"}, phone, laptop)
		})

		DescribeTable("marks another client's message \\Deleted again after a crash cut the expunge without UIDPLUS",
			func(change fakeserver.Fault) {
				w, phone, cut, laptop := crashPair(fakeserver.Options{Seed: 1, DisabledCaps: []string{"UIDPLUS"}}, kind)
				w.deliver("INBOX", "m1", "m2", "m3")
				Expect(w.srv.Apply(fakeserver.Store{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m2")},
					Add: true, Flags: []string{`\Deleted`}})).To(Succeed())
				settle(phone, laptop)
				do(phone, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m1"}})
				crashAfter(phone, cut, "EXPUNGE") // m2's \Deleted is cleared, not yet set again
				if change != nil {
					Expect(w.srv.Apply(change)).To(Succeed())
				}
				w.expectConverged([]string{`INBOX: m2[\Deleted] m3`}, phone, laptop)
			},
			Entry("under the same UIDVALIDITY", nil),
			Entry("after a UIDVALIDITY bump", fakeserver.UIDValidityBump{User: user, Mailbox: "INBOX"}),
			Entry("after a UIDVALIDITY reset", fakeserver.UIDValidityReset{User: user, Mailbox: "INBOX"}),
		)

		It("leaves no record under a stale UID when a crash cuts the round that re-matched a reset mailbox", func() {
			w, phone, cut, laptop := crashPair(fakeserver.Options{Seed: 1}, kind)
			w.create("Zed")
			w.deliver("INBOX", "m1", "m2", "m3", "m4")
			settle(phone, laptop)
			// Renumbered from 1, the three left take UIDs 1 to 3: m3's old UID is taken.
			Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m3")}})).To(Succeed())
			Expect(w.srv.Apply(fakeserver.UIDValidityReset{User: user, Mailbox: "INBOX"})).To(Succeed())
			w.deliver("Zed", "z1")
			// INBOX is committed (m3 found nowhere yet); the crash comes while Zed's new
			// message downloads, before the round settles m3.
			crashAfter(phone, cut, "BODY.PEEK[]")
			w.expectConverged([]string{"INBOX: m1 m2 m4", "Zed: z1"}, phone, laptop)
		})

		It("puts a message back where the user moved it after a crash hid its first move's COPY and its source's UIDVALIDITY changed", func() {
			w, phone, cut, laptop := crashPair(fakeserver.Options{Seed: 1, DisabledCaps: []string{"MOVE"}}, kind)
			w.create("Sent") // scanned after INBOX
			w.deliver("INBOX", "m1", "m2")
			settle(phone, laptop)
			do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Sent"})
			crashAfter(phone, cut, "COPY")
			Expect(w.srv.Apply(fakeserver.UIDValidityBump{User: user, Mailbox: "INBOX"})).To(Succeed())
			do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "Sent", Labels: []string{"m1"}, Dest: "INBOX"})
			w.expectConverged([]string{"INBOX: m1 m2", "Sent:"}, phone, laptop)
		})

		DescribeTable("deletes a message the user removed after a crash that hid its move's answer",
			func(opts fakeserver.Options, cutOn string) {
				w, phone, cut, laptop := crashPair(opts, kind)
				w.create("Archive")
				w.deliver("INBOX", "m1", "m2")
				settle(phone, laptop)
				do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
				crashAfter(phone, cut, cutOn)
				do(phone, clients.Action{Kind: clients.ActDelete, Mailbox: "Archive", Labels: []string{"m1"}})
				w.expectConverged([]string{"Archive:", "INBOX: m2"}, phone, laptop)
			},
			Entry("after the MOVE", fakeserver.Options{Seed: 1}, "MOVE"),
			Entry("after the COPY, without MOVE", fakeserver.Options{Seed: 1, DisabledCaps: []string{"MOVE"}}, "COPY"),
			Entry("after the COPY, without MOVE and UIDPLUS", fakeserver.Options{Seed: 1, DisabledCaps: []string{"MOVE", "UIDPLUS"}}, "COPY"),
			Entry("before the move", fakeserver.Options{Seed: 1}, "STATUS"),
		)

		DescribeTable("deletes a message the user removed after a crash that hid its APPEND's answer (F5)",
			func(cutOn string, want []string) {
				w, phone, cut, laptop := crashPair(fakeserver.Options{Seed: 1}, kind)
				w.deliver("INBOX", "m1")
				settle(phone, laptop)
				do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "INBOX", Message: msg("d1")})
				crashAfter(phone, cut, cutOn)
				do(phone, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"d1"}})
				w.expectConverged(want, phone, laptop)
			},
			Entry("the APPEND reached the server", "APPEND", []string{"INBOX: m1"}),
			Entry("the crash came before the APPEND", "STATUS", []string{"INBOX: m1"}),
		)
	})
}
