// Package reports holds the result model of a syncharness run and its writers: text for
// terminals, JSON (documented in docs/report-json.md), JUnit XML for CI systems and a report
// directory that keeps everything needed to understand a failed scenario.
//
// The runner fills a Run; the writers never change it. A Run read back from JSON with
// ReadJSON renders exactly as the Run that was written, so reports can be re-rendered later.
package reports

import (
	"fmt"
	"strings"
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
	// Unconfirmed: a failure that a second run of the same scenario with the same seed did
	// not reproduce (syncharness explore). It says the harness was not deterministic, not
	// that the engine or the server broke a guarantee; Failures hold what the first run saw.
	Unconfirmed Status = "unconfirmed"
	// ServerFinding: the scenario did not pass because the server broke an IMAP rule (a
	// server invariant S1… seen on the wire), not because of the engine: every failure is
	// a server finding, or the first server finding came before the states diverged and
	// the same scenario and seed pass on a correct server (see Scenario.Attribution).
	ServerFinding Status = "server"
)

// Valid reports whether s is one of the six statuses.
func (s Status) Valid() bool {
	switch s {
	case Passed, Failed, Skipped, Errored, Unconfirmed, ServerFinding:
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
	Started  time.Time
	Duration time.Duration // wall time of the whole run
	Command  string        // the command line that produced the run
	// Interrupted reports that the run was stopped (Ctrl-C) before every scenario ran: its
	// exit status was 2, whatever the scenarios that ran say.
	Interrupted bool
	Scenarios   []*Scenario // in the order they were listed, not the order they finished
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
	// Attribution says why a scenario that did not pass is a server finding (Status
	// ServerFinding), or why its server findings did not make it one; "" when it has none.
	Attribution string

	Seed     int64         // the seed that reproduces this scenario
	Duration time.Duration // wall time of the scenario, setup to last invariant
	Devices  []string      // device names in the order the scenario declares them

	Steps      []Step           // every step that ran, in order
	Failures   []Failure        // every invariant or expect that did not hold
	Reproduce  string           // one command line that reproduces the scenario (file, seed)
	Transcript []TranscriptLine // the IMAP exchange around the first divergence
	Source     string           // the scenario source (txtar), for later rendering

	// The story of the scenario, for the HTML report's timeline. All optional: a scenario
	// without them still renders, with its steps, failures, tables and source.

	// Timeline is everything that happened, per lane, in time order: the steps, each sync
	// round with its IMAP commands, the faults and the checks.
	Timeline []TimelineEvent
	// DivergedAt is the scenario line of the first step after which the states diverged
	// (from each other or from the expected state); 0 when unknown.
	DivergedAt int
	// States holds each lane's state after each step, in step order.
	States []StateSnapshot
	// FinalState is the state of every lane after the devices settled, with the divergent
	// cells marked; nil when not recorded.
	FinalState *StateTable
	// Relaxations are the relaxations of the checker's model that the outcome of a passed
	// scenario needed: without any one of them the checker would have failed it.
	Relaxations []Relaxation
	// NotApplicable lists the invariants that could not be checked because the devices do
	// not show their sync state (an external engine): I2, I9, I10. They are neither passed
	// nor failed.
	NotApplicable []string
}

// Relaxation names one relaxation of the checker's expected-state model
// (harness/check, docs/relaxations.md).
type Relaxation struct {
	ID   string // "R15"
	Name string // "fold-moves"
	Kind string // "protocol" or "policy"
}

// ServerLane is the lane of the server in a timeline and in state tables; every other lane
// is a device name.
const ServerLane = "server"

// EventKind says what a timeline event is.
type EventKind string

// The kinds of timeline events.
const (
	// EventStep: a scenario step that ran on a lane (a local action, a server change).
	EventStep EventKind = "step"
	// EventSync: one sync round of a device, with the IMAP commands it sent.
	EventSync EventKind = "sync"
	// EventFault: an injected fault: a UIDVALIDITY reset, a dropped connection, a crash,
	// a device going offline or online, an interrupted command.
	EventFault EventKind = "fault"
	// EventExpect: a check, an expect line or an invariant checked at the end.
	EventExpect EventKind = "expect"
)

// TimelineEvent is one mark on a scenario's timeline.
type TimelineEvent struct {
	Time     time.Duration // since the scenario started
	Duration time.Duration // how long it took; 0 for an instant (most faults)
	Lane     string        // ServerLane or a device name
	Kind     EventKind
	Line     int    // scenario line, 0 for what the harness does itself (settle rounds)
	Text     string // what happened, e.g. "phone sync" or "UIDVALIDITY reset of INBOX"
	Error    string // the error it returned or the check's complaint, if any
	// Commands is the IMAP exchange of a sync round (Kind EventSync), credentials redacted;
	// the runner may cap it, counting the lines it left out in CommandsOmitted.
	Commands        []TranscriptLine
	CommandsOmitted int
}

// StateSnapshot is the state of every lane after one step.
type StateSnapshot struct {
	Line  int         // the step's scenario line, 0 for steps the harness adds
	Step  string      // the step's text, e.g. "phone sync"
	Lanes []LaneState // in lane order: the devices, then the server
}

// LaneState is what one lane holds: a row per message.
type LaneState struct {
	Lane     string
	Messages []MessageState // sorted by mailbox, then label
}

// MessageState is one message in one mailbox of a lane.
type MessageState struct {
	Mailbox string
	Label   string   // the message label, e.g. "m1"
	Flags   []string // e.g. \Seen, sorted; empty for none
}

// StateTable is the state of every lane side by side: a row per mailbox and label, a cell per
// lane. It is the final state of a scenario, with the divergent cells marked when it failed.
type StateTable struct {
	Lanes []string        // the columns: the devices, then the server
	Rows  []StateTableRow // sorted by mailbox, then label
	// Mailboxes lists each lane's mailboxes, empty ones included, sorted: one list per
	// entry of Lanes; nil when not recorded.
	Mailboxes [][]string
}

// StateTableRow is one message label in one mailbox across lanes.
type StateTableRow struct {
	Mailbox string
	Label   string
	// Expected is what the checker's expected-state model allows, nil when it has no
	// expectation (a label the history did not make). Its MayBeAbsent, OptionalFlags and
	// AnyFlags say where the model admits several outcomes.
	Expected *StateCell
	Cells    []StateCell // one per column of StateTable.Lanes
}

// StateCell is what one lane holds for one row, or what is expected there.
type StateCell struct {
	Present   bool     // the message is in the mailbox; false shows as "absent"
	Flags     []string // its flags when present (expected: the flags set for sure)
	Divergent bool     // this cell differs from the expected state, or from the others

	// Only in an expected cell: the outcomes the model admits besides Present and Flags.
	MayBeAbsent   bool     // the message may be absent too
	OptionalFlags []string // flags that may be set or not
	AnyFlags      bool     // any flags: the model does not know them
}

// Allows reports whether the expected cell e admits what cell c holds (\Recent aside).
func (e StateCell) Allows(c StateCell) bool {
	if !c.Present {
		return !e.Present || e.MayBeAbsent
	}
	if !e.Present {
		return false
	}
	if e.AnyFlags {
		return true
	}
	has := map[string]bool{}
	for _, f := range c.Flags {
		if !strings.EqualFold(f, `\Recent`) {
			has[strings.ToLower(f)] = true
		}
	}
	for _, f := range e.Flags {
		if !has[strings.ToLower(f)] {
			return false
		}
		delete(has, strings.ToLower(f))
	}
	for _, f := range e.OptionalFlags {
		delete(has, strings.ToLower(f))
	}
	return len(has) == 0
}

// ExpectedText shows an expected cell with every outcome it admits: "absent", "no flags",
// "\Seen", "\Deleted or no flags", "\Seen or absent", "any flags".
func (e StateCell) ExpectedText() string {
	if !e.Present {
		return "absent"
	}
	var alts []string
	switch {
	case e.AnyFlags:
		alts = []string{"any flags"}
	case len(e.OptionalFlags) <= 2:
		// Every combination, the ones with more flags first.
		n := len(e.OptionalFlags)
		for mask := (1 << n) - 1; mask >= 0; mask-- {
			fs := append([]string(nil), e.Flags...)
			for i, f := range e.OptionalFlags {
				if mask&(1<<i) != 0 {
					fs = append(fs, f)
				}
			}
			alts = append(alts, flagText(fs))
		}
	default:
		alts = []string{flagText(e.Flags) + " with or without any of " + strings.Join(e.OptionalFlags, " ")}
	}
	if e.MayBeAbsent {
		alts = append(alts, "absent")
	}
	if len(alts) == 1 {
		return alts[0]
	}
	return strings.Join(alts[:len(alts)-1], ", ") + " or " + alts[len(alts)-1]
}

// flagText shows a message's flags, or "no flags".
func flagText(flags []string) string {
	if len(flags) == 0 {
		return "no flags"
	}
	return strings.Join(flags, " ")
}

// Divergent reports whether any cell of the row is marked divergent.
func (r StateTableRow) Divergent() bool {
	for _, c := range r.Cells {
		if c.Divergent {
			return true
		}
	}
	return false
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
	Passed, Failed, Skipped, Errored, Unconfirmed, Total int
	// Server counts scenarios attributed to the server (Status ServerFinding).
	Server int
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
		case Unconfirmed:
			c.Unconfirmed++
		case ServerFinding:
			c.Server++
		default:
			c.Errored++
		}
	}
	return c
}

