package explore_test

import (
	"context"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/harness/explore"
	"github.com/syncharness/syncharness/scenarios"
)

var _ = Describe("Confirming a failure several times (explore --engine)", func() {
	// flaky fails the first run and the confirmations up to the fails-th, then passes:
	// each run makes two devices (no faults, shrinking off).
	flaky := func(fails int32) (harness.DeviceFactory, *atomic.Int32) {
		var made atomic.Int32
		return func(ctx context.Context, cfg harness.DeviceConfig) (clients.Device, error) {
			d, err := harness.EngineDevice(ctx, cfg)
			if err != nil || made.Add(1) > 2*(1+fails) {
				return d, err
			}
			return ghostDevice{d}, nil
		}, &made
	}
	explore1 := func(ctx context.Context, factory harness.DeviceFactory, confirmations int) *explore.Summary {
		sum, err := explore.Explore(ctx, explore.Config{
			Seed: 5, Gen: explore.GenOptions{Devices: 2, Steps: 4, Faults: []string{}}, Runs: 1, Parallel: 1,
			ShrinkBudget: -1, Options: harness.Options{NewDevice: factory}, Confirmations: confirmations,
		})
		Expect(err).NotTo(HaveOccurred())
		return sum
	}

	It("confirms a failure only when every one of the runs fails the same way", func(ctx SpecContext) {
		factory, made := flaky(4)
		sum := explore1(ctx, factory, 5)
		Expect(sum.Failures).To(BeEmpty(), "the fifth confirmation passed")
		Expect(sum.Unconfirmed).To(HaveLen(1))
		Expect(made.Load()).To(BeNumerically("==", 12), "the first run and five confirmations")

		factory, made = flaky(5)
		sum = explore1(ctx, factory, 5)
		Expect(sum.Unconfirmed).To(BeEmpty())
		Expect(sum.Failures).To(HaveLen(1))
		Expect(sum.Failures[0].Confirmations).To(Equal(5))
		Expect(made.Load()).To(BeNumerically("==", 12))

		// One confirmation (the default) takes the same flaky device for a finding.
		factory, _ = flaky(1)
		sum = explore1(ctx, factory, 0)
		Expect(sum.Failures).To(HaveLen(1))
		Expect(sum.Failures[0].Confirmations).To(Equal(1))
	})

	It("counts the runs Options.Skip refuses as skipped, neither passed nor failed", func(ctx SpecContext) {
		var asked atomic.Int32
		sum, err := explore.Explore(ctx, explore.Config{
			Seed: 5, Gen: explore.GenOptions{Devices: 2, Steps: 4, Faults: []string{}}, Runs: 3, Parallel: 1,
			Options: harness.Options{Skip: func(*scenarios.Scenario) string {
				asked.Add(1)
				return "the engine does not claim it"
			}, NewDevice: func(ctx context.Context, cfg harness.DeviceConfig) (clients.Device, error) {
				Fail("a skipped run builds no device")
				return nil, nil
			}},
		})
		Expect(err).NotTo(HaveOccurred())
		Expect(asked.Load()).To(BeNumerically("==", 3))
		Expect(sum.Runs).To(Equal(3))
		Expect(sum.Skipped).To(Equal(3))
		Expect(sum.Failures).To(BeEmpty())
		Expect(sum.Progress.String()).To(ContainSubstring("3 skipped"))
	})
})
