package main

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("files lint, run and fmt refuse", func() {
	DescribeTable("a binary file is one line and exit 2",
		func(content string, at string, cmd ...string) {
			dir := tempDir()
			file := writeFile(dir, "x_bin.scn", content)
			r := runCLI(append(cmd, file)...)
			Expect(r.Code).To(Equal(exitUsage), r.Stderr)
			lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
			want := file + ": not a text file (binary data at byte " + at + ")"
			if cmd[0] == "run" {
				// run prints the errors of its files behind the program's name.
				Expect(lines).To(Equal([]string{"syncharness: " + want}))
				return
			}
			Expect(lines[0]).To(Equal(want))
			Expect(lines).To(HaveLen(2), "one line for the file, one summary")
			Expect(r.Stdout).To(BeEmpty())
		},
		Entry("lint, NUL bytes", "devices phone\x00\x00\x01\x02", "13", "lint"),
		Entry("run, invalid UTF-8", "\xff\xfe d\x00e\x00v\x00", "0", "run"),
		Entry("fmt, invalid UTF-8", "devices phone\n# \xc3\x28\n", "16", "fmt"),
		Entry("fmt -w, NUL", "devices phone\n\x00", "14", "fmt", "-w"),
	)

	It("leaves a binary file alone with fmt -w", func() {
		dir := tempDir()
		file := writeFile(dir, "x_bin.scn", "devices phone\n\x00")
		Expect(runCLI("fmt", "-w", file).Code).To(Equal(exitUsage))
		Expect(readFile(file)).To(Equal("devices phone\n\x00"))
	})

	DescribeTable("a file past a limit is an error at its line, the same from lint and run",
		func(content, want string) {
			dir := tempDir()
			file := writeFile(dir, "x_limit.scn", content)
			for _, cmd := range []string{"lint", "run"} {
				r := runCLI(cmd, file)
				Expect(r.Code).To(Equal(exitUsage), "%s: %s", cmd, r.Stderr)
				Expect(strings.TrimPrefix(r.Stderr, "syncharness: ")).To(HavePrefix(file+want+"\n"), cmd)
			}
		},
		Entry("three nested repeat 1000", "devices phone\nrepeat 1000\nrepeat 1000\nrepeat 1000\nphone sync\nend\nend\nend\n",
			":5: sync: more than 100000 steps with repeat blocks expanded (this line runs 1000000000 times: repeat on line 2, 3, 4)"),
		Entry("size=2000000000", "devices phone\ndeliver INBOX m1 size=2000000000\n",
			":2: deliver: size=2000000000 is too large (at most 50000000 bytes)"),
		Entry("deep nesting", "devices phone\n"+strings.Repeat("repeat 1\n", 20_000)+"phone sync\n"+strings.Repeat("end\n", 20_000),
			":12: repeat: blocks nested 11 deep (at most 10)"),
	)
})

func readFile(path string) string {
	GinkgoHelper()
	data, err := filepath.Abs(path)
	Expect(err).NotTo(HaveOccurred())
	b, err := os.ReadFile(data)
	Expect(err).NotTo(HaveOccurred())
	return string(b)
}
