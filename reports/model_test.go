package reports_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

var _ = Describe("A run's tally", func() {
	DescribeTable("counts scenarios by status and is OK only without failures and errors",
		func(statuses []reports.Status, want reports.Counts, ok bool) {
			r := &reports.Run{}
			for _, st := range statuses {
				r.Scenarios = append(r.Scenarios, &reports.Scenario{Status: st})
			}
			Expect(r.Counts()).To(Equal(want))
			Expect(r.OK()).To(Equal(ok))
		},
		Entry("an empty run is OK", nil, reports.Counts{}, true),
		Entry("all passed", []reports.Status{reports.Passed, reports.Passed},
			reports.Counts{Passed: 2, Total: 2}, true),
		Entry("skipped scenarios do not fail a run", []reports.Status{reports.Passed, reports.Skipped},
			reports.Counts{Passed: 1, Skipped: 1, Total: 2}, true),
		Entry("one failure fails the run", []reports.Status{reports.Passed, reports.Failed},
			reports.Counts{Passed: 1, Failed: 1, Total: 2}, false),
		Entry("one error fails the run", []reports.Status{reports.Errored, reports.Skipped},
			reports.Counts{Errored: 1, Skipped: 1, Total: 2}, false),
		Entry("an unknown status counts as an error, never as a pass", []reports.Status{"", "ok"},
			reports.Counts{Errored: 2, Total: 2}, false),
	)

	It("counts a nil scenario as an error", func() {
		r := &reports.Run{Scenarios: []*reports.Scenario{nil}}
		Expect(r.Counts()).To(Equal(reports.Counts{Errored: 1, Total: 1}))
		Expect(r.OK()).To(BeFalse())
	})
})

var _ = Describe("Validating a run", func() {
	It("accepts the sample run", func() {
		Expect(sampleRun().Validate()).To(Succeed())
	})

	DescribeTable("refuses what no writer can represent faithfully",
		func(breakIt func(r *reports.Run), want string) {
			r := sampleRun()
			breakIt(r)
			Expect(r.Validate()).To(MatchError(ContainSubstring(want)))
		},
		Entry("a nil scenario", func(r *reports.Run) { r.Scenarios[1] = nil }, "scenario 1 is nil"),
		Entry("an unknown status", func(r *reports.Run) { r.Scenarios[0].Status = "ok" }, `unknown status "ok"`),
		Entry("a transcript line without direction", func(r *reports.Run) { r.Scenarios[1].Transcript[0].Dir = "" }, `neither "C" nor "S"`),
		Entry("a negative scenario duration", func(r *reports.Run) { r.Scenarios[0].Duration = -1 }, "negative"),
		Entry("a negative run duration", func(r *reports.Run) { r.Duration = -1 }, "negative"),
		Entry("a step with a negative start", func(r *reports.Run) { r.Scenarios[1].Steps[0].Start = -1 }, "negative time"),
	)
})
