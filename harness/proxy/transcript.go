package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"
	"time"
)

// Directions of a transcript Line.
const (
	DirClient byte = 'C' // a line the client sent to the server
	DirServer byte = 'S' // a line the server sent to the client
	DirEvent  byte = '*' // something the proxy did or saw (Events): a connection opened, cut, closed
)

// Redacted replaces secrets in transcripts: the LOGIN password, AUTHENTICATE initial
// responses and every SASL exchange line the client sends.
const Redacted = "[REDACTED]"

// maxLineText is how much of one protocol line a transcript keeps; the rest is counted.
const maxLineText = 300

// A Line is one protocol line in a transcript. A command or response that carries literals
// is one Line, with each literal summarised as {N bytes}.
type Line struct {
	Time time.Duration // offset from Options.Start at which the line arrived at the proxy
	Conn int           // connection number, from 1, in the order the proxy accepted them
	Dir  byte          // DirClient 'C', DirServer 'S'; DirEvent '*' only from Events
	Text string        // the line without its CRLF, redacted and possibly shortened
}

// String formats the line as WriteTranscript does: "+0.012s C a1 UID FETCH 1:* (FLAGS)".
func (l Line) String() string {
	return fmt.Sprintf("+%.3fs %c %s", l.Time.Seconds(), l.Dir, l.Text)
}

// transcript is the proxy's record of every connection. Safe for concurrent use.
type transcript struct {
	start time.Time            // immutable
	clock func() time.Duration // immutable; nil means the wall clock since start
	mu    sync.Mutex
	lines []Line
}

// add appends a line and returns its index for later updates.
func (t *transcript) add(at time.Time, conn int, dir byte, text string) int {
	when := at.Sub(t.start)
	if t.clock != nil {
		when = t.clock()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, Line{Time: when, Conn: conn, Dir: dir, Text: text})
	return len(t.lines) - 1
}

// addDated is add with the time given on the transcript's clock (Options.PushStamp). The
// line is never dated before the connection's previous one, so that it keeps its place
// among the connection's lines.
func (t *transcript) addDated(when time.Duration, conn int, dir byte, text string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := len(t.lines) - 1; i >= 0; i-- {
		if t.lines[i].Conn == conn {
			when = max(when, t.lines[i].Time)
			break
		}
	}
	t.lines = append(t.lines, Line{Time: when, Conn: conn, Dir: dir, Text: text})
	return len(t.lines) - 1
}

// set replaces the text of line i (a line that grew by a literal and its continuation).
func (t *transcript) set(i int, text string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines[i].Text = text
}

// copy returns the recorded lines whose direction keep accepts, in recording order.
func (t *transcript) copy(keep func(dir byte) bool) []Line {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Line, 0, len(t.lines))
	for _, l := range t.lines {
		if keep(l.Dir) {
			out = append(out, l)
		}
	}
	if t.clock != nil && !ordered(out) {
		// Lines of different connections within one tick of a logical clock crossed the
		// proxy in an order no scheduler decides (BYE sent to every connection at once, a
		// greeting beside an IDLE's DONE): list them by connection, so that a seed gives
		// the same transcript every time. Each connection's own lines keep their order.
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].Time != out[j].Time {
				return out[i].Time < out[j].Time
			}
			return out[i].Conn < out[j].Conn
		})
	}
	return out
}

// ordered reports whether lines are already in (time, connection) order.
func ordered(lines []Line) bool {
	for i := 1; i < len(lines); i++ {
		a, b := lines[i-1], lines[i]
		if a.Time > b.Time || a.Time == b.Time && a.Conn > b.Conn {
			return false
		}
	}
	return true
}

func isProtocol(dir byte) bool { return dir != DirEvent }
func isEvent(dir byte) bool    { return dir == DirEvent }
func allLines(byte) bool       { return true }

