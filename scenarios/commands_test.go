package scenarios_test

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/scenarios"
)

// exampleSetup is the setup the documented examples run after.
const exampleSetup = `mailbox Archive
mailbox Trash \Trash
mailbox Sent \Sent
mailbox Drafts \Drafts
mailbox Receipts
mailbox Projects
deliver INBOX m1 m2 m3 m4
`

var _ = Describe("The documentation of every command", func() {
	for _, c := range scenarios.Commands() {
		It("documents "+c.Actor+" "+c.Name+" with a usage, a summary and an example that lints clean", func() {
			Expect(c.Section).NotTo(BeEmpty())
			Expect(c.Usage).NotTo(BeEmpty())
			Expect(c.Summary).To(HaveSuffix("."))
			Expect(c.Example).NotTo(BeEmpty())
			Expect([]string{"setup", "device", "server", "flow", "check"}).To(ContainElement(c.Actor))

			var src string
			switch c.Actor {
			case "setup":
				if c.Name == "devices" {
					src = c.Example + "\n" + exampleSetup + "sync\n"
				} else {
					src = "devices phone laptop tablet\n" + c.Example + "\n" + "sync\n"
				}
			default:
				example := c.Example
				if c.Name == "end" {
					example = "repeat 2\nsync\nend"
				}
				src = "devices phone laptop tablet\n" + exampleSetup + "sync\n" + example + "\n"
			}
			src += "-- m5.eml --\nSubject: m5\n\nm5\n"
			s, err := scenarios.Parse(c.Name+".scn", []byte(src))
			Expect(err).NotTo(HaveOccurred(), "example of %s:\n%s", c.Name, c.Example)

			// The example's first line is a step of this command.
			line := strings.Count(src[:strings.Index(src, c.Example)], "\n") + 1
			if c.Name == "end" {
				return
			}
			st := stepAt(s.Steps, line)
			Expect(st).NotTo(BeNil(), "no step on line %d", line)
			verb, kind, _ := strings.Cut(c.Name, " ")
			Expect(st.Verb).To(Equal(verb))
			switch c.Actor {
			case "server":
				Expect(st.Actor).To(Equal("server"))
			case "device":
				Expect(st.Actor).To(BeElementOf("phone", "laptop", "tablet"))
			case "check":
				Expect(st.Expect.Kind).To(Equal(kind))
			default:
				Expect(st.Actor).To(BeEmpty())
			}
		})
	}

	It("lists every command once", func() {
		seen := map[string]bool{}
		for _, c := range scenarios.Commands() {
			key := c.Actor + " " + c.Name
			Expect(seen).NotTo(HaveKey(key))
			seen[key] = true
		}
	})

	It("generates a reference with every usage line and example", func() {
		ref := scenarios.Reference()
		for _, c := range scenarios.Commands() {
			Expect(ref).To(ContainSubstring(c.Usage))
			Expect(ref).To(ContainSubstring(c.Example))
		}
		Expect(ref).To(HavePrefix("# The scenario language\n"))
	})

	It("is what docs/scenarios.md says", func() {
		docs, err := os.ReadFile(filepath.Join("..", "docs", "scenarios.md"))
		Expect(err).NotTo(HaveOccurred())
		header, body, _ := strings.Cut(string(docs), "\n\n")
		Expect(header).To(HavePrefix("<!-- Code generated"))
		Expect(body).To(Equal(scenarios.Reference()),
			"docs/scenarios.md is stale; regenerate it with: go run ./cmd/syncharness help scenarios --markdown > docs/scenarios.md (or go generate ./cmd/syncharness)")
	})

	It("shows whole example scenarios that lint clean", func() {
		blocks := strings.Split(scenarios.Reference(), "```\n")
		n := 0
		for i := 1; i < len(blocks); i += 2 {
			if !strings.HasPrefix(blocks[i], "# ") || !strings.Contains(blocks[i], "\ndevices ") {
				continue
			}
			n++
			_, err := scenarios.Parse("example.scn", []byte(blocks[i]))
			Expect(err).NotTo(HaveOccurred(), "example:\n%s", blocks[i])
		}
		Expect(n).To(BeNumerically(">=", 2))
	})
})

// stepAt finds the step on a line, in blocks too.
func stepAt(steps []*scenarios.Step, line int) *scenarios.Step {
	for _, st := range steps {
		if st.Line == line {
			return st
		}
		if b := stepAt(st.Body, line); b != nil {
			return b
		}
	}
	return nil
}
