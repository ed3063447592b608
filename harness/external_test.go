package harness_test

import (
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients/external"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// externalProfile returns a built-in engine profile, or skips the spec when the engine is
// not installed (.ci/run installs both).
func externalProfile(name string) *external.Profile {
	p, err := external.LoadBuiltin(name)
	Expect(err).NotTo(HaveOccurred())
	if _, err := exec.LookPath(p.Binary); err != nil {
		Skip(name + " is not installed (Debian: " + map[string]string{"mbsync": "isync", "offlineimap": "offlineimap3"}[name] + ")")
	}
	return p
}

// fakePassword is the fake server's password (harness/target_fake.go).
const fakePassword = "wonderland"

func externalOptions(p *external.Profile) harness.Options {
	return harness.Options{Seed: 1, NewDevice: harness.ExternalDevice(p), EngineName: p.Name, KeepArtifacts: true}
}

var _ = Describe("External engines through engine profiles", Label("external"), func() {
	DescribeTable("run catalogue scenarios end to end with the same checker",
		func(ctx SpecContext, engine string, want map[string]reports.Status) {
			p := externalProfile(engine)
			var list []*scenarios.Scenario
			for name := range want {
				list = append(list, catalogScenario(name))
			}
			_, results := harness.RunAllSkipping(ctx, list, harness.RunOptions{Options: externalOptions(p), Parallel: 4}, harness.ExternalSkip(p))
			Expect(results).To(HaveLen(len(want)))
			for _, res := range results {
				rep := res.Report
				var why []string
				for _, f := range rep.Failures {
					why = append(why, f.Invariant+": "+f.Message)
				}
				Expect(rep.Status).To(Equal(want[rep.Name]), "%s: %s%s %v", rep.Name, rep.SkipReason, rep.Error, why)
			}
		},
		Entry("mbsync", "mbsync", map[string]reports.Status{
			"flags_concurrent_read":   reports.Passed,
			"delete_beats_flag":       reports.Passed,
			"flags_unread_after_read": reports.Passed,
			"crash_during_download":   reports.Passed,
			// mbsync expunges every \Deleted message of a folder, other clients' too (F10).
			"delete_keeps_others_deleted": reports.Failed,
			// mbsync keeps no keywords: skipped, not failed.
			"flags_custom_keywords": reports.Skipped,
		}),
	)

	It("says which unclaimed feature a skipped scenario needs", func() {
		p, err := external.LoadBuiltin("mbsync")
		Expect(err).NotTo(HaveOccurred())
		skip := harness.ExternalSkip(p)
		Expect(skip(catalogScenario("flags_custom_keywords"))).To(Equal("engine mbsync does not claim the flag $Label1 (line 6)"))
		Expect(skip(catalogScenario("folder_rename_while_offline"))).To(HavePrefix("engine mbsync does not claim folder renaming (line "))
		Expect(skip(catalogScenario("push_new_mail"))).To(HavePrefix("engine mbsync does not claim push (IDLE)"))
		Expect(skip(catalogScenario("flags_concurrent_read"))).To(BeEmpty())
	})

	It("reports the checks that need an engine's state as not applicable, never as passed", func(ctx SpecContext) {
		p := externalProfile("mbsync")
		_, results := harness.RunAllSkipping(ctx, []*scenarios.Scenario{catalogScenario("flags_concurrent_read")},
			harness.RunOptions{Options: externalOptions(p)}, harness.ExternalSkip(p))
		Expect(results).To(HaveLen(1))
		Expect(results[0].Report.Status).To(Equal(reports.Passed))
		Expect(results[0].Report.NotApplicable).To(Equal([]string{"I2", "I9", "I10"}))
	})

	It("reports them as not applicable on every path, and I11 too where a UIDVALIDITY change requires a quarantine", func(ctx SpecContext) {
		p := externalProfile("mbsync")
		opts := externalOptions(p)
		// RunScenario, as explore calls it, and RunAll without skips.
		res := harness.RunScenario(ctx, catalogScenario("flags_concurrent_read"), opts)
		Expect(res.Report.Status).To(Equal(reports.Passed))
		Expect(res.Report.NotApplicable).To(Equal([]string{"I2", "I9", "I10"}))
		_, results := harness.RunAll(ctx, []*scenarios.Scenario{catalogScenario("delete_beats_flag")}, harness.RunOptions{Options: opts})
		Expect(results[0].Report.NotApplicable).To(Equal([]string{"I2", "I9", "I10"}))

		scn, err := scenarios.Parse("reset.scn", []byte(`# reset
devices phone laptop
deliver INBOX m1 m2 m3
sync
server uidvalidity-reset INBOX
server expunge INBOX m2
sync
`))
		Expect(err).NotTo(HaveOccurred())
		res = harness.RunScenario(ctx, scn, opts)
		// mbsync refuses the changed folder (its expectations' F1): failed, yet I11 is
		// not judged, neither passed nor failed.
		Expect(res.Report.Status).To(Equal(reports.Failed))
		Expect(res.Report.NotApplicable).To(ConsistOf("I2", "I9", "I10", "I11"))
		for _, f := range res.Report.Failures {
			Expect(f.Invariant).NotTo(BeElementOf("I2", "I9", "I10", "I11"))
		}

		// The syncharness engine shows its state: everything is judged.
		res = harness.RunScenario(ctx, scn, harness.Options{Seed: 1})
		Expect(res.Report.Status).To(Equal(reports.Passed))
		Expect(res.Report.NotApplicable).To(BeEmpty())
	})

	It("kills the engine with SIGKILL where the proxy cuts its connection, and it recovers on the next run", func(ctx SpecContext) {
		p := externalProfile("mbsync")
		scn, err := scenarios.Parse("crash.scn", []byte(`# crash
devices phone laptop
mailbox Archive
deliver INBOX m1 m2 m3
sync
phone move INBOX m1 m2 Archive
phone read INBOX m3
phone sync crash-after=6
sync
expect converged
expect server Archive m1 m2
`))
		Expect(err).NotTo(HaveOccurred())
		opts := externalOptions(p)
		opts.KeepArtifacts = true
		res := harness.RunScenario(ctx, scn, opts)
		Expect(res.Report.Error).To(BeEmpty())
		log := string(res.Artifacts["engine-phone.log"])
		Expect(log).To(ContainSubstring("connection cut after"))
		Expect(log).To(ContainSubstring("killed (SIGKILL) where the connection was cut\n-- signal: killed"),
			"the engine died of the signal, it did not exit on its own after the cut")
		Expect(log).NotTo(ContainSubstring("resumed after the cut"))
		Expect(strings.Count(log, "killed (SIGKILL)")).To(Equal(1))
	})

	It("never puts the password on a command line, in a transcript or in a report", func(ctx SpecContext) {
		p := externalProfile("mbsync")
		scn := catalogScenario("delete_keeps_others_deleted") // fails: every artifact is kept
		res := harness.RunScenario(ctx, scn, externalOptions(p))
		Expect(res.Report.Status).To(Equal(reports.Failed))
		Expect(res.Artifacts).To(HaveKey("engine-phone.log"))
		Expect(res.Artifacts).To(HaveKey("engine-phone-mbsyncrc"))
		Expect(string(res.Artifacts["engine-phone.log"])).To(ContainSubstring("$ "+"/"), "the command line is in the log")
		for name, b := range res.Artifacts {
			Expect(string(b)).NotTo(ContainSubstring(fakePassword), name)
		}
		var buf strings.Builder
		Expect(reports.WriteJSON(&buf, &reports.Run{Scenarios: []*reports.Scenario{res.Report}})).To(Succeed())
		Expect(buf.String()).NotTo(ContainSubstring(fakePassword))
	})
})
