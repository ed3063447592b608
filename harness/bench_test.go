package harness_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/syncharness/syncharness/harness"
)

// BenchmarkCatalog runs the whole built-in catalogue on the fake server, in parallel as
// `syncharness run` does. Reports scenarios per second.
func BenchmarkCatalog(b *testing.B) {
	list, err := harness.Catalog()
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		run, _ := harness.RunAll(context.Background(), list, harness.RunOptions{
			Options:  harness.Options{Seed: 1},
			Parallel: runtime.NumCPU(),
		})
		if c := run.Counts(); c.Failed+c.Errored > 0 {
			b.Fatalf("%d scenarios failed, %d errored", c.Failed, c.Errored)
		}
	}
	b.ReportMetric(float64(len(list)*b.N)/b.Elapsed().Seconds(), "scenarios/s")
}
