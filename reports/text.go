package reports

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
)

// TextOptions controls the terminal writer.
type TextOptions struct {
	// Color adds ANSI colours. Without it the output contains no escape sequence at all,
	// not even one that came from a server's transcript.
	Color bool
	// Verbose lists passed scenarios, and for failed and errored ones also their steps with
	// times, the devices and labels of each failure and the whole transcript excerpt.
	Verbose bool
}

// Limits of the non-verbose output; Verbose shows everything.
const (
	maxTranscriptLines = 40  // transcript lines shown per scenario
	maxTranscriptWidth = 160 // characters shown of one transcript line
)

// WriteText writes the result of a run for a person at a terminal: every failed or errored
// scenario in full (what it shows, each broken guarantee in words, the expected-vs-seen
// table, the transcript excerpt and the command that reproduces it), one line per skipped
// scenario, one line per passed scenario when Verbose, and a closing summary line that
// starts with "ok" or "FAIL".
func WriteText(w io.Writer, r *Run, opts TextOptions) error {
	if r == nil {
		return fmt.Errorf("reports: write text: nil run")
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("reports: write text: %w", err)
	}
	bw := bufio.NewWriter(w)
	t := textWriter{w: bw, p: newPalette(opts.Color), verbose: opts.Verbose}
	for _, s := range r.Scenarios {
		if s.Status == Passed && !opts.Verbose {
			continue
		}
		t.scenario(s)
	}
	t.summary(r)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("reports: write text: %w", err)
	}
	return nil
}

// WriteScenarioText writes one scenario as WriteText shows it: a status line, and for a
// failed or errored scenario the details and the reproduce line.
func WriteScenarioText(w io.Writer, s *Scenario, opts TextOptions) error {
	if s == nil {
		return fmt.Errorf("reports: write scenario text: nil scenario")
	}
	if err := s.validate(); err != nil {
		return fmt.Errorf("reports: write scenario text: %q: %w", s.Name, err)
	}
	bw := bufio.NewWriter(w)
	t := textWriter{w: bw, p: newPalette(opts.Color), verbose: opts.Verbose}
	t.scenario(s)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("reports: write scenario text: %w", err)
	}
	return nil
}

// textWriter writes to a buffered writer whose error is checked once, at Flush.
type textWriter struct {
	w       *bufio.Writer
	p       palette
	verbose bool

	wrote     bool // something was written
	lastBlank bool // the last line written was blank
}

// printf writes whole lines: format must end with a newline.
func (t *textWriter) printf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	t.w.WriteString(s)
	t.wrote = true
	t.lastBlank = s == "\n"
}

// separate writes a blank line unless the output is empty or already ends with one.
func (t *textWriter) separate() {
	if t.wrote && !t.lastBlank {
		t.printf("\n")
	}
}

// scenario writes one scenario: a single line for passed and skipped ones, a block
// between blank lines for failed and errored ones.
func (t *textWriter) scenario(s *Scenario) {
	p := t.p
	name := clean(scenarioName(s))
	switch s.Status {
	case Passed:
		t.printf("%s %s (%s)%s\n", p.pass("PASS"), name, seconds(s.Duration), t.notApplicable(s.NotApplicable))
		if t.verbose {
			t.relaxations(s.Relaxations)
			t.finalState(s.FinalState)
		}
		return
	case Skipped:
		reason := clean(s.SkipReason)
		if reason == "" {
			reason = "no reason given"
		}
		t.printf("%s %s: %s\n", p.skip("SKIP"), name, reason)
		return
	case Failed:
		t.separate()
		t.printf("%s %s (%s)  seed %d\n", p.fail("FAIL"), p.bold(name), seconds(s.Duration), s.Seed)
	case Unconfirmed:
		t.separate()
		t.printf("%s %s (%s)  seed %d: a second run did not fail, the harness was not deterministic\n",
			p.skip("UNCONFIRMED"), p.bold(name), seconds(s.Duration), s.Seed)
	case ServerFinding:
		t.separate()
		t.printf("%s %s (%s)  seed %d: the server broke IMAP rules\n", p.server("SERVER"), p.bold(name), seconds(s.Duration), s.Seed)
	default:
		t.separate()
		t.printf("%s %s (%s)  seed %d\n", p.fail("ERROR"), p.bold(name), seconds(s.Duration), s.Seed)
	}
	if d := firstLine(s.Description); d != "" {
		t.printf("  %s\n", p.dim(clean(d)))
	}
	if s.Error != "" {
		t.block("  ", p.fail("error: "), s.Error)
	}
	if s.Attribution != "" {
		t.block("  ", p.server("attribution: "), s.Attribution)
	}
	for _, f := range s.Failures {
		t.failure(f)
	}
	if na := t.notApplicable(s.NotApplicable); na != "" {
		t.printf(" %s\n", na)
	}
	if t.verbose && len(s.Steps) > 0 {
		t.steps(s.Steps)
	}
	if t.verbose {
		t.finalState(s.FinalState)
	}
	if len(s.Transcript) > 0 {
		t.transcript(s.Transcript)
	}
	if s.Status != Unconfirmed {
		t.printf("  %s %s\n", p.dim("reproduce:"), clean(reproduce(s)))
	}
	t.printf("\n")
}

