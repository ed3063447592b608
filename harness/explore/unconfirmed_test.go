package explore_test

import (
	"context"
	"os"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/harness/explore"
	"github.com/syncharness/syncharness/reports"
)

// ghostDevice shows a message that is nowhere else: the checker sees it diverge (I1).
type ghostDevice struct{ clients.Device }

func (d ghostDevice) View(ctx context.Context) (clients.Replica, error) {
	v, err := d.Device.View(ctx)
	if err == nil && len(v.Mailboxes) > 0 {
		v.Mailboxes[0].Messages = append(v.Mailboxes[0].Messages, clients.Message{Label: "ghost", Hash: "ghost"})
	}
	return v, err
}

var _ = Describe("A failure a second run does not confirm", func() {
	It("is reported apart as unconfirmed, never written as a scenario file nor counted as a failure", func(ctx SpecContext) {
		// Only the first run's devices misbehave: the run that confirms the failure passes,
		// as when the harness itself is not deterministic.
		var made atomic.Int32
		factory := func(ctx context.Context, cfg harness.DeviceConfig) (clients.Device, error) {
			d, err := harness.EngineDevice(ctx, cfg)
			if err != nil || made.Add(1) > 2 {
				return d, err
			}
			return ghostDevice{d}, nil
		}
		dir := GinkgoT().TempDir()
		var last explore.Progress
		sum, err := explore.Explore(ctx, explore.Config{
			Seed: 5, Gen: explore.GenOptions{Devices: 2, Steps: 4, Faults: []string{}}, Runs: 1, Parallel: 1,
			ShrinkBudget: -1, Options: harness.Options{NewDevice: factory}, Dir: dir,
			Progress: func(p explore.Progress) { last = p },
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(sum.Failures).To(BeEmpty())
		Expect(sum.Unconfirmed).To(HaveLen(1))
		f := sum.Unconfirmed[0]
		Expect(f.Confirmed).To(BeFalse())
		Expect(f.Invariant).To(Equal("I1"))
		Expect(f.File).To(BeEmpty())
		Expect(f.Reproduce).To(BeEmpty())
		entries, err := os.ReadDir(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(entries).To(BeEmpty(), "nothing is written for an unconfirmed failure")

		Expect(f.Report.Status).To(Equal(reports.Unconfirmed))
		Expect(f.Report.Failures).NotTo(BeEmpty(), "the report keeps what the first run saw")
		Expect(sum.Reports()).To(ConsistOf(f.Report))
		Expect(last.Failures).To(Equal(0))
		Expect(last.Unconfirmed).To(Equal(1))
		Expect(sum.Progress.String()).To(ContainSubstring("0 failures, 1 unconfirmed"))
		run := &reports.Run{Scenarios: sum.Reports()}
		Expect(run.Counts().Unconfirmed).To(Equal(1))
		Expect(run.ExitStatus()).To(Equal(reports.ExitUnconfirmed))
	})

	It("does not count towards --max-failures: exploring goes on until a confirmed one", func(ctx SpecContext) {
		// Each run has two devices (no faults, so no wipe makes more) and shrinking is off,
		// so a failing run and its confirmation make two devices each. Run 0 fails only
		// the first time (unconfirmed); run 1 fails twice (confirmed).
		var made atomic.Int32
		factory := func(ctx context.Context, cfg harness.DeviceConfig) (clients.Device, error) {
			d, err := harness.EngineDevice(ctx, cfg)
			if n := made.Add(1); err != nil || n == 3 || n == 4 {
				return d, err
			}
			return ghostDevice{d}, nil
		}
		sum, err := explore.Explore(ctx, explore.Config{
			Seed: 5, Gen: explore.GenOptions{Devices: 2, Steps: 4, Faults: []string{}}, Runs: 6, Parallel: 1,
			ShrinkBudget: -1, MaxFailures: 1, Options: harness.Options{NewDevice: factory},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(made.Load()).To(BeNumerically("==", 8), "two runs, each failing and run again, nothing shrunk")
		Expect(sum.Unconfirmed).To(HaveLen(1))
		Expect(sum.Unconfirmed[0].Run).To(Equal(0))
		Expect(sum.Failures).To(HaveLen(1))
		Expect(sum.Failures[0].Run).To(Equal(1))
		Expect(sum.Runs).To(Equal(2), "it stopped at the first confirmed failure")
	})
})
