package check_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness/check"
)

// lostInReset: m1–m3 in INBOX, phone and laptop synced; INBOX is reset and m2 expunged;
// the devices sync (and settle). Neither device can tell whether m2 was lost by the server:
// both must quarantine it.
func lostInReset(more ...any) []check.Op {
	return hist(append([]any{
		op("setup", "deliver", "INBOX", "m1", "m2", "m3"),
		sync("phone"), sync("laptop"),
		op("server", "uidvalidity-reset", "INBOX"),
		op("server", "expunge", "INBOX", "m2"),
	}, more...)...)
}

// afterReset is the state a correct engine ends in: m1 and m3 everywhere, and m2
// quarantined on the devices named.
func afterReset(h []check.Op, quarantinedOn ...string) check.Input {
	in := input(serverOf(box("INBOX", m("m1"), m("m3"))), h, "phone", "laptop")
	for _, name := range quarantinedOn {
		device(&in, name).State.Quarantined = []string{"m2"}
	}
	return in
}

func quarantineResults(rs []check.Result) []check.Result {
	var out []check.Result
	for _, r := range rs {
		if r.Invariant == check.I11Quarantine {
			out = append(out, r)
		}
	}
	return out
}

var _ = Describe("The quarantine invariant (I11)", func() {
	It("holds when every device that had synced the message quarantined it", func() {
		Expect(check.Check(afterReset(lostInReset(sync("phone")), "phone", "laptop"))).To(BeEmpty())
	})

	It("fails a device that dropped the message, naming the device, the label and the reset", func() {
		rs := quarantineResults(check.Check(afterReset(lostInReset(sync("phone")), "phone")))
		Expect(rs).To(HaveLen(1))
		Expect(rs[0].Title).To(Equal("quarantine"))
		Expect(rs[0].Devices).To(Equal([]string{"laptop"}))
		Expect(rs[0].Labels).To(Equal([]string{"m2"}))
		Expect(rs[0].Message).To(Equal("laptop dropped m2 without quarantining it (it was in INBOX when its UIDVALIDITY changed at line 4, then expunged)"))
		Expect(rs[0].Table).To(Equal(&check.Table{
			Columns: []string{"label", "mailbox", "expected", "server", "laptop"},
			Rows:    [][]string{{"m2", "INBOX", "quarantined", "—", "dropped"}},
		}))
	})

	It("fails a device that uploaded the message again, even if it also reports it", func() {
		in := afterReset(lostInReset(sync("phone")), "phone", "laptop")
		everywhere(&in, func(st *check.ServerState) {
			*st = serverOf(box("INBOX", m("m1"), m("m2"), m("m3")))
		})
		device(&in, "phone").State.Quarantined = []string{"m2"}
		device(&in, "laptop").State.Quarantined = []string{"m2"}
		rs := quarantineResults(check.Check(in))
		Expect(rs).To(HaveLen(2))
		Expect(rs[0].Message).To(HavePrefix("phone: m2 is on the server again, in INBOX: uploaded again instead of quarantined (it was in INBOX when"))
		Expect(rs[0].Table.Rows).To(Equal([][]string{{"m2", "INBOX", "quarantined", "INBOX", "in INBOX"}}))
	})

	It("fails a device that shows the message as live mail (paired with other mail)", func() {
		in := afterReset(lostInReset(), "phone")
		lap := device(&in, "laptop")
		viewBox(lap, "INBOX").Messages = append(viewBox(lap, "INBOX").Messages,
			clients.Message{Label: "m2", Hash: "hash-m2"})
		rs := quarantineResults(check.Check(in))
		Expect(rs).To(HaveLen(1))
		Expect(rs[0].Message).To(HavePrefix("laptop shows m2 in INBOX as live mail"))
	})

	It("requires the quarantine also when the expunge came before the reset, or a sync failed in between", func() {
		h := hist(
			op("setup", "deliver", "INBOX", "m1", "m2", "m3"),
			sync("phone"), sync("laptop"),
			op("server", "expunge", "INBOX", "m2"),
			op("server", "uidvalidity-bump", "INBOX"),
			failed(sync("phone")),
		)
		rs := quarantineResults(check.Check(afterReset(h, "laptop")))
		Expect(rs).To(HaveLen(1))
		Expect(rs[0].Devices).To(Equal([]string{"phone"}))
	})

	DescribeTable("requires nothing where a correct engine need not quarantine",
		func(h []check.Op) {
			in := afterReset(h)
			Expect(quarantineResults(check.Check(in))).To(BeEmpty())
		},
		Entry("an expunge without a reset: the device deletes the message", hist(
			op("setup", "deliver", "INBOX", "m1", "m2", "m3"),
			sync("phone"), sync("laptop"),
			op("server", "expunge", "INBOX", "m2"),
		)),
		Entry("a reset the devices synced before the expunge", hist(
			op("setup", "deliver", "INBOX", "m1", "m2", "m3"),
			sync("phone"), sync("laptop"),
			op("server", "uidvalidity-reset", "INBOX"),
			sync("phone"), sync("laptop"),
			op("server", "expunge", "INBOX", "m2"),
		)),
		Entry("a silent renumbering: UIDVALIDITY did not change", hist(
			op("setup", "deliver", "INBOX", "m1", "m2", "m3"),
			sync("phone"), sync("laptop"),
			op("server", "renumber-silently", "INBOX"),
			op("server", "expunge", "INBOX", "m2"),
		)),
		Entry("a message the devices never saw", hist(
			op("setup", "deliver", "INBOX", "m1", "m3"),
			sync("phone"), sync("laptop"),
			op("setup", "deliver", "INBOX", "m2"),
			op("server", "uidvalidity-reset", "INBOX"),
			op("server", "expunge", "INBOX", "m2"),
		)),
		Entry("a message a device deleted itself", lostInReset(op("phone", "delete", "INBOX", "m2"))),
		Entry("devices wiped after the reset", lostInReset(op("phone", "wipe", ""), op("laptop", "wipe", ""))),
		Entry("a sync that raced the expunge: it may have seen the message before it went", hist(
			op("setup", "deliver", "INBOX", "m1", "m2", "m3"),
			sync("phone"), sync("laptop"),
			op("server", "uidvalidity-reset", "INBOX"),
			group(1, op("server", "expunge", "INBOX", "m2"), sync("phone"), sync("laptop")),
		)),
	)

	It("is not applicable to a device without sync state that had to quarantine", func() {
		in := afterReset(lostInReset(), "phone")
		device(&in, "laptop").State = nil
		var rs []check.Result
		for _, r := range quarantineResults(check.Check(in)) {
			rs = append(rs, r)
		}
		Expect(rs).To(HaveLen(1))
		Expect(rs[0].NotApplicable).To(BeTrue())
		Expect(rs[0].Devices).To(Equal([]string{"laptop"}))
	})
})
