package reports

import (
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/mattn/go-isatty"
)

// UseColor reports whether output to f should be coloured: f is a terminal, the NO_COLOR
// environment variable is unset or empty (https://no-color.org) and TERM is not "dumb".
func UseColor(f *os.File) bool {
	if f == nil || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// palette wraps text in ANSI styles, or returns it unchanged when colour is off.
type palette struct{ on bool }

func newPalette(on bool) palette { return palette{on: on} }

const (
	ansiReset   = "\x1b[0m"
	ansiBold    = "\x1b[1m"
	ansiDim     = "\x1b[2m"
	ansiRed     = "\x1b[1;31m"
	ansiGreen   = "\x1b[32m"
	ansiYellow  = "\x1b[33m"
	ansiMagenta = "\x1b[35m"
)

func (p palette) style(code, s string) string {
	if !p.on || s == "" {
		return s
	}
	return code + s + ansiReset
}

func (p palette) pass(s string) string { return p.style(ansiGreen, s) }
func (p palette) fail(s string) string { return p.style(ansiRed, s) }
func (p palette) skip(s string) string { return p.style(ansiYellow, s) }
func (p palette) warn(s string) string { return p.style(ansiMagenta, s) }

// server colours what is the server's fault: a scenario attributed to it.
func (p palette) server(s string) string { return p.style(ansiMagenta, s) }
func (p palette) bold(s string) string   { return p.style(ansiBold, s) }
func (p palette) dim(s string) string    { return p.style(ansiDim, s) }

// clean makes s safe to print on one terminal line: control characters (escape sequences
// included, from a server's transcript for instance), newlines and invalid UTF-8 are shown
// as Go escapes (\x1b, \n, \xff) instead of acting on the terminal. A tab becomes a space.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || isControl(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\t':
			b.WriteByte(' ')
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x80 && isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		case isControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// isControl reports C0 and C1 control characters and DEL.
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)
}

// width is the number of terminal columns of a cleaned string, counting one per rune.
func width(s string) int { return utf8.RuneCountInString(s) }

// truncate shortens s to at most n runes, ending with "…" when it cut.
func truncate(s string, n int) string {
	if width(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-1]) + "…"
}
