package explore_test

import (
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/harness/explore"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

var _ = Describe("Exploring a server whose IDLE updates come late", func() {
	// Push episodes only, so that most runs have one.
	const seed, runs = 5, 10
	gen := explore.GenOptions{Devices: 2, Steps: 8, Faults: []string{explore.FaultPush}}

	// pushRuns names the runs whose scenario expects a change within=, from the generator
	// alone: the runs a slow server's latency must skip.
	pushRuns := func() []string {
		GinkgoHelper()
		var names []string
		for i := range runs {
			scn, err := explore.Generate(seed, i, gen)
			Expect(err).NotTo(HaveOccurred())
			if harness.MaxWithin([]*scenarios.Scenario{scn}) > 0 {
				names = append(names, scn.Name)
			}
		}
		Expect(names).NotTo(BeEmpty(), "the seed generates push episodes")
		return names
	}

	// exploreOn explores the fake server with modes as `explore --server-mode` does: the
	// exploration is differential, against a correct server.
	exploreOn := func(ctx SpecContext, dir string, wait bool, modes ...string) (*explore.Summary, []harness.IdleLatency) {
		GinkgoHelper()
		var measured []harness.IdleLatency
		sum, err := explore.Explore(ctx, explore.Config{Seed: seed, Gen: gen, Runs: runs, Parallel: 2, ShrinkBudget: 50,
			Options:  harness.Options{Target: harness.FakeTarget{Modes: modes}, IdleWait: wait},
			Baseline: &harness.Options{}, Dir: dir,
			IdleMeasured: func(lat harness.IdleLatency, err error) {
				Expect(err).NotTo(HaveOccurred())
				measured = append(measured, lat)
			}})
		Expect(err).NotTo(HaveOccurred())
		Expect(sum.IdleErr).NotTo(HaveOccurred())
		Expect(sum.Runs).To(Equal(runs))
		return sum, measured
	}

	It("skips the runs with push episodes with the latency it measured once, and fails none of them", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		sum, measured := exploreOn(ctx, dir, false, "idle-every=60s")
		Expect(measured).To(HaveLen(1), "measured once for the exploration")
		Expect(sum.IdleLatency).To(Equal(measured[0]))
		Expect(sum.IdleLatency.String()).To(Equal("more than 1.5s"), "the probe waits within=500ms and a second")

		Expect(sum.Failures).To(BeEmpty())
		Expect(sum.Unconfirmed).To(BeEmpty())
		Expect(sum.Errored).To(BeZero(), "%v", sum.ErroredRuns)
		Expect(sum.Skipped).To(BeZero(), "no skip of the devices' claims")
		push := pushRuns()
		Expect(sum.IdleSkipped).To(Equal(len(push)))
		var names []string
		for _, rep := range sum.IdleSkippedRuns {
			names = append(names, rep.Name)
			Expect(rep.Status).To(Equal(reports.Skipped))
			Expect(rep.SkipReason).To(ContainSubstring("after more than 1.5s (measured once for this run), longer than within=500ms"))
		}
		Expect(names).To(Equal(push), "every run with a push episode, in run order")
		Expect(sum.Reports()).To(Equal(sum.IdleSkippedRuns), "the JSON results list them")
		Expect(sum.String()).To(ContainSubstring("%d skipped for the server's IDLE latency (more than 1.5s, longer than within=500ms)", len(push)))

		files, err := os.ReadDir(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(BeEmpty(), "nothing shrunk or written")
	})

	It("skips nothing on a server that tells at once, for the same seed", func(ctx SpecContext) {
		sum, measured := exploreOn(ctx, GinkgoT().TempDir(), false)
		Expect(measured).To(HaveLen(1))
		Expect(sum.IdleLatency.Over).To(BeFalse())
		Expect(sum.IdleLatency.D).To(BeNumerically("<", explore.PushWithin))
		Expect(sum.IdleSkipped).To(BeZero())
		Expect(sum.IdleSkippedRuns).To(BeEmpty())
		Expect(sum.Skipped).To(BeZero())
		Expect(sum.Failures).To(BeEmpty())
		Expect(sum.String()).NotTo(ContainSubstring("skipped"))
	})

	It("with IdleWait runs the push episodes, waiting for the server, and they pass", func(ctx SpecContext) {
		// A period of one second keeps the spec short; it is still twice within=.
		sum, measured := exploreOn(ctx, GinkgoT().TempDir(), true, "idle-every=1s")
		Expect(measured).To(HaveLen(1))
		Expect(sum.IdleLatency.Over).To(BeFalse())
		Expect(sum.IdleLatency.D).To(BeNumerically(">", explore.PushWithin), "the server is too slow for within= alone")
		Expect(sum.IdleSkipped).To(BeZero())
		Expect(sum.Skipped).To(BeZero())
		Expect(sum.Errored).To(BeZero(), "%v", sum.ErroredRuns)
		Expect(sum.Unconfirmed).To(BeEmpty())
		Expect(sum.Failures).To(BeEmpty())
	})

	It("does not measure when the scenarios cannot have push episodes, or when the latency is given", func(ctx SpecContext) {
		called := false
		for _, cfg := range []explore.Config{
			{Gen: explore.GenOptions{Devices: 2, Steps: 3, Faults: []string{explore.FaultCrash}}},
			{Gen: gen, Options: harness.Options{IdleLatency: harness.IdleLatency{D: time.Millisecond}}},
		} {
			cfg.Seed, cfg.Runs = seed, 1
			cfg.IdleMeasured = func(harness.IdleLatency, error) { called = true }
			sum, err := explore.Explore(ctx, cfg)
			Expect(err).NotTo(HaveOccurred())
			Expect(sum.IdleLatency).To(Equal(cfg.Options.IdleLatency))
		}
		Expect(called).To(BeFalse())
	})
})
