package proxy

import (
	"bytes"
	"strings"
)

// capMask is an immutable set of upper-cased capability names to hide from the client.
type capMask map[string]bool

// newCapMask builds the mask for caps. Masking CONDSTORE also masks QRESYNC, which depends
// on it (RFC 7162 §3.2.3).
func newCapMask(caps []string) capMask {
	if len(caps) == 0 {
		return nil
	}
	m := capMask{}
	for _, c := range caps {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == "" {
			continue
		}
		m[c] = true
		if c == "CONDSTORE" {
			m["QRESYNC"] = true
		}
	}
	return m
}

// has reports whether the token tok is masked.
func (m capMask) has(tok []byte) bool {
	return m[strings.ToUpper(string(tok))]
}

// command reports whether the command called name (as commandName returns it) exists only
// with an extension that is masked, and names that extension.
func (m capMask) command(name string) (capName string, masked bool) {
	switch name {
	case "MOVE", "UID MOVE":
		capName = "MOVE"
	case "UID EXPUNGE":
		capName = "UIDPLUS"
	case "IDLE", "NAMESPACE", "UNSELECT", "ENABLE", "ID", "STARTTLS":
		capName = name
	case "COMPRESS":
		capName = "COMPRESS=DEFLATE"
	default:
		return "", false
	}
	return capName, m[capName]
}

// apply returns line with the masked capabilities removed from a `* CAPABILITY` or
// `* ENABLED` response or from a `[CAPABILITY …]` response code of a status response, and
// with `[APPENDUID …]` and `[COPYUID …]` codes removed when UIDPLUS is masked. It
// returns line itself (the same bytes) when nothing is masked, so unaffected lines are
// forwarded exactly as received.
func (m capMask) apply(line []byte) []byte {
	if len(m) == 0 {
		return line
	}
	first, second, _ := firstTokens(line)
	switch {
	case string(first) == "*" && (bytes.EqualFold(second, []byte("CAPABILITY")) ||
		bytes.EqualFold(second, []byte("ENABLED"))):
		// "* CAPABILITY " is followed by the list up to the end of the line.
		start := len(first) + 1 + len(second)
		return m.filterList(line, start, len(trimEOL(line)))
	case isStatusWord(second):
		// Tagged or untagged status response: OK, NO, BAD, BYE, PREAUTH.
		return m.applyCode(line, len(first)+1+len(second))
	}
	return line
}

// applyCode filters the response code that starts right after offset from, if any: the
// list of a CAPABILITY code, or a whole UIDPLUS code when UIDPLUS is masked.
func (m capMask) applyCode(line []byte, from int) []byte {
	body := line[from:]
	if !bytes.HasPrefix(body, []byte(" [")) {
		return line
	}
	codeStart := from + 2
	end := bytes.IndexByte(line[codeStart:], ']')
	if end < 0 {
		return line
	}
	end += codeStart
	code, _, _ := bytes.Cut(line[codeStart:end], []byte{' '})
	switch {
	case bytes.EqualFold(code, []byte("CAPABILITY")):
		return m.filterList(line, codeStart+len(code), end)
	case m["UIDPLUS"] && (bytes.EqualFold(code, []byte("APPENDUID")) || bytes.EqualFold(code, []byte("COPYUID"))):
		// Drop " [CODE …]" and keep the text after it.
		out := make([]byte, 0, len(line))
		out = append(out, line[:from]...)
		return append(out, line[end+1:]...)
	}
	return line
}

// filterList removes masked tokens from the space-separated list line[start:end], where
// line[start:end] is empty or starts with a space. It keeps the rest of line unchanged.
func (m capMask) filterList(line []byte, start, end int) []byte {
	list := line[start:end]
	toks := bytes.Fields(list)
	kept := toks[:0:0]
	for _, t := range toks {
		if !m.has(t) {
			kept = append(kept, t)
		}
	}
	if len(kept) == len(toks) {
		return line
	}
	out := make([]byte, 0, len(line))
	out = append(out, line[:start]...)
	for _, t := range kept {
		out = append(out, ' ')
		out = append(out, t...)
	}
	return append(out, line[end:]...)
}
