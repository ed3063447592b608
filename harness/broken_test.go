package harness_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

func catalogScenario(name string) *scenarios.Scenario {
	list, err := harness.Catalog()
	Expect(err).NotTo(HaveOccurred())
	for _, s := range list {
		if s.Name == name {
			return s
		}
	}
	Fail("no catalogue scenario " + name)
	return nil
}

func invariantsOf(s *reports.Scenario) []string {
	var out []string
	for _, f := range s.Failures {
		out = append(out, f.Invariant)
	}
	return out
}

// The checker must catch real engine mistakes: each deliberately broken engine fails a
// catalogue scenario with the invariant that names its mistake. The same scenario passes
// with the correct engine (the catalogue specs show that).
var _ = Describe("The catalogue against deliberately broken engines", func() {
	DescribeTable("reports the broken guarantee",
		func(ctx SpecContext, q engine.Quirks, scenario, invariant string) {
			res := harness.RunScenario(ctx, catalogScenario(scenario), harness.Options{Seed: 1, NewDevice: harness.BrokenEngineDevice(q)})
			Expect(res.Report.Status).To(Equal(reports.Failed))
			Expect(invariantsOf(res.Report)).To(ContainElement(invariant))
		},
		Entry("pairing by UID across a UIDVALIDITY reset breaks UID integrity (F1)",
			engine.QuirkPairByUID, "uidvalidity_reset_no_duplicates", "I2"),
		Entry("storing whole flag sets loses a concurrent flag (F11)",
			engine.QuirkWholeFlagSet, "flags_merge_different_flags", "I6"),
		Entry("a plain EXPUNGE removes another client's \\Deleted mail (F10)",
			engine.QuirkPlainExpunge, "delete_keeps_others_deleted", "I3"),
		Entry("saving UIDNEXT before the data skips mail for ever (F6)",
			engine.QuirkWatermarkFirst, "crash_during_download", "I10"),
		Entry("forgetting the journal on a crash loses offline changes",
			engine.QuirkForgetJournalOnCrash, "crash_local_changes_survive", "I6"),
		Entry("re-uploading mail that disappeared from the server resurrects it (F7)",
			engine.QuirkReupload, "delete_stale_device", "I5"),
	)
})