// failure writes "  I4 no duplicates: message", the devices and labels when verbose, and
// the table.
func (t *textWriter) failure(f Failure) {
	p := t.p
	head := f.Invariant
	if f.Title != "" {
		if head != "" {
			head += " "
		}
		head += f.Title
	}
	if f.Line > 0 {
		head += fmt.Sprintf(" (line %d)", f.Line)
	}
	if head == "" {
		head = "failure"
	}
	tag := ""
	if f.Server {
		tag = " " + p.warn("[server finding]")
	}
	msg := f.Message
	if msg == "" {
		msg = "(no message)"
	}
	lines := splitLines(msg)
	t.printf("  %s: %s%s\n", p.fail(clean(head)), clean(lines[0]), tag)
	for _, l := range lines[1:] {
		t.printf("    %s\n", clean(l))
	}
	if t.verbose {
		if len(f.Devices) > 0 {
			t.printf("       %s %s\n", p.dim("devices:"), clean(strings.Join(f.Devices, ", ")))
		}
		if len(f.Labels) > 0 {
			t.printf("       %s %s\n", p.dim("labels:"), clean(strings.Join(f.Labels, ", ")))
		}
	}
	if f.Table != nil {
		t.table(f.Table, "       ")
	}
}

// finalState writes the state of every lane after settling: each lane's mailboxes, then a
// row per mailbox and label with what the model expects and what each lane holds, a "*"
// after a divergent cell.
func (t *textWriter) finalState(st *StateTable) {
	if st == nil {
		return
	}
	t.printf("  final state:\n")
	for i, mbs := range st.Mailboxes {
		if i < len(st.Lanes) {
			t.printf("    %s mailboxes: %s\n", clean(st.Lanes[i]), clean(strings.Join(mbs, " ")))
		}
	}
	tb := &Table{Columns: append([]string{"mailbox", "label", "expected"}, st.Lanes...)}
	for _, r := range st.Rows {
		exp := "-"
		if r.Expected != nil {
			exp = r.Expected.ExpectedText()
		}
		row := []string{r.Mailbox, r.Label, exp}
		for i := range st.Lanes {
			var c StateCell
			if i < len(r.Cells) {
				c = r.Cells[i]
			}
			text := "absent"
			if c.Present {
				text = flagText(c.Flags)
			}
			if c.Divergent {
				text += " *"
			}
			row = append(row, text)
		}
		tb.Rows = append(tb.Rows, row)
	}
	t.table(tb, "    ")
}

// table writes tb with left-aligned columns two spaces apart and the header in bold.
func (t *textWriter) table(tb *Table, indent string) {
	ncol := len(tb.Columns)
	for _, row := range tb.Rows {
		ncol = max(ncol, len(row))
	}
	if ncol == 0 {
		return
	}
	cell := func(row []string, i int) string {
		if i < len(row) {
			return clean(row[i])
		}
		return ""
	}
	widths := make([]int, ncol)
	for i := range ncol {
		widths[i] = width(cell(tb.Columns, i))
		for _, row := range tb.Rows {
			widths[i] = max(widths[i], width(cell(row, i)))
		}
	}
	line := func(row []string, style func(string) string) {
		var b strings.Builder
		for i := range ncol {
			c := cell(row, i)
			if i == ncol-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c + strings.Repeat(" ", widths[i]-width(c)+2))
		}
		t.printf("%s%s\n", indent, style(strings.TrimRight(b.String(), " ")))
	}
	if len(tb.Columns) > 0 {
		line(tb.Columns, t.p.bold)
	}
	for _, row := range tb.Rows {
		line(row, func(s string) string { return s })
	}
}

// steps writes the steps with their line, start offset and duration. The text of a device
// step names the device already ("phone move INBOX m1 Archive").
func (t *textWriter) steps(steps []Step) {
	p := t.p
	t.printf("  %s\n", p.dim("steps:"))
	for _, st := range steps {
		line := "    "
		if st.Line > 0 {
			line = fmt.Sprintf("%4d", st.Line)
		}
		t.printf("  %s  %s  %s %s\n", p.dim(line), p.dim("+"+millisSeconds(st.Start)),
			clean(st.Text), p.dim("("+shortDuration(st.Duration)+")"))
		if st.Error != "" {
			t.block("          ", p.fail("error: "), st.Error)
		}
	}
}

