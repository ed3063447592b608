package catalog_test

import (
	"io/fs"
	"os"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/scenarios"
	"github.com/syncharness/syncharness/scenarios/catalog"
)

// categories are the name prefixes of the catalogue, as the README lists them.
var categories = []string{
	"flags", "move", "delete", "folder", "uidvalidity",
	"offline", "crash", "network", "identity", "push",
}

// names lists the embedded scenario files; it runs before RunSpecs so that each file
// gets its own entry.
func names() []string {
	list, err := fs.Glob(catalog.FS, "*.scn")
	if err != nil {
		panic(err)
	}
	return list
}

// parse parses one embedded file, failing the spec on any error.
func parse(name string) *scenarios.Scenario {
	data, err := fs.ReadFile(catalog.FS, name)
	Expect(err).NotTo(HaveOccurred())
	s, err := scenarios.Parse(name, data)
	Expect(err).NotTo(HaveOccurred(), "%s does not parse", name)
	return s
}

// walk calls f on every step of steps, blocks included.
func walk(steps []*scenarios.Step, f func(*scenarios.Step)) {
	for _, st := range steps {
		f(st)
		walk(st.Body, f)
	}
}

var _ = Describe("The catalogue", func() {
	It("holds at least 45 scenarios, at least two in every category", func() {
		list := names()
		Expect(len(list)).To(BeNumerically(">=", 45))
		for _, c := range categories {
			n := 0
			for _, name := range list {
				if strings.HasPrefix(name, c+"_") {
					n++
				}
			}
			Expect(n).To(BeNumerically(">=", 2), "category %s has %d scenarios", c, n)
		}
	})

	It("lists every scenario in its README, and nothing else", func() {
		readme, err := os.ReadFile("README.md")
		Expect(err).NotTo(HaveOccurred())
		var listed []string
		for _, m := range regexp.MustCompile(`(?m)^\| \[[^\]]+\]\(([^)]+\.scn)\) \|`).FindAllStringSubmatch(string(readme), -1) {
			listed = append(listed, m[1])
		}
		Expect(listed).To(ConsistOf(names()))
	})

	entries := []TableEntry{}
	for _, name := range names() {
		entries = append(entries, Entry(name, name))
	}
	sentence := regexp.MustCompile(`^[A-Z].*\.$`)
	DescribeTable("each scenario file",
		func(name string) {
			s := parse(name)
			Expect(categories).To(ContainElement(s.Category), "%s has no known category prefix", name)

			first, _, _ := strings.Cut(s.Description, "\n")
			Expect(first).To(MatchRegexp(sentence.String()), "%s must start with a one-sentence comment line", name)
			Expect(strings.HasPrefix(string(s.Source), "# ")).To(BeTrue(), "%s must start with its comment line", name)

			var devices []string
			var checks, watches, withins int
			walk(s.Steps, func(st *scenarios.Step) {
				switch {
				case st.Verb == "devices":
					devices = st.Devices
				case st.Verb == "expect":
					checks++
					if st.Expect.Within > 0 {
						withins++
					}
				case st.Verb == "watch":
					watches++
				}
			})
			Expect(len(devices)).To(BeNumerically(">=", 2), "%s: devices", name)
			Expect(len(devices)).To(BeNumerically("<=", 4), "%s: devices", name)
			Expect(checks).To(BeNumerically(">", 0), "%s pins nothing", name)
			if s.Category == "push" {
				Expect(watches).To(BeNumerically(">", 0), "%s: a push scenario watches a mailbox", name)
				Expect(withins).To(BeNumerically(">", 0), "%s: a push scenario waits with within=", name)
			}
		},
		entries,
	)
})
