package reports_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

var _ = Describe("Merging shard runs", func() {
	var a, b *reports.Run

	BeforeEach(func() {
		a = sampleRun()
		a.Scenarios = a.Scenarios[:2]
		b = sampleRun()
		b.Scenarios = b.Scenarios[2:]
		b.Started = a.Started.Add(time.Second)
		b.Duration = 5 * time.Second
	})

	It("lists every scenario in the order of the runs", func() {
		m := reports.MergeRuns(a, nil, b)
		Expect(m.Scenarios).To(Equal(sampleRun().Scenarios))
		Expect(m.Counts()).To(Equal(reports.Counts{Passed: 1, Failed: 1, Skipped: 1, Errored: 1, Total: 4}))
		Expect(m.SchemaVersion).To(Equal(1))
	})

	It("spans from the earliest start to the latest end", func() {
		m := reports.MergeRuns(b, a)
		Expect(m.Started).To(Equal(a.Started))
		Expect(m.Duration).To(Equal(6 * time.Second))
	})

	It("keeps what the runs agree on and lists what they do not", func() {
		b.Target = "imap://127.0.0.1:1143"
		b.Seed = 8
		b.Command = "syncharness run --shard 2/2"
		m := reports.MergeRuns(a, b)
		Expect(m.Engine).To(Equal("syncharness-engine"))
		Expect(m.Store).To(Equal("memory"))
		Expect(m.Target).To(Equal("fake, imap://127.0.0.1:1143"))
		Expect(m.Seed).To(BeZero())
		Expect(m.Command).To(Equal("syncharness run --seed 7\nsyncharness run --shard 2/2"))
	})

	It("copies the scenarios, so that changing the merged run leaves the shards alone", func() {
		m := reports.MergeRuns(a, b)
		m.Scenarios[1].Failures[0].Table.Rows[0][0] = "changed"
		m.Scenarios[1].Devices[0] = "changed"
		Expect(a.Scenarios[1]).To(Equal(failedScenario()))
	})

	It("merges nothing into an empty run that writes and reads back", func() {
		m := reports.MergeRuns()
		Expect(m.Scenarios).To(BeEmpty())
		Expect(m.OK()).To(BeTrue())
		Expect(readJSON(writeJSON(m))).To(Equal(m))
	})

	It("merges runs read back from JSON into a run that equals the whole", func() {
		whole := sampleRun()
		m := reports.MergeRuns(readJSON(writeJSON(a)), readJSON(writeJSON(b)))
		Expect(m.Scenarios).To(Equal(whole.Scenarios))
	})
})
