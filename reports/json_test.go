package reports_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

func writeJSON(r *reports.Run) []byte {
	GinkgoHelper()
	var b bytes.Buffer
	Expect(reports.WriteJSON(&b, r)).To(Succeed())
	return b.Bytes()
}

func readJSON(b []byte) *reports.Run {
	GinkgoHelper()
	r, err := reports.ReadJSON(bytes.NewReader(b))
	Expect(err).NotTo(HaveOccurred())
	return r
}

var _ = Describe("The JSON report", func() {
	It("reads back exactly the run that was written", func() {
		run := sampleRun()
		Expect(readJSON(writeJSON(run))).To(Equal(run))
	})

	It("keeps a zero start time", func() {
		run := sampleRun()
		run.Started = time.Time{}
		Expect(readJSON(writeJSON(run))).To(Equal(run))
	})

	It("keeps the instant of a start time in another zone, in UTC", func() {
		run := sampleRun()
		run.Started = time.Now().In(time.FixedZone("", -5*3600))
		back := readJSON(writeJSON(run))
		Expect(back.Started.Equal(run.Started)).To(BeTrue(), "%v != %v", back.Started, run.Started)
		Expect(back.Started.Location()).To(Equal(time.UTC))
	})

	It("reads back random runs exactly and writes them again byte for byte", func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for range 200 {
			run := randomRun(rng)
			first := writeJSON(run)
			back := readJSON(first)
			Expect(back).To(Equal(run))
			Expect(writeJSON(back)).To(Equal(first))
		}
	})

	It("writes empty lists as [] and reads them back as nil", func() {
		run := &reports.Run{SchemaVersion: 1, Scenarios: []*reports.Scenario{{
			Name: "x", Status: reports.Passed, Devices: []string{}, Steps: []reports.Step{},
			Failures: []reports.Failure{{Devices: []string{}, Table: &reports.Table{Columns: []string{}, Rows: [][]string{{}}}}},
		}}}
		out := writeJSON(run)
		Expect(string(out)).To(ContainSubstring(`"devices": []`))
		Expect(string(out)).To(ContainSubstring(`"transcript": []`))
		Expect(string(out)).NotTo(ContainSubstring("null"))
		back := readJSON(out)
		Expect(back.Scenarios[0].Devices).To(BeNil())
		Expect(back.Scenarios[0].Steps).To(BeNil())
		Expect(back.Scenarios[0].Failures[0].Table.Rows).To(Equal([][]string{nil}))
		Expect(writeJSON(back)).To(Equal(out))
	})

	It("writes schema version 1 for a run that left it zero", func() {
		run := sampleRun()
		run.SchemaVersion = 0
		Expect(readJSON(writeJSON(run)).SchemaVersion).To(Equal(1))
	})

	It("writes the derived counts and verdict for tools such as jq", func() {
		var doc struct {
			OK     bool           `json:"ok"`
			Counts map[string]int `json:"counts"`
		}
		Expect(json.Unmarshal(writeJSON(sampleRun()), &doc)).To(Succeed())
		Expect(doc.OK).To(BeFalse())
		Expect(doc.Counts).To(Equal(map[string]int{"total": 4, "passed": 1, "failed": 1, "skipped": 1, "errored": 1, "unconfirmed": 0, "server": 0}))
	})

	It("matches the golden file, so that field names stay stable", func() {
		updateGolden("testdata/run.golden.json", writeJSON(sampleRun()))
		golden, err := os.ReadFile("testdata/run.golden.json")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(writeJSON(sampleRun()))).To(Equal(string(golden)))
	})

	It("documents every field it writes in docs/report-json.md", func() {
		doc, err := os.ReadFile("../docs/report-json.md")
		Expect(err).NotTo(HaveOccurred())
		var v any
		Expect(json.Unmarshal(writeJSON(sampleRun()), &v)).To(Succeed())
		for _, key := range jsonKeys(v, nil) {
			Expect(string(doc)).To(ContainSubstring("`"+key+"`"), "docs/report-json.md does not document %q", key)
		}
	})

	DescribeTable("writes durations as exact milliseconds",
		func(d time.Duration, want string) {
			run := &reports.Run{SchemaVersion: 1, Duration: d}
			Expect(string(writeJSON(run))).To(ContainSubstring(`"duration_ms": ` + want + ",\n"))
			Expect(readJSON(writeJSON(run)).Duration).To(Equal(d))
		},
		Entry("zero", time.Duration(0), "0"),
		Entry("whole milliseconds", 412*time.Millisecond, "412"),
		Entry("half a millisecond", 1500*time.Microsecond, "1.5"),
		Entry("one nanosecond", time.Nanosecond, "0.000001"),
		Entry("the largest duration", time.Duration(1<<63-1), "9223372036854.775807"),
	)

	DescribeTable("reads durations in any JSON number notation",
		func(ms string, want time.Duration) {
			run := readJSON([]byte(`{"schema_version": 1, "duration_ms": ` + ms + `, "scenarios": []}`))
			Expect(run.Duration).To(Equal(want))
		},
		Entry("an integer", "250", 250*time.Millisecond),
		Entry("an exponent", "1.5e3", 1500*time.Millisecond),
		Entry("finer than a nanosecond, rounded half up", "0.0000005", time.Nanosecond),
		Entry("finer than a nanosecond, rounded down", "0.0000004", time.Duration(0)),
	)

	DescribeTable("refuses files it cannot read faithfully",
		func(doc, want string) {
			_, err := reports.ReadJSON(strings.NewReader(doc))
			Expect(err).To(MatchError(ContainSubstring(want)))
		},
		Entry("another schema version", `{"schema_version": 2}`, "schema_version 2 is not supported"),
		Entry("no schema version", `{"scenarios": []}`, "schema_version 0 is not supported"),
		Entry("an unknown status", `{"schema_version": 1, "scenarios": [{"name": "x", "status": "ok"}]}`, `unknown status "ok"`),
		Entry("a null scenario", `{"schema_version": 1, "scenarios": [null]}`, "scenarios[0] is null"),
		Entry("a malformed start time", `{"schema_version": 1, "started": "yesterday"}`, "started"),
		Entry("a duration as a string", `{"schema_version": 1, "duration_ms": "12"}`, "not a number of milliseconds"),
		Entry("a duration out of range", `{"schema_version": 1, "duration_ms": 1e20}`, "out of range"),
		Entry("trailing data", `{"schema_version": 1} {}`, "trailing data"),
		Entry("a truncated file", `{"schema_version": 1, "scenarios": [`, "unexpected EOF"),
	)

	DescribeTable("refuses to write a run it could not read back",
		func(breakIt func(r *reports.Run)) {
			r := sampleRun()
			breakIt(r)
			Expect(reports.WriteJSON(&bytes.Buffer{}, r)).To(MatchError(ContainSubstring("reports: write json")))
		},
		Entry("a nil scenario", func(r *reports.Run) { r.Scenarios[0] = nil }),
		Entry("an unknown status", func(r *reports.Run) { r.Scenarios[0].Status = "" }),
	)

	It("refuses a nil run", func() {
		Expect(reports.WriteJSON(&bytes.Buffer{}, nil)).To(MatchError(ContainSubstring("nil run")))
	})
})

