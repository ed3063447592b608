package scenarios

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// lineParser parses the arguments of one step line.
type lineParser struct {
	p      *parser
	st     *Step
	sp     *spec
	line   int
	pos    []token // positional words
	opts   []token // key=value words
	bare   []token // bare option words (no-message-id)
	file   *token  // "< FILE"
	failed bool
}

func (lp *lineParser) command() string { return lp.st.Verb }

func (lp *lineParser) errorf(format string, args ...any) {
	lp.failed = true
	lp.p.errorf(lp.line, lp.command(), format, args...)
}

// usage returns the usage line of the command, with the device's name for device steps.
func (lp *lineParser) usage() string {
	u := lp.sp.doc.Usage
	if lp.sp.doc.Actor == "device" && lp.st.Actor != "" {
		u = strings.Replace(u, "DEVICE", lp.st.Actor, 1)
	}
	return u
}

func (lp *lineParser) usageErr() {
	if !lp.failed {
		lp.errorf("usage: %s", lp.usage())
	}
}

// isOption reports whether t is written key=value with a lower-case key.
func isOption(t token) bool {
	eq := strings.IndexByte(t.raw, '=')
	if eq <= 0 {
		return false
	}
	for i := 0; i < eq; i++ {
		c := t.raw[i]
		if !(c >= 'a' && c <= 'z' || i > 0 && (c == '-' || c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// split sorts the words of a line into positional arguments, options and "< FILE".
func (lp *lineParser) split(args []token) {
	for i := 0; i < len(args); i++ {
		t := args[i]
		switch {
		case isOption(t):
			lp.opts = append(lp.opts, t)
		case !t.quoted() && t.text == "no-message-id":
			lp.bare = append(lp.bare, t)
		case !t.quoted() && strings.HasPrefix(t.text, "<"):
			var f token
			if t.text == "<" {
				if i+1 >= len(args) {
					lp.errorf("missing FILE after '<'")
					return
				}
				i++
				f = args[i]
			} else {
				f = token{text: t.text[1:], raw: t.raw[1:]}
			}
			switch {
			case !lp.sp.file:
				lp.errorf("%s takes no '< FILE'", lp.command())
			case lp.file != nil:
				lp.errorf("'< FILE' given twice")
			default:
				lp.file = &f
				lp.st.File = f.text
			}
		default:
			lp.pos = append(lp.pos, t)
		}
	}
}

// next takes the next positional argument.
func (lp *lineParser) next() (token, bool) {
	if len(lp.pos) == 0 {
		lp.usageErr()
		return token{}, false
	}
	t := lp.pos[0]
	lp.pos = lp.pos[1:]
	return t, true
}

// mailbox takes a mailbox name.
func (lp *lineParser) mailbox() string {
	t, ok := lp.next()
	if !ok {
		return ""
	}
	return lp.checkMailbox(t)
}

func (lp *lineParser) checkMailbox(t token) string {
	name := t.text
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	switch {
	case name == "":
		lp.errorf("empty mailbox name")
	case strings.ContainsAny(name, "*%\r\n"):
		lp.errorf("bad mailbox name %q: '*' and '%%' are IMAP wildcards", name)
	case strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//"):
		lp.errorf("bad mailbox name %q: '/' separates levels (Archive/2026)", name)
	}
	return name
}

// labels takes every positional argument but the last keep as message labels, at least min.
func (lp *lineParser) labels(min, keep int) []string {
	n := len(lp.pos) - keep
	if n < min {
		lp.usageErr()
		lp.pos = nil
		return nil
	}
	var out []string
	for _, t := range lp.pos[:n] {
		out = append(out, lp.checkLabel(t))
	}
	lp.pos = lp.pos[n:]
	return out
}

func (lp *lineParser) label() string {
	t, ok := lp.next()
	if !ok {
		return ""
	}
	return lp.checkLabel(t)
}

func (lp *lineParser) checkLabel(t token) string {
	if msg := labelProblem(t.text); msg != "" {
		lp.errorf("%s", msg)
	}
	return t.text
}

// labelProblem says what is wrong with a message label, or "".
func labelProblem(l string) string {
	if l == "" {
		return "empty label"
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "bad label " + strconv.Quote(l) + ": a label is letters, digits, '-' and '_' (m1, draft-2)"
		}
	}
	if reservedLabels[l] {
		return "bad label " + strconv.Quote(l) + ": it is a keyword of the language"
	}
	return ""
}

var reservedLabels = map[string]bool{"flags": true, "no-message-id": true, "quarantined": true}

// settableFlag takes a flag that a user or the server can set.
func (lp *lineParser) settableFlag(s string) string {
	f, msg := checkFlag(s)
	if msg != "" {
		lp.errorf("%s", msg)
	}
	return f
}

// number parses a whole number of at least min.
func (lp *lineParser) number(s, what string, min int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		lp.errorf("bad number %q for %s", s, what)
		return 0
	}
	if n < min {
		lp.errorf("%s must be at least %d, not %d", what, min, n)
	}
	return n
}

// duration parses a duration such as 20ms or 2s, at least min and at most 10 minutes.
func (lp *lineParser) duration(s, what string, min time.Duration) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		lp.errorf("bad duration %q for %s (write 20ms, 1.5s, 2m)", s, what)
		return 0
	}
	if d < min {
		if min == 0 {
			lp.errorf("%s cannot be negative: %s", what, s)
		} else {
			lp.errorf("%s must be positive: %s", what, s)
		}
	}
	if d > maxDuration {
		lp.errorf("%s is too long: %s (at most %s)", what, s, formatDuration(maxDuration))
	}
	return d
}

