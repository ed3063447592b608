package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// The JSON form of the model. Field names are part of the documented schema
// (docs/report-json.md): add fields freely, never rename or drop one without changing
// SchemaVersion. Lists are always written, empty as []; optional strings, zero line numbers
// and an absent table are left out.

type jsonRun struct {
	SchemaVersion int             `json:"schema_version"`
	Target        string          `json:"target"`
	Engine        string          `json:"engine"`
	Store         string          `json:"store"`
	Seed          int64           `json:"seed"`
	Started       string          `json:"started"`
	DurationMS    millis          `json:"duration_ms"`
	Command       string          `json:"command"`
	Interrupted   bool            `json:"interrupted,omitempty"`
	OK            bool            `json:"ok"`
	ExitStatus    int             `json:"exit_status"`
	Counts        jsonCounts      `json:"counts"`
	Scenarios     []*jsonScenario `json:"scenarios"`
}

type jsonCounts struct {
	Total   int `json:"total"`
	Passed  int `json:"passed"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
	Errored int `json:"errored"`
	// Unconfirmed counts explore failures a second run did not reproduce.
	Unconfirmed int `json:"unconfirmed"`
	// Server counts scenarios attributed to the server (status "server").
	Server int `json:"server"`
}

type jsonScenario struct {
	Name        string           `json:"name"`
	File        string           `json:"file"`
	Category    string           `json:"category"`
	Description string           `json:"description,omitempty"`
	Status      Status           `json:"status"`
	SkipReason  string           `json:"skip_reason,omitempty"`
	Error       string           `json:"error,omitempty"`
	Attribution string           `json:"attribution,omitempty"`
	Seed        int64            `json:"seed"`
	DurationMS  millis           `json:"duration_ms"`
	Devices     []string         `json:"devices"`
	Steps       []jsonStep       `json:"steps"`
	Failures    []jsonFailure    `json:"failures"`
	Reproduce   string           `json:"reproduce,omitempty"`
	Transcript  []jsonTranscript `json:"transcript"`
	Source      string           `json:"source,omitempty"`
	// The timeline fields are left out when the runner did not record them.
	Timeline   []jsonEvent     `json:"timeline,omitempty"`
	DivergedAt int             `json:"diverged_at,omitempty"`
	States     []jsonSnapshot  `json:"states,omitempty"`
	FinalState *jsonStateTable `json:"final_state,omitempty"`
	// Relaxations the outcome of a passed scenario needed.
	Relaxations []jsonRelaxation `json:"relaxations,omitempty"`
	// NotApplicable are the invariants the devices could not show the state for.
	NotApplicable []string `json:"not_applicable,omitempty"`
}

type jsonRelaxation struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind string `json:"kind"`
}

type jsonEvent struct {
	TimeMS          millis           `json:"time_ms"`
	DurationMS      millis           `json:"duration_ms"`
	Lane            string           `json:"lane"`
	Kind            EventKind        `json:"kind"`
	Line            int              `json:"line,omitempty"`
	Text            string           `json:"text"`
	Error           string           `json:"error,omitempty"`
	Commands        []jsonTranscript `json:"commands"`
	CommandsOmitted int              `json:"commands_omitted,omitempty"`
}

type jsonSnapshot struct {
	Line  int             `json:"line,omitempty"`
	Step  string          `json:"step"`
	Lanes []jsonLaneState `json:"lanes"`
}

type jsonLaneState struct {
	Lane     string             `json:"lane"`
	Messages []jsonMessageState `json:"messages"`
}

type jsonMessageState struct {
	Mailbox string   `json:"mailbox"`
	Label   string   `json:"label"`
	Flags   []string `json:"flags"`
}

type jsonStateTable struct {
	Lanes     []string       `json:"lanes"`
	Rows      []jsonStateRow `json:"rows"`
	Mailboxes [][]string     `json:"mailboxes,omitempty"`
}

type jsonStateRow struct {
	Mailbox  string          `json:"mailbox"`
	Label    string          `json:"label"`
	Expected *jsonStateCell  `json:"expected,omitempty"`
	Cells    []jsonStateCell `json:"cells"`
}

type jsonStateCell struct {
	Present   bool     `json:"present"`
	Flags     []string `json:"flags"`
	Divergent bool     `json:"divergent"`
	// Expected cells only.
	MayBeAbsent   bool     `json:"may_be_absent,omitempty"`
	OptionalFlags []string `json:"optional_flags,omitempty"`
	AnyFlags      bool     `json:"any_flags,omitempty"`
}

type jsonStep struct {
	Line       int    `json:"line,omitempty"`
	Text       string `json:"text"`
	Actor      string `json:"actor,omitempty"`
	StartMS    millis `json:"start_ms"`
	DurationMS millis `json:"duration_ms"`
	Error      string `json:"error,omitempty"`
}

type jsonFailure struct {
	Invariant string     `json:"invariant"`
	Title     string     `json:"title"`
	Message   string     `json:"message"`
	Line      int        `json:"line,omitempty"`
	Devices   []string   `json:"devices"`
	Labels    []string   `json:"labels"`
	Table     *jsonTable `json:"table,omitempty"`
	Server    bool       `json:"server"`
}

type jsonTable struct {
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

type jsonTranscript struct {
	Device string `json:"device"`
	TimeMS millis `json:"time_ms"`
	Dir    string `json:"dir"`
	Text   string `json:"text"`
}

// WriteJSON writes r as one indented JSON document in the schema of docs/report-json.md,
// followed by a newline. The counts and ok fields are derived from the scenarios. It fails
// on a run that does not pass Validate, and on an error from w. A zero SchemaVersion is
// written as the current SchemaVersion.
func WriteJSON(w io.Writer, r *Run) error {
	if r == nil {
		return errors.New("reports: write json: nil run")
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("reports: write json: %w", err)
	}
	jr := toJSONRun(r)
	b, err := json.MarshalIndent(jr, "", "  ")
	if err != nil {
		return fmt.Errorf("reports: write json: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("reports: write json: %w", err)
	}
	return nil
}

// ReadJSON reads a run written by WriteJSON (or by any producer of the documented schema).
// Empty lists read as nil and the start time reads in UTC, so ReadJSON(WriteJSON(r)) equals
// r when r's empty lists are nil and r.Started is in UTC; otherwise it equals r with empty
// lists made nil and Started in UTC, and writing it again gives the same bytes.
// The counts and ok fields are ignored: they are derived. Unknown fields are ignored, so
// files from newer writers of the same schema version read; a different schema_version,
// a run that does not pass Validate, a malformed time or duration, or trailing data is an
// error.
func ReadJSON(rd io.Reader) (*Run, error) {
	dec := json.NewDecoder(rd)
	var jr jsonRun
	if err := dec.Decode(&jr); err != nil {
		return nil, fmt.Errorf("reports: read json: %w", err)
	}
	if dec.More() {
		return nil, errors.New("reports: read json: trailing data after the run")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("reports: read json: trailing data after the run")
	}
	r, err := fromJSONRun(&jr)
	if err != nil {
		return nil, fmt.Errorf("reports: read json: %w", err)
	}
	return r, nil
}

// jsonTime is the JSON form of a time: RFC 3339 in UTC with nanoseconds. The zero time is
// written as the empty string.
func jsonTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func parseJSONTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("started: %w", err)
	}
	return t.UTC(), nil
}

func toJSONRun(r *Run) *jsonRun {
	c := r.Counts()
	jr := &jsonRun{
		SchemaVersion: r.SchemaVersion,
		Target:        r.Target,
		Engine:        r.Engine,
		Store:         r.Store,
		Seed:          r.Seed,
		Started:       jsonTime(r.Started),
		DurationMS:    millis(r.Duration),
		Command:       r.Command,
		Interrupted:   r.Interrupted,
		OK:            r.OK(),
		ExitStatus:    r.ExitStatus(),
		Counts: jsonCounts{Total: c.Total, Passed: c.Passed, Failed: c.Failed, Skipped: c.Skipped, Errored: c.Errored,
			Unconfirmed: c.Unconfirmed, Server: c.Server},
		Scenarios: make([]*jsonScenario, 0, len(r.Scenarios)),
	}
	if jr.SchemaVersion == 0 {
		jr.SchemaVersion = SchemaVersion
	}
	for _, s := range r.Scenarios {
		jr.Scenarios = append(jr.Scenarios, toJSONScenario(s))
	}
	return jr
}

func toJSONScenario(s *Scenario) *jsonScenario {
	js := &jsonScenario{
		Name:          s.Name,
		File:          s.File,
		Category:      s.Category,
		Description:   s.Description,
		Status:        s.Status,
		SkipReason:    s.SkipReason,
		Error:         s.Error,
		Attribution:   s.Attribution,
		Seed:          s.Seed,
		DurationMS:    millis(s.Duration),
		Relaxations:   toJSONRelaxations(s.Relaxations),
		NotApplicable: nilIfEmpty(s.NotApplicable),
		Devices:       strs(s.Devices),
		Steps:         make([]jsonStep, 0, len(s.Steps)),
		Failures:      make([]jsonFailure, 0, len(s.Failures)),
		Reproduce:     s.Reproduce,
		Transcript:    make([]jsonTranscript, 0, len(s.Transcript)),
		Source:        s.Source,
	}
	for _, st := range s.Steps {
		js.Steps = append(js.Steps, jsonStep{
			Line: st.Line, Text: st.Text, Actor: st.Actor,
			StartMS: millis(st.Start), DurationMS: millis(st.Duration), Error: st.Error,
		})
	}
	for _, f := range s.Failures {
		jf := jsonFailure{
			Invariant: f.Invariant, Title: f.Title, Message: f.Message, Line: f.Line,
			Devices: strs(f.Devices), Labels: strs(f.Labels), Server: f.Server,
		}
		if f.Table != nil {
			jt := &jsonTable{Columns: strs(f.Table.Columns), Rows: make([][]string, 0, len(f.Table.Rows))}
			for _, row := range f.Table.Rows {
				jt.Rows = append(jt.Rows, strs(row))
			}
			jf.Table = jt
		}
		js.Failures = append(js.Failures, jf)
	}
	for _, t := range s.Transcript {
		js.Transcript = append(js.Transcript, toJSONTranscript(t))
	}
	js.DivergedAt = s.DivergedAt
	for _, e := range s.Timeline {
		je := jsonEvent{
			TimeMS: millis(e.Time), DurationMS: millis(e.Duration), Lane: e.Lane, Kind: e.Kind, Line: e.Line,
			Text: e.Text, Error: e.Error, Commands: make([]jsonTranscript, 0, len(e.Commands)), CommandsOmitted: e.CommandsOmitted,
		}
		for _, t := range e.Commands {
			je.Commands = append(je.Commands, toJSONTranscript(t))
		}
		js.Timeline = append(js.Timeline, je)
	}
	for _, st := range s.States {
		jst := jsonSnapshot{Line: st.Line, Step: st.Step, Lanes: make([]jsonLaneState, 0, len(st.Lanes))}
		for _, l := range st.Lanes {
			jl := jsonLaneState{Lane: l.Lane, Messages: make([]jsonMessageState, 0, len(l.Messages))}
			for _, m := range l.Messages {
				jl.Messages = append(jl.Messages, jsonMessageState{Mailbox: m.Mailbox, Label: m.Label, Flags: strs(m.Flags)})
			}
			jst.Lanes = append(jst.Lanes, jl)
		}
		js.States = append(js.States, jst)
	}
	if t := s.FinalState; t != nil {
		jt := &jsonStateTable{Lanes: strs(t.Lanes), Rows: make([]jsonStateRow, 0, len(t.Rows))}
		for _, row := range t.Rows {
			jr := jsonStateRow{Mailbox: row.Mailbox, Label: row.Label, Cells: make([]jsonStateCell, 0, len(row.Cells))}
			if row.Expected != nil {
				c := toJSONStateCell(*row.Expected)
				jr.Expected = &c
			}
			for _, c := range row.Cells {
				jr.Cells = append(jr.Cells, toJSONStateCell(c))
			}
			jt.Rows = append(jt.Rows, jr)
		}
		for _, mbs := range t.Mailboxes {
			jt.Mailboxes = append(jt.Mailboxes, strs(mbs))
		}
		js.FinalState = jt
	}
	return js
}

func toJSONTranscript(t TranscriptLine) jsonTranscript {
	return jsonTranscript{Device: t.Device, TimeMS: millis(t.Time), Dir: t.Dir, Text: t.Text}
}

func fromJSONTranscript(t jsonTranscript) TranscriptLine {
	return TranscriptLine{Device: t.Device, Time: time.Duration(t.TimeMS), Dir: t.Dir, Text: t.Text}
}

func toJSONStateCell(c StateCell) jsonStateCell {
	return jsonStateCell{Present: c.Present, Flags: strs(c.Flags), Divergent: c.Divergent,
		MayBeAbsent: c.MayBeAbsent, OptionalFlags: nilIfEmpty(c.OptionalFlags), AnyFlags: c.AnyFlags}
}

func fromJSONStateCell(c jsonStateCell) StateCell {
	return StateCell{Present: c.Present, Flags: nilIfEmpty(c.Flags), Divergent: c.Divergent,
		MayBeAbsent: c.MayBeAbsent, OptionalFlags: nilIfEmpty(c.OptionalFlags), AnyFlags: c.AnyFlags}
}

// strs returns s, or an empty non-nil slice so that JSON has [] instead of null.
func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// nilIfEmpty returns nil for an empty slice, so that empty lists read back as nil.
func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func fromJSONRun(jr *jsonRun) (*Run, error) {
	if jr.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("schema_version %d is not supported (this build reads %d)", jr.SchemaVersion, SchemaVersion)
	}
	started, err := parseJSONTime(jr.Started)
	if err != nil {
		return nil, err
	}
	r := &Run{
		SchemaVersion: jr.SchemaVersion,
		Target:        jr.Target,
		Engine:        jr.Engine,
		Store:         jr.Store,
		Seed:          jr.Seed,
		Started:       started,
		Duration:      time.Duration(jr.DurationMS),
		Command:       jr.Command,
		Interrupted:   jr.Interrupted,
	}
	for i, js := range jr.Scenarios {
		if js == nil {
			return nil, fmt.Errorf("scenarios[%d] is null", i)
		}
		r.Scenarios = append(r.Scenarios, fromJSONScenario(js))
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

func toJSONRelaxations(rs []Relaxation) []jsonRelaxation {
	var out []jsonRelaxation
	for _, r := range rs {
		out = append(out, jsonRelaxation(r))
	}
	return out
}

func fromJSONScenario(js *jsonScenario) *Scenario {
	s := &Scenario{
		Name:          js.Name,
		File:          js.File,
		Category:      js.Category,
		Description:   js.Description,
		Status:        js.Status,
		SkipReason:    js.SkipReason,
		Error:         js.Error,
		Attribution:   js.Attribution,
		Seed:          js.Seed,
		Duration:      time.Duration(js.DurationMS),
		Relaxations:   fromJSONRelaxations(js.Relaxations),
		NotApplicable: nilIfEmpty(js.NotApplicable),
		Devices:       nilIfEmpty(js.Devices),
		Reproduce:     js.Reproduce,
		Source:        js.Source,
	}
	for _, st := range js.Steps {
		s.Steps = append(s.Steps, Step{
			Line: st.Line, Text: st.Text, Actor: st.Actor,
			Start: time.Duration(st.StartMS), Duration: time.Duration(st.DurationMS), Error: st.Error,
		})
	}
	for _, jf := range js.Failures {
		f := Failure{
			Invariant: jf.Invariant, Title: jf.Title, Message: jf.Message, Line: jf.Line,
			Devices: nilIfEmpty(jf.Devices), Labels: nilIfEmpty(jf.Labels), Server: jf.Server,
		}
		if jf.Table != nil {
			t := &Table{Columns: nilIfEmpty(jf.Table.Columns)}
			for _, row := range jf.Table.Rows {
				t.Rows = append(t.Rows, nilIfEmpty(row))
			}
			f.Table = t
		}
		s.Failures = append(s.Failures, f)
	}
	for _, t := range js.Transcript {
		s.Transcript = append(s.Transcript, fromJSONTranscript(t))
	}
	s.DivergedAt = js.DivergedAt
	for _, je := range js.Timeline {
		e := TimelineEvent{
			Time: time.Duration(je.TimeMS), Duration: time.Duration(je.DurationMS), Lane: je.Lane, Kind: je.Kind,
			Line: je.Line, Text: je.Text, Error: je.Error, CommandsOmitted: je.CommandsOmitted,
		}
		for _, t := range je.Commands {
			e.Commands = append(e.Commands, fromJSONTranscript(t))
		}
		s.Timeline = append(s.Timeline, e)
	}
	for _, jst := range js.States {
		st := StateSnapshot{Line: jst.Line, Step: jst.Step}
		for _, jl := range jst.Lanes {
			l := LaneState{Lane: jl.Lane}
			for _, m := range jl.Messages {
				l.Messages = append(l.Messages, MessageState{Mailbox: m.Mailbox, Label: m.Label, Flags: nilIfEmpty(m.Flags)})
			}
			st.Lanes = append(st.Lanes, l)
		}
		s.States = append(s.States, st)
	}
	if jt := js.FinalState; jt != nil {
		t := &StateTable{Lanes: nilIfEmpty(jt.Lanes)}
		for _, jr := range jt.Rows {
			row := StateTableRow{Mailbox: jr.Mailbox, Label: jr.Label}
			if jr.Expected != nil {
				c := fromJSONStateCell(*jr.Expected)
				row.Expected = &c
			}
			for _, c := range jr.Cells {
				row.Cells = append(row.Cells, fromJSONStateCell(c))
			}
			t.Rows = append(t.Rows, row)
		}
		for _, mbs := range jt.Mailboxes {
			t.Mailboxes = append(t.Mailboxes, nilIfEmpty(mbs))
		}
		s.FinalState = t
	}
	return s
}

func fromJSONRelaxations(rs []jsonRelaxation) []Relaxation {
	var out []Relaxation
	for _, r := range rs {
		out = append(out, Relaxation(r))
	}
	return out
}
