package reports

import (
	"bufio"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The HTML writer's limits, so that a large run stays a file a browser opens at once.
const (
	// HTMLMaxCommands is how many IMAP lines of one sync round the HTML report shows; the
	// rest are counted in a note (the report directory keeps every transcript in full).
	HTMLMaxCommands = 120
	// HTMLMaxTranscript is how many lines of a scenario's transcript excerpt it shows.
	HTMLMaxTranscript = 200
)

//go:embed html/report.html.tmpl html/report.css html/report.js
var htmlFiles embed.FS

// htmlTemplate is parsed once; executing it does not change it.
var htmlTemplate = template.Must(template.New("report.html.tmpl").Funcs(template.FuncMap{
	"dur":   htmlDuration,
	"flags": formatFlags,
	"add":   func(a, b int) int { return a + b },
	"join":  strings.Join,
}).ParseFS(htmlFiles, "html/report.html.tmpl"))

// WriteHTML writes r as one self-contained HTML page: CSS and script inline, no reference to
// anything outside the file, so it opens from disk and offline in any current browser. The
// page has the run's summary, a filter box over scenario names and categories, and the
// failed and errored scenarios first, each with its broken guarantees in words, the final
// state of every lane side by side with the divergent cells marked (Scenario.FinalState),
// a swimlane timeline with a lane per device and one for the server (Scenario.Timeline,
// or the steps when there is no timeline) with the first divergent step highlighted and each
// lane's state after each step (Scenario.States), the source with the failing lines
// marked, the transcript excerpt and the reproduce command. Skipped and passed scenarios
// get a line each; a passed scenario's line folds its final state (a <details> element
// with the same table, closed until clicked). It fails on a run that does not pass Validate, and on an error from w.
func WriteHTML(w io.Writer, r *Run) error {
	if r == nil {
		return errors.New("reports: write html: nil run")
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("reports: write html: %w", err)
	}
	page, err := newHTMLPage(r)
	if err != nil {
		return fmt.Errorf("reports: write html: %w", err)
	}
	bw := bufio.NewWriter(w)
	if err := htmlTemplate.Execute(bw, page); err != nil {
		return fmt.Errorf("reports: write html: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("reports: write html: %w", err)
	}
	return nil
}

// htmlPage is what the template renders.
type htmlPage struct {
	Run      *Run
	Title    string
	OK       bool
	Counts   Counts
	Duration string
	Started  string
	CSS      template.CSS
	JS       template.JS
	Details  []*htmlScenario // failed and errored, in run order
	Skipped  []*htmlScenario
	Passed   []*htmlScenario
}

type htmlScenario struct {
	*Scenario
	ID                string
	FilterKey         string
	Final             *htmlDiff
	Lanes             []htmlLane
	Rows              []*htmlRow
	Source            []htmlSourceLine
	Transcript        []htmlTranscriptLine
	TranscriptOmitted int
}

type htmlLane struct {
	Name   string
	Server bool
}

type htmlRow struct {
	ID       string
	Time     string
	Line     int
	Text     string
	Marks    []htmlMark // events that belong to no single lane (checks across lanes)
	Errors   []string
	Cells    []htmlCell
	Diverged bool
	Failing  bool
	State    *htmlState
}

type htmlCell struct {
	Lane   string
	Server bool
	Marks  []htmlMark
}

type htmlMark struct {
	ID       string
	Kind     EventKind
	Class    string
	Icon     string
	Text     string
	Error    string
	Time     string
	Commands []htmlTranscriptLine
	Omitted  int
}

type htmlTranscriptLine struct {
	Time   string
	Device string
	Dir    string
	Class  string
	Text   string
}

type htmlState struct {
	ID    string
	Lanes []LaneState
}

type htmlDiff struct {
	Columns   []htmlDiffColumn
	Rows      []htmlDiffRow
	Mailboxes []htmlLaneMailboxes // each lane's mailboxes, empty ones included; nil when not recorded
}

type htmlLaneMailboxes struct {
	Lane      string
	Mailboxes string
}

type htmlDiffColumn struct {
	Name  string
	Class string
}

type htmlDiffRow struct {
	Mailbox   string
	Label     string
	Divergent bool
	Cells     []htmlDiffCell
}

type htmlDiffCell struct {
	Lane  string
	Text  string
	Class string
}

type htmlSourceLine struct {
	ID     string
	N      int
	Text   string
	Class  string
	Gutter string
	Why    string
}

func newHTMLPage(r *Run) (*htmlPage, error) {
	css, err := htmlFiles.ReadFile("html/report.css")
	if err != nil {
		return nil, err
	}
	js, err := htmlFiles.ReadFile("html/report.js")
	if err != nil {
		return nil, err
	}
	c := r.Counts()
	p := &htmlPage{
		Run:      r,
		OK:       r.OK(),
		Counts:   c,
		Duration: htmlDuration(r.Duration),
		CSS:      template.CSS(css),
		JS:       template.JS(js),
	}
	if !r.Started.IsZero() {
		p.Started = r.Started.UTC().Format("2006-01-02 15:04:05 MST")
	}
	verdict := "ok"
	if !p.OK {
		verdict = "FAIL"
	}
	p.Title = fmt.Sprintf("%s: %d failed, %d passed of %d (syncharness)", verdict, c.Failed+c.Errored, c.Passed, c.Total)
	if c.Server > 0 {
		p.Title = fmt.Sprintf("%s: %d failed, %d server findings, %d passed of %d (syncharness)", verdict, c.Failed+c.Errored, c.Server, c.Passed, c.Total)
	}
	for i, s := range r.Scenarios {
		hs := &htmlScenario{
			Scenario:  s,
			ID:        "s" + strconv.Itoa(i+1),
			FilterKey: strings.ToLower(s.Name + " " + s.Category + " " + string(s.Status)),
		}
		switch s.Status {
		case Passed:
			// A passed scenario's outcome is worth seeing too; the page folds it.
			hs.Final = finalDiff(s.FinalState)
			p.Passed = append(p.Passed, hs)
		case Skipped:
			p.Skipped = append(p.Skipped, hs)
		default:
			hs.build()
			p.Details = append(p.Details, hs)
		}
	}
	// Failures first, errors after them, each in run order.
	slices.SortStableFunc(p.Details, func(a, b *htmlScenario) int {
		return statusRank(a.Status) - statusRank(b.Status)
	})
	return p, nil
}

func statusRank(s Status) int {
	switch s {
	case Failed:
		return 0
	case ServerFinding:
		return 1
	}
	return 2
}

// build prepares the details of a failed or errored scenario.
func (hs *htmlScenario) build() {
	s := hs.Scenario
	hs.Lanes = scenarioLanes(s)
	hs.Rows = hs.timelineRows()
	hs.Final = finalDiff(s.FinalState)
	hs.Source = hs.sourceLines()
	lines := s.Transcript
	if len(lines) > HTMLMaxTranscript {
		hs.TranscriptOmitted = len(lines) - HTMLMaxTranscript
		lines = lines[:HTMLMaxTranscript]
	}
	hs.Transcript = transcriptLines(lines)
}

// scenarioLanes returns the devices in declaration order, then any other device lane the
// timeline or the states name, then the server.
func scenarioLanes(s *Scenario) []htmlLane {
	var names []string
	add := func(n string) {
		if n != "" && n != ServerLane && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, d := range s.Devices {
		add(d)
	}
	for _, e := range s.Timeline {
		add(e.Lane)
	}
	if len(s.Timeline) == 0 {
		for _, st := range s.Steps {
			add(st.Actor)
		}
	}
	lanes := make([]htmlLane, 0, len(names)+1)
	for _, n := range names {
		lanes = append(lanes, htmlLane{Name: n})
	}
	return append(lanes, htmlLane{Name: ServerLane, Server: true})
}

// timelineEvents returns the scenario's timeline in time order, or one made from its steps.
func timelineEvents(s *Scenario) []TimelineEvent {
	if len(s.Timeline) > 0 {
		events := slices.Clone(s.Timeline)
		slices.SortStableFunc(events, func(a, b TimelineEvent) int {
			return cmp.Compare(a.Time, b.Time)
		})
		return events
	}
	events := make([]TimelineEvent, 0, len(s.Steps))
	for _, st := range s.Steps {
		kind := EventStep
		if strings.HasPrefix(st.Text, "expect") {
			kind = EventExpect
		}
		events = append(events, TimelineEvent{
			Time: st.Start, Duration: st.Duration, Lane: st.Actor, Kind: kind,
			Line: st.Line, Text: st.Text, Error: st.Error,
		})
	}
	return events
}

// timelineRows groups the events into rows: consecutive events of the same scenario line
// share a row, so the syncs of one "sync" step sit side by side; so do consecutive events
// the harness adds itself (line 0) with the same text, such as one settle round.
func (hs *htmlScenario) timelineRows() []*htmlRow {
	s := hs.Scenario
	events := timelineEvents(s)
	stepText := map[int]string{}
	for _, st := range s.Steps {
		if st.Line > 0 {
			if _, ok := stepText[st.Line]; !ok {
				stepText[st.Line] = st.Text
			}
		}
	}
	failing := map[int]bool{}
	for _, f := range s.Failures {
		if f.Line > 0 {
			failing[f.Line] = true
		}
	}
	var rows []*htmlRow
	var cur *htmlRow
	for i, e := range events {
		if cur == nil || e.Line != cur.Line || e.Line == 0 && e.Text != cur.Text {
			cur = &htmlRow{ID: fmt.Sprintf("%s-r%d", hs.ID, len(rows)+1), Line: e.Line, Time: "+" + htmlDuration(e.Time)}
			if t, ok := stepText[e.Line]; ok {
				cur.Text = t
			} else {
				cur.Text = e.Text
			}
			cur.Cells = make([]htmlCell, len(hs.Lanes))
			for j, l := range hs.Lanes {
				cur.Cells[j] = htmlCell{Lane: l.Name, Server: l.Server}
			}
			cur.Failing = failing[e.Line]
			rows = append(rows, cur)
		}
		m := newMark(fmt.Sprintf("%s-e%d", hs.ID, i+1), e)
		if e.Error != "" {
			cur.Failing = true
		}
		j := slices.IndexFunc(hs.Lanes, func(l htmlLane) bool { return l.Name == e.Lane })
		if j < 0 {
			// An event of no single lane: a check or a flow step, shown with the step.
			if e.Text != cur.Text {
				cur.Marks = append(cur.Marks, m)
			} else if e.Error != "" {
				cur.Errors = append(cur.Errors, e.Error)
			}
			continue
		}
		cur.Cells[j].Marks = append(cur.Cells[j].Marks, m)
	}
	if s.DivergedAt > 0 {
		for _, row := range rows {
			if row.Line == s.DivergedAt {
				row.Diverged = true
				break
			}
		}
	}
	hs.attachStates(rows)
	return rows
}

// attachStates gives each row the lanes' state after it: the snapshot of its line (the last
// one when a line ran more than once), or for rows without a line the snapshot of its text.
func (hs *htmlScenario) attachStates(rows []*htmlRow) {
	for i, st := range hs.Scenario.States {
		var row *htmlRow
		for _, r := range rows {
			if st.Line > 0 && r.Line == st.Line || st.Line == 0 && r.Line == 0 && r.Text == st.Step {
				row = r
			}
		}
		if row != nil {
			row.State = &htmlState{ID: fmt.Sprintf("%s-state%d", hs.ID, i+1), Lanes: st.Lanes}
		}
	}
}

// Class is the row's CSS classes: "diverged" for the first step after which the states
// diverged, "failing" for a step or check that failed.
func (r *htmlRow) Class() string {
	var c []string
	if r.Diverged {
		c = append(c, "diverged")
	}
	if r.Failing {
		c = append(c, "failing")
	}
	return strings.Join(c, " ")
}

func newMark(id string, e TimelineEvent) htmlMark {
	m := htmlMark{ID: id, Kind: e.Kind, Text: e.Text, Error: e.Error, Time: "+" + htmlDuration(e.Time), Omitted: e.CommandsOmitted}
	switch e.Kind {
	case EventSync:
		m.Class, m.Icon = "sync", "⇅"
	case EventFault:
		m.Class, m.Icon = "fault", "⚡"
	case EventExpect:
		m.Class, m.Icon = "expect", "✓"
	default:
		m.Class, m.Icon = "step", "•"
	}
	if e.Error != "" {
		m.Class, m.Icon = m.Class+" bad", "✗"
	}
	cmds := e.Commands
	if len(cmds) > HTMLMaxCommands {
		m.Omitted += len(cmds) - HTMLMaxCommands
		cmds = cmds[:HTMLMaxCommands]
	}
	m.Commands = transcriptLines(cmds)
	return m
}

func transcriptLines(lines []TranscriptLine) []htmlTranscriptLine {
	out := make([]htmlTranscriptLine, 0, len(lines))
	for _, t := range lines {
		class := "s"
		if t.Dir == "C" {
			class = "c"
		}
		out = append(out, htmlTranscriptLine{Time: htmlDuration(t.Time), Device: t.Device, Dir: t.Dir, Class: class, Text: t.Text})
	}
	return out
}

// finalDiff lays out the final state table: an expected column when the table has
// expectations, then a column per lane; and each lane's mailboxes when they were recorded.
func finalDiff(t *StateTable) *htmlDiff {
	if t == nil {
		return nil
	}
	d := &htmlDiff{}
	for i, mbs := range t.Mailboxes {
		if i < len(t.Lanes) {
			text := strings.Join(mbs, " ")
			if len(mbs) == 0 {
				text = "none"
			}
			d.Mailboxes = append(d.Mailboxes, htmlLaneMailboxes{Lane: t.Lanes[i], Mailboxes: text})
		}
	}
	expected := slices.ContainsFunc(t.Rows, func(r StateTableRow) bool { return r.Expected != nil })
	if expected {
		d.Columns = append(d.Columns, htmlDiffColumn{Name: "expected", Class: "expected"})
	}
	for _, l := range t.Lanes {
		class := "lane"
		if l == ServerLane {
			class = "lane lane-server"
		}
		d.Columns = append(d.Columns, htmlDiffColumn{Name: l, Class: class})
	}
	for _, r := range t.Rows {
		row := htmlDiffRow{Mailbox: r.Mailbox, Label: r.Label, Divergent: r.Divergent()}
		if expected {
			c := htmlDiffCell{Lane: "expected", Text: "no expectation", Class: "cell expected absent"}
			if r.Expected != nil {
				c = diffCell("expected", *r.Expected)
				c.Text = r.Expected.ExpectedText()
				c.Class += " expected"
			}
			row.Cells = append(row.Cells, c)
		}
		for i, l := range t.Lanes {
			var c StateCell
			if i < len(r.Cells) {
				c = r.Cells[i]
			}
			row.Cells = append(row.Cells, diffCell(l, c))
		}
		d.Rows = append(d.Rows, row)
	}
	return d
}

func diffCell(lane string, c StateCell) htmlDiffCell {
	cell := htmlDiffCell{Lane: lane, Class: "cell"}
	switch {
	case !c.Present:
		cell.Text = "absent"
		cell.Class += " absent"
	default:
		cell.Text = formatFlags(c.Flags)
	}
	if c.Divergent {
		cell.Class += " divergent"
	}
	return cell
}

// formatFlags shows a message's flags, or "no flags".
func formatFlags(flags []string) string {
	if len(flags) == 0 {
		return "no flags"
	}
	return strings.Join(flags, " ")
}

// sourceLines numbers the source and marks the lines of failed checks and failed steps
// (failing) and the line after which the states diverged (diverged).
func (hs *htmlScenario) sourceLines() []htmlSourceLine {
	s := hs.Scenario
	if s.Source == "" {
		return nil
	}
	why := map[int]string{}
	note := func(line int, text string) {
		if line > 0 && text != "" {
			if _, ok := why[line]; !ok {
				why[line] = text
			}
		}
	}
	for _, f := range s.Failures {
		note(f.Line, f.Message)
	}
	for _, st := range s.Steps {
		note(st.Line, st.Error)
	}
	for _, e := range s.Timeline {
		note(e.Line, e.Error)
	}
	text := strings.TrimSuffix(s.Source, "\n")
	lines := strings.Split(text, "\n")
	out := make([]htmlSourceLine, 0, len(lines))
	for i, l := range lines {
		n := i + 1
		sl := htmlSourceLine{ID: fmt.Sprintf("%s-L%d", hs.ID, n), N: n, Text: l}
		if w, ok := why[n]; ok {
			sl.Class, sl.Gutter, sl.Why = "failing", "✗", w
		} else if n == s.DivergedAt {
			sl.Class, sl.Gutter, sl.Why = "diverged", "▲", "the states diverged after this line"
		}
		out = append(out, sl)
	}
	return out
}

// htmlDuration shows a duration with three significant digits: "412µs", "24.7ms", "1.25s".
func htmlDuration(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return strconv.FormatInt(int64(d), 10) + "ns"
	case d < time.Millisecond:
		return sig3(float64(d)/float64(time.Microsecond)) + "µs"
	case d < time.Second:
		return sig3(float64(d)/float64(time.Millisecond)) + "ms"
	case d < time.Minute:
		return sig3(float64(d)/float64(time.Second)) + "s"
	}
	return d.Round(time.Second).String()
}

// sig3 formats f (1 <= f < 1000) with three significant digits, without trailing zeros.
func sig3(f float64) string {
	prec := 2
	switch {
	case f >= 100:
		prec = 0
	case f >= 10:
		prec = 1
	}
	s := strconv.FormatFloat(f, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