// jsonKeys lists every object key in v as a path-free set, in first-seen order.
func jsonKeys(v any, seen []string) []string {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			found := false
			for _, s := range seen {
				found = found || s == k
			}
			if !found {
				seen = append(seen, k)
			}
			seen = jsonKeys(e, seen)
		}
	case []any:
		for _, e := range v {
			seen = jsonKeys(e, seen)
		}
	}
	return seen
}

// randomRun builds a run with random contents, empty lists always nil (as ReadJSON gives
// them back), strings with control characters, quotes and non-ASCII text.
func randomRun(rng *rand.Rand) *reports.Run {
	str := func() string {
		alphabet := []string{"a", "Z", "0", " ", "\"", "\\", "\n", "\t", "\x1b", "é", "中", "<", "&", "\u2028"}
		var b strings.Builder
		for range rng.IntN(8) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	strs := func() []string {
		var out []string
		for range rng.IntN(3) {
			out = append(out, str())
		}
		return out
	}
	dur := func() time.Duration { return time.Duration(rng.Int64N(1 << 50)) }
	statuses := []reports.Status{reports.Passed, reports.Failed, reports.Skipped, reports.Errored}
	run := &reports.Run{
		SchemaVersion: 1, Target: str(), Engine: str(), Store: str(), Seed: rng.Int64() - rng.Int64(),
		Started:  time.Unix(rng.Int64N(1<<33), rng.Int64N(1e9)).UTC(),
		Duration: dur(), Command: str(),
	}
	if rng.IntN(4) == 0 {
		run.Started = time.Time{}
	}
	for range rng.IntN(4) {
		s := &reports.Scenario{
			Name: str(), File: str(), Category: str(), Description: str(), Status: statuses[rng.IntN(4)],
			SkipReason: str(), Error: str(), Seed: rng.Int64(), Duration: dur(), Devices: strs(),
			Reproduce: str(), Source: str(),
		}
		for range rng.IntN(3) {
			s.Steps = append(s.Steps, reports.Step{Line: rng.IntN(100), Text: str(), Actor: str(), Start: dur(), Duration: dur(), Error: str()})
		}
		for range rng.IntN(3) {
			f := reports.Failure{Invariant: str(), Title: str(), Message: str(), Line: rng.IntN(50), Devices: strs(), Labels: strs(), Server: rng.IntN(2) == 0}
			if rng.IntN(2) == 0 {
				f.Table = &reports.Table{Columns: strs()}
				for range rng.IntN(3) {
					f.Table.Rows = append(f.Table.Rows, strs())
				}
			}
			s.Failures = append(s.Failures, f)
		}
		for range rng.IntN(3) {
			s.Transcript = append(s.Transcript, reports.TranscriptLine{Device: str(), Time: dur(), Dir: []string{"C", "S"}[rng.IntN(2)], Text: str()})
		}
		run.Scenarios = append(run.Scenarios, s)
	}
	return run
}
