package engine_test

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

var _ = DescribeUIDReuse(storeKinds[0])
var _ = DescribeUIDReuse(storeKinds[1])

// DescribeUIDReuse declares the specs of a server that gives a UID the replica knows to other
// content (RFC 3501 §2.3.1.1), for devices on one kind of store.
func DescribeUIDReuse(kind storeKind) bool {
	return Describe("a UID re-used for other content ("+kind.name+" store)", func() {
		var w *world
		var phone, laptop clients.Device
		var old uint32 // m2's UID, which the server gives again
		BeforeEach(func() {
			w = newWorld(fakeserver.Options{Seed: 1})
			w.store = kind.open
			w.deliver("INBOX", "m1", "m2", "m3")
			phone, laptop = w.device("phone"), w.device("laptop")
			settle(phone, laptop)
			old = w.uid("INBOX", "m2")
			// The laptop deletes m2; the phone, offline, still has it under its UID.
			do(laptop, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m2"}})
			syncOK(laptop)
			Expect(w.srv.Apply(fakeserver.ReuseExpungedUIDs{User: user, On: true})).To(Succeed())
		})

		// refused expects every round of the phone to fail naming the mailbox, the UID and
		// what differed, with its replica as it was; the laptop, which never knew the UID
		// under its new content, takes n1 as a new message.
		refused := func(what string) {
			GinkgoHelper()
			Expect(w.uid("INBOX", "n1")).To(Equal(old))
			before := replica(phone)
			Expect(before).To(Equal([]string{"INBOX: m1 m2 m3"}))
			for range 2 {
				_, err := phone.Sync(context.Background())
				Expect(err).To(MatchError(And(ContainSubstring(`UID FETCH "INBOX"`),
					ContainSubstring(fmt.Sprintf("UID %d ", old)), ContainSubstring("re-used the UID"),
					ContainSubstring(what))))
				Expect(replica(phone)).To(Equal(before))
			}
			syncOK(laptop)
			Expect(replica(laptop)).To(Equal([]string{"INBOX: m1 m3 n1"}))
		}

		It("refuses a known UID whose size changed", func() {
			body := clients.MakeMessage(clients.MessageSpec{Label: "n1", Run: run, Size: 900})
			Expect(w.srv.Apply(fakeserver.Deliver{User: user, Mailbox: "INBOX", Body: body})).To(Succeed())
			refused("size ")
		})

	})
}

var _ = DescribeUIDIdentity(storeKinds[0])
var _ = DescribeUIDIdentity(storeKinds[1])

// DescribeUIDIdentity declares the specs of a server whose sizes or dates differ from the
// replica's records while the content is the same, for devices on one kind of store.
func DescribeUIDIdentity(kind storeKind) bool {
	return Describe("a known UID with its content and another size ("+kind.name+" store)", func() {
		It("is the same message: confirmed by content once, then recorded with the server's size", func() {
			w := newWorld(fakeserver.Options{Seed: 1})
			w.deliver("INBOX", "m1", "m2")
			rw := newRewriter(w.addr)
			o := w.options(kind.open(), 0)
			o.Dial = rw.dial
			tablet, err := engine.NewDevice("tablet", o)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(tablet.Close)
			settle(tablet)
			// From now on the server counts every message's size otherwise (as one that ends
			// the lines of an uploaded message otherwise would).
			sizeRE := regexp.MustCompile(`RFC822\.SIZE [0-9]+`)
			rw.set(func(cmd string, resp []byte) io.Reader {
				return strings.NewReader(sizeRE.ReplaceAllString(string(resp), `RFC822.SIZE 12345`))
			})
			bodyFetches := func() int {
				n := 0
				for _, c := range rw.sent() {
					if strings.Contains(c, "BODY.PEEK[]") {
						n++
					}
				}
				return n
			}
			before := bodyFetches()
			st := syncOK(tablet)
			Expect(st.Changed()).To(BeFalse())
			Expect(bodyFetches()).To(Equal(before+1), "the first round fetches the bodies to compare")
			st = syncOK(tablet)
			Expect(st.Changed()).To(BeFalse())
			Expect(bodyFetches()).To(Equal(before+1), "the second round fetches no body")
			Expect(replica(tablet)).To(Equal([]string{"INBOX: m1 m2"}))
		})
	})
}
