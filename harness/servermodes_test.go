package harness_test

import (
	"context"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/fakeserver"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// modeServer starts an in-process fake server with user alice and the given server modes,
// for the remote target.
func modeServer(modes ...string) (*fakeserver.Server, string) {
	GinkgoHelper()
	fs := fakeserver.New(fakeserver.Options{Seed: 1})
	DeferCleanup(fs.Close)
	Expect(fs.AddUser("alice", "pw-for-alice")).To(Succeed())
	for _, s := range modes {
		m, err := fakeserver.ParseMode(s)
		Expect(err).NotTo(HaveOccurred())
		m.User = "alice"
		Expect(fs.Apply(m)).To(Succeed())
	}
	addr, err := fs.Listen("127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	return fs, addr.String()
}

// listAll lists every mailbox of alice's account, read directly.
func listAll(addr string) []string {
	GinkgoHelper()
	c, err := imapclient.DialInsecure(addr, nil)
	Expect(err).NotTo(HaveOccurred())
	defer c.Close()
	Expect(c.Login("alice", "pw-for-alice").Wait()).To(Succeed())
	list, err := c.List("", "*", nil).Collect()
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, l := range list {
		out = append(out, l.Mailbox)
	}
	return out
}

// specialUseScenarios are the catalogue scenarios that declare a special-use mailbox.
func specialUseScenarios() []string {
	GinkgoHelper()
	list, err := harness.Catalog()
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, s := range list {
		for _, st := range s.Steps {
			if st.Verb == "mailbox" && st.SpecialUse != "" {
				out = append(out, s.Name)
				break
			}
		}
	}
	return out
}

var _ = Describe("A server that gives special uses to top-level folders only", func() {
	It("gets the harness's special-use emulation, and the catalogue's special-use scenarios pass and leave nothing behind", func(ctx SpecContext) {
		_, addr := modeServer("specialuse-toplevel")
		names := specialUseScenarios()
		Expect(len(names)).To(BeNumerically(">=", 14))
		t, err := harness.NewRemoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr, Password: "pw-for-alice", RunID: "su"})
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Check(ctx)).To(Succeed())
		list, err := harness.Catalog()
		Expect(err).NotTo(HaveOccurred())
		want := map[string]bool{}
		for _, n := range names {
			want[n] = true
		}
		kept := list[:0:0]
		for _, s := range list {
			if want[s.Name] {
				kept = append(kept, s)
			}
		}
		run, _ := harness.RunAll(ctx, kept, harness.RunOptions{Options: harness.Options{Seed: 1, Target: t}, Parallel: 2})
		passed := 0
		for _, s := range run.Scenarios {
			switch s.Status {
			case reports.Passed:
				passed++
			case reports.Skipped:
				Expect(s.SkipReason).To(ContainSubstring("only the fake server"), s.Name)
			default:
				var out strings.Builder
				Expect(reports.WriteScenarioText(&out, s, reports.TextOptions{Verbose: true})).To(Succeed())
				Fail(out.String())
			}
		}
		Expect(passed).To(BeNumerically(">=", 10))
		Expect(t.Close(ctx)).To(Succeed())
		Expect(listAll(addr)).To(ConsistOf("INBOX"))
	})

	It("removes a run folder holding a special use: SETMETADATA … NIL, then DELETE", func(ctx SpecContext) {
		fs, addr := modeServer("specialuse-toplevel")
		t, err := harness.NewRemoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr, Password: "pw-for-alice", RunID: "top"})
		Expect(err).NotTo(HaveOccurred())
		s, err := t.Open(ctx, harness.ServerConfig{Scenario: "scn"})
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Do(ctx, harness.ServerOp{Kind: "create", Mailbox: "Sent", SpecialUse: `\Sent`})).To(Succeed())
		Expect(listAll(addr)).To(ContainElement("syncharness-top/scn/Sent"))
		// Another client gave the run folder itself a special use, as the server allows
		// at the top level only: the harness must still remove it.
		Expect(fs.Apply(fakeserver.CreateMailbox{User: "alice", Mailbox: "Trashy", SpecialUse: []string{`\Trash`}})).To(Succeed())
		Expect(fs.Apply(fakeserver.RenameMailbox{User: "alice", Old: "Trashy", New: "syncharness-top/scn/Trashy"})).To(Succeed())
		Expect(s.Close()).To(Succeed())
		Expect(t.Close(context.Background())).To(Succeed())
		Expect(listAll(addr)).To(ConsistOf("INBOX"))
	})
})

// fakeAdmin performs admin faults on an in-process fake server, as a profile would.
type fakeAdmin struct {
	fs   *fakeserver.Server
	kind string // the fault it really makes
}

func (fakeAdmin) Name() string { return "test" }

