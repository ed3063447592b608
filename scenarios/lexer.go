package scenarios

import (
	"errors"
	"strings"
)

// A token is one word of a script line.
type token struct {
	text string // the value, quotes removed
	raw  string // as written
}

// quoted reports whether the token was written with quotes anywhere: such a token is never
// a keyword, an option or a guard.
func (t token) quoted() bool { return strings.ContainsRune(t.raw, '"') }

// splitLine splits a script line into its words and its trailing comment. '#' starts a
// comment at the start of the line or after white space, outside quotes. Inside double
// quotes, white space and '#' are literal and \" and \\ are escapes.
func splitLine(line string) (toks []token, comment string, hasComment bool, err error) {
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i >= len(line) {
			return toks, "", false, nil
		}
		if line[i] == '#' {
			return toks, strings.TrimRight(line[i+1:], " \t\r"), true, nil
		}
		start := i
		var text strings.Builder
		for i < len(line) && !isSpace(line[i]) {
			c := line[i]
			if c != '"' {
				text.WriteByte(c)
				i++
				continue
			}
			i++ // opening quote
			closed := false
			for i < len(line) {
				c = line[i]
				if c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					text.WriteByte(line[i+1])
					i += 2
					continue
				}
				if c == '"' {
					closed = true
					i++
					break
				}
				text.WriteByte(c)
				i++
			}
			if !closed {
				return toks, "", false, errors.New("unterminated quoted string")
			}
		}
		toks = append(toks, token{text: text.String(), raw: line[start:i]})
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// quote returns s as a script word: unchanged when it reads back as itself, else in double
// quotes with '"' and '\' escaped.
func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\r\n\v\f\"#[=<") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
