package harness

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/harness/proxy"
)

// A server may refuse what the RFCs allow it to do but do not require of it. A scenario
// that needs such a thing is skipped with the server's answer instead of ending in an
// error or a failure: the server lacks a feature, the engine did nothing wrong, and the
// scenario could not test what it was written for. Today that is a COPY whose source and
// destination are one mailbox (RFC 3501 §6.4.7 allows it; some servers refuse it), asked
// for by the harness's own `server copy` or by a device's `copy`.

// limitation reports whether err is the server's refusal of a server step that the server
// cannot do by design rather than by mistake, and why. Other refusals still end the
// scenario with an error.
func limitation(op ServerOp, err error) (string, bool) {
	var ie *imap.Error
	if op.Kind != "copy" || op.Mailbox != op.Dest || !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
		return "", false
	}
	answer := "NO"
	if ie.Code != "" {
		answer += " [" + string(ie.Code) + "]"
	}
	if ie.Text != "" {
		answer += " " + ie.Text
	}
	return fmt.Sprintf("the server cannot copy messages within one mailbox (server copy %s … %s: %s)", op.Mailbox, op.Dest, answer), true
}

// deviceLimitation reports why the scenario cannot go on when a device's COPY into the
// mailbox selected on its connection was answered NO, and the scenario had that device
// copy a message into the mailbox it is in: the server refuses COPY within one mailbox.
// It reads the device's own transcript, so it holds for any engine, whatever its errors
// say. lines are the device's transcript lines to look at (a round's, or all of them).
func deviceLimitation(name string, history []check.Op, lines []proxy.Line) string {
	line := 0
	for _, op := range history {
		if op.Actor == name && op.Kind == "copy" && sameMailbox(op.Mailbox, op.Dest) {
			line = op.Line
			break
		}
	}
	if line == 0 {
		return ""
	}
	cmd, answer := refusedCopyWithin(lines)
	if cmd == "" {
		return ""
	}
	return fmt.Sprintf("line %d: the server refuses COPY within one mailbox (%s sent %s, into the mailbox it had selected: %s)", line, name, cmd, answer)
}

// refusedCopyWithin finds, in one device's transcript, a COPY or UID COPY into the
// mailbox selected on its connection that the server answered NO, and returns the command
// and the answer (without their tags).
func refusedCopyWithin(lines []proxy.Line) (cmd, answer string) {
	type conn struct {
		selected string
		pending  map[string]string // SELECT/EXAMINE tag → mailbox
		copies   map[string]string // COPY tag into the selected mailbox → the command
	}
	conns := map[int]*conn{}
	for _, l := range lines {
		c := conns[l.Conn]
		if c == nil {
			c = &conn{pending: map[string]string{}, copies: map[string]string{}}
			conns[l.Conn] = c
		}
		tag, rest, _ := strings.Cut(l.Text, " ")
		switch l.Dir {
		case 'C':
			verb, args := commandWords(rest)
			switch verb {
			case "SELECT", "EXAMINE":
				mb, _ := astring(args)
				c.pending[tag] = mb
				c.selected = "" // a failed SELECT leaves none selected (RFC 3501 §6.3.1)
			case "COPY", "UID COPY":
				_, dest, _ := strings.Cut(args, " ")
				if mb, _ := astring(dest); c.selected != "" && sameMailbox(mb, c.selected) {
					c.copies[tag] = rest
				}
			}
		case 'S':
			status, _, _ := strings.Cut(rest, " ")
			if mb, ok := c.pending[tag]; ok {
				delete(c.pending, tag)
				if strings.EqualFold(status, "OK") {
					c.selected = mb
				}
			}
			if sent, ok := c.copies[tag]; ok {
				delete(c.copies, tag)
				if strings.EqualFold(status, "NO") {
					return sent, rest
				}
			}
		}
	}
	return "", ""
}

// commandWords splits a command line after its tag into its verb (two words for UID
// commands, upper case) and its arguments.
func commandWords(s string) (verb, args string) {
	verb, args, _ = strings.Cut(s, " ")
	verb = strings.ToUpper(verb)
	if verb == "UID" {
		var sub string
		sub, args, _ = strings.Cut(args, " ")
		verb += " " + strings.ToUpper(sub)
	}
	return verb, args
}

// astring reads one atom or quoted string (RFC 3501 §9) from the start of s and returns
// its value and what follows.
func astring(s string) (value, rest string) {
	s = strings.TrimLeft(s, " ")
	if !strings.HasPrefix(s, `"`) {
		value, rest, _ = strings.Cut(s, " ")
		return value, rest
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), strings.TrimLeft(s[i+1:], " ")
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}

// sameMailbox compares two mailbox names, INBOX in any case being INBOX (RFC 3501 §5.1).
func sameMailbox(a, b string) bool {
	return a == b || strings.EqualFold(a, "INBOX") && strings.EqualFold(b, "INBOX")
}

// deviceLimitation is deviceLimitation for d's transcript from line index from on.
func (r *runner) deviceLimitation(d *device, from int) string {
	lines := d.proxy.Transcript()
	r.mu.Lock()
	h := append([]check.Op(nil), r.history...)
	r.mu.Unlock()
	return deviceLimitation(d.name, h, lines[min(from, len(lines)):])
}

// limitedBy returns err, or a skip when the scenario did not pass (err, or failures) and
// a device's COPY within one mailbox was refused in a round no step returned it from (the
// settling, a watching device's round): the scenario could not test what it was written
// for.
func (r *runner) limitedBy(err error) error {
	var skip skipError
	if errors.As(err, &skip) || err == nil && len(r.failures) == 0 {
		return err
	}
	for _, d := range r.devices {
		if reason := r.deviceLimitation(d, 0); reason != "" {
			return skipError{reason: reason}
		}
	}
	return err
}
