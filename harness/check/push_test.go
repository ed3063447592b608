package check_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/check"
)

// pushWire turns "conn dir text" lines of the device phone into wire lines.
func pushWire(lines ...string) []check.WireLine {
	var out []check.WireLine
	for _, l := range lines {
		conn, rest, _ := strings.Cut(l, " ")
		dir, text, _ := strings.Cut(rest, " ")
		out = append(out, check.WireLine{Device: "phone", Conn: int(conn[0] - '0'), Dir: dir[0], Text: text})
	}
	return out
}

var watchStart = []string{
	"2 C T1 EXAMINE INBOX",
	"2 S T1 OK [READ-ONLY] EXAMINE completed",
	"2 C T2 IDLE",
	"2 S + idling",
}

var _ = DescribeTable("Push delivery (P1)",
	func(broken bool, lines ...string) {
		got := check.CheckPush(pushWire(append(append([]string(nil), watchStart...), lines...)...))
		if !broken {
			Expect(got).To(BeEmpty())
			return
		}
		Expect(got).To(HaveLen(1))
		Expect(got[0].Invariant).To(Equal(check.P1Push))
		Expect(got[0].Devices).To(Equal([]string{"phone"}))
		Expect(got[0].Message).To(ContainSubstring("INBOX"))
	},
	Entry("a watcher that idles again without fetching what woke it breaks it", true,
		"2 S * 4 EXISTS", "2 C DONE", "2 S T2 OK IDLE terminated", "2 C T3 IDLE"),
	Entry("an expunge or a flag change counts as much as new mail", true,
		"2 S * 1 FETCH (UID 1 FLAGS (\\Seen))", "2 C DONE", "2 S T2 OK IDLE terminated", "1 C T9 NOOP", "2 C T3 IDLE"),
	Entry("selecting another mailbox does not fetch the watched one", true,
		"2 S * 2 EXPUNGE", "2 C DONE", "1 C T9 SELECT Archive", "2 C T3 IDLE"),
	Entry("a round that selects the mailbox on another connection keeps it", false,
		"2 S * 4 EXISTS", "2 C DONE", "1 C T9 SELECT INBOX", "1 S T9 OK SELECT completed", "2 C T3 IDLE"),
	Entry("a fetch on the push connection itself keeps it", false,
		"2 S * 4 EXISTS", "2 C DONE", "2 C T3 UID FETCH 4:* (FLAGS)", "2 C T4 IDLE"),
	Entry("a watch that ends after the update breaks nothing", false,
		"2 S * 4 EXISTS", "2 C DONE", "2 S T2 OK IDLE terminated"),
	Entry("an update outside IDLE is not a push", false,
		"2 C DONE", "2 S * 4 EXISTS", "2 C T3 IDLE"),
)
