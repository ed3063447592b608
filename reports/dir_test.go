package reports_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

// tree lists the files under dir, slash-separated and relative.
func tree(dir string) []string {
	GinkgoHelper()
	var files []string
	Expect(filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})).To(Succeed())
	return files
}

func readFile(path string) string {
	GinkgoHelper()
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}

var _ = Describe("The report directory", func() {
	var dir string
	var artifacts reports.Artifacts

	BeforeEach(func() {
		dir = filepath.Join(GinkgoT().TempDir(), "report")
		artifacts = reports.Artifacts{Files: map[string]map[string][]byte{
			"move_concurrent_two_folders": {
				"transcript-phone.txt": []byte("C: a1 LOGIN phone ***\n"),
				"history.jsonl":        []byte(`{"clock":1}` + "\n"),
				"replicas/laptop.json": []byte(`{}`),
			},
			"flags_read_on_two_devices": {"history.jsonl": []byte("{}\n")},
		}}
	})

	It("keeps the run, JUnit, the summary and everything about each failed or errored scenario", func() {
		Expect(reports.WriteDir(dir, sampleRun(), artifacts)).To(Succeed())
		Expect(tree(dir)).To(ConsistOf(
			"run.json", "junit.xml", "summary.txt", "report.html",
			"move_concurrent_two_folders/failure.txt",
			"move_concurrent_two_folders/scenario.scn",
			"move_concurrent_two_folders/transcript-phone.txt",
			"move_concurrent_two_folders/history.jsonl",
			"move_concurrent_two_folders/replicas/laptop.json",
			"crash_after_append/failure.txt",
		))
		Expect(readFile(filepath.Join(dir, "move_concurrent_two_folders/history.jsonl"))).To(Equal(`{"clock":1}` + "\n"))
		Expect(readFile(filepath.Join(dir, "move_concurrent_two_folders/scenario.scn"))).To(Equal(failedScenario().Source))
		Expect(readFile(filepath.Join(dir, "move_concurrent_two_folders/failure.txt"))).To(ContainSubstring("  steps:\n"))
		Expect(readFile(filepath.Join(dir, "summary.txt"))).To(Equal(writeText(sampleRun(), reports.TextOptions{})))
		Expect(readFile(filepath.Join(dir, "junit.xml"))).To(Equal(string(writeJUnit(sampleRun()))))
	})

	It("reads back the run it wrote", func() {
		Expect(reports.WriteDir(dir, sampleRun(), artifacts)).To(Succeed())
		back, err := reports.ReadDir(dir)
		Expect(err).NotTo(HaveOccurred())
		Expect(back).To(Equal(sampleRun()))
	})

	It("replaces an earlier report without leaving its failures behind, and keeps other files", func() {
		Expect(reports.WriteDir(dir, sampleRun(), artifacts)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644)).To(Succeed())
		Expect(os.Mkdir(filepath.Join(dir, "mine"), 0o755)).To(Succeed())
		fixed := sampleRun()
		fixed.Scenarios[1].Status = reports.Passed
		fixed.Scenarios[1].Failures = nil
		Expect(reports.WriteDir(dir, fixed, reports.Artifacts{})).To(Succeed())
		Expect(tree(dir)).To(ConsistOf("run.json", "junit.xml", "summary.txt", "report.html", "notes.txt", "crash_after_append/failure.txt"))
		Expect(filepath.Join(dir, "mine")).To(BeADirectory())
	})

	It("refuses to write into a directory that holds something other than a report", func() {
		Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module x\n"), 0o644)).To(Succeed())
		Expect(reports.WriteDir(dir, sampleRun(), artifacts)).To(MatchError(ContainSubstring("not a report directory")))
		Expect(tree(dir)).To(Equal([]string{"go.mod"}))
	})

	It("writes into an existing empty directory", func() {
		Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
		Expect(reports.WriteDir(dir, sampleRun(), reports.Artifacts{})).To(Succeed())
		Expect(filepath.Join(dir, "run.json")).To(BeARegularFile())
	})

	It("gives scenarios with unsafe or clashing names their own safe directories", func() {
		r := sampleRun()
		twin := failedScenario()
		r.Scenarios = append(r.Scenarios, twin)
		r.Scenarios[3].Name = "../../etc/passwd"
		r.Scenarios = append(r.Scenarios, &reports.Scenario{Name: "run.json", Status: reports.Failed})
		r.Scenarios = append(r.Scenarios, &reports.Scenario{Name: "..", Status: reports.Errored})
		Expect(reports.WriteDir(dir, r, reports.Artifacts{})).To(Succeed())
		Expect(tree(dir)).To(ConsistOf(
			"run.json", "junit.xml", "summary.txt", "report.html",
			"move_concurrent_two_folders/failure.txt", "move_concurrent_two_folders/scenario.scn",
			"move_concurrent_two_folders-2/failure.txt", "move_concurrent_two_folders-2/scenario.scn",
			".._.._etc_passwd/failure.txt",
			"run.json-2/failure.txt",
			"scenario../failure.txt",
		))
	})

	DescribeTable("refuses artifacts it cannot place safely, before writing anything",
		func(scenario, file, want string) {
			a := reports.Artifacts{Files: map[string]map[string][]byte{scenario: {file: []byte("x")}}}
			Expect(reports.WriteDir(dir, sampleRun(), a)).To(MatchError(ContainSubstring(want)))
			Expect(dir).NotTo(BeAnExistingFile())
		},
		Entry("a path out of the directory", "move_concurrent_two_folders", "../escape.txt", "not a relative path"),
		Entry("an absolute path", "move_concurrent_two_folders", "/etc/passwd", "not a relative path"),
		Entry("an empty name", "move_concurrent_two_folders", "", "not a relative path"),
		Entry("a backslash path", "move_concurrent_two_folders", `..\escape.txt`, "not a relative path"),
		Entry("the report's own failure.txt", "move_concurrent_two_folders", "failure.txt", "reserved"),
		Entry("the report's own scenario.scn", "move_concurrent_two_folders", "./scenario.scn", "reserved"),
		Entry("an unknown scenario", "nope", "x.txt", `artifacts for "nope"`),
	)

	It("says which file is missing when there is no report to read", func() {
		_, err := reports.ReadDir(GinkgoT().TempDir())
		Expect(err).To(MatchError(ContainSubstring("run.json")))
	})
})
