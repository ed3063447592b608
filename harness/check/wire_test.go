package check_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/check"
)

// transcript turns "C text" / "S text" lines into wire lines of one device and connection.
func transcript(device string, conn int, text string) []check.WireLine {
	var out []check.WireLine
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		l = strings.TrimSpace(l)
		if l == "" {
			continue
		}
		out = append(out, check.WireLine{Device: device, Conn: conn, Dir: l[0], Text: l[2:]})
	}
	return out
}

const correctSession = `
C a1 LOGIN user [REDACTED]
S a1 OK logged in
C a2 SELECT INBOX
S * FLAGS (\Seen \Answered \Flagged \Deleted \Draft)
S * 3 EXISTS
S * OK [UIDVALIDITY 7] UIDs valid
S * OK [UIDNEXT 10] predicted next UID
S a2 OK [READ-WRITE] SELECT completed
C a3 UID FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[])
S * 1 FETCH (UID 3 FLAGS (\Seen) RFC822.SIZE 120 BODY[] {120 bytes})
S * 2 FETCH (UID 5 FLAGS () RFC822.SIZE 130 BODY[] {130 bytes})
S * 3 FETCH (UID 9 FLAGS () RFC822.SIZE 140 BODY[] {140 bytes})
S a3 OK FETCH completed
C a4 UID EXPUNGE 5
S * 2 EXPUNGE
S a4 OK EXPUNGE completed
C a5 NOOP
S * 3 EXISTS
S a5 OK NOOP completed
C a6 UID FETCH 10:* (UID FLAGS RFC822.SIZE)
S * 3 FETCH (UID 10 FLAGS () RFC822.SIZE 99)
S a6 OK FETCH completed
C a7 UID FETCH 1:* (FLAGS)
C a8 EXAMINE "Archive"
S * 1 FETCH (UID 3 FLAGS (\Seen))
S * 2 FETCH (UID 9 FLAGS ())
S * 3 FETCH (UID 10 FLAGS ())
S a7 OK FETCH completed
S * 1 EXISTS
S * OK [UIDVALIDITY 8] UIDs valid
S * OK [UIDNEXT 2] predicted next UID
S a8 OK [READ-ONLY] EXAMINE completed
C a9 UID FETCH 1:* (UID RFC822.SIZE)
S * 1 FETCH (UID 1 RFC822.SIZE 120)
S a9 OK FETCH completed
`

var _ = Describe("The server invariants seen on the wire", func() {
	It("find nothing wrong in a correct session, pipelined commands included", func() {
		lines := transcript("phone", 1, correctSession)
		lines = append(lines, transcript("laptop", 1, correctSession)...)
		Expect(check.CheckWire(lines)).To(BeEmpty())
	})

	DescribeTable("report a server that breaks one of them",
		func(id, session, message string) {
			rs := check.CheckWire(transcript("phone", 2, session))
			Expect(ids(rs)).To(Equal([]string{id}))
			Expect(rs[0].Server).To(BeTrue())
			Expect(rs[0].Devices).To(Equal([]string{"phone"}))
			Expect(rs[0].Message).To(Equal(message))
			Expect(rs[0].Table.Rows).To(HaveLen(1))
		},
		Entry("S1: UIDs out of order", "S1", `
C a2 SELECT INBOX
S * 3 EXISTS
S * OK [UIDVALIDITY 7] ok
S * OK [UIDNEXT 10] ok
S a2 OK [READ-WRITE] done
C a3 UID FETCH 1:* (UID FLAGS)
S * 1 FETCH (UID 3 FLAGS ())
S * 2 FETCH (UID 2 FLAGS ())
S * 3 FETCH (UID 4 FLAGS ())
S a3 OK done
`, "UIDs not ascending in INBOX: message 1 has UID 3, message 2 has UID 2 (phone, connection 2; RFC 3501 §2.3.1.1)"),
		Entry("S2: a UID at UIDNEXT before any new message", "S2", `
C a2 EXAMINE Archive
S * 1 EXISTS
S * OK [UIDVALIDITY 7] ok
S * OK [UIDNEXT 5] ok
S a2 OK [READ-ONLY] done
C a3 FETCH 1 (UID)
S * 1 FETCH (UID 5)
S a3 OK done
`, "the server reported UID 5 in Archive, not below the UIDNEXT 5 it announced (phone, connection 2; RFC 3501 §2.3.1.1)"),
		Entry("S3: a UID reused for other content", "S3", `
C a2 SELECT INBOX
S * 1 EXISTS
S * OK [UIDVALIDITY 7] ok
S * OK [UIDNEXT 5] ok
S a2 OK [READ-WRITE] done
C a3 UID FETCH 1:* (UID RFC822.SIZE)
S * 1 FETCH (UID 4 RFC822.SIZE 120)
S a3 OK done
C a4 UID EXPUNGE 4
S * 1 EXPUNGE
S a4 OK done
C a5 NOOP
S * 1 EXISTS
S a5 OK done
C a6 UID FETCH 1:* (UID RFC822.SIZE)
S * 1 FETCH (UID 4 RFC822.SIZE 333)
S a6 OK done
`, "UID 4 in INBOX (UIDVALIDITY 7) names two messages: RFC822.SIZE 120, then 333 (first seen on phone connection 2) (phone, connection 2; RFC 3501 §2.3.1.1)"),
		Entry("S4: an EXPUNGE beyond the message count", "S4", `
C a2 SELECT INBOX
S * 2 EXISTS
S * OK [UIDVALIDITY 7] ok
S * OK [UIDNEXT 5] ok
S a2 OK [READ-WRITE] done
C a3 UID EXPUNGE 4
S * 3 EXPUNGE
S a3 OK done
`, "the server expunged message 3 of 2 in INBOX (phone, connection 2; RFC 3501 §7.4.1)"),
	)

	It("stops judging counts after a VANISHED response it cannot follow", func() {
		rs := check.CheckWire(transcript("phone", 1, `
C a2 SELECT INBOX
S * 2 EXISTS
S * OK [UIDVALIDITY 7] ok
S a2 OK [READ-WRITE] done
S * VANISHED 3:4
S * 2 EXPUNGE
`))
		Expect(rs).To(BeEmpty())
	})

	It("reports a UID reused across devices, by body section size", func() {
		sel := `
C a2 SELECT INBOX
S * 1 EXISTS
S * OK [UIDVALIDITY 7] ok
S a2 OK [READ-WRITE] done
C a3 UID FETCH 1 (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])
`
		lines := transcript("phone", 1, sel+"S * 1 FETCH (UID 1 BODY[HEADER.FIELDS (MESSAGE-ID)] {54 bytes})")
		lines = append(lines, transcript("laptop", 1, sel+"S * 1 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID)] {61 bytes} UID 1)")...)
		rs := check.CheckWire(lines)
		Expect(ids(rs)).To(Equal([]string{"S3"}))
		Expect(rs[0].Devices).To(Equal([]string{"laptop"}))
	})
})
