package check_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/check"
)

// timed stamps lines with increasing times, in the order given.
func timed(lines []check.WireLine) []check.WireLine {
	for i := range lines {
		lines[i].Time = time.Duration(i+1) * time.Millisecond
	}
	return lines
}

const selectInbox = `
C a1 SELECT INBOX
S * FLAGS (\Seen \Answered \Flagged \Deleted \Draft)
S * OK [PERMANENTFLAGS (\Seen \Answered \Flagged \Deleted \Draft \*)] ok
S * 3 EXISTS
S * OK [UIDVALIDITY 7] ok
S * OK [UIDNEXT 10] ok
S a1 OK [READ-WRITE] done
C a2 UID FETCH 1:* (UID FLAGS)
S * 1 FETCH (UID 3 FLAGS ())
S * 2 FETCH (UID 5 FLAGS (\Deleted))
S * 3 FETCH (UID 9 FLAGS ())
S a2 OK done
`

var _ = Describe("The server invariants S5–S13", func() {
	It("have an RFC section each", func() {
		for _, s := range check.ServerInvariants() {
			Expect(s.RFC).To(HavePrefix("RFC "), s.ID)
			Expect(check.ServerRFC(s.ID)).To(Equal(s.RFC))
		}
		Expect(check.ServerInvariants()).To(HaveLen(13))
	})

	It("find nothing wrong in a correct session", func() {
		Expect(check.CheckWire(transcript("phone", 1, selectInbox+`
C a3 UID SEARCH DELETED
S * SEARCH 5
S a3 OK done
C a4 UID STORE 3 +FLAGS ($Label1)
S * 1 FETCH (UID 3 FLAGS ($Label1))
S a4 OK done
C a5 UID MOVE 5 Archive
S * OK [COPYUID 8 5 1] moved
S * 2 EXPUNGE
S a5 OK done
C a6 UID STORE 5 +FLAGS (\Seen)
S a6 OK done
C a7 CREATE Archive
S a7 NO [ALREADYEXISTS] Mailbox already exists
C a8 UID COPY 3 Nowhere
S a8 NO [TRYCREATE] no such mailbox
C a9 UID SEARCH ALL
S * SEARCH 3 9
S a9 OK done
`))).To(BeEmpty())
	})

	DescribeTable("report a server that breaks one, naming the command it answered",
		func(id, session, command, message string) {
			rs := check.CheckWire(timed(transcript("phone", 2, selectInbox+session)))
			Expect(ids(rs)).To(Equal([]string{id}))
			Expect(rs[0].Server).To(BeTrue())
			Expect(rs[0].Message).To(ContainSubstring(message))
			Expect(rs[0].Message).To(ContainSubstring(check.ServerRFC(id)))
			Expect(rs[0].Table.Columns).To(Equal([]string{"device", "conn", "mailbox", "command", "response", "problem"}))
			Expect(rs[0].Table.Rows[0][3]).To(Equal(command))
			Expect(rs[0].At).To(BeNumerically(">", 0))
		},
		Entry("S5: a COPYUID that is not one", "S5", `
C a3 UID MOVE 5 Trash
S * OK [COPYUID 24 T6 NO [SERVERBUG] Internal server error
S * 2 EXPUNGE
S a3 OK done
`, "a3 UID MOVE 5 Trash", "malformed response: response code [COPYUID 24 T6 NO [SERVERBUG] holds a ["),
		Entry("S5: a tagged BYE", "S5", `
C a3 NOOP
S a3 BYE nope
`, "a3 NOOP", `tagged response a3 with status "BYE"`),
		Entry("S6: FETCH of message 0, not S2", "S6", `
C a3 UID FETCH 10:* (UID FLAGS)
S * 0 FETCH (UID 11 FLAGS ())
S a3 OK done
`, "a3 UID FETCH 10:* (UID FLAGS)", "FETCH for message 0"),
		Entry("S8: one MOVE answered with two EXPUNGEs", "S8", `
C a3 UID MOVE 5 Archive
S * 2 EXPUNGE
S * 2 EXPUNGE
S a3 OK done
C a4 UID SEARCH ALL
S * SEARCH 3 9
S a4 OK done
`, "a3 UID MOVE 5 Archive", "UID MOVE named 1 UID(s) and was answered with 2 EXPUNGE responses"),
		Entry("S8: a UID the session was told is expunged, listed again", "S8", `
C a3 UID EXPUNGE 1:5
S * 2 EXPUNGE
S a3 OK done
C a4 UID SEARCH RETURN (ALL) ALL
S * ESEARCH (TAG "a4") UID ALL 3:5,9
S a4 OK done
`, `a4 UID SEARCH RETURN (ALL) ALL`, "UID 5 of INBOX is still there"),
		Entry("S9: an internal error", "S9", `
C a3 SELECT Work
S a3 NO [SERVERBUG] Internal error occurred. Refer to server log for more information.
`, "a3 SELECT Work", "[SERVERBUG]"),
		Entry("S10: NO to a UID STORE of an expunged UID", "S10", `
C a3 UID STORE 4 +FLAGS (\Seen)
S a3 NO No messages matched
`, `a3 UID STORE 4 +FLAGS (\Seen)`, "refused UID STORE without a response code"),
		Entry("S10: NO to a concurrent UID COPY", "S10", `
C a3 UID COPY 3 Archive
S a3 NO database is locked
`, "a3 UID COPY 3 Archive", "refused UID COPY"),
		Entry("S11: CREATE refused without ALREADYEXISTS", "S11", `
C a3 CREATE Archive
S a3 NO Mailbox already exists
`, "a3 CREATE Archive", "without [ALREADYEXISTS]"),
		Entry("S12: a keyword lower-cased", "S12", `
C a3 UID STORE 3 +FLAGS ($Label1)
S * 1 FETCH (UID 3 FLAGS ($label1))
S a3 OK done
`, "a3 UID STORE 3 +FLAGS ($Label1)", "renamed keyword $Label1 to $label1"),
		Entry("S12: a keyword lost", "S12", `
C a3 UID STORE 3,9 +FLAGS (\Seen Work)
S * 1 FETCH (UID 3 FLAGS (\Seen Work))
S * 3 FETCH (UID 9 FLAGS (\Seen))
S a3 OK done
`, `a3 UID STORE 3,9 +FLAGS (\Seen Work)`, "lost keyword Work"),
		Entry("S13: SEARCH DELETED lists a message without \\Deleted", "S13", `
C a3 UID SEARCH DELETED
S * SEARCH 5 9
S a3 OK done
`, "a3 UID SEARCH DELETED", "SEARCH DELETED listed UID 9, whose FLAGS ()"),
		Entry("S13: an ESEARCH DELETED lists a message without \\Deleted", "S13", `
C a3 UID SEARCH RETURN (ALL) DELETED
S * ESEARCH (TAG "a3") UID ALL 3,5
S a3 OK done
`, "a3 UID SEARCH RETURN (ALL) DELETED", "SEARCH DELETED listed UID 3, whose FLAGS ()"),
		Entry("S13: SEARCH FLAGGED lists a message nobody flagged", "S13", `
C a3 UID SEARCH UID 1:9 FLAGGED
S * SEARCH 3
S a3 OK done
`, "a3 UID SEARCH UID 1:9 FLAGGED", "SEARCH FLAGGED listed UID 3"),
	)

	It("report a UIDNEXT that went down within one UIDVALIDITY (S7), across devices", func() {
		lines := transcript("phone", 1, selectInbox)
		lines = append(lines, transcript("laptop", 1, `
C b1 STATUS INBOX (UIDNEXT UIDVALIDITY)
S * STATUS INBOX (UIDNEXT 8 UIDVALIDITY 7)
S b1 OK done
`)...)
		rs := check.CheckWire(timed(lines))
		Expect(ids(rs)).To(Equal([]string{"S7"}))
		Expect(rs[0].Devices).To(Equal([]string{"laptop"}))
		Expect(rs[0].Message).To(ContainSubstring("went down from 10 (seen on phone connection 1) to 8"))
		// A STATUS sent before the first UIDNEXT arrived may have been answered earlier.
		early := timed(lines)
		for i := range early {
			if early[i].Device == "laptop" && strings.HasPrefix(early[i].Text, "b1 STATUS") {
				early[i].Time = 0
			}
		}
		Expect(check.CheckWire(early)).To(BeEmpty())
	})

	It("do not judge SEARCH or keywords when another connection changed something meanwhile", func() {
		phone := transcript("phone", 1, selectInbox+`
C a3 UID SEARCH DELETED
S * SEARCH 5 9
S a3 OK done
`)
		laptop := transcript("laptop", 1, `
C b1 UID STORE 9 +FLAGS (\Deleted)
S b1 OK done
`)
		// The laptop's STORE runs between the phone's FETCH and its SEARCH.
		lines := timed(append(append(append([]check.WireLine{}, phone[:9]...), laptop...), phone[9:]...))
		Expect(check.CheckWire(lines)).To(BeEmpty())
		// A server step in that span excuses it the same way.
		step := check.WireLine{Device: "server", Dir: 'M', Text: "server flag INBOX m3 \\Deleted"}
		lines = timed(append(append(append([]check.WireLine{}, phone[:12]...), step), phone[12:]...))
		Expect(check.CheckWire(lines)).To(BeEmpty())
		lines[12].End = lines[12].Time
		Expect(check.CheckWire(lines)).To(BeEmpty())
	})

	It("do not count an expunge against a session that was not yet told of it (S8)", func() {
		// The laptop selected INBOX before the phone expunged UID 5: until its own
		// EXPUNGE arrives, its view still holds the message (RFC 3501 §7.4.1).
		phone := transcript("phone", 1, selectInbox+`
C a3 UID EXPUNGE 5
S * 2 EXPUNGE
S a3 OK done
`)
		laptop := transcript("laptop", 1, strings.ReplaceAll(selectInbox, "a", "b")+`
C b3 NOOP
S * 2 FETCH (UID 5 FLAGS (\Deleted \Seen))
S * 2 EXPUNGE
S b3 OK done
`)
		lines := timed(append(append(append([]check.WireLine{}, laptop[:12]...), phone...), laptop[12:]...))
		Expect(check.CheckWire(lines)).To(BeEmpty())
		// Selected after the expunge, it must not see the message.
		late := transcript("laptop", 2, strings.ReplaceAll(selectInbox, "a", "c"))
		lines = timed(append(append([]check.WireLine{}, phone...), late...))
		rs := check.CheckWire(lines)
		Expect(ids(rs)).To(Equal([]string{"S8"}))
		Expect(rs[0].Devices).To(Equal([]string{"laptop"}))
		// A MOVE whose extra EXPUNGE may be another session's is not judged.
		other := transcript("tablet", 1, `
C t1 UID STORE 9 +FLAGS (\Seen)
S t1 OK done
`)
		double := transcript("phone", 1, selectInbox+`
C a3 UID MOVE 5 Archive
S * 2 EXPUNGE
S * 2 EXPUNGE
S a3 OK done
`)
		lines = timed(append(append(append([]check.WireLine{}, double[:9]...), other...), double[9:]...))
		Expect(check.CheckWire(lines)).To(BeEmpty())
	})

	It("hold a UID SEARCH by flag against the FLAGS fetched right after it (S13)", func() {
		session := `
C a1 SELECT INBOX
S * 3 EXISTS
S * OK [UIDVALIDITY 7] ok
S * OK [UIDNEXT 10] ok
S a1 OK [READ-WRITE] done
C a2 UID SEARCH RETURN (ALL) DELETED
S * ESEARCH (TAG "a2") UID ALL 5,9
S a2 OK done
`
		fetch := `
C a4 UID FETCH 5,9 (UID FLAGS)
S * 2 FETCH (UID 5 FLAGS (\Deleted))
S * 3 FETCH (UID 9 FLAGS (\Seen))
S a4 OK done
`
		rs := check.CheckWire(timed(transcript("phone", 1, session+fetch)))
		Expect(ids(rs)).To(Equal([]string{"S13"}))
		Expect(rs[0].Message).To(ContainSubstring("SEARCH DELETED listed UID 9, whose FLAGS (\\Seen) the server sent right after"))
		Expect(rs[0].Table.Rows[0][3]).To(Equal("a2 UID SEARCH RETURN (ALL) DELETED"))
		// The session's own STORE in between may have cleared it.
		own := `
C a3 UID STORE 9 -FLAGS.SILENT (\Deleted)
S a3 OK done
`
		Expect(check.CheckWire(timed(transcript("phone", 1, session+own+fetch)))).To(BeEmpty())
	})

	It("keep a keyword's spelling the mailbox already had", func() {
		rs := check.CheckWire(transcript("phone", 1, `
C a1 SELECT INBOX
S * FLAGS (\Seen $label1)
S * OK [PERMANENTFLAGS (\Seen $label1 \*)] ok
S * 1 EXISTS
S * OK [UIDVALIDITY 7] ok
S a1 OK done
C a3 UID STORE 3 +FLAGS ($Label1)
S * 1 FETCH (UID 3 FLAGS ($label1))
S a3 OK done
`))
		Expect(rs).To(BeEmpty())
	})

	It("do not blame injected failures on the server", func() {
		lines := transcript("phone", 1, selectInbox+`
C a3 UID STORE 3 +FLAGS (\Seen)
S a3 NO [UNAVAILABLE] try later
C a4 UID COPY 3 Archive
S a4 NO refused
`)
		Expect(ids(check.CheckWire(lines))).To(Equal([]string{"S9", "S10"}))
		Expect(check.CheckWireWith(lines, check.WireOptions{Injected: true})).To(BeEmpty())
	})
})