func (a fakeAdmin) Fault(_ context.Context, f harness.AdminFault) error {
	switch a.kind {
	case "uidvalidity-bump":
		return a.fs.Apply(fakeserver.UIDValidityBump{User: f.User, Mailbox: f.Mailbox})
	case "deliver":
		return a.fs.Apply(fakeserver.Deliver{User: f.User, Mailbox: f.Mailbox, Body: []byte("Subject: x\r\n\r\nx\r\n")})
	}
	return nil
}

var _ = Describe("Admin profiles", func() {
	DescribeTable("check their own work with STATUS before and after, and fail the step with a clear error when it did not happen",
		func(ctx SpecContext, admin func(*fakeserver.Server) harness.Admin, want string) {
			fs, addr := modeServer()
			t, err := harness.NewRemoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr, Password: "pw-for-alice",
				RunID: "adm", Admin: admin(fs)})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(func(ctx context.Context) { Expect(t.Close(ctx)).To(Succeed()) })
			s, err := t.Open(ctx, harness.ServerConfig{Scenario: "bump"})
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Close)
			Expect(s.Do(ctx, harness.ServerOp{Kind: "deliver", Mailbox: "INBOX", Messages: []harness.ServerMessage{{Label: "m1", Body: []byte("Subject: m1\r\n\r\nm1\r\n")}}})).To(Succeed())
			err = s.Do(ctx, harness.ServerOp{Kind: "uidvalidity-bump", Mailbox: "INBOX"})
			if want == "" {
				Expect(err).NotTo(HaveOccurred())
				return
			}
			Expect(err).To(MatchError(ContainSubstring(want)))
		},
		Entry("a generic command that does nothing", func(*fakeserver.Server) harness.Admin {
			return harness.GenericAdmin{Commands: map[string]string{"uidvalidity-bump": "true"}}
		}, `admin generic: uidvalidity-bump of "INBOX": the command succeeded but the server still shows UIDVALIDITY`),
		Entry("a command that changes the mail instead", func(fs *fakeserver.Server) harness.Admin { return fakeAdmin{fs: fs, kind: "deliver"} },
			`still shows UIDVALIDITY`),
		Entry("a command that bumps", func(fs *fakeserver.Server) harness.Admin { return fakeAdmin{fs: fs, kind: "uidvalidity-bump"} }, ""),
	)

	It("make a bump scenario error, not pass, when the generic command does nothing", func(ctx SpecContext) {
		_, addr := modeServer()
		t, err := harness.NewRemoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr, Password: "pw-for-alice", RunID: "admscn",
			Admin: harness.GenericAdmin{Commands: map[string]string{"uidvalidity-bump": "true"}}})
		Expect(err).NotTo(HaveOccurred())
		res := harness.RunScenario(ctx, scenario("bump", "# A bump.\ndevices phone\ndeliver INBOX m1\nsync\nserver uidvalidity-bump INBOX\nsync\nexpect converged\n"),
			harness.Options{Seed: 1, Target: t})
		Expect(res.Report.Status).To(Equal(reports.Errored))
		Expect(res.Report.Error).To(ContainSubstring("did not change anything"))
		Expect(t.Close(ctx)).To(Succeed())
	})
})

var _ = Describe("A server that takes UIDVALIDITY from the clock and keeps it on RENAME", func() {
	It("is the server's finding when folders swap names, seen by the harness's own reads (S3), not the engine's failure", func(ctx SpecContext) {
		res := harness.RunScenario(ctx, catalogScenario("folder_swap_names"),
			harness.Options{Seed: 1, Target: harness.FakeTarget{Modes: []string{"uidvalidity-clock"}}})
		Expect(res.Report.Status).To(Equal(reports.ServerFinding), "%+v", res.Report.Failures)
		var s3 []reports.Failure
		for _, f := range res.Report.Failures {
			if f.Server && f.Invariant == "S3" {
				s3 = append(s3, f)
			}
		}
		Expect(s3).NotTo(BeEmpty())
		Expect(s3[0].Message).To(MatchRegexp(`UID \d in Work \(UIDVALIDITY \d+\) names two messages: Message-ID <w\d\.`))
		Expect(s3[0].Devices).To(Equal([]string{check.ReadsDevice}))
		Expect(res.Report.Attribution).To(ContainSubstring("pass on the fake server"))
	})
})