// Transcript returns a copy of the protocol lines recorded so far (Dir 'C' or 'S'), in the
// order they crossed the proxy (with Options.Clock, lines of one tick by connection). A line that grew by literals is recorded when its first
// segment arrived, with its final text.
func (p *Proxy) Transcript() []Line { return p.transcript.copy(isProtocol) }

// Events returns a copy of the proxy's own events recorded so far (Dir '*'): connections
// opened, cut (and why), closed by either side, the device going offline or online. Line.Conn
// is 0 for events that concern no single connection.
func (p *Proxy) Events() []Line { return p.transcript.copy(isEvent) }

// WriteTranscript writes the protocol lines and the events to w in recording order, one per
// line, formatted as Line.String: "+0.012s C a1 UID FETCH 1:* (FLAGS)".
func (p *Proxy) WriteTranscript(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, l := range p.transcript.copy(allLines) {
		if _, err := fmt.Fprintf(bw, "+%.3fs %c %s\n", l.Time.Seconds(), l.Dir, l.Text); err != nil {
			return fmt.Errorf("proxy: write transcript of %q: %w", p.name, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("proxy: write transcript of %q: %w", p.name, err)
	}
	return nil
}

// lineText builds the transcript text of one protocol line from its segments. Literal
// contents never enter it; the text is capped at maxLineText bytes.
type lineText struct {
	b       []byte
	dropped int
	fixed   bool // the text is final (a redacted line): later segments are ignored
}

func (lt *lineText) write(s []byte) {
	if room := maxLineText - len(lt.b); room < len(s) {
		if room > 0 {
			lt.b = append(lt.b, s[:room]...)
		}
		lt.dropped += len(s) - max(room, 0)
		return
	}
	lt.b = append(lt.b, s...)
}

// segment adds a segment as read from the wire; a literal announcement at its end is shown
// as {N bytes}.
func (lt *lineText) segment(seg []byte) {
	if lt.fixed {
		return
	}
	s := trimEOL(seg)
	if size, start, ok := literalAt(s); ok {
		lt.write(s[:start])
		if s[start] == '~' {
			lt.write([]byte{'~'})
		}
		lt.write([]byte("{" + strconv.FormatInt(size, 10) + " bytes}"))
		return
	}
	lt.write(s)
}

func (lt *lineText) String() string {
	if lt.dropped > 0 {
		return string(lt.b) + "... (" + strconv.Itoa(lt.dropped) + " more bytes)"
	}
	return string(lt.b)
}

// redactCommand returns the transcript text of a client command's first segment when it
// carries a secret (LOGIN, AUTHENTICATE with an initial response), and ok=false otherwise.
// Only the first segment is needed: everything that follows the user name is dropped.
func redactCommand(name string, seg []byte) (text string, ok bool) {
	switch name {
	case "LOGIN":
		tag, cmd, rest := firstTokens(seg)
		return string(tag) + " " + string(cmd) + " " + loginUser(rest) + " " + Redacted, true
	case "AUTHENTICATE":
		tag, cmd, rest := firstTokens(seg)
		mech, ir, _ := bytes.Cut(rest, []byte{' '})
		text = string(tag) + " " + string(cmd) + " " + string(mech)
		if len(ir) > 0 {
			text += " " + Redacted
		}
		return text, true
	}
	return "", false
}

// loginUser returns how the transcript shows the user name argument of LOGIN, which starts
// args: a quoted string or an atom as sent, a literal as {N bytes}.
func loginUser(args []byte) string {
	if len(args) == 0 {
		return ""
	}
	switch args[0] {
	case '"':
		for i := 1; i < len(args); i++ {
			switch args[i] {
			case '\\':
				i++
			case '"':
				return string(args[:i+1])
			}
		}
		return string(args)
	case '{', '~':
		if size, start, ok := literalAt(args); ok && start == 0 {
			return "{" + strconv.FormatInt(size, 10) + " bytes}"
		}
	}
	user, _, _ := bytes.Cut(args, []byte{' '})
	if len(user) > maxLineText {
		user = user[:maxLineText]
	}
	return string(user)
}