// transcript writes the excerpt, limited unless verbose.
func (t *textWriter) transcript(lines []TranscriptLine) {
	p := t.p
	shown := lines
	if !t.verbose && len(shown) > maxTranscriptLines {
		shown = shown[:maxTranscriptLines]
	}
	devWidth, timeWidth := 0, 0
	for _, l := range shown {
		devWidth = max(devWidth, width(clean(l.Device)))
		timeWidth = max(timeWidth, len(millisSeconds(l.Time)))
	}
	t.printf("  %s\n", p.dim("transcript around the first divergence:"))
	for _, l := range shown {
		text := clean(l.Text)
		if !t.verbose {
			text = truncate(text, maxTranscriptWidth)
		}
		dev := clean(l.Device)
		t.printf("    %s  %s%s  %s: %s\n", p.dim(fmt.Sprintf("%*s", timeWidth, millisSeconds(l.Time))), dev,
			strings.Repeat(" ", devWidth-width(dev)), l.Dir, text)
	}
	if n := len(lines) - len(shown); n > 0 {
		t.printf("    %s\n", p.dim(fmt.Sprintf("… %d more lines (-v shows them all)", n)))
	}
}

// block writes a possibly multi-line text, the first line after label, the others indented
// under it.
func (t *textWriter) block(indent, label, text string) {
	lines := splitLines(text)
	t.printf("%s%s%s\n", indent, label, clean(lines[0]))
	for _, l := range lines[1:] {
		t.printf("%s  %s\n", indent, clean(l))
	}
}

// summary writes the closing line.
func (t *textWriter) summary(r *Run) {
	p := t.p
	c := r.Counts()
	t.separate()
	var parts []string
	if c.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d failed", c.Failed))
	}
	if c.Errored > 0 {
		parts = append(parts, fmt.Sprintf("%d errored", c.Errored))
	}
	if c.Unconfirmed > 0 {
		parts = append(parts, fmt.Sprintf("%d unconfirmed", c.Unconfirmed))
	}
	if c.Server > 0 {
		parts = append(parts, fmt.Sprintf("%d server findings", c.Server))
	}
	if c.Skipped > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", c.Skipped))
	}
	parts = append(parts, fmt.Sprintf("%d passed", c.Passed))
	var ctx []string
	if r.Target != "" {
		ctx = append(ctx, clean(r.Target))
	}
	if r.Store != "" {
		ctx = append(ctx, "store "+clean(r.Store))
	}
	ctx = append(ctx, fmt.Sprintf("seed %d", r.Seed))
	word := p.pass("ok  ")
	if !r.OK() {
		word = p.fail("FAIL")
	}
	t.printf("%s  %s of %d %s in %s  %s\n", word, strings.Join(parts, ", "), c.Total,
		plural(c.Total, "scenario", "scenarios"), seconds(r.Duration), p.dim("("+strings.Join(ctx, ", ")+")"))
}

// scenarioName is the name a person recognises: the name, else the file.
func scenarioName(s *Scenario) string {
	switch {
	case s.Name != "":
		return s.Name
	case s.File != "":
		return s.File
	}
	return "(unnamed scenario)"
}

// reproduce is the scenario's reproduce line, or one built from its file and seed when the
// runner gave none.
func reproduce(s *Scenario) string {
	if s.Reproduce != "" {
		return s.Reproduce
	}
	file := s.File
	if file == "" {
		file = s.Name + ".scn"
	}
	return fmt.Sprintf("syncharness run %s --seed %d", shellQuote(file), s.Seed)
}

// shellQuote quotes s for a POSIX shell when it holds anything but safe characters.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// splitLines splits a message into its lines, without a trailing empty line and without
// the carriage returns of CRLF line ends. It returns at least one line.
func splitLines(s string) []string {
	lines := strings.Split(strings.TrimRight(s, "\r\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// seconds formats a scenario or run duration like go test: "0.41s".
func seconds(d time.Duration) string {
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// millisSeconds formats a time offset in seconds to the millisecond, rounding halves away
// from zero: "0.104s".
func millisSeconds(d time.Duration) string {
	ms := d.Round(time.Millisecond).Milliseconds()
	sign := ""
	if ms < 0 {
		sign, ms = "-", -ms
	}
	return fmt.Sprintf("%s%d.%03ds", sign, ms/1000, ms%1000)
}

// shortDuration formats a step duration: "4ms", "1.25s", "250µs".
func shortDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%dms", d.Round(time.Millisecond)/time.Millisecond)
	default:
		return fmt.Sprintf("%dµs", d.Round(time.Microsecond)/time.Microsecond)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// relaxations writes "  accepted under R15 fold-moves, R14 rescue-to-inbox (policy)": what
// the checker's model needed to accept a passed scenario's outcome.
// notApplicable is " not applicable: I2, I9, I10" for the checks the devices could not
// show the state for, "" when there are none.
func (t *textWriter) notApplicable(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return " " + t.p.dim("not applicable: "+clean(strings.Join(ids, ", ")))
}

func (t *textWriter) relaxations(rs []Relaxation) {
	if len(rs) == 0 {
		return
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = clean(r.ID + " " + r.Name)
		if r.Kind == "policy" {
			parts[i] += " (policy)"
		}
	}
	t.printf("  accepted under %s\n", strings.Join(parts, ", "))
}
