package harness_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
)

// Dovecot 2.3.19 corrupts a session's view of a folder re-created under the name of one
// that another session had selected, when the two folders' indexes were made in different
// seconds. folder_recreated_while_selected makes that so (see its comments), and the bug
// must then strike every run, and come out as the server's finding, never the engine's.
var _ = Describe("Dovecot's rename bug", Label("dovecot"), func() {
	DescribeTable("strikes folder_recreated_while_selected every time, as a server finding",
		func(ctx SpecContext, store string) {
			srv := startDovecot(ctx)
			if !strings.Contains(srv.LogTail(), "Dovecot v2.3.19") {
				Skip("the bug is Dovecot 2.3.19's; this is another version:\n" + srv.LogTail())
			}
			target := dovecotTarget(srv, "")
			Expect(target.Check(ctx)).To(Succeed())
			DeferCleanup(target.Close)
			scn := wireBugScenario("folder_recreated_while_selected")
			for seed := int64(1); seed <= 3; seed++ {
				res := harness.RunScenario(ctx, scn, harness.Options{Seed: seed, Store: store, Target: target})
				rep := res.Report
				Expect(rep.Status).To(Equal(reports.ServerFinding), "seed %d: %s %s %v", seed, rep.Error, rep.Attribution, rep.Failures)
				Expect(res.ServerFindings).To(ContainElement(And(HaveField("Invariant", "S9"),
					HaveField("Table.Rows", ContainElement(ContainElement(ContainSubstring("NO [SERVERBUG]")))))), "seed %d", seed)
			}
			Expect(srv.LogTail()).To(ContainSubstring("duplicate transaction log sequence"))
		},
		Entry("memory store", "memory"),
		Entry("disk store", "disk"),
	)
})
