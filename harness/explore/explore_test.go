package explore_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/harness/explore"
	"github.com/syncharness/syncharness/reports"
	"github.com/syncharness/syncharness/scenarios"
)

// breaks reports whether rep failed invariant.
func breaks(rep *reports.Scenario, invariant string) bool {
	for _, f := range rep.Failures {
		if f.Invariant == invariant {
			return true
		}
	}
	return false
}

func broken(q engine.Quirks) harness.Options {
	return harness.Options{NewDevice: harness.BrokenEngineDevice(q)}
}

// maxRuns bounds every search below: each broken mode is found within this many runs of
// its fixed seed.
const maxRuns = 40

var _ = Describe("Exploring a broken engine or server", func() {
	DescribeTable("finds the failure from a fixed seed and shrinks it to a small scenario that replays",
		func(ctx SpecContext, seed int64, opts harness.Options, gen explore.GenOptions, invariants []string) {
			dir := GinkgoT().TempDir()
			sum, err := explore.Explore(ctx, explore.Config{
				Seed: seed, Gen: gen, Runs: maxRuns, MaxFailures: 1, Parallel: 1, ShrinkBudget: 150,
				Options: opts, Baseline: &harness.Options{}, Dir: dir,
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(sum.Failures).To(HaveLen(1), "found within %d runs", maxRuns)
			f := sum.Failures[0]
			Expect(invariants).To(ContainElement(f.Invariant))
			Expect(f.Confirmed).To(BeTrue(), string(f.Shrunk))
			Expect(f.ShrunkSteps).To(BeNumerically("<=", 12))
			Expect(f.ShrunkSteps).To(BeNumerically("<", f.OriginalSteps))

			// The file names the invariant and the seed on its first line.
			Expect(f.File).To(Equal(filepath.Join(dir, f.Name+".scn")))
			data, err := os.ReadFile(f.File)
			Expect(err).NotTo(HaveOccurred())
			first, _, _ := strings.Cut(string(data), "\n")
			Expect(first).To(HavePrefix("# " + f.Invariant + " "))
			Expect(first).To(ContainSubstring("--seed %d", seed))
			Expect(string(data)).To(Equal(string(scenarios.Format(mustParse(f.File, data)))), "the file is formatted")

			// Replayed from the file as `syncharness run FILE --seed S` does, it breaks the same
			// invariant, and the correct engine on a correct server does not.
			scn := mustParse(f.File, data)
			opts.Seed = seed
			Expect(breaks(harness.RunScenario(ctx, scn, opts).Report, f.Invariant)).To(BeTrue())
			Expect(breaks(harness.RunScenario(ctx, scn, harness.Options{Seed: seed}).Report, f.Invariant)).To(BeFalse())
		},
		Entry("ignores UIDVALIDITY (pairs by old UIDs, F1)",
			int64(3), broken(engine.QuirkPairByUID), explore.GenOptions{Devices: 2, Steps: 15}, []string{"I1", "I2", "I3", "I4", "I6"}),
		Entry("saves UIDNEXT before the bodies (F6)",
			int64(2), broken(engine.QuirkWatermarkFirst), explore.GenOptions{Devices: 2, Steps: 15}, []string{"I1", "I10"}),
		Entry("forgets the journal on a crash",
			int64(3), broken(engine.QuirkForgetJournalOnCrash), explore.GenOptions{Devices: 2, Steps: 15}, []string{"I1", "I3", "I6", "I7"}),
		Entry("last writer wins on whole flag sets (F11)",
			int64(2), broken(engine.QuirkWholeFlagSet), explore.GenOptions{Devices: 2, Steps: 15}, []string{"I6"}),
		Entry("re-uploads messages that disappeared from the server (F7)",
			int64(3), broken(engine.QuirkReupload), explore.GenOptions{Devices: 2, Steps: 15}, []string{"I4", "I5"}),
		Entry("deletes with a plain EXPUNGE (F10)",
			int64(3), broken(engine.QuirkPlainExpunge), explore.GenOptions{Devices: 2, Steps: 15}, []string{"I3"}),
		Entry("a server that reuses expunged UIDs",
			int64(4), harness.Options{Target: harness.FakeTarget{ReuseExpungedUIDs: true}}, explore.GenOptions{Devices: 2, Steps: 15}, []string{"I1", "I3", "I4", "S3"}),
		Entry("a server that omits EXPUNGE notifications (caught by push episodes)",
			int64(3), harness.Options{Target: harness.FakeTarget{OmitExpungeNotifications: true}}, explore.GenOptions{Devices: 2, Steps: 8, Faults: []string{explore.FaultPush}}, []string{"expect"}),
	)

	It("finds the same failure and writes the same file for the same seed", func(ctx SpecContext) {
		cfg := explore.Config{Seed: 3, Gen: explore.GenOptions{Devices: 2, Steps: 15}, Runs: maxRuns, MaxFailures: 1,
			Parallel: 1, ShrinkBudget: 150, Options: broken(engine.QuirkForgetJournalOnCrash), Baseline: &harness.Options{}}
		a, err := explore.Explore(ctx, cfg)
		Expect(err).NotTo(HaveOccurred())
		b, err := explore.Explore(ctx, cfg)
		Expect(err).NotTo(HaveOccurred())
		Expect(a.Failures).To(HaveLen(1))
		Expect(b.Failures).To(HaveLen(1))
		Expect(b.Failures[0].Run).To(Equal(a.Failures[0].Run))
		Expect(string(b.Failures[0].Shrunk)).To(Equal(string(a.Failures[0].Shrunk)))
	})
})

func mustParse(file string, data []byte) *scenarios.Scenario {
	GinkgoHelper()
	scn, err := scenarios.Parse(file, data)
	Expect(err).NotTo(HaveOccurred())
	return scn
}

var _ = Describe("An exploration", func() {
	// Small fault-free scenarios keep these specs quick.
	small := explore.GenOptions{Devices: 2, Steps: 4, Faults: []string{}}

	It("splits its runs between shards without overlap or gap", func(ctx SpecContext) {
		var mu sync.Mutex
		var all []int
		for k := 1; k <= 3; k++ {
			var mine []int
			sum, err := explore.Explore(ctx, explore.Config{Seed: 8, Gen: small, Runs: 12, Shard: k, Shards: 3,
				Progress: func(p explore.Progress) {
					mu.Lock()
					defer mu.Unlock()
					mine = append(mine, p.Run)
				}})
			Expect(err).NotTo(HaveOccurred())
			Expect(sum.Runs).To(Equal(4))
			for _, i := range mine {
				Expect(i%3).To(Equal(k-1), "shard %d/3 ran run %d", k, i)
			}
			all = append(all, mine...)
		}
		sort.Ints(all)
		Expect(all).To(Equal([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}))
	})

	It("rejects a shard outside 1..N", func(ctx SpecContext) {
		_, err := explore.Explore(ctx, explore.Config{Seed: 1, Runs: 1, Shard: 4, Shards: 3})
		Expect(err).To(MatchError(ContainSubstring("shard 4/3")))
	})

	It("stops cleanly with a summary when its context ends", func(ctx SpecContext) {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		sum, err := explore.Explore(cctx, explore.Config{Seed: 4, Gen: small, Parallel: 2,
			Progress: func(p explore.Progress) {
				if p.Runs >= 3 {
					cancel()
				}
			}})
		Expect(err).NotTo(HaveOccurred())
		Expect(sum.Runs).To(BeNumerically(">=", 3))
		Expect(sum.Elapsed).To(BeNumerically(">", 0))
	})
})
