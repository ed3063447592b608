package check_test

import (
	"encoding/json"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness/check"
)

// baseline: the phone reads m1 while the laptop archives m2; both sync.
func baseline() check.Input {
	h := hist(
		op("setup", "create", "Archive"),
		op("setup", "deliver", "INBOX", "m1", "m2", "m3"),
		sync("phone"), sync("laptop"),
		op("phone", "read", "INBOX", "m1"),
		dest(op("laptop", "move", "INBOX", "m2"), "Archive"),
		sync("phone"), sync("laptop"),
	)
	st := serverOf(box("Archive", m("m2")), box("INBOX", m("m1", `\Seen`), m("m3")))
	return input(st, h, "phone", "laptop")
}

// everywhere applies change to the server and to every device's view and state alike.
func everywhere(in *check.Input, server func(*check.ServerState)) {
	server(&in.Server)
	for i := range in.Devices {
		in.Devices[i] = mirror(in.Devices[i].Name, in.Server)
	}
}

func serverBox(st *check.ServerState, name string) *check.ServerMailbox {
	mb := st.Find(name)
	if mb == nil {
		panic("no server mailbox " + name)
	}
	return mb
}

var _ = Describe("Check", func() {
	It("finds nothing wrong when every device converged on what the history allows", func() {
		Expect(check.Check(baseline())).To(BeEmpty())
	})

	It("describes every invariant with an ID, a title and a doc line", func() {
		infos := check.Invariants()
		Expect(infos).To(HaveLen(25))
		for _, i := range infos {
			Expect(i.ID).NotTo(BeEmpty())
			Expect(i.Title).NotTo(BeEmpty())
			Expect(i.Doc).NotTo(BeEmpty())
		}
		Expect(infos[3]).To(Equal(check.Info{ID: "I4", Title: "no duplicates", Doc: infos[3].Doc}))
	})

	DescribeTable("reports exactly the one invariant a state breaks",
		func(id string, breakIt func(*check.Input), message string) {
			in := baseline()
			breakIt(&in)
			rs := check.Check(in)
			Expect(ids(rs)).To(Equal([]string{id}), "%+v", rs)
			Expect(rs[0].Title).NotTo(BeEmpty())
			Expect(rs[0].Message).To(Equal(message))
			Expect(rs[0].NotApplicable).To(BeFalse())
			Expect(rs[0].Table).NotTo(BeNil())
		},
		Entry("I1 converged: a device lacks a message", "I1", func(in *check.Input) {
			mb := viewBox(device(in, "laptop"), "INBOX")
			mb.Messages = mb.Messages[:1]
		}, "laptop lacks m3 in INBOX"),
		Entry("I1 converged: a device shows another text under a label", "I1", func(in *check.Input) {
			viewBox(device(in, "laptop"), "INBOX").Messages[1].Hash = "hash-m3-old"
		}, "laptop has m3 in INBOX with other content than the server"),
		Entry("I2 UID integrity: a device holds an old UIDVALIDITY", "I2", func(in *check.Input) {
			stateBox(device(in, "phone"), "Archive").UIDValidity = 7
		}, "phone holds UIDVALIDITY 7 for Archive, the server has 100"),
		Entry("I3 no loss: a message vanished everywhere", "I3", func(in *check.Input) {
			everywhere(in, func(st *check.ServerState) {
				mb := serverBox(st, "INBOX")
				mb.Messages = mb.Messages[:1]
			})
		}, "m3 is missing on the server (expected in INBOX)"),
		Entry("I4 no duplicates: a moved message is twice in its destination", "I4", func(in *check.Input) {
			everywhere(in, func(st *check.ServerState) {
				mb := serverBox(st, "Archive")
				dup := mb.Messages[0]
				dup.UID = 2
				mb.Messages = append(mb.Messages, dup)
				mb.UIDNext = 3
			})
		}, "m2 is twice in Archive on the server"),
		Entry("I4 no duplicates: a moved message is also left in its source", "I4", func(in *check.Input) {
			everywhere(in, func(st *check.ServerState) {
				mb := serverBox(st, "INBOX")
				mb.Messages = append(mb.Messages, check.ServerMessage{UID: 4, Label: "m2", Hash: "hash-m2"})
				mb.UIDNext = 5
			})
		}, "m2 is in Archive and INBOX on the server; the history allows once"),
		Entry("I5 no resurrection: a deleted message is back", "I5", func(in *check.Input) {
			in.History = append(in.History, op("phone", "delete", "INBOX", "m3"), sync("phone"))
		}, "m3 was expunged but is back in INBOX on the server"),
		Entry("I6 flags: a flag one device set is not on the server", "I6", func(in *check.Input) {
			everywhere(in, func(st *check.ServerState) {
				serverBox(st, "INBOX").Messages[0].Flags = nil
			})
		}, `m1 in INBOX on the server lacks \Seen, which was set and never cleared`),
		Entry("I6 flags: a flag nobody set is on the server", "I6", func(in *check.Input) {
			everywhere(in, func(st *check.ServerState) {
				serverBox(st, "Archive").Messages[0].Flags = []string{`\Flagged`}
			})
		}, `m2 in Archive on the server has \Flagged, which nobody set`),
		Entry("I7 mailboxes: a mailbox nobody created", "I7", func(in *check.Input) {
			everywhere(in, func(st *check.ServerState) {
				st.Mailboxes = append(st.Mailboxes, check.ServerMailbox{Name: "Junk", UIDValidity: 9, UIDNext: 1})
			})
		}, "Junk is on the server, but nothing in the history created it"),
		Entry("I7 mailboxes: a removed mailbox is still there", "I7", func(in *check.Input) {
			in.History = append(in.History, op("setup", "create", "Old"), op("laptop", "remove", "Old"), sync("laptop"))
			everywhere(in, func(st *check.ServerState) {
				st.Mailboxes = append(st.Mailboxes, check.ServerMailbox{Name: "Old", UIDValidity: 9, UIDNext: 1})
			})
		}, "Old was removed or renamed but is still on the server"),
		Entry("I8 idempotent: one more round mutates", "I8", func(in *check.Input) {
			d := device(in, "phone")
			d.Extra = &check.ExtraRound{Stats: clients.SyncStats{Mutations: 2}, Before: d.View, After: d.View}
		}, "phone sent 2 mutating commands in a round after settle"),
		Entry("I8 idempotent: one more round changes the replica", "I8", func(in *check.Input) {
			d := device(in, "phone")
			after := mirror("phone", in.Server).View
			after.Mailboxes[1].Messages[0].Flags = nil
			d.Extra = &check.ExtraRound{Before: d.View, After: after}
		}, "phone changed its replica in a round after settle"),
		Entry("I9 journals drained: an entry is still pending", "I9", func(in *check.Input) {
			d := device(in, "laptop")
			d.State.Pending, d.State.PendingDesc = 1, []string{"move m2 INBOX→Archive (in flight)"}
		}, "laptop still has 1 journal entries pending"),
		Entry("I10 watermarks: a device skipped a UID below its UIDNEXT", "I10", func(in *check.Input) {
			sm := stateBox(device(in, "phone"), "INBOX")
			sm.Messages = sm.Messages[:1]
		}, "phone skipped m3 (UID 2) in INBOX, below its saved UIDNEXT 3"),
	)

	It("names the devices that show the same wrong state, with a table of expected and seen counts", func() {
		in := baseline()
		everywhere(&in, func(st *check.ServerState) {
			mb := serverBox(st, "Archive")
			mb.Messages = append(mb.Messages, check.ServerMessage{UID: 2, Label: "m2", Hash: "hash-m2"})
		})
		mb := viewBox(device(&in, "laptop"), "Archive")
		mb.Messages = mb.Messages[:1]
		rs := check.Check(in)
		Expect(ids(rs)).To(Equal([]string{"I1", "I4"}))
		Expect(rs[1].Devices).To(Equal([]string{"phone"}))
		Expect(rs[1].Labels).To(Equal([]string{"m2"}))
		Expect(rs[1].Table).To(Equal(&check.Table{
			Columns: []string{"label", "mailbox", "expected", "server", "phone", "laptop"},
			Rows:    [][]string{{"m2", "Archive", "1", "2", "2", "1"}},
		}))
	})

	It("reports I2, I9 and I10 as not applicable for a device without sync state", func() {
		in := baseline()
		device(&in, "laptop").State = nil
		rs := check.Check(in)
		Expect(ids(rs)).To(Equal([]string{"I2", "I9", "I10"}))
		for _, r := range rs {
			Expect(r.NotApplicable).To(BeTrue())
			Expect(r.Devices).To(Equal([]string{"laptop"}))
		}
	})

	It("leaves its input as it was, INBOX spelt in lower case and server expunges included", func() {
		in := baseline()
		in.History = append(in.History, op("server", "expunge", "inbox", "m3"), op("phone", "unread", "inbox", "m1"), sync("phone"))
		everywhere(&in, func(st *check.ServerState) {
			mb := serverBox(st, "INBOX")
			mb.Messages = mb.Messages[:1]
			mb.Messages[0].Flags = nil
		})
		before, err := json.Marshal(in)
		Expect(err).NotTo(HaveOccurred())
		Expect(check.Check(in)).To(BeEmpty())
		Expect(json.Marshal(in)).To(MatchJSON(before))
	})

	// A draft saved again under the same Message-ID and at the same size: an engine that
	// kept the old text must be caught even when it shows no sync state.
	It("compares content on a device without sync state, and not where a device shows no hashes", func() {
		in := baseline()
		laptop := device(&in, "laptop")
		laptop.State = nil
		viewBox(laptop, "INBOX").Messages[1].Hash = "hash-m3-old"
		rs := check.Check(in)
		Expect(ids(rs)).To(Equal([]string{"I1", "I2", "I9", "I10"}))
		Expect(rs[0].Message).To(Equal("laptop has m3 in INBOX with other content than the server"))
		Expect(rs[0].Table.Rows).To(Equal([][]string{{"m3", "INBOX", "none content hash-m3", "none content hash-m3-"}}))
		for i := range viewBox(laptop, "INBOX").Messages {
			viewBox(laptop, "INBOX").Messages[i].Hash = ""
		}
		Expect(ids(check.Check(in))).To(Equal([]string{"I2", "I9", "I10"}))
	})

	It("flags a device whose view differs from the server even when the server is right", func() {
		in := baseline()
		viewBox(device(&in, "phone"), "INBOX").Messages[0].Flags = nil
		rs := check.Check(in)
		Expect(ids(rs)).To(Equal([]string{"I1"}))
		Expect(rs[0].Message).To(Equal(`phone has m1 in INBOX with flags none, the server \Seen`))
		Expect(rs[0].Table.Rows).To(Equal([][]string{{"m1", "INBOX", `\Seen`, "none"}}))
	})
})

var _ = Describe("Result tables", func() {
	It("stay small when a device lost everything, and the message gives the count", func() {
		var msgs []msg
		var labels []string
		for i := 1; i <= 30; i++ {
			label := fmt.Sprintf("m%d", i)
			msgs = append(msgs, m(label))
			labels = append(labels, label)
		}
		in := input(serverOf(box("INBOX", msgs...)), hist(op("setup", "deliver", "INBOX", labels...), sync("phone")), "phone")
		viewBox(device(&in, "phone"), "INBOX").Messages = nil
		rs := check.Check(in)
		Expect(ids(rs)).To(Equal([]string{"I1"}))
		Expect(rs[0].Message).To(Equal("phone lacks m1 in INBOX (30 differences)"))
		Expect(rs[0].Table.Rows).To(HaveLen(21))
		Expect(rs[0].Table.Rows[19]).To(Equal([]string{"m20", "INBOX", "none", "—"}))
		Expect(rs[0].Table.Rows[20][0]).To(Equal("… 10 more"))
	})
})
