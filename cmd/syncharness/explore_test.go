package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

func readRun(path string) *reports.Run {
	GinkgoHelper()
	f, err := os.Open(path)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	run, err := reports.ReadJSON(f)
	Expect(err).NotTo(HaveOccurred())
	return run
}

var _ = Describe("syncharness explore", func() {
	It("finds a broken engine's failure, writes the shrunk scenario, and run replays it", func() {
		dir := tempDir()
		out, js := filepath.Join(dir, "found"), filepath.Join(dir, "explore.json")
		res := runCLI("explore", "--seed", "3", "--runs", "20", "--devices", "2", "--steps", "15",
			"--parallel", "1", "--max-failures", "1", "--broken-engine", "reupload", "--out", out, "--json", js)
		Expect(res.Code).To(Equal(exitFailed), res.Stdout+res.Stderr)
		Expect(res.Stderr).To(ContainSubstring("exploring with seed 3: 2 devices, 15 steps, 20 runs"))
		Expect(res.Stdout).To(MatchRegexp(`FAIL I[45] `))
		Expect(res.Stdout).To(ContainSubstring("confirmed"))
		files, err := filepath.Glob(filepath.Join(out, "*.scn"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(1))
		Expect(res.Stdout).To(ContainSubstring("reproduce: syncharness run " + files[0] + " --seed 3 --broken-engine reupload"))
		Expect(readRun(js).Scenarios).To(HaveLen(1))

		replay := runCLI("run", files[0], "--seed", "3", "--broken-engine", "reupload")
		Expect(replay.Code).To(Equal(exitFailed))
		Expect(replay.Stdout).To(MatchRegexp(`I[45] no (resurrection|duplicates)`))
		Expect(runCLI("run", files[0], "--seed", "3").Code).To(Equal(exitOK), "the correct engine passes it")
	})

	It("explores an external engine: claims skip runs, a failure is confirmed five times and replays with --engine", func() {
		if _, err := exec.LookPath("mbsync"); err != nil {
			if os.Getenv("SYNCHARNESS_REQUIRE_ENGINES") == "1" {
				Fail("mbsync is not installed and SYNCHARNESS_REQUIRE_ENGINES=1")
			}
			Skip("mbsync is not installed (Debian: isync; .ci/run installs it)")
		}
		dir := tempDir()
		out, js := filepath.Join(dir, "found"), filepath.Join(dir, "explore.json")
		res := runCLI("explore", "--engine", "mbsync", "--seed", "7", "--runs", "4", "--devices", "2", "--steps", "12",
			"--parallel", "1", "--max-failures", "1", "--shrink-budget", "0", "--out", out, "--json", js)
		Expect(res.Code).To(Equal(exitFailed), res.Stdout+res.Stderr)
		Expect(res.Stdout).To(ContainSubstring("confirmed by 5 runs out of 5"))
		Expect(res.Stdout).To(MatchRegexp(`\d+ skipped`), "runs needing what mbsync does not claim")
		files, err := filepath.Glob(filepath.Join(out, "*.scn"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(1))
		Expect(res.Stdout).To(ContainSubstring("reproduce: syncharness run " + files[0] + " --seed 7 --engine mbsync"))
		run := readRun(js)
		Expect(run.Engine).To(HavePrefix("mbsync"))
		Expect(run.Scenarios).To(HaveLen(1))
		Expect(run.Scenarios[0].NotApplicable).To(ContainElements("I2", "I9", "I10"))
		inv := run.Scenarios[0].Failures[0].Invariant

		replay := runCLI("run", files[0], "--seed", "7", "--engine", "mbsync")
		Expect(replay.Code).To(Equal(exitFailed), replay.Stdout)
		Expect(replay.Stdout).To(MatchRegexp(`(?m)^  `+regexp.QuoteMeta(inv)+` `), "the same verdict")
	})

	It("skips, with the IDLE latency it measured, the push episodes a slow server cannot pass, and with --idle-wait waits for them", func() {
		dir := tempDir()
		out, js := filepath.Join(dir, "found"), filepath.Join(dir, "explore.json")
		args := []string{"explore", "--seed", "5", "--runs", "10", "--devices", "2", "--steps", "8", "--faults", "push",
			"--parallel", "2", "--out", out}
		slow := runCLI(append(args, "--server-mode", "idle-every=60s", "--json", js)...)
		Expect(slow.Code).To(Equal(exitOK), slow.Stdout+slow.Stderr)
		Expect(slow.Stderr).To(ContainSubstring("the server's IDLE latency: more than 1.5s, measured once for this exploration; runs with a push episode (within=500ms) are skipped (--idle-wait waits instead)"))
		m := regexp.MustCompile(`(?m)^ok +10 runs, 0 failures, (\d+) skipped for the server's IDLE latency \(more than 1\.5s, longer than within=500ms\)`).FindStringSubmatch(slow.Stdout)
		Expect(m).NotTo(BeNil(), slow.Stdout)
		Expect(filepath.Glob(filepath.Join(out, "*.scn"))).To(BeEmpty(), "nothing written")
		run := readRun(js)
		Expect(strconv.Itoa(len(run.Scenarios))).To(Equal(m[1]), "the JSON lists each skipped run")
		for _, s := range run.Scenarios {
			Expect(s.Status).To(Equal(reports.Skipped))
			Expect(s.SkipReason).To(ContainSubstring("after more than 1.5s"))
		}

		fast := runCLI(args...)
		Expect(fast.Code).To(Equal(exitOK), fast.Stdout+fast.Stderr)
		Expect(fast.Stdout).To(MatchRegexp(`(?m)^ok +10 runs, 0 failures, [\d.]+ runs/s`))
		Expect(fast.Stderr).NotTo(ContainSubstring("IDLE latency"))

		wait := runCLI(append(args, "--server-mode", "idle-every=1s", "--idle-wait")...)
		Expect(wait.Code).To(Equal(exitOK), wait.Stdout+wait.Stderr)
		Expect(wait.Stderr).To(MatchRegexp(`the server's IDLE latency: \d\.\ds, measured once for this exploration; every within= waits that much longer`))
		Expect(wait.Stdout).To(MatchRegexp(`(?m)^ok +10 runs, 0 failures, [\d.]+ runs/s`), "none skipped, none failed")
	})

	It("explains the IDLE latency and --idle-wait in its help", func() {
		res := runCLI("explore", "--help")
		Expect(res.Code).To(Equal(exitOK))
		Expect(res.Stdout).To(ContainSubstring("server's IDLE latency"))
		Expect(res.Stdout).To(ContainSubstring("--idle-wait"))
		Expect(res.Stdout).To(ContainSubstring("idle-every=60s"))
	})

	It("prints the seed it picked so the exploration can be repeated", func() {
		res := runCLI("explore", "--runs", "2", "--devices", "2", "--steps", "3", "--faults", "none", "--out", tempDir())
		Expect(res.Code).To(BeElementOf(exitOK, exitFailed))
		m := regexp.MustCompile(`exploring with seed (\d+).*\(repeat with --seed (\d+)\)`).FindStringSubmatch(res.Stderr)
		Expect(m).NotTo(BeNil(), res.Stderr)
		Expect(m[1]).To(Equal(m[2]))
		Expect(res.Stdout).To(ContainSubstring("2 runs"))
	})

	DescribeTable("rejects bad options with exit status 2",
		func(args []string, message string) {
			res := runCLI(append([]string{"explore", "--runs", "1"}, args...)...)
			Expect(res.Code).To(Equal(exitUsage))
			Expect(res.Stderr).To(ContainSubstring(message))
		},
		Entry("too many devices", []string{"--devices", "5"}, "--devices: want 2 to 4, not 5"),
		Entry("a shard beyond N", []string{"--shard", "4/3"}, `--shard "4/3"`),
		Entry("a shard that is not K/N", []string{"--shard", "2"}, `--shard "2"`),
		Entry("an unknown fault", []string{"--faults", "crash,meteor"}, `unknown fault "meteor"`),
		Entry("an unknown broken engine", []string{"--broken-engine", "sloppy"}, "--broken-engine"),
		Entry("an unknown server bug", []string{"--server-bug", "lazy"}, "--server-bug"),
		Entry("an unknown engine", []string{"--engine", "nosuch"}, "--engine"),
		Entry("a profile file that is not there", []string{"--engine-profile", "nosuch.toml"}, "--engine-profile"),
	)
})

var _ = Describe("syncharness report merge", func() {
	It("combines the JSON results of explore shards and fails when one has a failure", func() {
		dir := tempDir()
		var parts []string
		for _, shard := range []string{"1/2", "2/2"} {
			js := filepath.Join(dir, "shard-"+shard[:1]+".json")
			res := runCLI("explore", "--seed", "3", "--runs", "8", "--devices", "2", "--steps", "15", "--parallel", "1",
				"--broken-engine", "reupload", "--shard", shard, "--out", filepath.Join(dir, "found"), "--json", js)
			Expect(res.Code).To(BeElementOf(exitOK, exitFailed))
			Expect(res.Stderr).To(ContainSubstring("shard " + shard))
			parts = append(parts, js)
		}
		want := len(readRun(parts[0]).Scenarios) + len(readRun(parts[1]).Scenarios)
		Expect(want).To(BeNumerically(">", 0))
		merged := filepath.Join(dir, "all", "merged.json")
		res := runCLI("report", "merge", parts[0], parts[1], "-o", merged)
		Expect(res.Code).To(Equal(exitFailed))
		Expect(res.Stderr).To(ContainSubstring("merged 2 result(s)"))
		run := readRun(merged)
		Expect(run.Scenarios).To(HaveLen(want))
		Expect(run.Seed).To(Equal(int64(3)))
	})

	It("writes to standard output without -o and reports an unreadable input with exit status 2", func() {
		dir := tempDir()
		empty := writeFile(dir, "empty.json", `{"schema_version":1,"scenarios":[]}`)
		res := runCLI("report", "merge", empty, empty)
		Expect(res.Code).To(Equal(exitOK), res.Stderr)
		Expect(res.Stdout).To(ContainSubstring(`"scenarios"`))
		bad := runCLI("report", "merge", filepath.Join(dir, "missing.json"))
		Expect(bad.Code).To(Equal(exitUsage))
	})
})
