package harness

import (
	"fmt"
	"math"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
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

// catalogScenario is the catalogue scenario name.
func catalogScenario(name string) *scenarios.Scenario {
	GinkgoHelper()
	s, err := CatalogScenario(name)
	Expect(err).NotTo(HaveOccurred())
	return s
}

// serverFailures are the report's failures that are server findings, as results.
func serverFailures(rep *reports.Scenario) []check.Result {
	var out []check.Result
	for _, f := range rep.Failures {
		if f.Server {
			out = append(out, check.Result{Invariant: f.Invariant, Message: f.Message, Devices: f.Devices})
		}
	}
	return out
}

// firstFinding is the earliest of findings.
func firstFinding(findings []check.Result) check.Result {
	first := findings[0]
	for _, f := range findings[1:] {
		if f.At < first.At {
			first = f
		}
	}
	return first
}

var _ = Describe("The server invariants on the wire", func() {
	// One check, on the proxy's clock, gives both the report's server failures and the
	// findings the attribution weighs: a second check (untimed, or with other options)
	// would name another finding, or the same at another time.
	DescribeTable("are judged once, for the verdict and the attribution alike",
		func(ctx SpecContext, bug, name string, status reports.Status, attribution string) {
			res := RunScenario(ctx, catalogScenario(name), Options{Seed: 1, Target: FakeTarget{Bugs: []string{bug}}})
			rep := res.Report
			Expect(res.ServerFindings).NotTo(BeEmpty(), "%s %v", rep.Status, rep.Failures)
			var want []check.Result
			for _, f := range res.ServerFindings {
				Expect(f.At).To(BeNumerically(">", 0), "%s has no time: judged without the proxy's clock", f.Invariant)
				want = append(want, check.Result{Invariant: f.Invariant, Message: f.Message, Devices: f.Devices})
			}
			Expect(serverFailures(rep)).To(Equal(want))
			Expect(rep.Status).To(Equal(status), rep.Attribution)
			first := firstFinding(res.ServerFindings)
			Expect(rep.Attribution).To(ContainSubstring(fmt.Sprintf(attribution, first.Invariant, seconds(first.At))))
		},
		// The refused STORE comes after the crashes made the states diverge: its time
		// alone leaves the scenario the engine's.
		Entry("a finding after the divergence", "no-on-vanished-store", "crash_both_devices", reports.Failed,
			"its first finding (%s at %s) came after the states diverged"),
		// S8 needs the times: untimed, every other connection's command overlaps it.
		Entry("a finding only the proxy's clock shows", "double-expunge", "move_flag_after_move", reports.ServerFinding,
			"every failure is a server finding%.0s%.0s"),
		Entry("a finding before the divergence, proved on the correct server", "serverbug-on-rename", "folder_recreated_under_old_name",
			reports.ServerFinding, "%s at %s came before the states diverged"),
	)

	// The second sync's flag scan is the first UID FETCH (the first sync learns the UIDs
	// with UID SEARCH ALL): seq-zero names message 0 there. Then the harness's own rename
	// onto an existing mailbox ends the scenario before its verdict.
	It("are judged for a scenario that ended in an error, which has no verdict", func(ctx SpecContext) {
		scn, err := scenarios.Parse("seq_zero_then_error.scn", []byte("devices phone\nmailbox Archive\nmailbox Work\ndeliver INBOX m1\nsync\nsync\nserver rename Archive Work\n"))
		Expect(err).NotTo(HaveOccurred())
		res := RunScenario(ctx, scn, Options{Seed: 1, Target: FakeTarget{Bugs: []string{"seq-zero"}}})
		Expect(res.Report.Status).To(Equal(reports.Errored), "%v", res.Report.Failures)
		Expect(res.ServerFindings).To(ContainElement(HaveField("Invariant", "S6")))
		Expect(serverFailures(res.Report)).To(ContainElement(HaveField("Invariant", "S6")))
		Expect(res.Report.Attribution).To(ContainSubstring("on the fake server too"))
	})
})
