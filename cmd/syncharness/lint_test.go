package main

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const cleanScenario = `# Two devices read the same message.
devices phone laptop
deliver INBOX m1
sync
phone read INBOX m1
sync
expect converged
`

var _ = Describe("syncharness lint", func() {
	It("exits 0 and prints nothing for clean files", func() {
		dir := tempDir()
		file := writeFile(dir, "flags_read.scn", cleanScenario)
		r := runCLI("lint", file)
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(BeEmpty())
		Expect(r.Stderr).To(BeEmpty())
	})

	It("prints every error of every file to stderr and exits 2", func() {
		dir := tempDir()
		writeFile(dir, "a_clean.scn", cleanScenario)
		writeFile(dir, "b_typos.scn", "devices phone\nmailbox Archive\ndeliver INBOX m1\nphnoe read INBOX m1\nphone move INBOX m1 Arhive\n")
		writeFile(dir, "sub/c_flag.scn", "devices phone\ndeliver INBOX m1\nphone flag INBOX m1 \\Important\n")
		r := runCLI("lint", dir)
		Expect(r.Code).To(Equal(2))
		Expect(r.Stdout).To(BeEmpty())
		lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
		Expect(lines).To(Equal([]string{
			filepath.Join(dir, "b_typos.scn") + `:4: read: unknown device "phnoe" (devices: phone)`,
			filepath.Join(dir, "b_typos.scn") + `:5: move: unknown mailbox "Arhive" (did you mean "Archive"?)`,
			filepath.Join(dir, "sub/c_flag.scn") + `:3: flag: not a flag: "\\Important" (system flags are \Seen \Answered \Flagged \Deleted \Draft; keywords have no backslash, e.g. $Forwarded)`,
			"syncharness: lint: 3 errors in 2 of 3 files",
		}))
	})

	It("reports a path that does not exist and still checks the others", func() {
		dir := tempDir()
		file := writeFile(dir, "x_bad.scn", "devices phone\nphone fly\n")
		r := runCLI("lint", filepath.Join(dir, "missing.scn"), file)
		Expect(r.Code).To(Equal(2))
		Expect(r.Stderr).To(ContainSubstring("missing.scn: no such file or directory"))
		Expect(r.Stderr).To(ContainSubstring("x_bad.scn:2: fly: unknown device command"))
	})

	It("reports the whole error corpus of the scenario package, as its golden files say", func() {
		dir := filepath.Join("..", "..", "scenarios", "testdata", "errors")
		goldens, err := filepath.Glob(filepath.Join(dir, "*.golden"))
		Expect(err).NotTo(HaveOccurred())
		Expect(goldens).NotTo(BeEmpty())
		var want strings.Builder
		for _, g := range goldens {
			data, err := os.ReadFile(g)
			Expect(err).NotTo(HaveOccurred())
			want.WriteString(strings.ReplaceAll(string(data), "testdata/errors/", filepath.ToSlash(dir)+"/"))
		}
		r := runCLI("lint", dir)
		Expect(r.Code).To(Equal(2))
		got, summary, _ := strings.Cut(r.Stderr, "syncharness: lint: ")
		Expect(got).To(Equal(want.String()))
		Expect(summary).To(MatchRegexp(`^\d+ errors in %d of %d files\n$`, len(goldens), len(goldens)))
	})

	It("lists every file with -v", func() {
		dir := tempDir()
		file := writeFile(dir, "flags_read.scn", cleanScenario)
		r := runCLI("lint", "-v", file)
		Expect(r.Code).To(Equal(0))
		Expect(r.Stdout).To(Equal("ok   " + file + "\n1 files, 0 with errors\n"))
	})

	It("checks the built-in catalogue without arguments", func() {
		r := runCLI("lint", "-v")
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(MatchRegexp(`\n\d+ files, 0 with errors\n$`))
	})

	It("explains itself with examples in --help", func() {
		r := runCLI("lint", "--help")
		Expect(r.Code).To(Equal(0))
		Expect(r.Stdout).To(ContainSubstring("Examples:"))
		Expect(r.Stdout).To(ContainSubstring("syncharness lint scenarios/catalog/"))
	})
})
