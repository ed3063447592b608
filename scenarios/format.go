package scenarios

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/tools/txtar"
)

// Format returns the canonical form of a scenario: one step a line, blocks indented by two
// spaces, options after the arguments in a fixed order, flags and capabilities in their
// canonical spelling, at most one blank line in a row and none at the start, the end or
// right inside a block. Comments (whole-line and trailing) and attached files are kept.
// Format(Parse(Format(x))) == Format(x).
func Format(s *Scenario) []byte {
	f := &formatter{atStart: true}
	lead := s.Trailer
	if len(s.Steps) > 0 {
		lead = s.Steps[0].Before
	}
	if s.Description != "" && !hasComment(lead) {
		for _, l := range strings.Split(s.Description, "\n") {
			f.comment(" "+l, 0)
		}
		f.blank()
	}
	f.steps(s.Steps, 0)
	f.lines(s.Trailer, 0)
	script := f.b.Bytes()
	if len(s.Files) == 0 {
		return script
	}
	ar := &txtar.Archive{Comment: script}
	done := map[string]bool{}
	for _, name := range s.FileOrder {
		if data, ok := s.Files[name]; ok && !done[name] {
			ar.Files = append(ar.Files, txtar.File{Name: name, Data: data})
			done[name] = true
		}
	}
	var rest []string
	for name := range s.Files {
		if !done[name] {
			rest = append(rest, name)
		}
	}
	sort.Strings(rest)
	for _, name := range rest {
		ar.Files = append(ar.Files, txtar.File{Name: name, Data: s.Files[name]})
	}
	return txtar.Format(ar)
}

func hasComment(lines []string) bool {
	for _, l := range lines {
		if l != "" {
			return true
		}
	}
	return false
}

type formatter struct {
	b            bytes.Buffer
	atStart      bool // start of the file or of a block: no blank line here
	pendingBlank bool
}

func (f *formatter) blank() {
	if !f.atStart {
		f.pendingBlank = true
	}
}

func (f *formatter) line(depth int, text string) {
	if f.pendingBlank {
		f.b.WriteByte('\n')
		f.pendingBlank = false
	}
	f.atStart = false
	f.b.WriteString(strings.Repeat("  ", depth))
	f.b.WriteString(text)
	f.b.WriteByte('\n')
}

func (f *formatter) comment(text string, depth int) { f.line(depth, "#"+text) }

// lines writes comment and blank lines; a blank line is only written before a later line.
func (f *formatter) lines(lines []string, depth int) {
	for _, l := range lines {
		if l == "" {
			f.blank()
		} else {
			f.comment(l, depth)
		}
	}
}

func (f *formatter) steps(steps []*Step, depth int) {
	for _, st := range steps {
		f.lines(st.Before, depth)
		f.line(depth, withComment(StepString(st), st.Comment))
		if st.Verb == "concurrently" || st.Verb == "repeat" {
			f.atStart = true
			f.pendingBlank = false
			f.steps(st.Body, depth+1)
			f.lines(st.EndBefore, depth+1)
			f.pendingBlank = false
			f.line(depth, withComment("end", st.EndComment))
		}
	}
}

func withComment(line, comment string) string {
	if comment == "" {
		return line
	}
	return line + "  #" + comment
}

