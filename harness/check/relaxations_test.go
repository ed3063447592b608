package check_test

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/check"
)

// relaxCase is one entry of the relaxations table: a history and an outcome on the server.
// An accept case's outcome passes only because of its relaxation; a reject case's lies
// just outside what the relaxation widens to, and fails with the invariants named.
type relaxCase struct {
	id     string // the relaxation's ID
	accept bool
	name   string
	h      []check.Op
	boxes  []mbox
	want   []string // reject: the failing invariants
}

var (
	// The phone copies m1 to B after the laptop moved it to A, unseen.
	staleCopy = start(
		dest(op("laptop", "move", "INBOX", "m1"), "A"), sync("laptop"),
		dest(op("phone", "copy", "INBOX", "m1"), "B"), sync("phone"),
	)
	// The laptop reads m1 back after the phone's last sync: the phone, which still shows
	// it read, reads it and its engine writes nothing.
	readAlreadyRead = hist(
		op("setup", "deliver", "INBOX", "m1"),
		sync("phone"), sync("laptop"),
		op("phone", "read", "INBOX", "m1"), sync("phone"), sync("laptop"),
		op("laptop", "unread", "INBOX", "m1"), sync("laptop"),
		op("phone", "read", "INBOX", "m1"), sync("phone"),
	)
	// The server's move of m1 failed: it may or may not have happened.
	failedServerMove = start(failed(dest(op("server", "move", "INBOX", "m1"), "B")))
	// Without MOVE, the phone moves m1 to A while the laptop marks it \Deleted.
	deletedRacesMove = func(without ...string) []check.Op {
		return append([]check.Op{caps(without...)}, start(
			dest(op("phone", "move", "INBOX", "m1"), "A"),
			flag(op("laptop", "flag", "INBOX", "m1"), `\Deleted`),
			group(1, sync("phone"), sync("laptop")),
		)...)
	}
)

func relaxCases() []relaxCase {
	return []relaxCase{
		{"R1", true, "a failed server move that did not happen", failedServerMove, []mbox{box("A"), box("B"), box("INBOX", m("m1"), m("m2"))}, nil},
		{"R1", false, "a failed server move that went elsewhere", failedServerMove, []mbox{box("A", m("m1")), box("B"), box("INBOX", m("m2"))}, []string{"I3", "I4"}},
		{"R2", true, "an interrupted sync's write that arrived before the server's", interrupted, []mbox{box("A"), box("B"), box("INBOX", m("m1"), m("m2"))}, nil},
		{"R2", false, "an interrupted sync's move and the server's both applied", interruptedMove, []mbox{box("A", m("m1")), box("B", m("m1")), box("INBOX", m("m2"))}, []string{"I4"}},
		{"R3", true, "a flag set where a watching device's move had already put the message", flagAfterWatchedMove, []mbox{box("A", m("m1", `\Flagged`)), box("B"), box("INBOX", m("m2"))}, nil},
		{"R3", false, "a flag set where a watching device's move had put the message, kept twice", flagAfterWatchedMove, []mbox{box("A", m("m1", `\Flagged`)), box("B"), box("INBOX", m("m1"), m("m2"))}, []string{"I4"}},
		{"R4", true, "a read of a message the device still showed read writes nothing", readAlreadyRead, []mbox{box("INBOX", m("m1"))}, nil},
		{"R4", false, "a read of a message the device still showed read writes another flag", readAlreadyRead, []mbox{box("INBOX", m("m1", `\Flagged`))}, []string{"I6"}},
		{"R5", true, "a flag set on a watching device's new message that reached the server early", readWatchedAppend, []mbox{box("A"), box("B"), box("INBOX", m("m1"), m("m2"), m("m3", `\Seen`))}, nil},
		{"R5", false, "a flag nobody set on a watching device's new message", readWatchedAppend, []mbox{box("A"), box("B"), box("INBOX", m("m1"), m("m2"), m("m3", `\Seen`, `\Flagged`))}, []string{"I6"}},
		{"R6", true, "a flag that followed the copy of a message moved and copied unseen", movedAndCopied, []mbox{box("A", m("m1")), box("B", m("m1", `\Flagged`)), box("INBOX", m("m2"))}, nil},
		{"R6", false, "a flag that followed a copy the device already knew", copiedThenMoved, []mbox{box("A", m("m1")), box("B", m("m1", `\Flagged`)), box("INBOX", m("m2"))}, []string{"I6", "I6"}},
		{"R7", true, "a flag on a message copied and then expunged follows the copy", copiedThenExpunged, []mbox{box("A", m("m1", "$Work")), box("B"), box("INBOX", m("m2"))}, nil},
		{"R7", false, "a flag that went to a copy while the original stayed", copiedOnly, []mbox{box("A", m("m1", "$Work")), box("B"), box("INBOX", m("m1"), m("m2"))}, []string{"I6", "I6"}},
		{"R8", true, "a copy made after an in-flight read reached the server has it", copyDuringFlight, []mbox{box("A", m("m1", `\Seen`)), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))}, nil},
		{"R8", false, "a copy with a flag nobody set", copyDuringFlight, []mbox{box("A", m("m1", `\Flagged`)), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))}, []string{"I6"}},
		{"R9", true, "without MOVE, a \\Deleted racing the move lost on the copy", deletedRacesMove("-MOVE"), []mbox{box("A", m("m1")), box("B"), box("INBOX", m("m2"))}, nil},
		{"R9", false, "with MOVE, a \\Deleted racing the move lost", deletedRacesMove(), []mbox{box("A", m("m1")), box("B"), box("INBOX", m("m2"))}, []string{"I6"}},
		{"R10", true, "without UIDPLUS, an expunge that raced takes another message marked \\Deleted", deleteRace("-UIDPLUS"), []mbox{box("A"), box("B"), box("INBOX")}, nil},
		{"R10", false, "with UIDPLUS, an expunge that takes another message marked \\Deleted", deleteRace(), []mbox{box("A"), box("B"), box("INBOX")}, []string{"I3"}},
		{"R11", true, "without MOVE, a wiped device's half-done move leaves copy and original", wipedMove("-MOVE"), []mbox{box("A", m("m1")), box("B"), box("INBOX", m("m1", `\Deleted`), m("m2"))}, nil},
		{"R11", false, "with MOVE, a wiped device's move that leaves copy and original", wipedMove(), []mbox{box("A", m("m1")), box("B"), box("INBOX", m("m1", `\Deleted`), m("m2"))}, []string{"I4"}},
		{"R12", true, "a wiped device's half-done delete leaves the message marked \\Deleted", wipedDelete, []mbox{box("A"), box("B"), box("INBOX", m("m1", `\Deleted`), m("m2"))}, nil},
		{"R12", false, "a wiped device's half-done delete leaves another flag", wipedDelete, []mbox{box("A"), box("B"), box("INBOX", m("m1", `\Deleted`, `\Seen`), m("m2"))}, []string{"I6"}},
		{"R13", true, "a stale device's copy of a message moved away is made from where it went", staleCopy, []mbox{box("A", m("m1")), box("B", m("m1")), box("INBOX", m("m2"))}, nil},
		{"R13", false, "a stale device's copy of a message moved away made twice", staleCopy, []mbox{box("A", m("m1")), box("B", m("m1"), m("m1")), box("INBOX", m("m2"))}, []string{"I4"}},
		{"R14", true, "a new message whose mailbox the server removed is rescued to INBOX", appendToRemoved, []mbox{box("B"), box("INBOX", m("m1"), m("m2"), m("m3"))}, nil},
		{"R14", false, "a copy whose mailbox the server removed, rescued twice", copyToRemoved, []mbox{box("B"), box("INBOX", m("m1"), m("m1"), m("m1"), m("m2"))}, []string{"I4"}},
		{"R15", true, "two moves, the second into a removed mailbox: folded into one and given up", chainToRemoved, []mbox{box("A"), box("INBOX", m("m1"), m("m2"))}, nil},
		{"R15", false, "two moves, the second into a removed mailbox: lost", chainToRemoved, []mbox{box("A"), box("INBOX", m("m2"))}, []string{"I3"}},
	}
}

