package reports_test

import (
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/reports"
)

// started is a fixed start time with nanoseconds.
var started = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)

// failedScenario is the failure of the README example.
func failedScenario() *reports.Scenario {
	return &reports.Scenario{
		Name:        "move_concurrent_two_folders",
		File:        "scenarios/catalog/move_concurrent_two_folders.scn",
		Category:    "move",
		Description: "Two devices move the same message to different folders at the same time.",
		Status:      reports.Failed,
		Seed:        7,
		Duration:    410 * time.Millisecond,
		Devices:     []string{"phone", "laptop"},
		Steps: []reports.Step{
			{Line: 4, Text: "deliver INBOX m1", Actor: "server", Start: 1500 * time.Microsecond, Duration: 300 * time.Microsecond},
			{Line: 6, Text: "phone move INBOX m1 Archive", Actor: "phone", Start: 12 * time.Millisecond, Duration: 2 * time.Millisecond},
			{Line: 7, Text: "laptop move INBOX m1 Work", Actor: "laptop", Start: 14 * time.Millisecond, Duration: 2 * time.Millisecond,
				Error: "laptop: move: connection reset"},
			{Text: "settle round 1", Start: 100 * time.Millisecond, Duration: 250 * time.Millisecond},
		},
		Failures: []reports.Failure{{
			Invariant: "I4",
			Title:     "no duplicates",
			Message:   "m1 is in both Archive and Work on the server",
			Devices:   []string{"phone", "laptop"},
			Labels:    []string{"m1"},
			Table: &reports.Table{
				Columns: []string{"label", "mailbox", "server", "phone", "laptop"},
				Rows:    [][]string{{"m1", "Archive", "1", "1", "1"}, {"m1", "Work", "1", "1", "1"}},
			},
		}},
		Reproduce: "syncharness run scenarios/catalog/move_concurrent_two_folders.scn --seed 7",
		Transcript: []reports.TranscriptLine{
			{Device: "phone", Time: 101 * time.Millisecond, Dir: "C", Text: "a7 UID MOVE 1 Archive"},
			{Device: "laptop", Time: 102 * time.Millisecond, Dir: "C", Text: "b9 UID MOVE 1 Work"},
			{Device: "phone", Time: 103500 * time.Microsecond, Dir: "S", Text: "a7 OK [COPYUID 1 1 1] done"},
		},
		Source: "# Two devices move the same message to different folders at the same time.\ndevices phone laptop\n",
	}
}

// sampleRun holds one scenario of every status.
func sampleRun() *reports.Run {
	return &reports.Run{
		SchemaVersion: 1,
		Target:        "fake",
		Engine:        "syncharness-engine",
		Store:         "memory",
		Seed:          7,
		Started:       started,
		Duration:      3210 * time.Millisecond,
		Command:       "syncharness run --seed 7",
		Scenarios: []*reports.Scenario{
			{Name: "flags_read_on_two_devices", File: "scenarios/catalog/flags_read_on_two_devices.scn", Category: "flags",
				Status: reports.Passed, Seed: 7, Duration: 120 * time.Millisecond, Devices: []string{"phone", "laptop"},
				Steps: []reports.Step{{Line: 3, Text: "sync", Start: time.Millisecond, Duration: 5 * time.Millisecond}}},
			failedScenario(),
			{Name: "uidvalidity_reset_dovecot", File: "scenarios/catalog/uidvalidity_reset_dovecot.scn", Category: "uidvalidity",
				Status: reports.Skipped, SkipReason: "the target cannot reset UIDVALIDITY", Seed: 7},
			{Name: "crash_after_append", File: "scenarios/catalog/crash_after_append.scn", Category: "crash",
				Status: reports.Errored, Error: "setup: deliver INBOX m1: connection refused\nsecond line of the error", Seed: 7,
				Duration: 15 * time.Millisecond},
		},
	}
}

// updateGolden rewrites a golden file when SYNCHARNESS_UPDATE_GOLDEN is set, after a
// deliberate change of the output; the spec then compares against the new file.
func updateGolden(path string, content []byte) {
	GinkgoHelper()
	if os.Getenv("SYNCHARNESS_UPDATE_GOLDEN") == "" {
		return
	}
	Expect(os.WriteFile(path, content, 0o644)).To(Succeed())
}
