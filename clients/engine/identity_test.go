package engine_test

import (
	"context"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

// A message's identity is its content: (Message-ID, size) only proposes a pair, which the
// engine confirms before it adopts a new UID for an old body.
var _ = DescribeIdentity(storeKinds[0])
var _ = DescribeIdentity(storeKinds[1])

// draft makes version v of the message labelled label: the same Message-ID and the same
// size for every version, other bytes.
func draft(label string, v int64) []byte {
	return clients.MakeMessage(clients.MessageSpec{Label: label, Run: run, Size: 600, Seed: v})
}

// contents renders each message of a device's view as "MAILBOX label hash", sorted.
func contents(d clients.Device) []string {
	GinkgoHelper()
	r, err := d.View(context.Background())
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, mb := range r.Mailboxes {
		for _, m := range mb.Messages {
			out = append(out, mb.Name+" "+m.Label+" "+m.Hash)
		}
	}
	sort.Strings(out)
	return out
}

// contents renders the server's messages like contents.
func (w *world) contents() []string {
	GinkgoHelper()
	snap, err := w.srv.Snapshot(user)
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, mb := range snap.Mailboxes {
		for _, m := range mb.Messages {
			out = append(out, mb.Name+" "+clients.Label(m.Body)+" "+clients.ContentHash(m.Body))
		}
	}
	sort.Strings(out)
	return out
}

// DescribeIdentity declares the message identity specs for devices on one kind of store.
func DescribeIdentity(kind storeKind) bool {
	return Describe("message identity ("+kind.name+" store)", func() {
		var w *world
		var phone, laptop *engine.Device
		day := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		BeforeEach(func() {
			w = newWorld(fakeserver.Options{Seed: 1})
			w.store = kind.open
			w.create("Drafts")
			w.create("Sent")
			Expect(w.srv.Apply(fakeserver.Deliver{User: user, Mailbox: "Drafts", Body: draft("d1", 1), Date: day})).To(Succeed())
			w.deliver("INBOX", "m1")
			phone, laptop = w.device("phone"), w.device("laptop")
			settle(phone, laptop)
			Expect(len(draft("d1", 2))).To(Equal(len(draft("d1", 1))))
			Expect(draft("d1", 2)).NotTo(Equal(draft("d1", 1)))
		})
		// resave expunges the draft from Drafts and puts version v in mailbox, saved a
		// minute later, as a mail app saving a draft again does.
		resave := func(mailbox string, v int64) {
			GinkgoHelper()
			Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "Drafts", UIDs: []uint32{w.uid("Drafts", "d1")}})).To(Succeed())
			Expect(w.srv.Apply(fakeserver.Deliver{User: user, Mailbox: mailbox, Body: draft("d1", v),
				Date: day.Add(time.Minute)})).To(Succeed())
		}

		It("takes the new text of a draft saved again with the same Message-ID and size", func() {
			resave("Drafts", 2)
			st := syncOK(phone)
			Expect(st.Downloaded).To(Equal(1), "the new text is downloaded")
			settle(phone, laptop)
			Expect(contents(phone)).To(Equal(w.contents()))
			Expect(contents(laptop)).To(Equal(w.contents()))
		})

		It("takes the new text when it arrives in another mailbox", func() {
			resave("Sent", 2)
			syncOK(phone)
			settle(phone, laptop)
			Expect(w.server()).To(Equal([]string{"Drafts:", "INBOX: m1", "Sent: d1"}))
			Expect(contents(phone)).To(Equal(w.contents()))
			Expect(contents(laptop)).To(Equal(w.contents()))
		})

		It("takes the new text of a draft saved again on another device", func() {
			do(laptop, clients.Action{Kind: clients.ActDelete, Mailbox: "Drafts", Labels: []string{"d1"}})
			do(laptop, clients.Action{Kind: clients.ActAppend, Mailbox: "Drafts", Labels: []string{"d1"},
				Message: draft("d1", 3), Date: day.Add(time.Hour)})
			syncOK(laptop)
			syncOK(phone)
			Expect(contents(phone)).To(Equal(w.contents()))
			w.expectConverged([]string{"Drafts: d1", "INBOX: m1", "Sent:"}, phone, laptop)
		})

		It("sets aside the old text of a draft saved again across a UIDVALIDITY reset", func() {
			resave("Drafts", 2)
			Expect(w.srv.Apply(fakeserver.UIDValidityReset{User: user, Mailbox: "Drafts"})).To(Succeed())
			st := syncOK(phone)
			Expect(st.Quarantined).To(Equal(1))
			settle(phone, laptop)
			Expect(contents(phone)).To(Equal(w.contents()))
		})

		It("still adopts a moved message whose INTERNALDATE changed, after one download", func() {
			do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "Drafts", Labels: []string{"d1"}, Flag: "$Work"})
			resave("Sent", 1) // the same bytes: a move by a server that kept no INTERNALDATE
			st := syncOK(phone)
			Expect(st.Downloaded).To(Equal(1), "the body confirms the pair")
			w.expectConverged([]string{"Drafts:", "INBOX: m1", "Sent: d1[$Work]"}, phone, laptop)
			Expect(contents(phone)).To(Equal(w.contents()))
		})

		It("adopts a moved message without a download", func() {
			Expect(w.srv.Apply(fakeserver.MoveMessages{User: user, Mailbox: "Drafts",
				UIDs: []uint32{w.uid("Drafts", "d1")}, Dest: "Sent"})).To(Succeed())
			st := syncOK(phone)
			Expect(st.Downloaded).To(BeZero())
			w.expectConverged([]string{"Drafts:", "INBOX: m1", "Sent: d1"}, phone, laptop)
		})
	})
}
