package scenarios

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits of the scenario language. Lint (and run, which lints first) reports a file that
// goes past one as an error at the line that does, without running or expanding anything:
// a script is checked in time and memory linear in its size, whatever it asks for.
const (
	// MaxSteps bounds the steps a script runs once every repeat block is expanded (repeat
	// 1000 around repeat 1000 is a million). Counted without expanding.
	MaxSteps = 100_000
	// MaxRepeat bounds N in "repeat N".
	MaxRepeat = maxRepeat
	// MaxDepth bounds how deep repeat and concurrently blocks nest.
	MaxDepth = 10
	// MaxDevices bounds the names on the devices line: each is a sync engine with its own
	// replica and connections, and settling costs rounds times devices.
	MaxDevices = 16
	// MaxMessageSize bounds size=N, in bytes: below the fake server's APPEND limit
	// (64 MiB) and the message size limits common on real servers, and a message is held
	// in memory by the server and by every device.
	MaxMessageSize = 50_000_000
	// MaxMessages bounds the messages a script makes (deliver, append, reply, forward, one
	// per label), repeat blocks expanded.
	MaxMessages = 100_000
	// MaxMessageBytes bounds the bytes of the messages padded by size=, repeat blocks
	// expanded: every one is held by the server and by every device.
	MaxMessageBytes = 1_000_000_000
	// MaxMailboxName bounds a mailbox name, in bytes: the longest file name on common
	// file systems, which servers that keep a directory per mailbox run into.
	MaxMailboxName = 255
	// MaxMailboxes bounds the distinct mailbox names a script uses.
	MaxMailboxes = 1000
)

// A Limit is one limit of the language, as the reference lists it.
type Limit struct {
	Name  string // what is limited
	Max   int
	Unit  string // "steps", "bytes", …
	Why   string
	Where string // the command or option it applies to
}

// Limits returns the limits of the language in reference order. The slice is fresh on
// each call.
func Limits() []Limit {
	return []Limit{
		{"steps run, repeat blocks expanded", MaxSteps, "steps", "a script is a test, not a load generator: a long run hides its failure among its steps", "every step"},
		{"N of a repeat", MaxRepeat, "", "one block a thousand times is a long test already; nested blocks multiply", "`repeat N`"},
		{"nesting of blocks", MaxDepth, "levels", "no test needs more, and a deeper file is rejected before it is walked", "`repeat`, `concurrently`"},
		{"devices", MaxDevices, "", "each is a sync engine with its own replica and connections; settling costs rounds × devices", "`devices`"},
		{"message size", MaxMessageSize, "bytes", "below the fake server's APPEND limit (64 MiB) and the limits common on real servers; the server and every device hold each message in memory", "`size=N`"},
		{"messages made, repeat blocks expanded", MaxMessages, "", "the server and every device hold each one, and the checks compare them after every round", "`deliver`, `append`, `reply`, `forward` (one per label)"},
		{"bytes of messages padded by size=, repeat blocks expanded", MaxMessageBytes, "bytes", "the server and every device hold them", "`size=N`"},
		{"mailbox name", MaxMailboxName, "bytes", "the longest file name on common file systems, which servers that keep a directory per mailbox run into", "`MAILBOX`, `DEST`"},
		{"distinct mailbox names", MaxMailboxes, "", "every device lists and compares every mailbox in every round", "every mailbox argument"},
	}
}

