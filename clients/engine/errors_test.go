package engine_test

import (
	"bytes"
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

var _ = Describe("errors and hostile server data", func() {
	var w *world
	var phone, laptop clients.Device
	BeforeEach(func() {
		w = newWorld(fakeserver.Options{Seed: 1})
		w.create("Archive")
		w.deliver("INBOX", "m1", "m2", "m3")
		phone, laptop = w.device("phone"), w.device("laptop")
		settle(phone, laptop)
	})

	DescribeTable("names the command and mailbox of a refused command, and the next round finishes the work",
		func(command, response, wantErr string) {
			do(phone, clients.Action{Kind: clients.ActRead, Mailbox: "INBOX", Labels: []string{"m1"}})
			do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m2"}, Dest: "Archive"})
			w.deliver("INBOX", "n1")
			Expect(w.srv.Apply(fakeserver.Fail{N: 1, Command: command, Response: response})).To(Succeed())
			_, err := phone.Sync(context.Background())
			Expect(err).To(MatchError(ContainSubstring(wantErr)))
			w.expectConverged([]string{"Archive: m2", `INBOX: m1[\Seen] m3 n1`}, phone, laptop)
		},
		Entry("STORE", "UID STORE", "NO [UNAVAILABLE] try later", `UID STORE "INBOX"`),
		Entry("MOVE", "UID MOVE", "NO [UNAVAILABLE] try later", `UID MOVE "INBOX"`),
		Entry("SELECT", "SELECT", "NO [UNAVAILABLE] try later", `SELECT "INBOX"`),
		Entry("FETCH", "UID FETCH", "NO [UNAVAILABLE] try later", `UID FETCH "Archive"`),
		Entry("LIST", "LIST", "BAD no", "LIST"),
	)

	// Both devices forgot m2's UID when it was deleted: n1 under it is a new message to them,
	// not a UID re-used for other content (reuse_test.go has the device that still knows it).
	It("fetches a message whose UID appears below the saved UIDNEXT", func() {
		do(laptop, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m2"}})
		settle(laptop, phone)
		Expect(w.srv.Apply(fakeserver.ReuseExpungedUIDs{User: user, On: true})).To(Succeed())
		w.deliver("INBOX", "n1")
		Expect(w.uid("INBOX", "n1")).To(Equal(w.uid("INBOX", "m1") + 1))
		w.expectConverged([]string{"Archive:", "INBOX: m1 m3 n1"}, phone, laptop)
	})

	It("keeps every local mailbox and message when the server lists no mailboxes", func() {
		tablet, cut := w.cutDevice("tablet", engine.NewMemoryStore())
		settle(tablet)
		before := replica(tablet)
		cut.setHide(func(line []byte) bool { return bytes.HasPrefix(line, []byte("* LIST ")) })
		_, err := tablet.Sync(context.Background())
		Expect(err).To(MatchError(ContainSubstring("LIST")))
		Expect(replica(tablet)).To(Equal(before))
		cut.setHide(nil)
		w.expectConverged(before, tablet, phone, laptop)
	})
})