// OK reports whether no scenario failed or errored. Skipped and unconfirmed scenarios and
// server findings do not make a run fail (see ExitStatus for how they show); a run without
// scenarios is OK.
func (r *Run) OK() bool {
	c := r.Counts()
	return c.Failed == 0 && c.Errored == 0
}

// The exit statuses of syncharness, for a run and for "syncharness report DIR" that shows
// it again.
const (
	ExitOK          = 0 // every scenario passed or was skipped
	ExitFailed      = 1 // a scenario failed or errored
	ExitUsage       = 2 // a usage or setup error, or an interrupted run
	ExitUnconfirmed = 3 // nothing failed, but a failure did not replay: the harness was not deterministic
	// ExitServer: nothing failed or errored, but scenarios are server findings: the server
	// broke IMAP rules, the engine did not fail. An engine's CI run against a third-party
	// server may accept it; a server's may not.
	ExitServer = 4
)

// ExitStatus is the exit status the run had: ExitUsage when it was interrupted, else
// ExitFailed when a scenario failed or errored, else ExitUnconfirmed when a failure was not
// confirmed by a second run, else ExitServer when scenarios are server findings, else
// ExitOK.
func (r *Run) ExitStatus() int {
	c := r.Counts()
	switch {
	case r.Interrupted:
		return ExitUsage
	case c.Failed > 0 || c.Errored > 0:
		return ExitFailed
	case c.Unconfirmed > 0:
		return ExitUnconfirmed
	case c.Server > 0:
		return ExitServer
	}
	return ExitOK
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
		if err := t.validate(); err != nil {
			return err
		}
	}
	for _, e := range s.Timeline {
		if e.Time < 0 || e.Duration < 0 {
			return fmt.Errorf("timeline event %q: negative time", e.Text)
		}
		if e.CommandsOmitted < 0 {
			return fmt.Errorf("timeline event %q: negative count of omitted commands", e.Text)
		}
		for _, t := range e.Commands {
			if err := t.validate(); err != nil {
				return fmt.Errorf("timeline event %q: %w", e.Text, err)
			}
		}
	}
	if t := s.FinalState; t != nil {
		for _, row := range t.Rows {
			if len(row.Cells) > len(t.Lanes) {
				return fmt.Errorf("final state row %s %s: %d cells for %d lanes", row.Mailbox, row.Label, len(row.Cells), len(t.Lanes))
			}
		}
	}
	return nil
}

func (t TranscriptLine) validate() error {
	if t.Dir != "C" && t.Dir != "S" {
		return fmt.Errorf("transcript line %q: direction %q is neither \"C\" nor \"S\"", t.Text, t.Dir)
	}
	return nil
}
