package main

import (
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const messyScenario = "#  Messy.\ndevices   phone\n\n\n   deliver inbox m1 flags=\\seen\nphone   read INBOX m1   # read it\nrepeat 2\nphone sync\nend\n-- m9.eml --\nbody\n"

const canonicalScenario = "#  Messy.\ndevices phone\n\ndeliver INBOX m1 flags=\\Seen\nphone read INBOX m1  # read it\nrepeat 2\n  phone sync\nend\n-- m9.eml --\nbody\n"

var _ = Describe("syncharness fmt", func() {
	It("prints the canonical form and leaves the file alone", func() {
		file := writeFile(tempDir(), "x.scn", messyScenario)
		r := runCLI("fmt", file)
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(Equal(canonicalScenario))
		data, err := os.ReadFile(file)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(data)).To(Equal(messyScenario))
	})

	It("is idempotent", func() {
		file := writeFile(tempDir(), "x.scn", canonicalScenario)
		r := runCLI("fmt", file)
		Expect(r.Stdout).To(Equal(canonicalScenario))
	})

	It("rewrites with -w only the files whose form changes", func() {
		dir := tempDir()
		messy := writeFile(dir, "messy.scn", messyScenario)
		canonical := writeFile(dir, "canonical.scn", canonicalScenario)
		past := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		Expect(os.Chtimes(canonical, past, past)).To(Succeed())

		r := runCLI("fmt", "-w", dir)
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(BeEmpty())
		data, err := os.ReadFile(messy)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(data)).To(Equal(canonicalScenario))
		info, err := os.Stat(canonical)
		Expect(err).NotTo(HaveOccurred())
		Expect(info.ModTime()).To(BeTemporally("==", past), "an already canonical file was rewritten")
	})

	It("lists with -l the files that are not canonical", func() {
		dir := tempDir()
		messy := writeFile(dir, "messy.scn", messyScenario)
		writeFile(dir, "canonical.scn", canonicalScenario)
		r := runCLI("fmt", "-l", dir)
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(Equal(messy + "\n"))
	})

	It("formats files with semantic errors but refuses syntax errors, exiting 2", func() {
		dir := tempDir()
		semantic := writeFile(dir, "a.scn", "devices phone\nphnoe   sync\n")
		broken := writeFile(dir, "b.scn", "devices phone\nphone sync interrupt-after=never\n")
		r := runCLI("fmt", "-w", semantic, broken)
		Expect(r.Code).To(Equal(2))
		Expect(r.Stderr).To(ContainSubstring(broken + `:2: sync: bad number "never" for interrupt-after`))
		Expect(r.Stderr).To(ContainSubstring("fmt: 1 of 2 files could not be formatted"))
		data, err := os.ReadFile(semantic)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(data)).To(Equal("devices phone\nphnoe sync\n"))
		data, err = os.ReadFile(broken)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(data)).To(Equal("devices phone\nphone sync interrupt-after=never\n"))
	})

	It("needs at least one file", func() {
		r := runCLI("fmt")
		Expect(r.Code).To(Equal(2))
		Expect(r.Stderr).To(ContainSubstring("requires at least 1 arg"))
	})

	It("explains itself with examples in --help", func() {
		r := runCLI("fmt", "--help")
		Expect(r.Code).To(Equal(0))
		Expect(r.Stdout).To(ContainSubstring("syncharness fmt -w scenarios/catalog/"))
	})
})
