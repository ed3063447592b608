package main

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("flag values", func() {
	DescribeTable("a bad value stops the command with exit 2, naming the flag",
		func(want string, args ...string) {
			r := runCLI(args...)
			Expect(r.Code).To(Equal(exitUsage), r.Stderr)
			Expect(r.Stderr).To(Equal("syncharness: " + want + "\n"))
			Expect(r.Stdout).To(BeEmpty())
		},
		Entry("run --parallel 0", "--parallel: want at least 1, not 0", "run", "--parallel", "0"),
		Entry("run --parallel -3", "--parallel: want at least 1, not -3", "run", "--parallel=-3"),
		Entry("run --settle-rounds 0", "--settle-rounds: want at least 1, not 0", "run", "--settle-rounds", "0"),
		Entry("run --seed abc", `--seed: "abc" is not an integer`, "run", "--seed", "abc"),
		Entry("run --seed too large", `--seed: "99999999999999999999" is out of range`, "run", "--seed", "99999999999999999999"),
		Entry("run --connect-timeout soon", `--connect-timeout: "soon" is not a duration (write 500ms, 10s, 2m)`, "run", "--connect-timeout", "soon"),
		Entry("explore --devices 1", "--devices: want 2 to 4, not 1", "explore", "--devices", "1"),
		Entry("explore --devices 9", "--devices: want 2 to 4, not 9", "explore", "--devices", "9"),
		Entry("explore --steps 0", "--steps: want at least 1, not 0", "explore", "--steps", "0"),
		Entry("explore --runs -1", "--runs: want at least 1, not -1", "explore", "--runs=-1"),
		Entry("explore --runs x", `--runs: "x" is not an integer`, "explore", "--runs", "x"),
		Entry("explore --parallel 0", "--parallel: want at least 1, not 0", "explore", "--parallel", "0"),
		Entry("explore --duration -1s", "--duration: want at least 1ms, not -1s", "explore", "--duration=-1s"),
		Entry("explore --shrink-budget -1", "--shrink-budget: want at least 0, not -1", "explore", "--shrink-budget=-1"),
		Entry("explore --max-failures 0", "--max-failures: want at least 1, not 0", "explore", "--max-failures", "0"),
		Entry("explore --seed 1.5", `--seed: "1.5" is not an integer`, "explore", "--seed", "1.5"),
		Entry("matrix --parallel 0", "--parallel: want at least 1, not 0", "matrix", "--parallel", "0"),
		Entry("serve --max-literal 0", "--max-literal: want at least 1, not 0", "serve", "--max-literal", "0"),
		Entry("serve --seed x", `--seed: "x" is not an integer`, "serve", "--seed", "x"),
		Entry("lint --verbose=maybe", `--verbose: "maybe" is not true or false`, "lint", "--verbose=maybe"),
	)

	It("keeps an unknown flag a usage error", func() {
		r := runCLI("run", "--paralel", "2")
		Expect(r.Code).To(Equal(exitUsage))
		Expect(r.Stderr).To(ContainSubstring("unknown flag: --paralel"))
	})

	It("accepts values in range and leaves a default outside it alone", func() {
		dir := tempDir()
		file := writeFile(dir, "flags_read.scn", cleanScenario)
		r := runCLI("run", "--parallel", "1", "--settle-rounds", "3", "--seed", "-7", file)
		Expect(r.Code).To(Equal(exitOK), r.Stderr)
		Expect(r.Stderr).To(ContainSubstring("seed -7"))
		r = runCLI("run", file) // --parallel's default 0: the number of CPUs
		Expect(r.Code).To(Equal(exitOK), r.Stderr)
	})
})