// StepString returns the canonical text of one step line, without its comment and, for a
// block, without its body.
func StepString(st *Step) string {
	var w []string
	for _, g := range st.Guards {
		w = append(w, g.String())
	}
	if st.Actor != "" {
		w = append(w, st.Actor)
	}
	w = append(w, st.Verb)
	labels := func() {
		w = append(w, st.Labels...)
	}
	switch st.Verb {
	case "devices":
		w = append(w, st.Devices...)
	case "mailbox":
		w = append(w, quote(st.Mailbox))
		if st.SpecialUse != "" {
			w = append(w, st.SpecialUse)
		}
	case "caps":
		w = append(w, st.Caps...)
	case "deliver", "append":
		w = append(w, quote(st.Mailbox))
		labels()
	case "read", "unread", "delete", "trash", "expunge", "resave":
		w = append(w, quote(st.Mailbox))
		labels()
	case "flag", "unflag":
		w = append(w, quote(st.Mailbox))
		labels()
		w = append(w, quote(st.Flag))
	case "move", "copy":
		w = append(w, quote(st.Mailbox))
		labels()
		w = append(w, quote(st.Dest))
	case "reply", "forward":
		w = append(w, quote(st.Mailbox))
		labels()
		w = append(w, st.Dest)
	case "create", "remove", "watch", "uidvalidity-bump", "uidvalidity-reset", "renumber-silently":
		w = append(w, quote(st.Mailbox))
	case "rename":
		w = append(w, quote(st.Mailbox), quote(st.Dest))
	case "latency":
		w = append(w, formatDuration(st.Duration))
	case "fail":
		w = append(w, strconv.Itoa(st.N), `"`+escapeQuoted(st.Response)+`"`)
	case "repeat":
		w = append(w, strconv.Itoa(st.N))
	case "expect":
		w = append(w, expectWords(st.Expect)...)
	}
	w = append(w, optionWords(st)...)
	if st.File != "" {
		w = append(w, "<", quote(st.File))
	}
	return strings.Join(w, " ")
}

func escapeQuoted(s string) string {
	q := quote(s + " ") // force quoting, then take the escaped body
	q = q[1 : len(q)-1]
	return strings.TrimSuffix(q, " ")
}

func expectWords(e *Expect) []string {
	if e == nil {
		return nil
	}
	var w []string
	where := func() {
		if e.Where != "" && (e.Where != ActorServer || e.explicitWhere) {
			w = append(w, e.Where)
		}
	}
	quoteAll := func(names []string) {
		for _, n := range names {
			w = append(w, quote(n))
		}
	}
	switch e.Kind {
	case ExpectConverged, ExpectIdempotent:
		w = append(w, e.Kind)
	case ExpectMissing:
		w = append(w, e.Kind)
		where()
		w = append(w, e.Labels...)
	case ExpectCount:
		w = append(w, e.Kind)
		where()
		w = append(w, quote(e.Mailbox), strconv.Itoa(e.N))
	case ExpectMailboxes:
		w = append(w, e.Kind)
		where()
		quoteAll(e.Mailboxes)
	case ExpectQuarantined:
		w = append(w, e.Where, e.Kind)
		w = append(w, e.Labels...)
	case ExpectContents:
		where()
		w = append(w, quote(e.Mailbox))
		w = append(w, e.Labels...)
	case ExpectFlags:
		where()
		w = append(w, quote(e.Mailbox))
		w = append(w, e.Labels...)
		w = append(w, "flags")
		quoteAll(e.Flags)
	}
	return w
}

// optionWords renders the options of a step in their canonical order.
func optionWords(st *Step) []string {
	var w []string
	has := func(k string) bool { _, ok := st.Options[k]; return ok }
	if st.Verb != "expect" && (has("flags") || len(st.Flags) > 0) {
		w = append(w, "flags="+strings.Join(st.Flags, ","))
	}
	if has("size") || st.Verb != "expect" && st.Verb != "fail" && st.Verb != "repeat" && st.N > 0 {
		w = append(w, "size="+strconv.Itoa(st.N))
	}
	if st.NoMessageID {
		w = append(w, "no-message-id")
	}
	if st.InterruptAfter > 0 {
		w = append(w, "interrupt-after="+strconv.Itoa(st.InterruptAfter))
	}
	if st.CrashAfter > 0 {
		w = append(w, "crash-after="+strconv.Itoa(st.CrashAfter))
	}
	if st.LoseAnswer > 0 {
		w = append(w, "lose-answer="+strconv.Itoa(st.LoseAnswer))
	}
	if st.CrashLoseAnswer > 0 {
		w = append(w, "crash-lose-answer="+strconv.Itoa(st.CrashLoseAnswer))
	}
	if st.Command != "" {
		w = append(w, "command="+quoteValue(st.Command))
	}
	if st.Expect != nil && st.Expect.Within > 0 {
		w = append(w, "within="+formatDuration(st.Expect.Within))
	}
	return w
}

func quoteValue(v string) string {
	if strings.ContainsAny(v, " \t\"") {
		return `"` + escapeQuoted(v) + `"`
	}
	return v
}

// formatDuration writes d without zero units: 2m rather than 2m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