var _ = Describe("MAILBOXID (RFC 8474) in the engine", func() {
	engineFailures := func(modes ...string) []string {
		GinkgoHelper()
		res := harness.RunScenario(context.Background(), catalogScenario("folder_swap_names"),
			harness.Options{Seed: 1, Target: harness.FakeTarget{Modes: modes}})
		var out []string
		for _, f := range res.Report.Failures {
			if !f.Server {
				out = append(out, f.Invariant)
			}
		}
		return out
	}

	It("tells two folders that swapped names apart by their MAILBOXID, even with one UIDVALIDITY: no flag lands on the other folder's mail", func() {
		Expect(engineFailures("uidvalidity-clock", "mailboxid")).To(BeEmpty())
	})

	It("without MAILBOXID keeps today's behaviour: such a server's swap misleads it", func() {
		Expect(engineFailures("uidvalidity-clock")).To(ContainElement("I6"))
	})

	It("changes nothing where the folders keep their names and IDs", func() {
		res := harness.RunScenario(context.Background(), catalogScenario("folder_rename_while_offline"),
			harness.Options{Seed: 1, Target: harness.FakeTarget{Modes: []string{"mailboxid"}}})
		Expect(res.Report.Status).To(Equal(reports.Passed), "%+v", res.Report.Failures)
	})
})

var _ = Describe("A server whose IDLE updates come late", func() {
	It("has its IDLE latency measured, in real time, bounded by the probe's limit", func(ctx SpecContext) {
		slow := harness.FakeTarget{Modes: []string{"idle-every=1500ms"}}
		lat, err := harness.MeasureIdleLatency(ctx, slow, 300*time.Millisecond)
		Expect(err).NotTo(HaveOccurred())
		Expect(lat.Over).To(BeTrue())
		Expect(lat.String()).To(Equal("more than 0.3s"))
		lat, err = harness.MeasureIdleLatency(ctx, slow, 10*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Expect(lat.Over).To(BeFalse())
		Expect(lat.D).To(BeNumerically("<=", 2*time.Second))
		lat, err = harness.MeasureIdleLatency(ctx, harness.FakeTarget{}, 10*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Expect(lat.D).To(BeNumerically("<", time.Second))
	})

	It("makes push scenarios expecting a change sooner skip with the measured latency, never fail", func(ctx SpecContext) {
		res := harness.RunScenario(ctx, catalogScenario("push_new_mail"), harness.Options{Seed: 1,
			Target:      harness.FakeTarget{Modes: []string{"idle-every=60s"}},
			IdleLatency: harness.IdleLatency{D: 60 * time.Second}})
		Expect(res.Report.Status).To(Equal(reports.Skipped), "%+v", res.Report.Failures)
		Expect(res.Report.SkipReason).To(ContainSubstring("after 60.0s (measured once for this run), longer than within=5s"))
		Expect(harness.MaxWithin([]*scenarios.Scenario{catalogScenario("push_new_mail")})).To(Equal(5 * time.Second))
		Expect(harness.MaxWithin([]*scenarios.Scenario{catalogScenario("folder_swap_names")})).To(BeZero())
	})

	It("lets push scenarios pass when asked to wait for the server", func(ctx SpecContext) {
		slow := harness.FakeTarget{Modes: []string{"idle-every=1s"}}
		res := harness.RunScenario(ctx, catalogScenario("push_new_mail"), harness.Options{Seed: 1, Target: slow,
			IdleLatency: harness.IdleLatency{D: 6 * time.Second}, IdleWait: true})
		Expect(res.Report.Status).To(Equal(reports.Passed), "%+v", res.Report.Failures)
	})

	It("shows a real wait on a remote server as real time", func(ctx SpecContext) {
		_, addr := modeServer()
		t := remoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr, Password: "pw-for-alice", RunID: "realtime"})
		res := harness.RunScenario(ctx, scenario("wait", "# A wait.\ndevices phone\ndeliver INBOX m1\nexpect phone INBOX m1 within=1s\n"),
			harness.Options{Seed: 1, Target: t})
		Expect(res.Report.Status).To(Equal(reports.Failed))
		var msg string
		for _, f := range res.Report.Failures {
			if f.Invariant == "expect" {
				msg = f.Message
			}
		}
		Expect(msg).To(MatchRegexp(`after waiting 1\.\ds, real time`))
		var step reports.Step
		for _, st := range res.Report.Steps {
			if strings.HasPrefix(st.Text, "expect") {
				step = st
			}
		}
		Expect(step.Duration).To(BeNumerically(">=", time.Second))
	})
})

var _ = Describe("A remote server that takes UIDVALIDITY from the clock", func() {
	It("is the server's finding when folders swap names, from the harness's reads around the renames", func(ctx SpecContext) {
		_, addr := modeServer("uidvalidity-clock")
		t := remoteTarget(harness.RemoteOptions{URL: "imap://alice@" + addr, Password: "pw-for-alice", RunID: "swap"})
		res := harness.RunScenario(ctx, catalogScenario("folder_swap_names"), harness.Options{Seed: 1, Target: t})
		Expect(res.Report.Status).To(Equal(reports.ServerFinding), "%s %+v", res.Report.Attribution, res.Report.Failures)
		Expect(res.Report.Failures).To(ContainElement(SatisfyAll(HaveField("Invariant", "S3"), HaveField("Devices", []string{check.ReadsDevice}))))
	})
})
