package engine_test

import (
	"errors"
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients/engine"
)

// StoreHarness opens a store for the conformance specs and simulates a crash of the
// process that uses it.
type StoreHarness struct {
	// Open returns a fresh, empty store. Register its cleanup with DeferCleanup.
	Open func() engine.Store
	// Crash simulates a process crash and restart: it returns the store as a restarted
	// process would find it (the same value for the memory store, a reopened one on disk).
	// It may be called from inside an Update's function: that transaction must then fail to
	// commit, and the returned store must show only what was committed before.
	Crash func(engine.Store) engine.Store
}

// DescribeStoreConformance declares the specs every Store implementation must pass.
func DescribeStoreConformance(name string, h StoreHarness) bool {
	return Describe(name+" store conformance", func() {
		var s engine.Store
		BeforeEach(func() { s = h.Open() })

		put := func(tx engine.Tx, mailbox string, uid uint32) engine.LocalID {
			id, err := tx.NextID()
			Expect(err).NotTo(HaveOccurred())
			Expect(tx.PutMessage(engine.MessageRecord{ID: id, Mailbox: mailbox, UID: uid,
				Flags: engine.ParseFlags([]string{`\Seen`, "$Work"}), Label: "m"})).To(Succeed())
			Expect(tx.PutBody(id, []byte("body"))).To(Succeed())
			return id
		}

		It("commits an update's writes together", func() {
			var id engine.LocalID
			Expect(s.Update(func(tx engine.Tx) error {
				Expect(tx.PutMailbox(engine.MailboxRecord{Name: "INBOX", UIDValidity: 7, UIDNext: 3})).To(Succeed())
				id = put(tx, "INBOX", 2)
				_, err := tx.AddJournal(engine.JournalEntry{Op: engine.OpFlags, Message: id})
				return err
			})).To(Succeed())
			Expect(s.View(func(tx engine.Tx) error {
				mb, ok, err := tx.Mailbox("INBOX")
				Expect(err).NotTo(HaveOccurred())
				Expect(ok).To(BeTrue())
				Expect(mb.UIDNext).To(Equal(uint32(3)))
				msgs, err := tx.Messages("INBOX")
				Expect(err).NotTo(HaveOccurred())
				Expect(msgs).To(HaveLen(1))
				Expect(msgs[0].Flags.Names()).To(Equal([]string{"$Work", `\Seen`}))
				body, err := tx.Body(id)
				Expect(err).NotTo(HaveOccurred())
				Expect(string(body)).To(Equal("body"))
				j, err := tx.Journal()
				Expect(err).NotTo(HaveOccurred())
				Expect(j).To(HaveLen(1))
				Expect(j[0].Message).To(Equal(id))
				return nil
			})).To(Succeed())
		})

		It("discards every write of an update that fails", func() {
			boom := errors.New("boom")
			Expect(s.Update(func(tx engine.Tx) error {
				Expect(tx.PutMailbox(engine.MailboxRecord{Name: "INBOX"})).To(Succeed())
				put(tx, "INBOX", 1)
				return boom
			})).To(MatchError(boom))
			Expect(s.View(func(tx engine.Tx) error {
				mbs, err := tx.Mailboxes()
				Expect(err).NotTo(HaveOccurred())
				Expect(mbs).To(BeEmpty())
				all, err := tx.AllMessages()
				Expect(err).NotTo(HaveOccurred())
				Expect(all).To(BeEmpty())
				return nil
			})).To(Succeed())
		})

		It("shows a transaction its own writes, moves and deletions", func() {
			var a, b engine.LocalID
			Expect(s.Update(func(tx engine.Tx) error {
				a = put(tx, "INBOX", 1)
				b = put(tx, "INBOX", 2)
				return nil
			})).To(Succeed())
			Expect(s.Update(func(tx engine.Tx) error {
				m, ok, err := tx.Message(a)
				Expect(err).NotTo(HaveOccurred())
				Expect(ok).To(BeTrue())
				m.Mailbox = "Archive"
				Expect(tx.PutMessage(m)).To(Succeed())
				Expect(tx.DeleteMessage(b)).To(Succeed())
				in, err := tx.Messages("INBOX")
				Expect(err).NotTo(HaveOccurred())
				Expect(in).To(BeEmpty())
				arch, err := tx.Messages("Archive")
				Expect(err).NotTo(HaveOccurred())
				Expect(arch).To(HaveLen(1))
				_, err = tx.Body(b)
				Expect(err).To(MatchError(engine.ErrNoBody))
				return nil
			})).To(Succeed())
			Expect(s.View(func(tx engine.Tx) error {
				in, err := tx.Messages("INBOX")
				Expect(err).NotTo(HaveOccurred())
				Expect(in).To(BeEmpty())
				arch, err := tx.Messages("Archive")
				Expect(err).NotTo(HaveOccurred())
				Expect(arch).To(HaveLen(1))
				Expect(arch[0].ID).To(Equal(a))
				body, err := tx.Body(a)
				Expect(err).NotTo(HaveOccurred())
				Expect(string(body)).To(Equal("body"))
				return nil
			})).To(Succeed())
		})

		It("lists a mailbox's records in id order, as committed and as a transaction changed them", func() {
			var ids []engine.LocalID
			Expect(s.Update(func(tx engine.Tx) error {
				for uid := uint32(1); uid <= 6; uid++ {
					ids = append(ids, put(tx, "INBOX", uid))
				}
				return nil
			})).To(Succeed())
			idsOf := func(recs []engine.MessageRecord) []engine.LocalID {
				var out []engine.LocalID
				for _, m := range recs {
					out = append(out, m.ID)
				}
				return out
			}
			flaggedOf := func(tx engine.Tx, id engine.LocalID) bool {
				recs, err := tx.Messages("INBOX")
				Expect(err).NotTo(HaveOccurred())
				for _, m := range recs {
					if m.ID == id {
						return m.Flags.System&engine.FlagFlagged != 0
					}
				}
				return false
			}
			Expect(s.View(func(tx engine.Tx) error {
				in, err := tx.Messages("INBOX")
				Expect(err).NotTo(HaveOccurred())
				Expect(idsOf(in)).To(Equal(ids))
				return nil
			})).To(Succeed())
			var added engine.LocalID
			Expect(s.Update(func(tx engine.Tx) error {
				m, _, err := tx.Message(ids[2])
				Expect(err).NotTo(HaveOccurred())
				m.Flags.System |= engine.FlagFlagged
				Expect(tx.PutMessage(m)).To(Succeed())
				added = put(tx, "INBOX", 7)
				Expect(tx.DeleteMessage(ids[0])).To(Succeed())
				in, err := tx.Messages("INBOX")
				Expect(err).NotTo(HaveOccurred())
				Expect(idsOf(in)).To(Equal(append(slices.Clone(ids[1:]), added)))
				Expect(flaggedOf(tx, ids[2])).To(BeTrue(), "the transaction's own flags")
				return nil
			})).To(Succeed())
			Expect(s.View(func(tx engine.Tx) error {
				in, err := tx.Messages("INBOX")
				Expect(err).NotTo(HaveOccurred())
				Expect(idsOf(in)).To(Equal(append(slices.Clone(ids[1:]), added)))
				Expect(flaggedOf(tx, ids[2])).To(BeTrue(), "the committed flags, not an earlier listing's")
				return nil
			})).To(Succeed())
		})

		It("refuses writes in a view", func() {
			Expect(s.View(func(tx engine.Tx) error {
				return tx.PutMailbox(engine.MailboxRecord{Name: "INBOX"})
			})).To(MatchError(engine.ErrReadOnly))
		})

		It("never hands out a local id or journal seq twice, across crashes", func() {
			var first engine.LocalID
			var seq1 uint64
			Expect(s.Update(func(tx engine.Tx) error {
				first = put(tx, "INBOX", 1)
				var err error
				seq1, err = tx.AddJournal(engine.JournalEntry{Op: engine.OpAppend, Message: first})
				return err
			})).To(Succeed())
			s = h.Crash(s)
			Expect(s.Update(func(tx engine.Tx) error {
				id := put(tx, "INBOX", 2)
				Expect(id).To(BeNumerically(">", first))
				seq, err := tx.AddJournal(engine.JournalEntry{Op: engine.OpAppend, Message: id})
				Expect(seq).To(BeNumerically(">", seq1))
				return err
			})).To(Succeed())
		})

		It("keeps committed state and loses an update in progress when the process crashes", func() {
			Expect(s.Update(func(tx engine.Tx) error {
				Expect(tx.PutMailbox(engine.MailboxRecord{Name: "INBOX", UIDNext: 5})).To(Succeed())
				put(tx, "INBOX", 4)
				return nil
			})).To(Succeed())
			var after engine.Store
			err := s.Update(func(tx engine.Tx) error {
				Expect(tx.PutMailbox(engine.MailboxRecord{Name: "INBOX", UIDNext: 9})).To(Succeed())
				put(tx, "INBOX", 8)
				after = h.Crash(s)
				return nil
			})
			Expect(err).To(HaveOccurred())
			Expect(after.View(func(tx engine.Tx) error {
				mb, _, err := tx.Mailbox("INBOX")
				Expect(err).NotTo(HaveOccurred())
				Expect(mb.UIDNext).To(Equal(uint32(5)))
				msgs, err := tx.Messages("INBOX")
				Expect(err).NotTo(HaveOccurred())
				Expect(msgs).To(HaveLen(1))
				Expect(msgs[0].UID).To(Equal(uint32(4)))
				return nil
			})).To(Succeed())
		})

		It("updates and deletes journal entries", func() {
			Expect(s.Update(func(tx engine.Tx) error {
				seq, err := tx.AddJournal(engine.JournalEntry{Op: engine.OpCreateMailbox, Mailbox: "A"})
				Expect(err).NotTo(HaveOccurred())
				_, err = tx.AddJournal(engine.JournalEntry{Op: engine.OpCreateMailbox, Mailbox: "B"})
				Expect(err).NotTo(HaveOccurred())
				Expect(tx.PutJournal(engine.JournalEntry{Seq: seq, Op: engine.OpCreateMailbox,
					Mailbox: "A", State: engine.EntryInFlight, UIDNext: 12})).To(Succeed())
				return nil
			})).To(Succeed())
			Expect(s.Update(func(tx engine.Tx) error {
				j, err := tx.Journal()
				Expect(err).NotTo(HaveOccurred())
				Expect(j).To(HaveLen(2))
				Expect(j[0].State).To(Equal(engine.EntryInFlight))
				Expect(j[0].UIDNext).To(Equal(uint32(12)))
				return tx.DeleteJournal(j[1].Seq)
			})).To(Succeed())
			Expect(s.View(func(tx engine.Tx) error {
				j, err := tx.Journal()
				Expect(err).NotTo(HaveOccurred())
				Expect(j).To(HaveLen(1))
				Expect(j[0].Mailbox).To(Equal("A"))
				return nil
			})).To(Succeed())
		})

		It("keeps each mailbox's counts in step with its records, across moves, deletes and crashes", func() {
			// recount is what Counts must say, from the records themselves.
			recount := func(tx engine.Tx, mailbox string) engine.MessageCounts {
				all, err := tx.AllMessages()
				Expect(err).NotTo(HaveOccurred())
				var c engine.MessageCounts
				for _, m := range all {
					if m.MoveTo == mailbox {
						c.MovesIn++
					}
					if m.Mailbox != mailbox {
						continue
					}
					c.Records++
					switch {
					case m.State == engine.MsgQuarantined:
						c.Quarantined++
					case m.UID != 0 && (m.State == engine.MsgSynced || m.State == engine.MsgDeleted):
						c.OnServer++
					}
				}
				return c
			}
			check := func(st engine.Store, want map[string]engine.MessageCounts) {
				GinkgoHelper()
				Expect(st.View(func(tx engine.Tx) error {
					var names []string
					for _, name := range []string{"INBOX", "Archive", "Trash"} {
						c, err := tx.Counts(name)
						Expect(err).NotTo(HaveOccurred())
						Expect(c).To(Equal(recount(tx, name)), name)
						Expect(c).To(Equal(want[name]), name)
						if !c.IsZero() {
							names = append(names, name)
						}
					}
					inUse, err := tx.InUse()
					Expect(err).NotTo(HaveOccurred())
					Expect(inUse).To(ConsistOf(names))
					return nil
				})).To(Succeed())
			}
			var a, b, c, d engine.LocalID
			Expect(s.Update(func(tx engine.Tx) error {
				a, b, c = put(tx, "INBOX", 1), put(tx, "INBOX", 2), put(tx, "INBOX", 0)
				d = put(tx, "Archive", 5)
				m, _, _ := tx.Message(c)
				m.State = engine.MsgNew
				return tx.PutMessage(m)
			})).To(Succeed())
			check(s, map[string]engine.MessageCounts{"INBOX": {Records: 3, OnServer: 2}, "Archive": {Records: 1, OnServer: 1}})

			Expect(s.Update(func(tx engine.Tx) error {
				m, _, _ := tx.Message(a)
				m.MoveTo = "Trash" // a pending move
				Expect(tx.PutMessage(m)).To(Succeed())
				m, _, _ = tx.Message(b)
				m.State = engine.MsgDeleted
				Expect(tx.PutMessage(m)).To(Succeed())
				m, _, _ = tx.Message(d)
				m.Mailbox, m.UID = "INBOX", 0 // moved to INBOX, its UID unknown
				Expect(tx.PutMessage(m)).To(Succeed())
				return nil
			})).To(Succeed())
			check(s, map[string]engine.MessageCounts{"INBOX": {Records: 4, OnServer: 2}, "Trash": {MovesIn: 1}})

			s = h.Crash(s)
			err := s.Update(func(tx engine.Tx) error {
				Expect(tx.DeleteMessage(b)).To(Succeed())
				m, _, _ := tx.Message(a)
				m.State, m.MoveTo = engine.MsgQuarantined, ""
				Expect(tx.PutMessage(m)).To(Succeed())
				// Inside the transaction the counts already follow its writes.
				got, err := tx.Counts("INBOX")
				Expect(err).NotTo(HaveOccurred())
				Expect(got).To(Equal(engine.MessageCounts{Records: 3, Quarantined: 1}))
				return errors.New("given up")
			})
			Expect(err).To(MatchError("given up"))
			check(s, map[string]engine.MessageCounts{"INBOX": {Records: 4, OnServer: 2}, "Trash": {MovesIn: 1}})

			Expect(s.Update(func(tx engine.Tx) error {
				Expect(tx.DeleteMessage(b)).To(Succeed())
				m, _, _ := tx.Message(a)
				m.State, m.MoveTo = engine.MsgQuarantined, ""
				return tx.PutMessage(m)
			})).To(Succeed())
			check(s, map[string]engine.MessageCounts{"INBOX": {Records: 3, Quarantined: 1}})
		})

		It("finds records by mailbox and UID, in step with moves, new UIDs, deletes and crashes", func() {
			// check compares MessagesByUID, inside tx, with the records themselves.
			check := func(tx engine.Tx, want map[string][]engine.LocalID) {
				GinkgoHelper()
				all, err := tx.AllMessages()
				Expect(err).NotTo(HaveOccurred())
				for _, mailbox := range []string{"INBOX", "Archive"} {
					for uid := uint32(0); uid <= 6; uid++ {
						got, err := tx.MessagesByUID(mailbox, uid)
						Expect(err).NotTo(HaveOccurred())
						var ids, recount []engine.LocalID
						for _, m := range got {
							Expect(m.Mailbox).To(Equal(mailbox))
							Expect(m.UID).To(Equal(uid))
							ids = append(ids, m.ID)
						}
						for _, m := range all {
							if uid != 0 && m.Mailbox == mailbox && m.UID == uid {
								recount = append(recount, m.ID)
							}
						}
						key := fmt.Sprintf("%s %d", mailbox, uid)
						Expect(ids).To(Equal(recount), key)
						Expect(ids).To(Equal(want[key]), key)
					}
				}
			}
			view := func(st engine.Store, want map[string][]engine.LocalID) {
				GinkgoHelper()
				Expect(st.View(func(tx engine.Tx) error { check(tx, want); return nil })).To(Succeed())
			}
			var a, b, c, d engine.LocalID
			Expect(s.Update(func(tx engine.Tx) error {
				a, b, c, d = put(tx, "INBOX", 1), put(tx, "INBOX", 2), put(tx, "INBOX", 0), put(tx, "Archive", 1)
				return nil
			})).To(Succeed())
			view(s, map[string][]engine.LocalID{"INBOX 1": {a}, "INBOX 2": {b}, "Archive 1": {d}})

			s = h.Crash(s)
			err := s.Update(func(tx engine.Tx) error {
				m, _, _ := tx.Message(a)
				m.Mailbox, m.UID = "Archive", 5 // moved, with its new UID
				Expect(tx.PutMessage(m)).To(Succeed())
				m, _, _ = tx.Message(c)
				m.UID = 3 // appended
				Expect(tx.PutMessage(m)).To(Succeed())
				Expect(tx.DeleteMessage(b)).To(Succeed())
				// Inside the transaction the lookups already follow its writes.
				check(tx, map[string][]engine.LocalID{"INBOX 3": {c}, "Archive 1": {d}, "Archive 5": {a}})
				return errors.New("given up")
			})
			Expect(err).To(MatchError("given up"))
			view(s, map[string][]engine.LocalID{"INBOX 1": {a}, "INBOX 2": {b}, "Archive 1": {d}})

			Expect(s.Update(func(tx engine.Tx) error {
				m, _, _ := tx.Message(a)
				m.Mailbox, m.UID = "Archive", 5
				Expect(tx.PutMessage(m)).To(Succeed())
				m, _, _ = tx.Message(c)
				m.UID = 1 // INBOX's UID 1 again, under a new UIDVALIDITY
				Expect(tx.PutMessage(m)).To(Succeed())
				return tx.DeleteMessage(b)
			})).To(Succeed())
			view(s, map[string][]engine.LocalID{"INBOX 1": {c}, "Archive 1": {d}, "Archive 5": {a}})

			Expect(s.Update(func(tx engine.Tx) error {
				m, _, _ := tx.Message(d)
				m.State = engine.MsgQuarantined // keeps its old UID, which a is given next
				Expect(tx.PutMessage(m)).To(Succeed())
				m, _, _ = tx.Message(a)
				m.UID = 1
				return tx.PutMessage(m)
			})).To(Succeed())
			s = h.Crash(s)
			view(s, map[string][]engine.LocalID{"INBOX 1": {c}, "Archive 1": {a, d}})
		})
	})
}

var _ = DescribeStoreConformance("memory", StoreHarness{
	Open: func() engine.Store { return engine.NewMemoryStore() },
	Crash: func(s engine.Store) engine.Store {
		s.(*engine.MemoryStore).Crash()
		return s
	},
})
