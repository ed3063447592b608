package main

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("help relaxations", func() {
	It("keeps docs/relaxations.md the same as the generated reference", func() {
		r := runCLI("help", "relaxations", "--markdown")
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(HavePrefix("<!-- Code generated"))
		Expect(r.Stdout).To(ContainSubstring("## R15 fold-moves (policy)"))
		docs, err := os.ReadFile(filepath.Join("..", "..", "docs", "relaxations.md"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(docs)).To(Equal(r.Stdout),
			"docs/relaxations.md is stale; regenerate it with: go run ./cmd/syncharness help relaxations --markdown > docs/relaxations.md (or make docs)")
	})

	It("lists the relaxations no passed scenario of the reports needed", func() {
		file := filepath.Join(GinkgoT().TempDir(), "run.json")
		Expect(os.WriteFile(file, []byte(`{"schema_version": 1, "scenarios": [{"name": "a", "status": "passed",
			"relaxations": [{"id": "R15", "name": "fold-moves", "kind": "policy"}]}]}`), 0o644)).To(Succeed())
		r := runCLI("help", "relaxations", "--unused", file)
		Expect(r.Code).To(Equal(0), r.Stderr)
		Expect(r.Stdout).To(ContainSubstring("R14  rescue-to-inbox"))
		Expect(r.Stdout).NotTo(ContainSubstring("fold-moves"))
	})

	It("refuses --unused without a report, exit status 2", func() {
		r := runCLI("help", "relaxations", "--unused")
		Expect(r.Code).To(Equal(2))
		Expect(r.Stderr).To(ContainSubstring("name at least one JSON report"))
	})
})
