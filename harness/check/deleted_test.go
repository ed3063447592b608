package check_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/check"
)

// deliveredDeleted: m1 arrives in INBOX already marked \Deleted, next to m2; both devices
// sync. A correct engine downloads m1 with its \Deleted.
func deliveredDeleted() check.Input {
	deliver := op("setup", "deliver", "INBOX", "m1")
	deliver.Flags = []string{`\Deleted`}
	h := hist(op("setup", "deliver", "INBOX", "m2"), deliver, sync("phone"), sync("laptop"))
	return input(serverOf(box("INBOX", m("m1", `\Deleted`), m("m2"))), h, "phone", "laptop")
}

var _ = Describe("New mail already marked \\Deleted", func() {
	It("passes when every device downloaded it with the flag", func() {
		Expect(check.Check(deliveredDeleted())).To(BeEmpty())
	})

	It("fails I1 naming the guarantee and the label when a device skipped it", func() {
		in := deliveredDeleted()
		viewBox(device(&in, "phone"), "INBOX").Messages = viewBox(device(&in, "phone"), "INBOX").Messages[1:]
		rs := check.Check(in)
		Expect(ids(rs)).To(Equal([]string{"I1"}))
		Expect(rs[0].Labels).To(Equal([]string{"m1"}))
		Expect(rs[0].Message).To(Equal(`phone lacks m1 in INBOX; it arrived marked \Deleted (line 2): ` +
			`mail marked \Deleted is still mail until expunged and is downloaded with the flag (F17)`))
	})

	It("fails I1 naming the guarantee when a device dropped the flag", func() {
		in := deliveredDeleted()
		viewBox(device(&in, "laptop"), "INBOX").Messages[0].Flags = nil
		rs := check.Check(in)
		Expect(ids(rs)).To(Equal([]string{"I1"}))
		Expect(rs[0].Message).To(HavePrefix(`laptop has m1 in INBOX with flags none, the server \Deleted; it arrived marked \Deleted (line 2)`))
	})

	It("says the server holds it marked \\Deleted when another client marked it", func() {
		h := hist(op("setup", "deliver", "INBOX", "m1", "m2"), flag(op("server", "flag", "INBOX", "m1"), `\Deleted`),
			sync("phone"), sync("laptop"))
		in := input(serverOf(box("INBOX", m("m1", `\Deleted`), m("m2"))), h, "phone", "laptop")
		viewBox(device(&in, "phone"), "INBOX").Messages = viewBox(device(&in, "phone"), "INBOX").Messages[1:]
		rs := check.Check(in)
		Expect(ids(rs)).To(Equal([]string{"I1"}))
		Expect(rs[0].Message).To(Equal(`phone lacks m1 in INBOX; the server holds it marked \Deleted: ` +
			`mail marked \Deleted is still mail until expunged and is downloaded with the flag (F17)`))
	})

	It("adds nothing to a difference that does not concern \\Deleted", func() {
		in := deliveredDeleted()
		viewBox(device(&in, "phone"), "INBOX").Messages[1].Flags = []string{`\Seen`}
		rs := check.Check(in)
		Expect(ids(rs)).To(Equal([]string{"I1"}))
		Expect(rs[0].Message).To(Equal(`phone has m2 in INBOX with flags \Seen, the server none`))
	})
})
