package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/spf13/pflag"

	"github.com/syncharness/syncharness/harness"
	"github.com/syncharness/syncharness/reports"
)

// reproduceLines returns every reproduce line a run printed.
func reproduceLines(stdout string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`(?m)^\s*reproduce: (.*)$`).FindAllStringSubmatch(stdout, -1) {
		out = append(out, m[1])
	}
	return out
}

// shellWords splits line as a POSIX shell does, by asking one.
func shellWords(line string) []string {
	GinkgoHelper()
	out, err := exec.Command("sh", "-c", `eval "set -- $1"; printf '%s\0' "$@"`, "sh", line).Output()
	Expect(err).NotTo(HaveOccurred(), line)
	words := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	Expect(words[:2]).To(Equal([]string{"syncharness", "run"}), line)
	return words
}

// failureLines are the lines of a run's output that name a broken guarantee.
func failureLines(stdout string) []string {
	return regexp.MustCompile(`(?m)^  (expect \w+ \(line \d+\)|I\d+ [^:]+|S\d [^:]+|settle [^:]+): .*$`).FindAllString(stdout, -1)
}

var _ = Describe("reproduce lines", func() {
	It("repeat every flag that changed the run, and the printed line fails the same way", func() {
		res := runCLI("run", "--broken-engine", "plain-expunge", "--store", "disk", "--settle-rounds", "5",
			"--filter", "^delete_keeps_others_deleted$", "--parallel", "1", "--json", filepath.Join(tempDir(), "r.json"))
		Expect(res.Code).To(Equal(exitFailed), res.Stdout+res.Stderr)
		lines := reproduceLines(res.Stdout)
		Expect(lines).To(HaveLen(1))
		Expect(lines[0]).To(Equal("syncharness run --filter '^delete_keeps_others_deleted$' --seed 1 " +
			"--broken-engine plain-expunge --settle-rounds 5 --store disk"))
		want := failureLines(res.Stdout)
		Expect(want).To(ContainElement(HavePrefix("  I3 no loss: m3 is missing on the server")))

		again := runCLI(shellWords(lines[0])[1:]...)
		Expect(again.Code).To(Equal(exitFailed), again.Stdout+again.Stderr)
		Expect(failureLines(again.Stdout)).To(Equal(want))
		Expect(reproduceLines(again.Stdout)).To(Equal(lines), "the replay's own line is the same")
	})

	It("quote a scenario file's path for the shell, and the printed line runs that file", func() {
		src, err := os.ReadFile("../../scenarios/catalog/delete_keeps_others_deleted.scn")
		Expect(err).NotTo(HaveOccurred())
		file := writeFile(tempDir(), "it's a dir/$HOME `x`.scn", string(src))
		res := runCLI("run", file, "--broken-engine", "plain-expunge", "--seed", "7")
		Expect(res.Code).To(Equal(exitFailed), res.Stdout+res.Stderr)
		lines := reproduceLines(res.Stdout)
		Expect(lines).To(HaveLen(1))
		words := shellWords(lines[0])
		Expect(words).To(Equal([]string{"syncharness", "run", file, "--seed", "7", "--broken-engine", "plain-expunge"}))
		again := runCLI(words[1:]...)
		Expect(again.Code).To(Equal(exitFailed))
		Expect(failureLines(again.Stdout)).To(Equal(failureLines(res.Stdout)))
	})

	It("name every flag of run that changes behaviour: each flag is replayed unless declared otherwise", func() {
		cmd := newRunCmd()
		fl := cmd.Flags()
		var names []string
		fl.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
		for name := range runNotReplayed {
			Expect(names).To(ContainElement(name), "runNotReplayed names a flag run does not have")
		}
		for _, name := range names {
			if runNotReplayed[name] {
				continue
			}
			f := fl.Lookup(name)
			value := map[string]string{"bool": "true", "int": "3", "int64": "3", "duration": "5s", "stringArray": "uidvalidity-bump=it's {mailbox}"}[f.Value.Type()]
			if value == "" {
				value = "it's a value"
			}
			Expect(fl.Set(name, value)).To(Succeed(), name)
			line := harness.ShellJoin(append([]string{"syncharness", "run"}, reproduceFlags(fl, runNotReplayed)...))
			words := shellWords(line)
			Expect(words).To(ContainElement("--"+name), "--%s changes what a run does but is not in its reproduce line: replay it, or add it to runNotReplayed", name)
			if f.Value.Type() != "bool" {
				Expect(words).To(ContainElement(value), "--%s is replayed with its value", name)
			}
		}
	})

	It("replay --strict, which changes the verdicts (protocol relaxations only)", func() {
		Expect(runNotReplayed).NotTo(HaveKey("strict"))
		fl := newRunCmd().Flags()
		Expect(fl.Set("strict", "true")).To(Succeed())
		Expect(reproduceFlags(fl, runNotReplayed)).To(Equal([]string{"--strict"}))
	})

	It("replay --engine and --engine-profile, which change the devices", func() {
		Expect(runNotReplayed).NotTo(HaveKey("engine"))
		Expect(runNotReplayed).NotTo(HaveKey("engine-profile"))
		fl := newRunCmd().Flags()
		Expect(fl.Set("engine", "mbsync")).To(Succeed())
		Expect(fl.Set("engine-profile", "my engine.toml")).To(Succeed())
		Expect(reproduceFlags(fl, runNotReplayed)).To(Equal([]string{"--engine", "mbsync", "--engine-profile", "my engine.toml"}))
	})

	It("name every flag of explore that changes the runs, as a flag run takes too", func() {
		runFlags := newRunCmd().Flags()
		newExploreCmd().Flags().VisitAll(func(f *pflag.Flag) {
			if exploreOnly[f.Name] {
				return
			}
			Expect(runFlags.Lookup(f.Name)).NotTo(BeNil(), "explore's --%s is replayed, but run has no such flag: add it to run or to exploreOnly", f.Name)
		})
	})

	It("of explore replay the written file with the flags that changed the runs", func() {
		dir := tempDir()
		out := filepath.Join(dir, "found here")
		res := runCLI("explore", "--seed", "3", "--runs", "20", "--devices", "2", "--steps", "15", "--parallel", "1",
			"--max-failures", "1", "--broken-engine", "reupload", "--store", "disk", "--out", out)
		Expect(res.Code).To(Equal(exitFailed), res.Stdout+res.Stderr)
		files, err := filepath.Glob(filepath.Join(out, "*.scn"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(1))
		lines := reproduceLines(res.Stdout)
		Expect(lines).To(HaveLen(1))
		words := shellWords(lines[0])
		Expect(words).To(Equal([]string{"syncharness", "run", files[0], "--seed", "3", "--broken-engine", "reupload", "--store", "disk"}))
		data, err := os.ReadFile(files[0])
		Expect(err).NotTo(HaveOccurred())
		Expect(string(data)).To(ContainSubstring("# Replay: syncharness run " + filepath.Base(files[0]) + " --seed 3 --broken-engine reupload --store disk\n"))
		Expect(runCLI(words[1:]...).Code).To(Equal(exitFailed))
	})
})

var _ = Describe("syncharness report DIR", func() {
	It("exits with the status the run had and shows the final state of passed scenarios with -v", func() {
		dir := tempDir()
		failed, passed := filepath.Join(dir, "failed"), filepath.Join(dir, "passed")
		Expect(runCLI("run", "--broken-engine", "plain-expunge", "--filter", "^delete_keeps_others_deleted$", "--report-dir", failed).Code).To(Equal(exitFailed))
		Expect(runCLI("run", "--filter", "^delete_keeps_others_deleted$", "--report-dir", passed).Code).To(Equal(exitOK))

		res := runCLI("report", failed)
		Expect(res.Code).To(Equal(exitFailed), res.Stdout+res.Stderr)
		res = runCLI("report", passed, "-v")
		Expect(res.Code).To(Equal(exitOK), res.Stdout+res.Stderr)
		Expect(res.Stdout).To(ContainSubstring("PASS delete_keeps_others_deleted"))
		Expect(res.Stdout).To(MatchRegexp(`server mailboxes: INBOX\n`))
		Expect(res.Stdout).To(MatchRegexp(`INBOX +m3 +\\Deleted +\\Deleted +\\Deleted +\\Deleted\n`))
	})

	DescribeTable("maps a saved run to its exit status",
		func(run *reports.Run, code int) {
			err := runStatus(run)
			switch code {
			case exitOK:
				Expect(err).NotTo(HaveOccurred())
			case exitUsage:
				Expect(err).To(BeAssignableToTypeOf(usageError{}))
			default:
				var f failedError
				Expect(err).To(BeAssignableToTypeOf(f))
				Expect(err.(failedError).exitCode()).To(Equal(code))
			}
		},
		Entry("passed", &reports.Run{Scenarios: []*reports.Scenario{{Status: reports.Passed}}}, exitOK),
		Entry("failed", &reports.Run{Scenarios: []*reports.Scenario{{Status: reports.Failed}, {Status: reports.Unconfirmed}}}, exitFailed),
		Entry("errored", &reports.Run{Scenarios: []*reports.Scenario{{Status: reports.Errored}}}, exitFailed),
		Entry("interrupted", &reports.Run{Interrupted: true, Scenarios: []*reports.Scenario{{Status: reports.Passed}}}, exitUsage),
		Entry("only unconfirmed", &reports.Run{Scenarios: []*reports.Scenario{{Status: reports.Unconfirmed}, {Status: reports.Passed}}}, 3),
	)
})
