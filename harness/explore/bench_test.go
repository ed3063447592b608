package explore_test

import (
	"context"
	"testing"

	"github.com/syncharness/syncharness/harness/explore"
)

// BenchmarkExplore measures exploration throughput: scenarios generated, run on the fake
// server in deterministic mode and checked, per second (3 devices, 30 steps, every fault),
// with as many at once as there are CPUs. Failures are reported unshrunk, so that the
// number is the rate of exploration itself.
func BenchmarkExplore(b *testing.B) {
	ctx := context.Background()
	b.ResetTimer()
	sum, err := explore.Explore(ctx, explore.Config{
		Seed: 1, Runs: b.N, ShrinkBudget: -1,
		Gen: explore.GenOptions{Devices: 3, Steps: 30},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(sum.Runs)/b.Elapsed().Seconds(), "scenarios/s")
	b.ReportMetric(float64(sum.Progress.Failures), "failures")
}
