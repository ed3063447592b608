package engine_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

var _ = Describe("push mode", func() {
	It("syncs when the server reports new, re-flagged or expunged mail, until cancelled", func() {
		w := newWorld(fakeserver.Options{Seed: 1})
		w.deliver("INBOX", "m1")
		phone := w.device("phone")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			done <- clients.Watcher(phone).Watch(ctx, "INBOX")
		}()
		Eventually(func() []string { return replica(phone) }).Should(Equal([]string{"INBOX: m1"}))
		w.deliver("INBOX", "m2")
		Eventually(func() []string { return replica(phone) }).Should(Equal([]string{"INBOX: m1 m2"}))
		Expect(w.srv.Apply(fakeserver.Store{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m1")},
			Add: true, Flags: []string{`\Flagged`}})).To(Succeed())
		Eventually(func() []string { return replica(phone) }).Should(Equal([]string{`INBOX: m1[\Flagged] m2`}))
		Expect(w.srv.Apply(fakeserver.ExpungeMessages{User: user, Mailbox: "INBOX", UIDs: []uint32{w.uid("INBOX", "m2")}})).To(Succeed())
		Eventually(func() []string { return replica(phone) }).Should(Equal([]string{`INBOX: m1[\Flagged]`}))
		By("reconnecting by itself after the server drops every connection")
		Expect(w.srv.Apply(fakeserver.Drop{})).To(Succeed())
		w.deliver("INBOX", "m3")
		Eventually(func() []string { return replica(phone) }, "10s").Should(Equal([]string{`INBOX: m1[\Flagged] m3`}))
		cancel()
		Eventually(done).Should(Receive(BeNil()))
	})

	It("returns when the engine is closed under it", func() {
		w := newWorld(fakeserver.Options{Seed: 1})
		w.deliver("INBOX", "m1")
		phone := w.device("phone")
		e := phone.Engine()
		done := make(chan error, 1)
		go func() {
			defer GinkgoRecover()
			done <- e.Watch(context.Background(), "INBOX")
		}()
		Eventually(func() []string { return replica(phone) }).Should(Equal([]string{"INBOX: m1"}))
		Expect(e.Close()).To(Succeed())
		Eventually(done).Should(Receive(MatchError(engine.ErrEngineClosed)))
	})
})
