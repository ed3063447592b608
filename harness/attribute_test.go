package harness

import (
	"math"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

// ms is a duration in milliseconds.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

var _ = Describe("The divergence a server finding must precede", func() {
	create := []reports.Step{
		{Line: 4, Text: "deliver INBOX m1 m2 m3", Start: ms(2)},
		{Line: 5, Text: "sync", Start: ms(3), Duration: ms(10)},
		{Line: 7, Text: "phone create Projects", Actor: "phone", Start: ms(14)},
		{Line: 8, Text: "phone move INBOX m1 Projects", Actor: "phone", Start: ms(15)},
		{Line: 11, Text: "sync", Start: ms(18), Duration: ms(12)},
		{Line: 13, Text: "expect converged", Start: ms(31), Duration: ms(60)},
	}
	swap := []reports.Step{
		{Line: 20, Text: "sync", Start: ms(6), Duration: ms(18)},
		{Line: 22, Text: "laptop flag Work w1 \\Flagged", Actor: "laptop", Start: ms(25)},
		{Line: 23, Text: "server rename Work Tmp", Actor: "server", Start: ms(26)},
		{Line: 26, Text: "sync", Start: ms(29), Duration: ms(21)},
		{Line: 28, Text: "expect converged", Start: ms(51), Duration: ms(98)},
		{Line: 29, Text: "expect mailboxes Archive INBOX Work", Start: ms(150)},
	}
	DescribeTable("ends with the sync that made it final",
		func(steps []reports.Step, diverged int, labels []string, end time.Duration, from int) {
			rep := &reports.Scenario{Steps: steps, DivergedAt: diverged,
				Failures: []reports.Failure{{Invariant: "I1", Labels: labels}, {Invariant: "S11", Labels: []string{"m3"}, Server: true}}}
			gotEnd, gotFrom := divergenceEnd(rep)
			Expect(gotFrom).To(Equal(from))
			Expect(gotEnd).To(Equal(end))
		},
		Entry("unknown: any time", create, 0, nil, time.Duration(math.MaxInt64), 0),
		Entry("a cell a delivery set, that a device's later step was to change: the sync carrying that step",
			create, 4, []string{"m1"}, ms(30), 8),
		Entry("no later step names a failing message: the first sync from the line",
			create, 4, []string{"m3"}, ms(13), 4),
		Entry("a sync of every device in turn: the next sync (here the settling of expect converged)",
			swap, 26, []string{"a1"}, ms(149), 26),
		Entry("a device's own step: its sync", swap, 22, []string{"zz"}, ms(50), 22),
	)
})
