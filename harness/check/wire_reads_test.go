package check_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/check"
)

// readOf is a read of one mailbox holding one message per (uid, message id, hash).
func readOf(at time.Duration, mailbox string, uidValidity uint32, msgs ...check.ServerMessage) check.ServerRead {
	return check.ServerRead{Time: at, What: "after line 1", State: check.ServerState{Mailboxes: []check.ServerMailbox{
		{Name: mailbox, UIDValidity: uidValidity, UIDNext: 10, Messages: msgs}}}}
}

var _ = Describe("S3 on the harness's own reads", func() {
	w1 := check.ServerMessage{UID: 1, Label: "w1", Hash: "aaaa1111", Size: 120, MessageID: "w1@x"}
	a1 := check.ServerMessage{UID: 1, Label: "a1", Hash: "bbbb2222", Size: 120, MessageID: "a1@x"}

	It("reports a name, UIDVALIDITY and UID that show other content in a later read, naming the harness", func() {
		found := check.CheckWireWith(nil, check.WireOptions{Reads: []check.ServerRead{
			readOf(2*time.Second, "Work", 7, a1), readOf(time.Second, "Work", 7, w1)}})
		Expect(found).To(HaveLen(1))
		Expect(found[0].Invariant).To(Equal("S3"))
		Expect(found[0].Server).To(BeTrue())
		Expect(found[0].Devices).To(Equal([]string{check.ReadsDevice}))
		Expect(found[0].At).To(Equal(2 * time.Second))
		Expect(found[0].Message).To(ContainSubstring("UID 1 in Work (UIDVALIDITY 7) names two messages: Message-ID <w1@x>, then <a1@x>"))
	})

	It("reports a read that contradicts what a device fetched, by content when the Message-IDs agree", func() {
		wire := transcript("phone", 1, `
C a2 SELECT Work
S * 1 EXISTS
S * OK [UIDVALIDITY 7] UIDs valid
S a2 OK [READ-WRITE] SELECT completed
C a3 UID FETCH 1 (UID RFC822.SIZE)
S * 1 FETCH (UID 1 RFC822.SIZE 99)
S a3 OK FETCH completed`)
		found := check.CheckWireWith(wire, check.WireOptions{Reads: []check.ServerRead{readOf(time.Hour, "Work", 7, w1)}})
		Expect(found).To(HaveLen(1))
		Expect(found[0].Message).To(ContainSubstring("RFC822.SIZE 99, then 120"))
		Expect(found[0].Message).To(ContainSubstring("first seen on phone connection 1"))
	})

	It("says nothing of reads that agree, of another UIDVALIDITY, or of another mailbox", func() {
		other := a1
		other.UID = 2
		found := check.CheckWireWith(nil, check.WireOptions{Reads: []check.ServerRead{
			readOf(time.Second, "Work", 7, w1), readOf(2*time.Second, "Work", 7, w1, other),
			readOf(3*time.Second, "Work", 8, a1), readOf(4*time.Second, "Archive", 7, a1)}})
		Expect(found).To(BeEmpty())
	})
})

var _ = Describe("S3 on the harness's own reads, read again", func() {
	It("reports one change once, however often the harness reads it", func() {
		w1 := check.ServerMessage{UID: 1, Hash: "aaaa1111", Size: 120, MessageID: "w1@x"}
		a1 := check.ServerMessage{UID: 1, Hash: "bbbb2222", Size: 120, MessageID: "a1@x"}
		found := check.CheckWireWith(nil, check.WireOptions{Reads: []check.ServerRead{
			readOf(1, "Work", 7, w1), readOf(2, "Work", 7, a1), readOf(3, "Work", 7, a1), readOf(4, "Work", 7, a1)}})
		Expect(found).To(HaveLen(1))
		Expect(found[0].Table.Rows).To(HaveLen(1))
	})
})