// unneeded are the relaxations no history found so far needs: the replay of work in flight
// before every cluster since (R2) gives the same outcomes. Candidates for removal; their
// accept entries only show the outcome is accepted.
var unneeded = map[string]bool{"R5": true, "R8": true}

func relaxEntries(accept bool) []TableEntry {
	var out []TableEntry
	for _, c := range relaxCases() {
		if c.accept == accept {
			out = append(out, Entry(c.id+": "+c.name, c))
		}
	}
	return out
}

var _ = Describe("The relaxations of the expected-state model", func() {
	DescribeTable("each accepts an outcome that only it explains",
		func(c relaxCase) {
			in := input(serverOf(c.boxes...), c.h, "phone", "laptop")
			v := check.Judge(in, nil)
			Expect(v.Results).To(BeEmpty())
			var relied []string
			for _, r := range v.Relied {
				relied = append(relied, r.ID)
			}
			if unneeded[c.id] {
				Expect(relied).NotTo(ContainElement(c.id), "%s is needed after all: take it off unneeded", c.id)
				return
			}
			Expect(relied).To(ContainElement(c.id), "the outcome does not need %s", c.id)
		},
		relaxEntries(true),
	)

	DescribeTable("each rejects what lies outside it",
		func(c relaxCase) {
			rs := check.Check(input(serverOf(c.boxes...), c.h, "phone", "laptop"))
			Expect(ids(rs)).To(Equal(c.want), "%+v", rs)
		},
		relaxEntries(false),
	)

	It("has an accept and a reject entry for every relaxation, named after its ID", func() {
		var missing []string
		for _, r := range check.Relaxations() {
			for _, accept := range []bool{true, false} {
				found := false
				for _, c := range relaxCases() {
					found = found || (c.id == r.ID && c.accept == accept && c.name != "")
				}
				if !found {
					missing = append(missing, fmt.Sprintf("%s (accept=%v)", r, accept))
				}
			}
		}
		Expect(missing).To(BeEmpty(), "relaxations without entries: %s", strings.Join(missing, ", "))
	})

	It("judge policies only for an engine that declares them; protocol relaxations always", func() {
		in := input(serverOf(box("B"), box("INBOX", m("m1"), m("m2"), m("m3"))), appendToRemoved, "phone", "laptop")
		Expect(check.Judge(in, check.NoPolicies()).Results).NotTo(BeEmpty())
		Expect(check.Judge(in, check.Policies{"rescue-to-inbox"}).Results).To(BeEmpty())
		Expect(check.Judge(in, check.Policies{"R14"}).Relied).To(ConsistOf(HaveField("ID", "R14")))
		in = input(serverOf(box("A"), box("B"), box("INBOX", m("m1"), m("m2"))), interrupted, "phone", "laptop")
		Expect(check.Judge(in, check.NoPolicies()).Results).To(BeEmpty())
	})
})
