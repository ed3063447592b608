// Package reports holds the result model of a syncharness run and its writers: text for
// terminals, JSON (documented in docs/report-json.md), JUnit XML for CI systems and a report
// directory that keeps everything needed to understand a failed scenario.
//
// The runner fills a Run; the writers never change it. A Run read back from JSON with
// ReadJSON renders exactly as the Run that was written, so reports can be re-rendered later.
package reports

import (
	"fmt"
	"time"
)

// SchemaVersion is the version of the result model and of its JSON form. It changes only
// when a field changes meaning or disappears; new fields keep the version.
const SchemaVersion = 1

// Status is the outcome of one scenario.
type Status string

// The outcomes of a scenario.
const (
	// Passed: every step ran, the devices settled and every invariant and expect held.
	Passed Status = "passed"
	// Failed: an invariant or an expect line did not hold (see Scenario.Failures).
	Failed Status = "failed"
	// Skipped: the scenario did not run on this target (see Scenario.SkipReason).
	Skipped Status = "skipped"
	// Errored: the scenario could not be run to the end because of a setup or runtime
	// error that is not a verdict about the engine or the server (see Scenario.Error).
	Errored Status = "error"
)

// Valid reports whether s is one of the four statuses.
func (s Status) Valid() bool {
	switch s {
	case Passed, Failed, Skipped, Errored:
		return true
	}
	return false
}

// Run is the result of one invocation of the harness over any number of scenarios.
type Run struct {
	SchemaVersion int    // SchemaVersion (1)
	Target        string // "fake" or a server URL without credentials
	Engine        string // the device implementation, e.g. "syncharness-engine"
	Store         string // "memory" or "disk"
	Seed          int64  // the run's seed; each scenario records the seed it actually used
	// Started is when the run began, best in UTC (time.Now().UTC()): JSON keeps the
	// instant to the nanosecond, in UTC, without a monotonic clock reading.
	Started   time.Time
	Duration  time.Duration // wall time of the whole run
	Command   string        // the command line that produced the run
	Scenarios []*Scenario   // in the order they were listed, not the order they finished
}

// Scenario is the result of one scenario file.
type Scenario struct {
	Name        string // the scenario's name, e.g. "move_concurrent_two_folders"
	File        string // the scenario file as given on the command line
	Category    string // the name's category prefix, e.g. "move"
	Description string // the file's first comment line(s)

	Status     Status
	SkipReason string // why the scenario was skipped (Status Skipped)
	Error      string // the setup or runtime error (Status Errored)

	Seed     int64         // the seed that reproduces this scenario
	Duration time.Duration // wall time of the scenario, setup to last invariant
	Devices  []string      // device names in the order the scenario declares them

	Steps      []Step           // every step that ran, in order
	Failures   []Failure        // every invariant or expect that did not hold
	Reproduce  string           // one command line that reproduces the scenario (file, seed)
	Transcript []TranscriptLine // the IMAP exchange around the first divergence
	Source     string           // the scenario source (txtar), for later rendering
}

// Step is one executed step of a scenario: a line of the script, or a step the harness adds
// itself (a settle round has Line 0 and Text "settle round N").
type Step struct {
	Line     int           // scenario line, 0 for steps the harness adds
	Text     string        // the step as written, e.g. "laptop move INBOX m1 Archive"
	Actor    string        // a device name, "server" or "" for flow and checks
	Start    time.Duration // since the scenario started
	Duration time.Duration
	Error    string // the error the step returned, if any
}

// Failure is one guarantee that did not hold at the end of a scenario.
type Failure struct {
	Invariant string   // "I1"…"I10", "expect", "server", "settle", …
	Title     string   // the guarantee in words: "no duplicates"
	Message   string   // what broke it: "m3 is twice in Archive on the server"
	Line      int      // scenario line of a failed expect, 0 otherwise
	Devices   []string // devices involved
	Labels    []string // message labels involved
	Table     *Table   // expected vs seen, nil when there is nothing to tabulate
	Server    bool     // the server broke a guarantee (a server finding, not an engine one)
}

// Table is a small table of strings: expected vs seen, one row per message or mailbox.
// Rows may be shorter than Columns; missing cells are empty.
type Table struct {
	Columns []string
	Rows    [][]string
}

// TranscriptLine is one line of the IMAP exchange between a device and the server, as the
// proxy saw it (credentials already redacted).
type TranscriptLine struct {
	Device string        // the device whose connection carried the line
	Time   time.Duration // since the scenario started
	Dir    string        // "C" client to server, "S" server to client
	Text   string        // the line without its CRLF
}

// Counts tallies the scenarios of a run by status.
type Counts struct {
	Passed, Failed, Skipped, Errored, Total int
}

// Counts tallies r's scenarios by status. A nil scenario or one whose status is not one of
// the four counts as errored, so a mistake in the runner never reads as a pass.
func (r *Run) Counts() Counts {
	var c Counts
	for _, s := range r.Scenarios {
		c.Total++
		if s == nil {
			c.Errored++
			continue
		}
		switch s.Status {
		case Passed:
			c.Passed++
		case Failed:
			c.Failed++
		case Skipped:
			c.Skipped++
		default:
			c.Errored++
		}
	}
	return c
}

// OK reports whether no scenario failed or errored. Skipped scenarios do not make a run
// fail; a run without scenarios is OK.
func (r *Run) OK() bool {
	c := r.Counts()
	return c.Failed == 0 && c.Errored == 0
}

// Validate reports the first thing in r that no writer can represent faithfully: a nil
// scenario, a status that is not one of the four, a transcript direction other than "C" or
// "S", or a negative duration. The writers refuse such a run instead of guessing.
func (r *Run) Validate() error {
	if r.Duration < 0 {
		return fmt.Errorf("run duration %v is negative", r.Duration)
	}
	for i, s := range r.Scenarios {
		if s == nil {
			return fmt.Errorf("scenario %d is nil", i)
		}
		if err := s.validate(); err != nil {
			return fmt.Errorf("scenario %q: %w", s.Name, err)
		}
	}
	return nil
}

func (s *Scenario) validate() error {
	if !s.Status.Valid() {
		return fmt.Errorf("unknown status %q", s.Status)
	}
	if s.Duration < 0 {
		return fmt.Errorf("duration %v is negative", s.Duration)
	}
	for _, st := range s.Steps {
		if st.Start < 0 || st.Duration < 0 {
			return fmt.Errorf("step at line %d: negative time", st.Line)
		}
	}
	for _, t := range s.Transcript {
		if t.Dir != "C" && t.Dir != "S" {
			return fmt.Errorf("transcript line %q: direction %q is neither \"C\" nor \"S\"", t.Text, t.Dir)
		}
	}
	return nil
}
