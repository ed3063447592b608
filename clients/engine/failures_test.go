package engine_test

import (
	"context"
	"strings"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

// The failure catalogue of DESIGN.md §5, one spec (at least) per failure that concerns an
// engine. Each asserts the exact final state of the server and of every replica.
var _ = DescribeFailureCatalogue(storeKinds[0])
var _ = DescribeFailureCatalogue(storeKinds[1])

// DescribeFailureCatalogue declares the catalogue specs for devices on one kind of store.
func DescribeFailureCatalogue(kind storeKind) bool {
	return Describe("the failure catalogue ("+kind.name+" store)", func() {
		var w *world
		var phone, laptop *engine.Device
		setup := func(opts fakeserver.Options) {
			w = newWorld(opts)
			w.store = kind.open
			w.create("Archive")
			Expect(w.srv.Apply(fakeserver.CreateMailbox{User: user, Mailbox: "Bin", SpecialUse: []string{`\Trash`}})).To(Succeed())
			w.deliver("INBOX", "m1", "m2", "m3")
			phone, laptop = w.device("phone"), w.device("laptop")
			settle(phone, laptop)
		}
		read := func(d clients.Device, mailbox string, labels ...string) {
			do(d, clients.Action{Kind: clients.ActRead, Mailbox: mailbox, Labels: labels})
		}
		flag := func(d clients.Device, mailbox, label, f string) {
			do(d, clients.Action{Kind: clients.ActFlag, Mailbox: mailbox, Labels: []string{label}, Flag: f})
		}
		move := func(d clients.Device, mailbox, label, dest string) {
			do(d, clients.Action{Kind: clients.ActMove, Mailbox: mailbox, Labels: []string{label}, Dest: dest})
		}
		del := func(d clients.Device, mailbox string, labels ...string) {
			do(d, clients.Action{Kind: clients.ActDelete, Mailbox: mailbox, Labels: labels})
		}
		serverStore := func(mailbox, label string, add bool, flags ...string) {
			GinkgoHelper()
			Expect(w.srv.Apply(fakeserver.Store{User: user, Mailbox: mailbox, UIDs: []uint32{w.uid(mailbox, label)},
				Add: add, Flags: flags})).To(Succeed())
		}

		// halfMove does what another device's move without MOVE does before its EXPUNGE:
		// COPY label from INBOX to Archive and mark the original \Deleted. It returns the
		// original's UID.
		halfMove := func(label string) uint32 {
			GinkgoHelper()
			uid := w.uid("INBOX", label)
			Expect(w.srv.Apply(fakeserver.CopyMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{uid}, Dest: "Archive"})).To(Succeed())
			serverStore("INBOX", label, true, `\Deleted`)
			return uid
		}

		Context("with every capability", func() {
			BeforeEach(func() { setup(fakeserver.Options{Seed: 1}) })

			It("F1: after a UIDVALIDITY reset, puts pending flags and deletes on the right messages", func() {
				flag(phone, "INBOX", "m2", `\Flagged`)
				del(phone, "INBOX", "m3")
				Expect(w.srv.Apply(fakeserver.UIDValidityReset{User: user, Mailbox: "INBOX"})).To(Succeed())
				w.expectConverged([]string{"Archive:", "Bin:", `INBOX: m1 m2[\Flagged]`}, phone, laptop)
			})

			It("F2: after a UIDVALIDITY reset, uploads nothing and duplicates nothing", func() {
				Expect(w.srv.Apply(fakeserver.UIDValidityReset{User: user, Mailbox: "INBOX"})).To(Succeed())
				st := syncOK(phone)
				Expect(st.Uploaded).To(BeZero())
				Expect(st.Downloaded).To(BeZero())
				Expect(st.Quarantined).To(BeZero())
				w.expectConverged([]string{"Archive:", "Bin:", "INBOX: m1 m2 m3"}, phone, laptop)
			})

			It("F3: after a UIDVALIDITY bump with the same UIDs, downloads nothing", func() {
				read(laptop, "INBOX", "m1")
				Expect(w.srv.Apply(fakeserver.UIDValidityBump{User: user, Mailbox: "INBOX"})).To(Succeed())
				st := syncOK(phone)
				Expect(st.Downloaded).To(BeZero())
				w.expectConverged([]string{"Archive:", "Bin:", `INBOX: m1[\Seen] m2 m3`}, laptop, phone)
			})

			It("F4: survives UIDs renumbered without a UIDVALIDITY change, without duplicates", func() {
				flag(phone, "INBOX", "m1", "$Important")
				Expect(w.srv.Apply(fakeserver.RenumberSilently{User: user, Mailbox: "INBOX"})).To(Succeed())
				w.expectConverged([]string{"Archive:", "Bin:", "INBOX: m1[$Important] m2 m3"}, phone, laptop)
			})

			It("F7: a stale offline device does not push deleted mail back", func() {
				del(laptop, "INBOX", "m1")
				syncOK(laptop)
				read(phone, "INBOX", "m1", "m2")
				st := syncOK(phone)
				Expect(st.Uploaded).To(BeZero())
				Expect(st.Conflicts).To(Equal(1))
				w.expectConverged([]string{"Archive:", "Bin:", `INBOX: m2[\Seen] m3`}, phone, laptop)
			})

			It("F8: a wiped local store brings everything back and deletes nothing", func() {
				fresh := w.device("phone-replaced")
				st := syncOK(fresh)
				Expect(st.Mutations).To(BeZero())
				Expect(st.Downloaded).To(Equal(3))
				w.expectConverged([]string{"Archive:", "Bin:", "INBOX: m1 m2 m3"}, phone, laptop, fresh)
			})

			It("F9: sees a move by another client as a move: no duplicate, no download, flags follow", func() {
				read(phone, "INBOX", "m1")
				Expect(w.srv.Apply(fakeserver.MoveMessages{User: user, Mailbox: "INBOX",
					UIDs: []uint32{w.uid("INBOX", "m1")}, Dest: "Archive"})).To(Succeed())
				st := syncOK(phone)
				Expect(st.Downloaded).To(BeZero())
				w.expectConverged([]string{`Archive: m1[\Seen]`, "Bin:", "INBOX: m2 m3"}, phone, laptop)
			})

			It("F10: deletes only its own messages, never another client's \\Deleted ones", func() {
				serverStore("INBOX", "m2", true, `\Deleted`)
				del(phone, "INBOX", "m1")
				w.expectConverged([]string{"Archive:", "Bin:", `INBOX: m2[\Deleted] m3`}, phone, laptop)
			})

			It("F11: merges a concurrent flag change instead of overwriting the whole set", func() {
				flag(phone, "INBOX", "m1", `\Flagged`)
				serverStore("INBOX", "m1", true, `\Seen`)
				w.expectConverged([]string{"Archive:", "Bin:", `INBOX: m1[\Flagged,\Seen] m2 m3`}, phone, laptop)
			})

			It("F11: writes a flag the user set back to its old value, as the newest write", func() {
				read(laptop, "INBOX", "m2")
				read(phone, "INBOX", "m2")
				syncOK(laptop)
				do(phone, clients.Action{Kind: clients.ActUnread, Mailbox: "INBOX", Labels: []string{"m2"}})
				w.expectConverged([]string{"Archive:", "Bin:", "INBOX: m1 m2 m3"}, phone, laptop)
			})

			It("F12: keeps custom keywords on both sides", func() {
				flag(phone, "INBOX", "m1", "$Work")
				serverStore("INBOX", "m2", true, "$Label1", "Todo")
				w.expectConverged([]string{"Archive:", "Bin:", "INBOX: m1[$Work] m2[$Label1,Todo] m3"}, phone, laptop)
			})

			It("F13: a flag set on a message another device moved follows it", func() {
				move(laptop, "INBOX", "m1", "Archive")
				syncOK(laptop)
				flag(phone, "INBOX", "m1", `\Flagged`)
				w.expectConverged([]string{`Archive: m1[\Flagged]`, "Bin:", "INBOX: m2 m3"}, phone, laptop)
			})

			It("F14: concurrent moves to different folders end in one of them, once", func() {
				move(phone, "INBOX", "m1", "Archive")
				do(laptop, clients.Action{Kind: clients.ActTrash, Mailbox: "INBOX", Labels: []string{"m1"}})
				st := syncOK(phone)
				Expect(st.Conflicts).To(BeZero())
				st = syncOK(laptop)
				Expect(st.Conflicts).To(Equal(1))
				w.expectConverged([]string{"Archive: m1", "Bin:", "INBOX: m2 m3"}, phone, laptop)
			})

			It("F14: expunge beats move", func() {
				move(phone, "INBOX", "m1", "Archive")
				del(laptop, "INBOX", "m1")
				syncOK(laptop)
				w.expectConverged([]string{"Archive:", "Bin:", "INBOX: m2 m3"}, phone, laptop)
			})

			It("F14: a delete follows a message another client moved between our STORE and EXPUNGE", func() {
				tablet, cut := w.cutDevice("tablet", kind.open())
				settle(tablet)
				uid := w.uid("INBOX", "m1")
				var moved atomic.Bool
				cut.setBefore(func(cmd string) {
					if strings.Contains(cmd, "EXPUNGE") && moved.CompareAndSwap(false, true) {
						Expect(w.srv.Apply(fakeserver.MoveMessages{User: user, Mailbox: "INBOX",
							UIDs: []uint32{uid}, Dest: "Archive"})).To(Succeed())
					}
				})
				del(tablet, "INBOX", "m1")
				syncOK(tablet)
				Expect(moved.Load()).To(BeTrue())
				w.expectConverged([]string{"Archive:", "Bin:", "INBOX: m2 m3"}, tablet, phone, laptop)
			})

			It("rescues to INBOX, in the same round, a new message whose mailbox another client renamed just before the APPEND", func() {
				tablet, cut := w.cutDevice("tablet", kind.open())
				settle(tablet)
				var renamed atomic.Bool
				cut.setBefore(func(cmd string) {
					if strings.Contains(cmd, " APPEND ") && renamed.CompareAndSwap(false, true) {
						Expect(w.srv.Apply(fakeserver.RenameMailbox{User: user, Old: "Archive", New: "Old"})).To(Succeed())
					}
				})
				do(tablet, clients.Action{Kind: clients.ActAppend, Mailbox: "Archive", Message: msg("d1")})
				syncOK(tablet)
				Expect(renamed.Load()).To(BeTrue())
				Expect(w.server()).To(ContainElement("INBOX: d1 m1 m2 m3"))
				w.expectConverged([]string{"Bin:", "INBOX: d1 m1 m2 m3", "Old:"}, tablet, phone, laptop)
			})

			It("carries a flag to the copy of a message that left its mailbox before a UIDVALIDITY reset there", func() {
				uid := w.uid("INBOX", "m1")
				Expect(w.srv.Apply(fakeserver.CopyMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{uid}, Dest: "Archive"})).To(Succeed())
				syncOK(phone)
				Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{uid}})).To(Succeed())
				Expect(w.srv.Apply(fakeserver.UIDValidityReset{User: user, Mailbox: "INBOX"})).To(Succeed())
				read(phone, "INBOX", "m1")
				st := syncOK(phone)
				Expect(st.Quarantined).To(BeZero(), "its content is on the server: nothing to set aside")
				w.expectConverged([]string{`Archive: m1[\Seen]`, "Bin:", "INBOX: m2 m3"}, phone, laptop)
			})

			It("makes a copy rescued from a removed mailbox with the flags its source had when the user copied", func() {
				do(phone, clients.Action{Kind: clients.ActCopy, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
				read(phone, "INBOX", "m1")
				Expect(w.srv.Apply(fakeserver.DeleteMailbox{User: user, Mailbox: "Archive"})).To(Succeed())
				w.expectConverged([]string{"Bin:", `INBOX: m1 m1[\Seen] m2 m3`}, phone, laptop)
			})

			It("adopts back a message quarantined after a reset when it turns up elsewhere, with its pending flags", func() {
				flag(phone, "INBOX", "m1", "$Work")
				date := w.internalDate("INBOX", "m1")
				Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m1")}})).To(Succeed())
				Expect(w.srv.Apply(fakeserver.UIDValidityReset{User: user, Mailbox: "INBOX"})).To(Succeed())
				st := syncOK(phone)
				Expect(st.Quarantined).To(Equal(1))
				// It turns up elsewhere as a move leaves it: with its INTERNALDATE (RFC 3501
				// §6.4.7), which vouches for its content (a delivery made in another second
				// than the first would have its body downloaded to compare).
				Expect(w.srv.Apply(fakeserver.Deliver{User: user, Mailbox: "Archive", Body: msg("m1"), Date: date})).To(Succeed())
				st = syncOK(phone)
				Expect(st.Downloaded).To(BeZero(), "the quarantined record is the message")
				w.expectConverged([]string{"Archive: m1[$Work]", "Bin:", "INBOX: m2 m3"}, phone, laptop)
			})

			It("keeps no write for a copy on a server with MOVE: a later change by another device stands", func() {
				flag(laptop, "INBOX", "m1", `\Deleted`)
				syncOK(laptop)
				read(phone, "INBOX", "m1") // lands on a message marked \Deleted by the laptop
				syncOK(phone)
				syncOK(laptop)
				do(laptop, clients.Action{Kind: clients.ActUnread, Mailbox: "INBOX", Labels: []string{"m1"}})
				syncOK(laptop)
				Expect(w.srv.Apply(fakeserver.MoveMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m1")}, Dest: "Archive"})).To(Succeed())
				w.expectConverged([]string{`Archive: m1[\Deleted]`, "Bin:", "INBOX: m2 m3"}, phone, laptop)
			})

			It("F15: a folder renamed while a device was offline is neither resurrected nor downloaded again", func() {
				move(laptop, "INBOX", "m1", "Archive")
				settle(laptop, phone)
				do(laptop, clients.Action{Kind: clients.ActRenameMailbox, Mailbox: "Archive", Dest: "Old"})
				syncOK(laptop)
				st := syncOK(phone)
				Expect(st.Downloaded).To(BeZero())
				w.expectConverged([]string{"Bin:", "INBOX: m2 m3", "Old: m1"}, phone, laptop)
			})

			It("F15: a folder deleted while a device was offline is not resurrected", func() {
				move(laptop, "INBOX", "m1", "Archive")
				settle(laptop, phone)
				read(phone, "Archive", "m1")
				do(laptop, clients.Action{Kind: clients.ActDeleteMailbox, Mailbox: "Archive"})
				syncOK(laptop)
				w.expectConverged([]string{"Bin:", "INBOX: m2 m3"}, phone, laptop)
			})

			It("F16: never uses a missing or shared Message-ID as identity", func() {
				a := clients.MakeMessage(clients.MessageSpec{Label: "s1", Run: run, Size: 500, Seed: 1})
				b := clients.MakeMessage(clients.MessageSpec{Label: "s1", Run: run, Size: 500, Seed: 2})
				c := clients.MakeMessage(clients.MessageSpec{Label: "x1", Run: run, Size: 500, NoMessageID: true})
				Expect(a).To(HaveLen(len(b)))
				for _, body := range [][]byte{a, b, c} {
					Expect(w.srv.Apply(fakeserver.Deliver{User: user, Mailbox: "Archive", Body: body})).To(Succeed())
				}
				settle(phone, laptop)
				read(phone, "Archive", "s1", "x1")
				Expect(w.srv.Apply(fakeserver.UIDValidityReset{User: user, Mailbox: "Archive"})).To(Succeed())
				w.expectConverged([]string{`Archive: s1[\Seen] s1[\Seen] x1[\Seen]`, "Bin:", "INBOX: m1 m2 m3"}, phone, laptop)
				hashes := func(d clients.Device) []string {
					r, err := d.View(context.Background())
					Expect(err).NotTo(HaveOccurred())
					var out []string
					for _, m := range r.Find("Archive").Messages {
						out = append(out, m.Hash)
					}
					return out
				}
				want := []string{clients.ContentHash(a), clients.ContentHash(b), clients.ContentHash(c)}
				Expect(hashes(phone)).To(ConsistOf(want))
				Expect(hashes(laptop)).To(ConsistOf(want))
				state, err := phone.SyncState(context.Background())
				Expect(err).NotTo(HaveOccurred())
				snap, err := w.srv.Snapshot(user)
				Expect(err).NotTo(HaveOccurred())
				arch, _ := snap.Mailbox("Archive")
				byUID := map[uint32]string{}
				for _, m := range arch.Messages {
					byUID[m.UID] = clients.ContentHash(m.Body)
				}
				for _, mb := range state.Mailboxes {
					if mb.Name != "Archive" {
						continue
					}
					Expect(mb.UIDValidity).To(Equal(arch.UIDValidity))
					for _, m := range mb.Messages {
						Expect(byUID[m.UID]).To(Equal(m.Hash), "UID %d holds other content", m.UID)
					}
				}
			})

			It("makes a copy on the server, so it gets the flags its source has there by then", func() {
				do(laptop, clients.Action{Kind: clients.ActCopy, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
				read(phone, "INBOX", "m1")
				syncOK(phone)
				st := syncOK(laptop)
				Expect(st.Uploaded).To(BeZero())
				w.expectConverged([]string{`Archive: m1[\Seen]`, "Bin:", `INBOX: m1[\Seen] m2 m3`}, phone, laptop)
			})

			It("carries a flag set on the source before a copy to the copy", func() {
				read(phone, "INBOX", "m1")
				do(phone, clients.Action{Kind: clients.ActCopy, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
				w.expectConverged([]string{`Archive: m1[\Seen]`, "Bin:", `INBOX: m1[\Seen] m2 m3`}, phone, laptop)
			})

			It("keeps a flag the user wrote across a UIDVALIDITY change", func() {
				read(phone, "INBOX", "m1")
				read(laptop, "INBOX", "m1")
				do(phone, clients.Action{Kind: clients.ActUnread, Mailbox: "INBOX", Labels: []string{"m1"}})
				syncOK(laptop)
				Expect(w.srv.Apply(fakeserver.UIDValidityBump{User: user, Mailbox: "INBOX"})).To(Succeed())
				w.expectConverged([]string{"Archive:", "Bin:", "INBOX: m1 m2 m3"}, phone, laptop)
			})

			It("F17: shows a message marked \\Deleted by someone else the same way on every device", func() {
				serverStore("INBOX", "m2", true, `\Deleted`)
				w.expectConverged([]string{"Archive:", "Bin:", `INBOX: m1 m2[\Deleted] m3`}, phone, laptop)
			})
		})

		Context("without MOVE and UIDPLUS", func() {
			BeforeEach(func() { setup(fakeserver.Options{Seed: 1, DisabledCaps: []string{"MOVE", "UIDPLUS"}}) })

			It("moves messages of one mailbox to several others in one round", func() {
				move(phone, "INBOX", "m1", "Archive")
				move(phone, "INBOX", "m2", "Bin")
				do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "INBOX", Message: msg("d1")})
				move(phone, "INBOX", "m3", "Archive")
				w.expectConverged([]string{"Archive: m1 m3", "Bin: m2", "INBOX: d1"}, phone, laptop)
			})

			It("moves with COPY and expunges only its own message (F10)", func() {
				serverStore("INBOX", "m3", true, `\Deleted`)
				read(phone, "INBOX", "m1")
				move(phone, "INBOX", "m1", "Archive")
				del(phone, "INBOX", "m2")
				do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "INBOX", Message: msg("d1")})
				w.expectConverged([]string{`Archive: m1[\Seen]`, "Bin:", `INBOX: d1 m3[\Deleted]`}, phone, laptop)
			})

			It("carries a flag written during another device's half-done COPY move to the copy a round saw earlier", func() {
				read(phone, "INBOX", "m2")
				syncOK(phone)
				// Another device moves m2 to Archive without MOVE: COPY, STORE \Deleted, and
				// the phone syncs between the STORE and the EXPUNGE.
				uid := halfMove("m2")
				syncOK(phone)
				Expect(replica(phone)).To(ContainElements(`Archive: m2[\Seen]`, `INBOX: m1 m2[\Deleted,\Seen] m3`))
				do(phone, clients.Action{Kind: clients.ActUnread, Mailbox: "INBOX", Labels: []string{"m2"}})
				Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{uid}})).To(Succeed())
				w.expectConverged([]string{"Archive: m2", "Bin:", "INBOX: m1 m3"}, phone, laptop)
			})

			It("carries a flag it wrote on the original during another device's half-done COPY move to the copy", func() {
				read(phone, "INBOX", "m2")
				syncOK(phone)
				uid := halfMove("m2")
				// The phone's write lands on the original, marked \Deleted, not on the copy.
				do(phone, clients.Action{Kind: clients.ActUnread, Mailbox: "INBOX", Labels: []string{"m2"}})
				syncOK(phone)
				Expect(replica(phone)).To(ContainElements(`Archive: m2[\Seen]`, `INBOX: m1 m2[\Deleted] m3`))
				state, err := phone.SyncState(context.Background())
				Expect(err).NotTo(HaveOccurred())
				Expect(state.Pending).To(BeZero(), "a write kept for the copy is no work for the server: %v", state.PendingDesc)
				Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{uid}})).To(Succeed())
				w.expectConverged([]string{"Archive: m2", "Bin:", "INBOX: m1 m3"}, phone, laptop)
			})

			It("moves without UIDPLUS while another client keeps clearing \\Deleted on the original, and expunges it a round later", func() {
				tablet, cut := w.cutDevice("tablet", kind.open())
				settle(tablet)
				// Another client expunging its own message clears \Deleted on ours just
				// before each of our EXPUNGEs, the race RFC 4549's fallback leaves open.
				var interfere atomic.Bool
				interfere.Store(true)
				var expunges atomic.Int32
				cut.setBefore(func(cmd string) {
					if strings.HasSuffix(strings.TrimSpace(cmd), " EXPUNGE") && interfere.Load() {
						expunges.Add(1)
						serverStore("INBOX", "m1", false, `\Deleted`)
					}
				})
				move(tablet, "INBOX", "m1", "Archive")
				syncOK(tablet)
				Expect(expunges.Load()).To(BeNumerically(">", 1), "the engine tries again within the round")
				Expect(w.server()).To(ContainElements("Archive: m1", "INBOX: m1 m2 m3"))
				Expect(replica(tablet)).To(ContainElements("Archive: m1", "INBOX: m2 m3"))
				interfere.Store(false)
				w.expectConverged([]string{"Archive: m1", "Bin:", "INBOX: m2 m3"}, tablet, phone, laptop)
			})

			DescribeTable("moves without MOVE and writes to the copy a flag another client set on the original after the COPY",
				func(bumpDest bool) {
					tablet, cut := w.cutDevice("tablet", kind.open())
					settle(tablet)
					if bumpDest {
						// The copy is then found by the scan, not right after the COPY.
						Expect(w.srv.Apply(fakeserver.UIDValidityBump{User: user, Mailbox: "Archive"})).To(Succeed())
					}
					var flagged atomic.Bool
					cut.setBefore(func(cmd string) {
						if strings.Contains(cmd, `+FLAGS (\Deleted)`) && flagged.CompareAndSwap(false, true) {
							serverStore("INBOX", "m1", true, `\Seen`)
						}
					})
					move(tablet, "INBOX", "m1", "Archive")
					syncOK(tablet)
					Expect(flagged.Load()).To(BeTrue())
					w.expectConverged([]string{`Archive: m1[\Seen]`, "Bin:", "INBOX: m2 m3"}, tablet, phone, laptop)
				},
				Entry("found right after the COPY", false),
				Entry("found by the scan, the destination's UIDVALIDITY having changed", true),
			)

			It("keeps a \\Deleted the user set on a message another device moves without MOVE", func() {
				do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: `\Deleted`})
				syncOK(phone)
				syncOK(laptop)
				move(laptop, "INBOX", "m1", "Archive")
				w.expectConverged([]string{`Archive: m1[\Deleted]`, "Bin:", "INBOX: m2 m3"}, phone, laptop)
			})

			It("keeps a \\Deleted set by another device since its last round on a message it moves without MOVE", func() {
				do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: `\Deleted`})
				syncOK(phone)
				move(laptop, "INBOX", "m1", "Archive") // the laptop has not seen the \Deleted
				w.expectConverged([]string{`Archive: m1[\Deleted]`, "Bin:", "INBOX: m2 m3"}, phone, laptop)
			})

			It("lets a later \\Deleted cleared by another device stand when the message is then moved", func() {
				do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: `\Deleted`})
				syncOK(phone)
				syncOK(laptop)
				do(laptop, clients.Action{Kind: clients.ActUnflag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: `\Deleted`})
				syncOK(laptop)
				uid := w.uid("INBOX", "m1")
				Expect(w.srv.Apply(fakeserver.MoveMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{uid}, Dest: "Archive"})).To(Succeed())
				w.expectConverged([]string{"Archive: m1", "Bin:", "INBOX: m2 m3"}, phone, laptop)
			})

			It("moves without MOVE and keeps the user's own newer write over the one the expunge's STORE saw", func() {
				move(laptop, "INBOX", "m2", "Archive")
				read(laptop, "Archive", "m2")
				do(laptop, clients.Action{Kind: clients.ActUnread, Mailbox: "Archive", Labels: []string{"m2"}})
				read(phone, "INBOX", "m2")
				syncOK(phone)
				w.expectConverged([]string{"Archive: m2", "Bin:", "INBOX: m1 m3"}, phone, laptop)
			})

			It("copies into a mailbox whose UIDVALIDITY changed with the flags the source had when the user copied", func() {
				Expect(w.srv.Apply(fakeserver.UIDValidityBump{User: user, Mailbox: "Archive"})).To(Succeed())
				do(phone, clients.Action{Kind: clients.ActCopy, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
				read(phone, "INBOX", "m1")
				w.expectConverged([]string{"Archive: m1", "Bin:", `INBOX: m1[\Seen] m2 m3`}, phone, laptop)
			})

			It("lets a newer local write replace one kept for a copy", func() {
				read(phone, "INBOX", "m2")
				syncOK(phone)
				uid := halfMove("m2")
				do(phone, clients.Action{Kind: clients.ActUnread, Mailbox: "INBOX", Labels: []string{"m2"}})
				syncOK(phone)
				read(phone, "INBOX", "m2")
				Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{uid}})).To(Succeed())
				w.expectConverged([]string{`Archive: m2[\Seen]`, "Bin:", "INBOX: m1 m3"}, phone, laptop)
			})

			It("moves without MOVE and leaves alone a flag another client wrote on the original before the EXPUNGE and carried to the copy", func() {
				tablet, cut := w.cutDevice("tablet", kind.open())
				settle(tablet)
				var step atomic.Int32
				cut.setBefore(func(cmd string) {
					switch {
					case strings.Contains(cmd, "SEARCH") && step.CompareAndSwap(0, 1):
						// Between the tablet's STORE \Deleted and its EXPUNGE.
						read(phone, "INBOX", "m1")
						syncOK(phone)
					case strings.Contains(cmd, "UID FETCH 1:*") && step.CompareAndSwap(1, 2):
						// The original is gone: the phone carries its read to the copy
						// before the tablet looks at it.
						syncOK(phone)
					}
				})
				move(tablet, "INBOX", "m1", "Archive")
				syncOK(tablet)
				Expect(step.Load()).To(Equal(int32(2)))
				w.expectConverged([]string{`Archive: m1[\Seen]`, "Bin:", "INBOX: m2 m3"}, tablet, phone, laptop)
			})

			It("forgets a write kept for a copy when the original is no longer marked \\Deleted", func() {
				serverStore("INBOX", "m2", true, `\Deleted`)
				read(phone, "INBOX", "m2")
				syncOK(phone)
				serverStore("INBOX", "m2", false, `\Deleted`)
				syncOK(phone)
				// Later someone else marks it unread and moves it: the phone's old write
				// must not come back on the copy.
				serverStore("INBOX", "m2", false, `\Seen`)
				uid := w.uid("INBOX", "m2")
				Expect(w.srv.Apply(fakeserver.CopyMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{uid}, Dest: "Archive"})).To(Succeed())
				Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{uid}})).To(Succeed())
				w.expectConverged([]string{"Archive: m2", "Bin:", "INBOX: m1 m3"}, phone, laptop)
			})
		})
	})
}
