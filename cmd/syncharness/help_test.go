package main

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/scenarios"
)

var _ = Describe("syncharness help", func() {
	It("prints the scenario language reference for the topic scenarios", func() {
		r := runCLI("help", "scenarios")
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(Equal(scenarios.Reference()))
	})

	It("keeps docs/scenarios.md the same as the generated reference", func() {
		r := runCLI("help", "scenarios", "--markdown")
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(HavePrefix("<!-- Code generated"))
		docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "scenarios.md"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(docs)).To(Equal(r.Stdout),
			"docs/scenarios.md is stale; regenerate it with: go run ./cmd/syncharness help scenarios --markdown > docs/scenarios.md (or go generate ./cmd/syncharness)")
	})

	It("still prints a command's help", func() {
		r := runCLI("help", "lint")
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(HavePrefix("Check scenario files (or every *.scn file"))
		Expect(r.Stdout).To(ContainSubstring("Usage:\n  syncharness lint [FILE|DIR]..."))
	})

	It("lists the commands and the help topic without arguments", func() {
		r := runCLI("help")
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(ContainSubstring("lint "))
		Expect(r.Stdout).To(ContainSubstring("help scenarios"))
	})

	It("rejects an unknown topic with exit code 2", func() {
		r := runCLI("help", "nonsense")
		Expect(r.Code).To(Equal(2))
		Expect(r.Stderr).To(ContainSubstring(`unknown command or topic "nonsense"`))
	})

	It("explains the topic with examples in --help", func() {
		r := runCLI("help", "scenarios", "--help")
		Expect(r.Code).To(Equal(0))
		Expect(r.Stdout).To(ContainSubstring("syncharness help scenarios --markdown > docs/scenarios.md"))
	})
})
