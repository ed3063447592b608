package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/scenarios"
)

var _ = Describe("syncharness help", func() {
	It("prints the scenario language reference as text, 80 columns wide, when not on a terminal", func() {
		r := runCLI("help", "scenarios")
		Expect(r.Code).To(Equal(0), r.Stderr)
		md := scenarios.Reference()
		Expect(r.Stdout).To(Equal(renderText(md, textStyle{width: 80})))
		Expect(r.Stdout).To(HavePrefix("The scenario language\n=====================\n\n"))
		Expect(r.Stdout).NotTo(ContainSubstring("```"))
		Expect(r.Stdout).NotTo(ContainSubstring("|---"))
		Expect(r.Stdout).NotTo(ContainSubstring("\x1b"))
		Expect(r.Stdout).To(ContainSubstring("\n    devices phone laptop\n"), "code indented by four spaces")
		for _, line := range strings.Split(r.Stdout, "\n") {
			if utf8.RuneCountInString(line) > 80 {
				Expect(md).To(ContainSubstring("\n"+strings.TrimPrefix(line, "    ")+"\n"), "only code lines are longer than 80 columns")
			}
		}
	})

	Describe("on a terminal", func() {
		var size termSize
		BeforeEach(func() {
			saved := outputTerminal
			outputTerminal = func(io.Writer) (termSize, bool) { return size, true }
			DeferCleanup(func() { outputTerminal = saved })
		})

		It("wraps to its width, makes headings bold and pages through $PAGER when longer than it", func() {
			size = termSize{cols: 60, rows: 40}
			paged := filepath.Join(tempDir(), "paged")
			GinkgoT().Setenv("PAGER", "cat > "+paged)
			r := runCLI("help", "scenarios")
			Expect(r.Code).To(Equal(0), r.Stderr)
			Expect(r.Stdout).To(BeEmpty(), "the pager got the text")
			got, err := os.ReadFile(paged)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(got)).To(Equal(renderText(scenarios.Reference(), textStyle{width: 60, bold: true})))
			Expect(string(got)).To(HavePrefix(boldOn + "The scenario language" + boldOff + "\n\n"))
		})

		It("prints without a pager when the text fits", func() {
			size = termSize{cols: 100, rows: 100_000}
			GinkgoT().Setenv("PAGER", "exit 3")
			r := runCLI("help", "scenarios")
			Expect(r.Code).To(Equal(0), r.Stderr)
			Expect(r.Stdout).To(Equal(renderText(scenarios.Reference(), textStyle{width: 100, bold: true})))
		})

		It("prints without a pager when PAGER is cat", func() {
			size = termSize{cols: 80, rows: 10}
			GinkgoT().Setenv("PAGER", "cat")
			r := runCLI("help", "scenarios")
			Expect(r.Code).To(Equal(0), r.Stderr)
			Expect(r.Stdout).To(HavePrefix(boldOn + "The scenario language"))
		})

		It("fails with exit 2 when the pager fails", func() {
			size = termSize{cols: 80, rows: 10}
			GinkgoT().Setenv("PAGER", "exit 3")
			r := runCLI("help", "scenarios")
			Expect(r.Code).To(Equal(exitUsage))
			Expect(r.Stderr).To(ContainSubstring(`help scenarios: pager "exit 3"`))
		})

		It("keeps the Markdown with --markdown", func() {
			size = termSize{cols: 60, rows: 10}
			r := runCLI("help", "scenarios", "--markdown")
			Expect(r.Stdout).To(Equal(docsHeader + scenarios.Reference()))
		})
	})

	It("lays out each kind of Markdown block of the reference", func() {
		md := "# Title\n\nA paragraph `with code` and a [link](https://x.org) that is long enough to wrap here.\n\n" +
			"## Part\n\n- an item that is long enough to wrap once\n- `#` starts one\n\n```\nrepeat 2\n  phone sync\nend\n```\n\n" +
			"| Word | Meaning |\n|---|---|\n| `N` | a number |\n| `a\\|b` | either |\n\n" +
			"| Long | Table | Here |\n|---|---|---|\n| `first cell` | a cell far too wide to sit in a column next to the others | x |\n"
		Expect(renderText(md, textStyle{width: 40})).To(Equal("" +
			"Title\n=====\n\n" +
			"A paragraph with code and a link\n(https://x.org) that is long enough to\nwrap here.\n\n" +
			"Part\n----\n\n" +
			"  - an item that is long enough to wrap\n    once\n  - \"#\" starts one\n\n" +
			"    repeat 2\n      phone sync\n    end\n\n" +
			"Word  Meaning\n----  --------\nN     a number\na|b   either\n\n" +
			"first cell\n    Table: a cell far too wide to sit in\n    a column next to the others\n    Here: x\n"))
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
