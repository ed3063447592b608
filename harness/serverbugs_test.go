package harness_test

import (
	"context"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// searchAfterScan is delete_without_uidplus with a second round before the delete, so that
// the phone's connection has been told every message's flags by a full flag scan when its
// expunge searches for \Deleted: search-lies then lists a message the session knows lacks
// the flag. (A first sync learns the UIDs with SEARCH ALL, which tells no flags.)
const searchAfterScan = `# delete without UIDPLUS after a full flag scan
devices phone laptop
caps -UIDPLUS
deliver INBOX m1 m2 m3
sync
sync

server flag INBOX m3 \Deleted
phone delete INBOX m1
phone sync

expect server INBOX m3 flags \Deleted
expect server INBOX m2 flags
expect converged
`

func wireBugScenario(name string) *scenarios.Scenario {
	GinkgoHelper()
	if name == "search_after_scan" {
		s, err := scenarios.Parse("search_after_scan.scn", []byte(searchAfterScan))
		Expect(err).NotTo(HaveOccurred())
		return s
	}
	return catalogScenario(name)
}

var _ = Describe("The fake server's wire bugs", func() {
	It("are the eight classes seen in the field, and one limitation", func() {
		Expect(fakeserver.WireBugNames()).To(HaveLen(9))
		Expect(fakeserver.WireBugDoc("no-copy-within-mailbox")).To(ContainSubstring("limitation"))
	})

	Context("a server that cannot copy within one mailbox (no-copy-within-mailbox)", func() {
		const answer = "NO [CANNOT] Cannot copy messages into the mailbox they are in"
		// The catalogue scenario copies m1 into INBOX itself at line 8.
		It("skips a scenario whose server step needs it, naming the server's answer", func() {
			run, _ := harness.RunAll(context.Background(), []*scenarios.Scenario{wireBugScenario("identity_twin_in_one_folder")},
				harness.RunOptions{Options: harness.Options{Seed: 1, Target: harness.FakeTarget{Bugs: []string{"no-copy-within-mailbox"}}}, Parallel: 1})
			s := run.Scenarios[0]
			Expect(s.Status).To(Equal(reports.Skipped), "%s %v", s.Error, s.Failures)
			Expect(s.SkipReason).To(ContainSubstring("line 8:"))
			Expect(s.SkipReason).To(ContainSubstring("cannot copy messages within one mailbox"))
			Expect(s.SkipReason).To(ContainSubstring(answer))
		})

		It("skips it the same way where the server says so on the wire (remote target)", func(ctx SpecContext) {
			fs, addr := modeServer()
			Expect(fs.Apply(fakeserver.WireBug{Bug: "no-copy-within-mailbox", On: true})).To(Succeed())
			t, err := harness.NewRemoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr, Password: "pw-for-alice", RunID: "twin"})
			Expect(err).NotTo(HaveOccurred())
			res := harness.RunScenario(ctx, wireBugScenario("identity_twin_in_one_folder"), harness.Options{Seed: 1, Target: t})
			Expect(res.Report.Status).To(Equal(reports.Skipped), "%s %v", res.Report.Error, res.Report.Failures)
			Expect(res.Report.SkipReason).To(ContainSubstring(answer))
		})

		// A device's copy within one mailbox reaches the server with the device's sync: the
		// step's own, one of a concurrently block, or the settling after the last step.
		DescribeTable("skips a scenario whose device copies within a mailbox, naming the server's answer",
			func(ctx SpecContext, script string) {
				scn, err := scenarios.Parse("copy_within.scn", []byte("# A device copies a message into the mailbox it is in.\ndevices phone laptop\nmailbox Archive\ndeliver INBOX m1 m2\nsync\n\n"+script))
				Expect(err).NotTo(HaveOccurred())
				res := harness.RunScenario(ctx, scn, harness.Options{Seed: 1, Target: harness.FakeTarget{Bugs: []string{"no-copy-within-mailbox"}}})
				Expect(res.Report.Status).To(Equal(reports.Skipped), "%s %v", res.Report.Error, res.Report.Failures)
				Expect(res.Report.SkipReason).To(HavePrefix("line 8: the server refuses COPY within one mailbox (phone sent UID COPY 1 "))
				Expect(res.Report.SkipReason).To(HaveSuffix(answer + ")"))

				res = harness.RunScenario(ctx, scn, harness.Options{Seed: 1})
				Expect(res.Report.Status).To(Equal(reports.Passed), "%s %v", res.Report.Error, res.Report.Failures)
			},
			Entry("its sync", "phone move INBOX m2 Archive\nphone copy INBOX m1 INBOX\nphone sync\nexpect server INBOX m1 m1\n"),
			Entry("a sync of every device", "phone move INBOX m2 Archive\nphone copy INBOX m1 INBOX\nsync\nexpect converged\n"),
			Entry("a concurrently block", "phone move INBOX m1 Archive\nphone copy Archive m1 Archive\nconcurrently\n  phone sync\n  laptop sync\nend\n"),
			Entry("the settling", "laptop read INBOX m2\nphone copy INBOX m1 INBOX\n"),
		)

		It("skips it the same way for any device on any server, from what the device sent", func(ctx SpecContext) {
			fs, addr := modeServer()
			Expect(fs.Apply(fakeserver.WireBug{Bug: "no-copy-within-mailbox", On: true})).To(Succeed())
			t, err := harness.NewRemoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr, Password: "pw-for-alice", RunID: "within"})
			Expect(err).NotTo(HaveOccurred())
			scn, err := scenarios.Parse("copy_within.scn", []byte("devices phone\ndeliver INBOX m1\nsync\nphone copy INBOX m1 INBOX\nphone sync\n"))
			Expect(err).NotTo(HaveOccurred())
			res := harness.RunScenario(ctx, scn, harness.Options{Seed: 1, Target: t})
			Expect(res.Report.Status).To(Equal(reports.Skipped), "%s %v", res.Report.Error, res.Report.Failures)
			Expect(res.Report.SkipReason).To(ContainSubstring("line 4: the server refuses COPY within one mailbox"))
			Expect(res.Report.SkipReason).To(ContainSubstring(answer))
		})

		It("is no excuse for a copy between two mailboxes, nor for another refusal", func() {
			scn, err := scenarios.Parse("copy_away.scn", []byte("devices phone\ndeliver INBOX m1\nserver create Archive\nserver copy INBOX m1 Archive\nsync\nexpect converged\n"))
			Expect(err).NotTo(HaveOccurred())
			run, _ := harness.RunAll(context.Background(), []*scenarios.Scenario{scn},
				harness.RunOptions{Options: harness.Options{Seed: 1, Target: harness.FakeTarget{Bugs: []string{"no-copy-within-mailbox"}}}, Parallel: 1})
			Expect(run.Scenarios[0].Status).To(Equal(reports.Passed), "%s %v", run.Scenarios[0].Error, run.Scenarios[0].Failures)

			// Another refusal of a COPY between two mailboxes is an error, as before.
			fs, addr := modeServer()
			Expect(fs.Apply(fakeserver.WireBug{Bug: "no-copy-within-mailbox", On: true})).To(Succeed())
			Expect(fs.Apply(fakeserver.Fail{N: 1, Command: "COPY", Response: "NO [CANNOT] Archive is full"})).To(Succeed())
			t, err := harness.NewRemoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr, Password: "pw-for-alice", RunID: "away"})
			Expect(err).NotTo(HaveOccurred())
			res := harness.RunScenario(context.Background(), scn, harness.Options{Seed: 1, Target: t})
			Expect(res.Report.Status).To(Equal(reports.Errored), res.Report.SkipReason)
			Expect(res.Report.Error).To(ContainSubstring("Archive is full"))
		})
	})

	DescribeTable("each come out as its server finding, and the scenario as the server's",
		func(bug, scenario, finding string) {
			run, _ := harness.RunAll(context.Background(), []*scenarios.Scenario{wireBugScenario(scenario)},
				harness.RunOptions{Options: harness.Options{Seed: 1, Target: harness.FakeTarget{Bugs: []string{bug}}}, Parallel: 1})
			s := run.Scenarios[0]
			var ids []string
			for _, f := range s.Failures {
				if f.Server {
					ids = append(ids, f.Invariant)
				}
			}
			Expect(ids).To(ContainElement(finding), "%s: %v", s.Status, s.Failures)
			Expect(s.Status).To(Equal(reports.ServerFinding), s.Attribution)
		},
		Entry(nil, "malformed-copyuid", "move_first_move_wins", "S5"),
		Entry(nil, "seq-zero", "flags_concurrent_read", "S6"),
		Entry(nil, "lowercase-keywords", "flags_custom_keywords", "S12"),
		Entry(nil, "double-expunge", "move_flag_after_move", "S8"),
		Entry(nil, "serverbug-on-rename", "folder_recreated_under_old_name", "S9"),
		Entry(nil, "serverbug-on-rename", "folder_swap_names", "S9"),
		// The divergence starts with local work (both devices create Projects offline):
		// the finding in the exchange of the sync that carried it counts as before it.
		Entry(nil, "create-exists-without-code", "folder_create_same_name", "S11"),
	)

	It("are judged the same way by RunScenario, which go test's catalogue uses", func(ctx SpecContext) {
		// S8 for a double EXPUNGE needs the proxy's clock: untimed, every other
		// connection's command would overlap it.
		res := harness.RunScenario(ctx, wireBugScenario("move_flag_after_move"),
			harness.Options{Seed: 1, Target: harness.FakeTarget{Bugs: []string{"double-expunge"}}})
		Expect(res.Report.Status).To(Equal(reports.ServerFinding), "%v", res.Report.Failures)
		Expect(res.Report.Failures).To(ContainElement(HaveField("Invariant", "S8")))
	})

	// The engine on such servers: it stays safe and settles, so that the server findings
	// are all that is left.
	DescribeTable("leave the engine settled, with nothing but the finding to report",
		func(bug, scenario string, seed int64, finding, store string) {
			run, _ := harness.RunAll(context.Background(), []*scenarios.Scenario{wireBugScenario(scenario)},
				harness.RunOptions{Options: harness.Options{Seed: seed, Store: store, Target: harness.FakeTarget{Bugs: []string{bug}}}, Parallel: 1})
			s := run.Scenarios[0]
			var ids []string
			for _, f := range s.Failures {
				if !slices.Contains(ids, f.Invariant) {
					ids = append(ids, f.Invariant)
				}
			}
			Expect(ids).To(ConsistOf(finding), "%s: %v", s.Status, s.Failures)
			Expect(s.Status).To(Equal(reports.ServerFinding))
		},
		// Seed 2 has the laptop flag m1 after the phone expunged it: the server refuses
		// the UID STORE, and the scan, not a retry, settles it (expunge beats flag).
		Entry(nil, "no-on-vanished-store", "delete_beats_flag", int64(2), "S10", "memory"),
		Entry(nil, "no-on-vanished-store", "delete_beats_flag", int64(2), "S10", "disk"),
		// Without UIDPLUS the engine's expunge clears \Deleted on the other messages
		// SEARCH DELETED lists and sets it back: it fetches their FLAGS first, so the
		// innocent message the server lists is left alone (no I6), and the FLAGS it
		// fetched show the lie (S13).
		Entry(nil, "search-lies", "search_after_scan", int64(1), "S13", "memory"),
		Entry(nil, "search-lies", "search_after_scan", int64(1), "S13", "disk"),
		// The server lower-cases $Label1: the engine compares keywords without case and
		// keeps the user's spelling, the checker compares them without case too, so
		// neither a resend (I8) nor a divergence (I1) is reported, only the renamed
		// keyword (S12).
		Entry(nil, "lowercase-keywords", "flags_custom_keywords", int64(1), "S12", "memory"),
		Entry(nil, "lowercase-keywords", "flags_custom_keywords", int64(1), "S12", "disk"),
		// Both devices create Projects: the second CREATE gets NO without
		// [ALREADYEXISTS], LIST shows the mailbox, and the engine carries on.
		Entry(nil, "create-exists-without-code", "folder_create_same_name", int64(1), "S11", "memory"),
		Entry(nil, "create-exists-without-code", "folder_create_same_name", int64(1), "S11", "disk"),
	)

	It("leave a scenario the engine's when it fails on the correct server too", func() {
		run, _ := harness.RunAll(context.Background(), []*scenarios.Scenario{wireBugScenario("delete_keeps_others_deleted")},
			harness.RunOptions{Options: harness.Options{Seed: 1, Target: harness.FakeTarget{Bugs: []string{"seq-zero"}},
				NewDevice: harness.BrokenEngineDevice(harness.Quirks["plain-expunge"])}, Parallel: 1})
		s := run.Scenarios[0]
		Expect(s.Status).To(Equal(reports.Failed), s.Attribution)
		Expect(s.Attribution).To(ContainSubstring("on the fake server too"))
		var server []string
		for _, f := range s.Failures {
			if f.Server {
				server = append(server, f.Invariant)
			}
		}
		Expect(server).To(ContainElement("S6"))
	})
})
