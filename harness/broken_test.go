package harness_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

func catalogScenario(name string) *scenarios.Scenario {
	GinkgoHelper()
	s, err := harness.CatalogScenario(name)
	Expect(err).NotTo(HaveOccurred())
	return s
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
		Entry("re-uploading mail not found after a UIDVALIDITY reset breaks the quarantine (F2)",
			engine.QuirkReupload, "uidvalidity_reset_lost_mail_quarantined", "I11"),
		Entry("forgetting mail not found after a UIDVALIDITY reset breaks the quarantine (F1)",
			engine.QuirkDropOrphans, "uidvalidity_reset_lost_mail_quarantined", "I11"),
		Entry("skipping new mail already marked \\Deleted leaves devices apart (F17)",
			engine.QuirkSkipDeleted, "delete_new_mail_already_deleted", "I1"),
	)
})

// Without any `expect` line, the invariants alone catch an engine that gets the quarantine
// after a UIDVALIDITY reset wrong.
var _ = Describe("The quarantine invariant against broken engines", func() {
	const lost = `# m2 is expunged while INBOX's UIDVALIDITY is reset: the devices must quarantine it.
devices phone laptop
deliver INBOX m1 m2 m3
sync
server uidvalidity-reset INBOX
server expunge INBOX m2
phone sync
`
	DescribeTable("fails with I11 naming the device and the label",
		func(ctx SpecContext, q engine.Quirks, want string) {
			scn, err := scenarios.Parse("lost.scn", []byte(lost))
			Expect(err).NotTo(HaveOccurred())
			res := harness.RunScenario(ctx, scn, harness.Options{Seed: 1, NewDevice: harness.BrokenEngineDevice(q)})
			Expect(res.Report.Status).To(Equal(reports.Failed))
			var found []string
			for _, f := range res.Report.Failures {
				if f.Invariant == "I11" {
					found = append(found, f.Message)
					Expect(f.Labels).To(Equal([]string{"m2"}))
				}
			}
			Expect(found).To(ConsistOf(HavePrefix("phone"+want), HavePrefix("laptop"+want)))
		},
		Entry("forgotten (F1)", engine.QuirkDropOrphans, " dropped m2 without quarantining it"),
		Entry("uploaded again (F2)", engine.QuirkReupload, ": m2 is on the server again, in INBOX"),
	)

	It("passes with the correct engine", func(ctx SpecContext) {
		scn, err := scenarios.Parse("lost.scn", []byte(lost))
		Expect(err).NotTo(HaveOccurred())
		res := harness.RunScenario(ctx, scn, harness.Options{Seed: 1})
		Expect(res.Report.Failures).To(BeEmpty())
		Expect(res.Report.Status).To(Equal(reports.Passed))
	})
})

// withoutLostAnswers parses scn again without its lose-answer and crash-lose-answer rounds:
// what the crash sweep of the catalogue was before it lost answers.
func withoutLostAnswers(scn *scenarios.Scenario) *scenarios.Scenario {
	var kept []string
	for _, l := range strings.Split(string(scn.Source), "\n") {
		if !strings.Contains(l, "lose-answer=") {
			kept = append(kept, l)
		}
	}
	Expect(len(kept)).To(BeNumerically("<", strings.Count(string(scn.Source), "\n")), "%s has no lost answers", scn.Name)
	out, err := scenarios.Parse(scn.Name+".scn", []byte(strings.Join(kept, "\n")))
	Expect(err).NotTo(HaveOccurred())
	return out
}

// F5 as it happens in the field: the server stores an APPEND whose answer never arrives.
// With UIDPLUS on, a crash after N commands always comes after the APPENDUID was saved, so
// only the rounds of the catalogue's crash sweep that lose an answer catch these engines.
var _ = Describe("The crash sweep with lost answers against broken appends (F5)", func() {
	const sweep = "crash_append_no_duplicate"

	It("runs with UIDPLUS on", func() {
		for _, st := range catalogScenario(sweep).Steps {
			Expect(st.Verb).NotTo(Equal("caps"), "the sweep must not need UIDPLUS masked to catch them")
		}
	})

	DescribeTable("finds the draft uploaded twice",
		func(ctx SpecContext, q engine.Quirks) {
			opts := harness.Options{Seed: 1, NewDevice: harness.BrokenEngineDevice(q)}
			res := harness.RunScenario(ctx, catalogScenario(sweep), opts)
			Expect(res.Report.Status).To(Equal(reports.Failed))
			Expect(invariantsOf(res.Report)).To(ContainElement("I4"))

			before := harness.RunScenario(ctx, withoutLostAnswers(catalogScenario(sweep)), opts)
			Expect(before.Report.Failures).To(BeEmpty(), "crashes after N commands alone do not catch it")
		},
		Entry("searching for an APPEND in flight from one past its saved UIDNEXT", engine.QuirkSearchPastInFlight),
		Entry("sending an APPEND before its in-flight mark is committed", engine.QuirkUnmarkedAppend),
	)

	It("passes with the correct engine", func(ctx SpecContext) {
		res := harness.RunScenario(ctx, catalogScenario(sweep), harness.Options{Seed: 1})
		Expect(res.Report.Failures).To(BeEmpty())
		Expect(res.Report.Status).To(Equal(reports.Passed))
	})

	// The proxy loses the answer on the wire, so a real server acts the same: it stores the
	// draft, and the broken engine appends it again.
	It("catches them on Dovecot too, where the correct engine passes", Label("dovecot"), func(ctx SpecContext) {
		srv := startDovecot(ctx)
		target := dovecotTarget(srv, "")
		DeferCleanup(func(ctx SpecContext) { Expect(target.Close(ctx)).To(Succeed()) })
		for _, q := range []engine.Quirks{engine.QuirkSearchPastInFlight, engine.QuirkUnmarkedAppend} {
			res := harness.RunScenario(ctx, catalogScenario(sweep), harness.Options{Seed: 1, Target: target, NewDevice: harness.BrokenEngineDevice(q)})
			Expect(invariantsOf(res.Report)).To(ContainElement("I4"), "quirk %v", q)
		}
		res := harness.RunScenario(ctx, catalogScenario(sweep), harness.Options{Seed: 1, Target: target})
		Expect(res.Report.Failures).To(BeEmpty())
		Expect(res.Report.Status).To(Equal(reports.Passed))
	})
})
