package scenarios_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/scenarios"
)

// formatCorpus is every scenario file the formatter is tried on: its own corpus, the
// error corpus (files whose syntax is fine) and the built-in catalogue.
func formatCorpus() []string {
	var files []string
	for _, pattern := range []string{"testdata/format/*.scn", "testdata/errors/*.scn", "catalog/*.scn"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			panic(err)
		}
		files = append(files, m...)
	}
	return files
}

func formatFile(file string) (*scenarios.Scenario, []byte) {
	GinkgoHelper()
	data, err := os.ReadFile(file)
	Expect(err).NotTo(HaveOccurred())
	s, err := scenarios.ParseSyntax(file, data)
	Expect(err).NotTo(HaveOccurred())
	return s, scenarios.Format(s)
}

// syntaxOK reports whether a file of the corpus parses (the error corpus has syntax errors).
func syntaxOK(file string) bool {
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	_, err = scenarios.ParseSyntax(file, data)
	return err == nil
}

var _ = Describe("Formatting", func() {
	for _, file := range formatCorpus() {
		if !syntaxOK(file) {
			continue
		}
		It("formats "+file+" the same way twice, without changing a step", func() {
			s, once := formatFile(file)
			s2, err := scenarios.ParseSyntax(file, once)
			Expect(err).NotTo(HaveOccurred(), "the canonical form does not parse:\n%s", once)
			twice := scenarios.Format(s2)
			Expect(string(twice)).To(Equal(string(once)))
			Expect(stepTexts(s2.Steps)).To(Equal(stepTexts(s.Steps)))
			Expect(s2.Files).To(Equal(s.Files))
			Expect(s2.Description).To(Equal(s.Description))
		})
	}

	It("leaves a canonical file unchanged, comments and attachments included", func() {
		data, err := os.ReadFile("testdata/format/all_commands.scn")
		Expect(err).NotTo(HaveOccurred())
		_, out := formatFile("testdata/format/all_commands.scn")
		Expect(string(out)).To(Equal(string(data)))
	})

	It("puts a messy file in canonical form", func() {
		want, err := os.ReadFile("testdata/format/messy.golden")
		Expect(err).NotTo(HaveOccurred())
		_, out := formatFile("testdata/format/messy.scn")
		Expect(string(out)).To(Equal(string(want)))
	})

	It("has a corpus that uses every command", func() {
		used := map[string]bool{}
		var walk func([]*scenarios.Step)
		walk = func(steps []*scenarios.Step) {
			for _, st := range steps {
				switch {
				case st.Verb == "expect":
					used["check expect "+st.Expect.Kind] = true
				case st.Actor == "server":
					used["server "+st.Verb] = true
				case st.Actor != "":
					used["device "+st.Verb] = true
				case st.Verb == "devices" || st.Verb == "mailbox" || st.Verb == "deliver" || st.Verb == "caps":
					used["setup "+st.Verb] = true
				default:
					used["flow "+st.Verb] = true
				}
				if len(st.Body) > 0 {
					used["flow end"] = true
				}
				walk(st.Body)
			}
		}
		s, _ := formatFile("testdata/format/all_commands.scn")
		walk(s.Steps)
		for _, c := range scenarios.Commands() {
			Expect(used).To(HaveKey(c.Actor+" "+c.Name), "testdata/format/all_commands.scn lacks %q", c.Usage)
		}
	})

	It("keeps the description of a scenario built in code", func() {
		s := &scenarios.Scenario{Description: "Built in code.\nTwo lines.", Steps: []*scenarios.Step{
			{Verb: "devices", Devices: []string{"phone"}},
			{Actor: "phone", Verb: "sync"},
		}}
		Expect(string(scenarios.Format(s))).To(Equal("# Built in code.\n# Two lines.\n\ndevices phone\nphone sync\n"))
	})

	It("quotes the words that need it", func() {
		s, err := scenarios.Parse("q.scn", []byte("devices phone\nmailbox \"A \\\"B\\\" #1\"\nsync\nphone create \"x=y\"\n"))
		Expect(err).NotTo(HaveOccurred())
		out := string(scenarios.Format(s))
		Expect(out).To(ContainSubstring(`mailbox "A \"B\" #1"`))
		Expect(out).To(ContainSubstring(`phone create "x=y"`))
	})
})

// stepTexts renders steps one a line, blocks indented, for comparing two parses.
func stepTexts(steps []*scenarios.Step) []string {
	var out []string
	for _, st := range steps {
		out = append(out, scenarios.StepString(st)+" #"+st.Comment)
		for _, b := range stepTexts(st.Body) {
			out = append(out, "  "+b)
		}
	}
	return out
}