// limitsReference is the section of the reference that lists the limits.
func limitsReference() string {
	var b strings.Builder
	b.WriteString("\n## Limits\n\n")
	b.WriteString("Lint (and `run`, which lints first) rejects a file that goes past one of these, " +
		"at the line that does, without running or expanding anything; a file is checked in time and " +
		"memory linear in its size.\n\n")
	b.WriteString("| Limit | At most | Applies to | Why |\n|---|---|---|---|\n")
	for _, l := range Limits() {
		max := groupDigits(l.Max)
		if l.Unit != "" {
			max += " " + l.Unit
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", l.Name, max, l.Where, tableEscape(l.Why))
	}
	b.WriteString("\nA file that is not text (a NUL byte anywhere, or bytes that are not UTF-8 in the script " +
		"before the first attached file) is rejected with one line, `FILE: not a text file (binary data at byte N)`, " +
		"N counting from 0 as `od` and `xxd` do. Attached files may hold any bytes but NUL, such as messages in an 8-bit charset.\n")
	return b.String()
}

// groupDigits writes n with a thin separator every three digits: 100,000.
func groupDigits(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// binaryAt returns the offset of the first byte that makes data not a scenario text file,
// or -1: a NUL anywhere, or invalid UTF-8 in the script (the part before the first
// attached file, which is scriptLen bytes long).
func binaryAt(data []byte, scriptLen int) int {
	scriptLen = min(scriptLen, len(data)) // txtar ends the script with a newline it may add
	script := data[:scriptLen]
	for i := 0; i < len(script); {
		r, n := utf8.DecodeRune(script[i:])
		if r == 0 || r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	if i := bytes.IndexByte(data[scriptLen:], 0); i >= 0 {
		return scriptLen + i
	}
	return -1
}

// limits checks the limits that need the whole script: steps, messages and bytes with
// repeat blocks expanded (counted, never expanded), devices, mailbox names. It reports
// each limit once, at the line that first goes past it.
type limits struct {
	c         *checker
	steps     int64
	messages  int64
	bytes     int64
	mailboxes map[string]bool
	reported  map[string]bool
	repeats   []*Step // the open repeat blocks, outermost first
}

func checkLimits(c *checker) {
	c.mute = false
	l := &limits{c: c, mailboxes: map[string]bool{}, reported: map[string]bool{}}
	l.walk(c.s.Steps, 1)
}

// mul returns a×b, or a number past every limit when it would overflow.
func mul(a, b int64) int64 {
	const big = 1 << 62
	if a == 0 || b == 0 {
		return 0
	}
	if a > big/b {
		return big
	}
	return a * b
}

func add(a, b int64) int64 {
	const big = 1 << 62
	if a > big-b {
		return big
	}
	return a + b
}

func (l *limits) once(key string, st *Step, format string, args ...any) {
	if l.reported[key] {
		return
	}
	l.reported[key] = true
	l.c.errorf(st.Line, st.Verb, format, args...)
}

// times says how often a step runs, for the errors: "10000 times (repeat on lines 2, 3)".
func (l *limits) times(times int64) string {
	if len(l.repeats) == 0 {
		return ""
	}
	lines := make([]string, len(l.repeats))
	for i, r := range l.repeats {
		lines[i] = fmt.Sprint(r.Line)
	}
	n := fmt.Sprint(times)
	if times >= 1<<62 {
		n = "more than 10^18"
	}
	return fmt.Sprintf(" (this line runs %s times: repeat on line %s)", n, strings.Join(lines, ", "))
}

// walk counts steps, each run times times.
func (l *limits) walk(steps []*Step, times int64) {
	for _, st := range steps {
		switch st.Verb {
		case "repeat", "concurrently":
			inner := times
			if st.Verb == "repeat" {
				inner = mul(times, int64(max(st.N, 1)))
				l.repeats = append(l.repeats, st)
			}
			l.walk(st.Body, inner)
			if st.Verb == "repeat" {
				l.repeats = l.repeats[:len(l.repeats)-1]
			}
			continue
		}
		l.step(st, times)
		if st.Actor == "" && setupVerbs[st.Verb] {
			continue // setup is not a step that runs
		}
		l.steps = add(l.steps, times)
		if l.steps > MaxSteps {
			l.once("steps", st, "more than %d steps with repeat blocks expanded%s", MaxSteps, l.times(times))
		}
	}
}

func (l *limits) step(st *Step, times int64) {
	if st.Actor == "" && st.Verb == "devices" && len(st.Devices) > MaxDevices {
		l.once("devices", st, "%d devices (at most %d)", len(st.Devices), MaxDevices)
	}
	if st.Verb == "deliver" || st.Verb == "append" || st.Verb == "reply" || st.Verb == "forward" {
		made := int64(len(st.Labels))
		if st.Verb == "reply" || st.Verb == "forward" {
			made = 1
		}
		l.messages = add(l.messages, mul(made, times))
		if l.messages > MaxMessages {
			l.once("messages", st, "more than %d messages made with repeat blocks expanded%s", MaxMessages, l.times(times))
		}
	}
	if _, ok := st.Options["size"]; ok {
		if st.N > MaxMessageSize {
			l.once(fmt.Sprint("size", st.Line), st, "size=%d is too large (at most %d bytes)", st.N, MaxMessageSize)
		} else {
			l.bytes = add(l.bytes, mul(mul(int64(st.N), int64(len(st.Labels))), times))
			if l.bytes > MaxMessageBytes {
				l.once("bytes", st, "more than %d bytes of messages padded by size= with repeat blocks expanded%s", MaxMessageBytes, l.times(times))
			}
		}
	}
	names := []string{st.Mailbox}
	if st.Verb == "move" || st.Verb == "copy" || st.Verb == "rename" {
		names = append(names, st.Dest)
	}
	if e := st.Expect; e != nil {
		names = append(append(names, e.Mailbox), e.Mailboxes...)
	}
	for _, n := range names {
		if n == "" {
			continue
		}
		if len(n) > MaxMailboxName {
			l.c.errorf(st.Line, st.Verb, "mailbox name of %d bytes is too long (at most %d): %.40q…", len(n), MaxMailboxName, n)
			continue
		}
		if !l.mailboxes[n] && len(l.mailboxes) >= MaxMailboxes {
			l.once("mailboxes", st, "more than %d distinct mailbox names", MaxMailboxes)
			continue
		}
		l.mailboxes[n] = true
	}
}
