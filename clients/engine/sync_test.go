package engine_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/fakeserver"
)

var _ = Describe("two devices on one account", func() {
	var w *world
	var phone, laptop clients.Device
	BeforeEach(func() {
		w = newWorld(fakeserver.Options{Seed: 1})
		w.create("Archive")
		w.deliver("INBOX", "m1", "m2", "m3")
		phone, laptop = w.device("phone"), w.device("laptop")
	})

	It("brings a new device every mailbox and message", func() {
		st := syncOK(phone)
		Expect(st.Downloaded).To(Equal(3))
		Expect(replica(phone)).To(Equal([]string{"Archive:", "INBOX: m1 m2 m3"}))
	})

	It("carries a read on one device to the other", func() {
		settle(phone, laptop)
		do(phone, clients.Action{Kind: clients.ActRead, Mailbox: "INBOX", Labels: []string{"m1"}})
		w.expectConverged([]string{"Archive:", `INBOX: m1[\Seen] m2 m3`}, phone, laptop)
	})

	It("archives a message read on the phone while the laptop moves it", func() {
		settle(phone, laptop)
		do(phone, clients.Action{Kind: clients.ActRead, Mailbox: "INBOX", Labels: []string{"m1"}})
		do(laptop, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
		w.expectConverged([]string{`Archive: m1[\Seen]`, "INBOX: m2 m3"}, laptop, phone)
	})

	It("uploads an appended message once and shows it everywhere", func() {
		settle(phone, laptop)
		do(phone, clients.Action{Kind: clients.ActAppend, Mailbox: "Archive", Message: msg("d1"), Flags: []string{`\Draft`}})
		w.expectConverged([]string{`Archive: d1[\Draft]`, "INBOX: m1 m2 m3"}, phone, laptop)
	})

	It("expunges a deleted message everywhere", func() {
		settle(phone, laptop)
		do(laptop, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m2"}})
		w.expectConverged([]string{"Archive:", "INBOX: m1 m3"}, phone, laptop)
	})
})