const maxDuration = 10 * time.Minute

// options checks and applies the key=value and bare options of the line.
func (lp *lineParser) options() {
	allowed := map[string]bool{}
	for _, o := range lp.sp.opts {
		allowed[o] = true
	}
	for _, t := range lp.bare {
		if !allowed[t.text] {
			lp.errorf("unknown option %s%s", t.text, lp.allowedList())
			continue
		}
		if lp.st.NoMessageID {
			lp.errorf("option %s given twice", t.text)
		}
		lp.st.NoMessageID = true
		if lp.file != nil {
			lp.errorf("no-message-id does not apply to a message read from a file")
		}
	}
	for _, t := range lp.opts {
		key, val, _ := strings.Cut(t.text, "=")
		if !allowed[key] {
			lp.errorf("unknown option %s%s", key, lp.allowedList())
			continue
		}
		if _, dup := lp.st.Options[key]; dup {
			lp.errorf("option %s given twice", key)
			continue
		}
		lp.st.Options[key] = val
		switch key {
		case "flags":
			lp.st.Flags = nil
			for _, f := range strings.Split(val, ",") {
				if f == "" && val == "" {
					break
				}
				lp.st.Flags = append(lp.st.Flags, lp.settableFlag(f))
			}
		case "size":
			lp.st.N = lp.number(val, "size", 0)
			if lp.file != nil {
				lp.errorf("size does not apply to a message read from a file")
			}
		case "interrupt-after":
			lp.st.InterruptAfter = lp.number(val, "interrupt-after", 1)
		case "crash-after":
			lp.st.CrashAfter = lp.number(val, "crash-after", 1)
		case "lose-answer":
			lp.st.LoseAnswer = lp.number(val, "lose-answer", 1)
		case "crash-lose-answer":
			lp.st.CrashLoseAnswer = lp.number(val, "crash-lose-answer", 1)
		case "within":
			lp.st.Duration = lp.duration(val, "within", time.Nanosecond)
			if lp.st.Expect != nil {
				lp.st.Expect.Within = lp.st.Duration
			}
		case "command":
			if !isCommandName(val) {
				lp.errorf("bad IMAP command name %q for command= (SELECT, FETCH, \"UID MOVE\")", val)
			}
			lp.st.Command = strings.ToUpper(val)
		}
	}
	lp.oneCut()
}

// oneCut reports sync options that each end the round at a command of their own and so
// cannot be combined: interrupt-after, crash-after, lose-answer, crash-lose-answer.
func (lp *lineParser) oneCut() {
	var given []string
	for _, o := range []struct {
		name string
		n    int
	}{
		{"interrupt-after", lp.st.InterruptAfter}, {"crash-after", lp.st.CrashAfter},
		{"lose-answer", lp.st.LoseAnswer}, {"crash-lose-answer", lp.st.CrashLoseAnswer},
	} {
		if o.n > 0 {
			given = append(given, o.name)
		}
	}
	if n := len(given); n > 1 {
		lp.errorf("%s and %s exclude each other", strings.Join(given[:n-1], ", "), given[n-1])
	}
}

func (lp *lineParser) allowedList() string {
	if len(lp.sp.opts) == 0 {
		return ": " + lp.command() + " takes no options"
	}
	o := append([]string(nil), lp.sp.opts...)
	sort.Strings(o)
	return " (" + lp.command() + " takes: " + strings.Join(o, ", ") + ")"
}

func isCommandName(s string) bool {
	if s == "" || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") || strings.Contains(s, "  ") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == ' ') {
			return false
		}
	}
	return true
}
