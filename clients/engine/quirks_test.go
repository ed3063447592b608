package engine_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

// Each quirk must really produce the bug it is named after, or the harness could not
// prove that its checkers catch that bug.
var _ = Describe("quirks", func() {
	var w *world
	var phone, laptop *engine.Device
	setup := func(q engine.Quirks) {
		w = newWorld(fakeserver.Options{Seed: 1})
		w.create("Archive")
		w.deliver("INBOX", "m1", "m2", "m3", "m4", "m5", "m6")
		phone, laptop = w.device("phone", q), w.device("laptop")
		settle(phone, laptop)
	}

	It("QuirkPairByUID puts a flag on the wrong message after a UIDVALIDITY reset (F1)", func() {
		setup(engine.QuirkPairByUID)
		do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m2"}, Flag: `\Flagged`})
		Expect(w.srv.Apply(fakeserver.UIDValidityReset{User: user, Mailbox: "INBOX"})).To(Succeed())
		syncOK(phone)
		Expect(w.server()).NotTo(ContainElement(ContainSubstring(`m2[\Flagged]`)))
		Expect(w.server()).To(ContainElement(ContainSubstring(`[\Flagged]`)))
	})

	It("QuirkWholeFlagSet loses a concurrent flag change (F11)", func() {
		setup(engine.QuirkWholeFlagSet)
		do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: `\Flagged`})
		Expect(w.srv.Apply(fakeserver.Store{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m1")},
			Add: true, Flags: []string{`\Seen`}})).To(Succeed())
		syncOK(phone)
		Expect(w.server()).To(ContainElement(ContainSubstring(`m1[\Flagged] `)))
	})

	It("QuirkPlainExpunge removes another client's \\Deleted message (F10)", func() {
		setup(engine.QuirkPlainExpunge)
		Expect(w.srv.Apply(fakeserver.Store{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m2")},
			Add: true, Flags: []string{`\Deleted`}})).To(Succeed())
		do(phone, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m1"}})
		syncOK(phone)
		Expect(w.server()).To(ContainElement("INBOX: m3 m4 m5 m6"))
	})

	It("QuirkReupload pushes a message deleted elsewhere back up (F7)", func() {
		setup(engine.QuirkReupload)
		do(laptop, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m1"}})
		syncOK(laptop)
		syncOK(phone)
		syncOK(phone)
		Expect(w.server()).To(ContainElement("INBOX: m1 m2 m3 m4 m5 m6"))
	})

	DescribeTable("a message not found again after a UIDVALIDITY reset",
		func(q engine.Quirks, wantServer string, wantQuarantined int) {
			setup(q)
			Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m2")}})).To(Succeed())
			Expect(w.srv.Apply(fakeserver.UIDValidityReset{User: user, Mailbox: "INBOX"})).To(Succeed())
			st := syncOK(phone)
			syncOK(phone)
			Expect(st.Quarantined).To(Equal(wantQuarantined))
			Expect(w.server()).To(ContainElement(wantServer))
			state, err := phone.SyncState(context.Background())
			Expect(err).NotTo(HaveOccurred())
			Expect(state.Quarantined).To(HaveLen(wantQuarantined))
			Expect(replica(phone)).To(ContainElement(wantServer), "the phone shows what the server has")
		},
		Entry("is quarantined by the correct engine", engine.Quirks(0), "INBOX: m1 m3 m4 m5 m6", 1),
		Entry("is uploaded again under QuirkReupload (F2)", engine.QuirkReupload, "INBOX: m1 m2 m3 m4 m5 m6", 0),
		Entry("is forgotten unreported under QuirkDropOrphans (F1)", engine.QuirkDropOrphans, "INBOX: m1 m3 m4 m5 m6", 0),
	)

	It("QuirkSkipDeleted leaves out new mail already marked \\Deleted (F17)", func() {
		setup(engine.QuirkSkipDeleted)
		w.deliver("INBOX", "n1")
		Expect(w.srv.Apply(fakeserver.Store{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "n1")},
			Add: true, Flags: []string{`\Deleted`}})).To(Succeed())
		syncOK(phone)
		syncOK(laptop)
		Expect(replica(phone)).To(ContainElement(`INBOX: m1 m2 m3 m4 m5 m6`))
		Expect(replica(laptop)).To(ContainElement(`INBOX: m1 m2 m3 m4 m5 m6 n1[\Deleted]`))
	})

	It("QuirkForgetJournalOnCrash loses an offline change when the device crashes", func() {
		setup(engine.QuirkForgetJournalOnCrash)
		do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: `\Flagged`})
		Expect(phone.Crash()).To(Succeed())
		syncOK(phone)
		Expect(w.server()).To(ContainElement("INBOX: m1 m2 m3 m4 m5 m6"))
		Expect(replica(phone)).To(ContainElement(ContainSubstring(`m1[\Flagged]`)))
	})

	It("QuirkWatermarkFirst skips new mail for ever after a crash between watermark and data (F6)", func() {
		w = newWorld(fakeserver.Options{Seed: 1})
		w.deliver("INBOX", "m1")
		cut := newCutter(w.addr)
		opts := w.options(engine.NewMemoryStore(), engine.QuirkWatermarkFirst)
		opts.Dial = cut.dial
		dev, err := engine.NewDevice("phone", opts)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(dev.Close)
		syncOK(dev)
		w.deliver("INBOX", "n1")
		// Commands of the next round: NOOP, LIST, SELECT, UID FETCH flags, UID FETCH n1.
		cut.arm(5)
		_, err = dev.Sync(context.Background())
		Expect(err).To(HaveOccurred())
		Expect(dev.Crash()).To(Succeed())
		cut.arm(0)
		syncOK(dev)
		syncOK(dev)
		Expect(replica(dev)).To(Equal([]string{"INBOX: m1"}))
		Expect(w.server()).To(Equal([]string{"INBOX: m1 n1"}))
	})
})
