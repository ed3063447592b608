package reports_test

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

func writeText(r *reports.Run, opts reports.TextOptions) string {
	GinkgoHelper()
	var b bytes.Buffer
	Expect(reports.WriteText(&b, r, opts)).To(Succeed())
	return b.String()
}

func scenarioText(s *reports.Scenario, opts reports.TextOptions) string {
	GinkgoHelper()
	var b bytes.Buffer
	Expect(reports.WriteScenarioText(&b, s, opts)).To(Succeed())
	return b.String()
}

// failingWriter fails every write.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

var _ = Describe("The text report", func() {
	It("shows a failure with the invariant in words, the table, the transcript and the reproduce line", func() {
		Expect(scenarioText(failedScenario(), reports.TextOptions{})).To(Equal(
			`FAIL move_concurrent_two_folders (0.41s)  seed 7
  Two devices move the same message to different folders at the same time.
  I4 no duplicates: m1 is in both Archive and Work on the server
       label  mailbox  server  phone  laptop
       m1     Archive  1       1      1
       m1     Work     1       1      1
  transcript around the first divergence:
    0.101s  phone   C: a7 UID MOVE 1 Archive
    0.102s  laptop  C: b9 UID MOVE 1 Work
    0.104s  phone   S: a7 OK [COPYUID 1 1 1] done
  reproduce: syncharness run scenarios/catalog/move_concurrent_two_folders.scn --seed 7

`))
	})

	It("matches the golden summary of a run with every status", func() {
		out := writeText(sampleRun(), reports.TextOptions{})
		updateGolden("testdata/summary.golden.txt", []byte(out))
		golden, err := os.ReadFile("testdata/summary.golden.txt")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal(string(golden)))
	})

	It("lists failed, errored and skipped scenarios but not passed ones", func() {
		out := writeText(sampleRun(), reports.TextOptions{})
		Expect(out).To(ContainSubstring("FAIL move_concurrent_two_folders (0.41s)  seed 7\n"))
		Expect(out).To(ContainSubstring("ERROR crash_after_append (0.01s)  seed 7\n  error: setup: deliver INBOX m1: connection refused\n    second line of the error\n"))
		Expect(out).To(ContainSubstring("SKIP uidvalidity_reset_dovecot: the target cannot reset UIDVALIDITY\n"))
		Expect(out).NotTo(ContainSubstring("flags_read_on_two_devices"))
		Expect(out).To(HaveSuffix("FAIL  1 failed, 1 errored, 1 skipped, 1 passed of 4 scenarios in 3.21s  (fake, store memory, seed 7)\n"))
	})

	It("ends a run where everything passed with ok and nothing else", func() {
		r := sampleRun()
		r.Scenarios = r.Scenarios[:1]
		Expect(writeText(r, reports.TextOptions{})).To(Equal("ok    1 passed of 1 scenario in 3.21s  (fake, store memory, seed 7)\n"))
	})

	It("lists passed scenarios, steps, devices and labels when verbose", func() {
		out := writeText(sampleRun(), reports.TextOptions{Verbose: true})
		Expect(out).To(HavePrefix("PASS flags_read_on_two_devices (0.12s)\n"))
		Expect(out).To(ContainSubstring("       devices: phone, laptop\n       labels: m1\n"))
		Expect(out).To(ContainSubstring("  steps:\n" +
			"     4  +0.002s  deliver INBOX m1 (300µs)\n" +
			"     6  +0.012s  phone move INBOX m1 Archive (2ms)\n" +
			"     7  +0.014s  laptop move INBOX m1 Work (2ms)\n" +
			"          error: laptop: move: connection reset\n" +
			"        +0.100s  settle round 1 (250ms)\n"))
	})

	It("marks a server finding and the line of a failed expect", func() {
		s := failedScenario()
		s.Failures = []reports.Failure{
			{Invariant: "server", Title: "UIDs not reused", Message: "UID 4 of INBOX was given to m2 after m1 was expunged", Server: true},
			{Invariant: "expect", Line: 14, Message: "server Archive has m2, want m1"},
			{Title: "converged", Message: "the devices did not settle within 10 rounds"},
		}
		out := scenarioText(s, reports.TextOptions{})
		Expect(out).To(ContainSubstring("  server UIDs not reused: UID 4 of INBOX was given to m2 after m1 was expunged [server finding]\n"))
		Expect(out).To(ContainSubstring("  expect (line 14): server Archive has m2, want m1\n"))
		Expect(out).To(ContainSubstring("  converged: the devices did not settle within 10 rounds\n"))
	})

	It("builds the reproduce line from the file and seed when the runner gave none", func() {
		s := failedScenario()
		s.Reproduce = ""
		s.File = "my scenarios/it's.scn"
		s.Seed = 42
		Expect(scenarioText(s, reports.TextOptions{})).To(ContainSubstring(`  reproduce: syncharness run 'my scenarios/it'\''s.scn' --seed 42` + "\n"))
	})

	It("aligns table rows shorter or longer than the header", func() {
		s := failedScenario()
		s.Failures[0].Table = &reports.Table{Columns: []string{"label", "where"}, Rows: [][]string{{"m1"}, {"m22", "Archive", "extra"}}}
		Expect(scenarioText(s, reports.TextOptions{})).To(ContainSubstring(
			"       label  where\n" +
				"       m1\n" +
				"       m22    Archive  extra\n"))
	})

	It("shortens a long transcript unless verbose", func() {
		s := failedScenario()
		s.Transcript = nil
		for i := range 45 {
			s.Transcript = append(s.Transcript, reports.TranscriptLine{Device: "phone", Time: time.Duration(i) * time.Millisecond, Dir: "C", Text: "a NOOP " + strings.Repeat("x", 200)})
		}
		out := scenarioText(s, reports.TextOptions{})
		Expect(strings.Count(out, "a NOOP")).To(Equal(40))
		Expect(out).To(ContainSubstring("… 5 more lines (-v shows them all)"))
		Expect(out).NotTo(ContainSubstring(strings.Repeat("x", 200)))
		verbose := scenarioText(s, reports.TextOptions{Verbose: true})
		Expect(strings.Count(verbose, "a NOOP "+strings.Repeat("x", 200))).To(Equal(45))
	})

	Context("without colour", func() {
		It("contains no escape sequence, even from a hostile server or scenario", func() {
			r := hostileRun()
			r.Scenarios[1].Transcript = append(r.Scenarios[1].Transcript,
				reports.TranscriptLine{Device: "phone", Dir: "S", Text: "* OK \x1b]0;owned\x07 \x1b[2J\u009b31m"})
			for _, verbose := range []bool{false, true} {
				out := writeText(r, reports.TextOptions{Verbose: verbose})
				Expect(out).NotTo(ContainSubstring("\x1b"))
				Expect(out).NotTo(ContainSubstring("\u009b"))
				Expect(out).NotTo(ContainSubstring("\r"))
				Expect(out).To(ContainSubstring(`* OK \x1b]0;owned\x07 \x1b[2J\u009b31m`))
			}
		})
	})

	Context("with colour", func() {
		It("colours the verdicts and resets every style it sets", func() {
			out := writeText(sampleRun(), reports.TextOptions{Color: true, Verbose: true})
			Expect(out).To(ContainSubstring("\x1b[1;31mFAIL\x1b[0m \x1b[1mmove_concurrent_two_folders\x1b[0m"))
			Expect(out).To(ContainSubstring("\x1b[32mPASS\x1b[0m flags_read_on_two_devices"))
			Expect(out).To(ContainSubstring("\x1b[33mSKIP\x1b[0m uidvalidity_reset_dovecot"))
			for _, line := range strings.Split(out, "\n") {
				sets := strings.Count(line, "\x1b[") - strings.Count(line, "\x1b[0m")
				Expect(strings.Count(line, "\x1b[0m")).To(Equal(sets), "line %q leaves a style on", line)
			}
		})

		It("shows the same words as without colour", func() {
			colored := writeText(sampleRun(), reports.TextOptions{Color: true, Verbose: true})
			plain := writeText(sampleRun(), reports.TextOptions{Verbose: true})
			Expect(stripANSI(colored)).To(Equal(plain))
		})
	})

	It("returns the writer's error", func() {
		Expect(reports.WriteText(failingWriter{}, sampleRun(), reports.TextOptions{})).To(MatchError(ContainSubstring("disk full")))
		Expect(reports.WriteScenarioText(failingWriter{}, failedScenario(), reports.TextOptions{})).To(MatchError(ContainSubstring("disk full")))
	})

	It("refuses a nil run or scenario", func() {
		Expect(reports.WriteText(&bytes.Buffer{}, nil, reports.TextOptions{})).To(HaveOccurred())
		Expect(reports.WriteScenarioText(&bytes.Buffer{}, nil, reports.TextOptions{})).To(HaveOccurred())
	})
})

// stripANSI removes the SGR sequences the text writer uses.
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := strings.IndexByte(s[i:], 'm')
			Expect(j).To(BeNumerically(">", 0))
			i += j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

var _ = Describe("Multi-line messages in the text report", func() {
	It("indent every further line under the first, with CRLF line ends taken as line ends", func() {
		s := failedScenario()
		s.Failures[0].Message = "first\r\nsecond\r\n"
		s.Failures[0].Table = nil
		Expect(scenarioText(s, reports.TextOptions{})).To(ContainSubstring("  I4 no duplicates: first\n    second\n  transcript"))
	})
})
