package engine

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/emersion/go-imap/v2"
)

// The flag scan of a mailbox without CONDSTORE is one UID FETCH 1:* (UID FLAGS
// RFC822.SIZE): one answer line per message. go-imap's client gives each message of an
// answer a channel of its own and a hand-over between its reader and the caller, about
// half of a no-change round's processor time on 50,000 messages. The connection's tap
// reads those lines itself while the command runs: each line that is a plain answer
// about one message (UID, FLAGS, RFC822.SIZE, MODSEQ; no literal, nothing else) is taken
// out of the stream and handed to the scan; every other line, and any answer the tap
// cannot read exactly as go-imap would, reaches go-imap untouched, and the scan takes it
// from go-imap as before. The tag of the command is read from what the client writes, and
// taking stops at its completion.

// flagAnswer is one message of a flag scan as the tap read it.
type flagAnswer struct {
	uid   uint32
	size  uint32
	flags Flags
}

// flagTaker takes the answers of one flag scan from the stream (see tapConn.takeFlags).
type flagTaker struct {
	// take is called on the reader's goroutine, in the order of the answers; it returns
	// false to leave the answer to go-imap (a second answer about one UID).
	take func(flagAnswer) bool
	tag  []byte // the command's tag once written; nil before
}

// maxTakenLine is the longest answer line the tap holds back to read, however the reads
// cut it: a message with a longer keyword list goes to go-imap.
const maxTakenLine = 2048

// takeFlags makes the tap take the answers of the next UID FETCH the client writes (until
// its tagged completion or stopTaking) and offer each to take, on go-imap's reader.
func (t *tapConn) takeFlags(take func(flagAnswer) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.taker = &flagTaker{take: take}
	t.taking.Store(true)
}

// stopTaking ends takeFlags. Bytes the tap held back are passed on.
func (t *tapConn) stopTaking() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.taker = nil
}

// Write notes the tag of the flag scan's command.
func (t *tapConn) Write(p []byte) (int, error) {
	t.mu.Lock()
	if tk := t.taker; tk != nil && tk.tag == nil {
		if i := bytes.Index(p, []byte(" UID FETCH ")); i > 0 {
			line := p[:i]
			if j := bytes.LastIndexByte(line, '\n'); j >= 0 {
				line = line[j+1:]
			}
			if len(line) > 0 && !bytes.ContainsAny(line, " \r") {
				tk.tag = append([]byte(nil), line...)
			}
		}
	}
	t.mu.Unlock()
	return t.Conn.Write(p)
}

// readTaking is Read while a flag scan may be under way. t.mu is not held.
func (t *tapConn) readTaking(p []byte) (int, error) {
	for {
		t.mu.Lock()
		if t.outPos < len(t.out) {
			n := copy(p, t.out[t.outPos:])
			t.outPos += n
			if t.outPos == len(t.out) {
				t.out, t.outPos = t.out[:0], 0
			}
			t.mu.Unlock()
			return n, nil
		}
		if t.readErr != nil {
			err := t.readErr
			t.mu.Unlock()
			return 0, err
		}
		if t.taker == nil && len(t.held) == 0 {
			t.taking.Store(false) // nothing held back: Read reads directly again
			t.mu.Unlock()
			n, err := t.Conn.Read(p)
			t.scan(p[:n])
			return n, err
		}
		t.mu.Unlock()
		if t.scratch == nil {
			t.scratch = make([]byte, 16<<10)
		}
		n, err := t.Conn.Read(t.scratch)
		t.mu.Lock()
		t.filtered(t.scratch[:n], err)
		t.mu.Unlock()
	}
}

// filtered filters what a read returned, b and err. t.mu is held.
func (t *tapConn) filtered(b []byte, err error) {
	t.filter(b)
	if err != nil {
		t.passHeld()
		t.readErr = err
	}
}

// pass passes b on to go-imap, watched as every byte the server sends is. t.mu is held.
func (t *tapConn) pass(b []byte) {
	t.out = append(t.out, b...)
	t.scanLocked(b)
}

// passHeld passes on the start of a line held back. t.mu is held.
func (t *tapConn) passHeld() {
	t.pass(t.held)
	t.held = t.held[:0]
}

// filter passes b on to t.out, less the answers the taker takes. t.mu is held.
func (t *tapConn) filter(b []byte) {
	for len(b) > 0 {
		if t.taker == nil {
			t.passHeld()
			t.pass(b)
			return
		}
		if t.skip > 0 || t.passing {
			k := len(b)
			if t.skip > 0 {
				k = int(min(int64(k), t.skip))
			} else if i := bytes.IndexByte(b, '\n'); i >= 0 {
				k, t.passing = i+1, false
			}
			t.pass(b[:k])
			b = b[k:]
			continue
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if len(t.held)+len(b) > maxTakenLine {
				t.passHeld()
				t.pass(b)
				t.passing = true
			} else {
				t.held = append(t.held, b...)
			}
			return
		}
		t.held = append(t.held, b[:i+1]...)
		b = b[i+1:]
		line := t.held
		// A whole line: not the rest of one passed on before, nor of a response whose
		// literal came just before it (however the bytes before it were read).
		whole := !t.literal && len(t.line) == 0 && len(t.tail) == 0 && len(line) <= maxTakenLine
		t.scanLocked(line)
		if whole && t.taker.offer(line) {
			t.held = t.held[:0]
			continue
		}
		t.out = append(t.out, line...)
		t.held = t.held[:0]
		if tag := t.taker.tag; tag != nil && len(line) > len(tag) && bytes.HasPrefix(line, tag) && line[len(tag)] == ' ' {
			t.taker = nil // the command's completion: what follows is not its answer
		}
	}
}

// offer reads line as an answer of the flag scan; it returns false, taking nothing, for a
// line that is not one, or not one the tap reads exactly as go-imap would.
func (tk *flagTaker) offer(line []byte) bool {
	if tk.tag == nil {
		return false
	}
	a, ok := parseFlagAnswer(line)
	return ok && tk.take(a)
}

// parseFlagAnswer reads "* 12 FETCH (UID 34 FLAGS (\Seen $Work) RFC822.SIZE 5678)\r\n".
// It accepts the items UID (required), FLAGS, RFC822.SIZE and MODSEQ, each once, flags
// that are atoms, and nothing else.
func parseFlagAnswer(line []byte) (flagAnswer, bool) {
	var a flagAnswer
	rest, ok := bytes.CutPrefix(line, []byte("* "))
	if !ok {
		return a, false
	}
	if rest, ok = bytes.CutSuffix(rest, []byte("\r\n")); !ok {
		if rest, ok = bytes.CutSuffix(rest, []byte("\n")); !ok {
			return a, false
		}
	}
	seq, rest, ok := cutNumber(rest)
	if !ok || seq == 0 {
		return a, false
	}
	const fetch = " FETCH ("
	if len(rest) < len(fetch) || !bytes.EqualFold(rest[:len(fetch)], []byte(fetch)) {
		return a, false
	}
	rest = rest[len(fetch):]
	if rest, ok = bytes.CutSuffix(rest, []byte(")")); !ok {
		return a, false
	}
	var seenUID, seenFlags, seenSize, seenModSeq bool
	for first := true; len(rest) > 0 || first; first = false {
		if !first {
			if rest, ok = bytes.CutPrefix(rest, []byte(" ")); !ok {
				return a, false
			}
		}
		name, after, found := bytes.Cut(rest, []byte(" "))
		if !found {
			return a, false
		}
		rest = after
		var n uint32
		switch {
		case bytes.EqualFold(name, []byte("UID")) && !seenUID:
			if n, rest, ok = cutNumber(rest); !ok || n == 0 {
				return a, false
			}
			a.uid, seenUID = n, true
		case bytes.EqualFold(name, []byte("RFC822.SIZE")) && !seenSize:
			if n, rest, ok = cutNumber(rest); !ok {
				return a, false
			}
			a.size, seenSize = n, true
		case bytes.EqualFold(name, []byte("FLAGS")) && !seenFlags:
			if a.flags, rest, ok = cutFlagList(rest); !ok {
				return a, false
			}
			seenFlags = true
		case bytes.EqualFold(name, []byte("MODSEQ")) && !seenModSeq:
			list, after, found := bytes.Cut(rest, []byte(")"))
			if !found || len(list) < 2 || list[0] != '(' {
				return a, false
			}
			if _, err := strconv.ParseUint(string(list[1:]), 10, 64); err != nil {
				return a, false
			}
			rest, seenModSeq = after, true
		default:
			return a, false
		}
	}
	return a, seenUID
}

// cutNumber reads a number of 32 bits at the start of b.
func cutNumber(b []byte) (uint32, []byte, bool) {
	i := 0
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == 0 || i > 10 {
		return 0, b, false
	}
	n, err := strconv.ParseUint(string(b[:i]), 10, 32)
	if err != nil {
		return 0, b, false
	}
	return uint32(n), b[i:], true
}

// cutFlagList reads "(\Seen $Work)" at the start of b as parseIMAPFlags reads what go-imap
// makes of it: system flags and keywords named as go-imap names them. The spaces are
// go-imap's: one between flags, and one more before any flag.
func cutFlagList(b []byte) (Flags, []byte, bool) {
	var f Flags
	if len(b) == 0 || b[0] != '(' {
		return f, b, false
	}
	end := bytes.IndexByte(b, ')')
	if end < 0 {
		return f, b, false
	}
	list, rest := b[1:end], b[end+1:]
	var kws []string
	for len(list) > 0 {
		list, _ = bytes.CutPrefix(list, []byte(" "))
		tok, after, more := bytes.Cut(list, []byte(" "))
		if more && len(after) == 0 {
			return f, b, false // a space before the closing parenthesis
		}
		list = after
		system := len(tok) > 0 && tok[0] == '\\'
		name := tok
		if system {
			name = tok[1:]
		}
		if len(name) == 0 {
			return f, b, false
		}
		for _, c := range name {
			if !isAtomChar(c) {
				return f, b, false
			}
		}
		if system {
			f.System |= systemFlagOf(tok)
			continue
		}
		kws = append(kws, canonicalKeyword(string(tok)))
	}
	if kws != nil {
		f.Keywords = joinKeywords(kws)
	}
	return f, rest, true
}

// systemFlagOf is systemFlag for a flag's bytes ("\\Seen"), without making a string.
func systemFlagOf(tok []byte) SystemFlags {
	for _, s := range systemFlagNames {
		if len(tok) == len(s.name) && bytes.EqualFold(tok, []byte(s.name)) {
			return s.bit
		}
	}
	return 0
}

// isAtomChar reports whether c may appear in an atom (RFC 3501 ATOM-CHAR), as go-imap
// decides it (a byte is taken for the rune of the same number).
func isAtomChar(c byte) bool {
	switch c {
	case '(', ')', '{', ' ', '%', '*', '"', '\\', ']':
		return false
	}
	return !unicode.IsControl(rune(c))
}

var (
	canonKeywordsOnce sync.Once
	canonKeywords     map[string]string
)

// canonicalKeyword spells the keywords go-imap knows ($Forwarded, $Junk…) as it does.
func canonicalKeyword(k string) string {
	canonKeywordsOnce.Do(func() {
		canonKeywords = map[string]string{}
		for _, f := range []imap.Flag{imap.FlagForwarded, imap.FlagMDNSent, imap.FlagJunk,
			imap.FlagNotJunk, imap.FlagPhishing, imap.FlagImportant} {
			canonKeywords[strings.ToLower(string(f))] = string(f)
		}
	})
	if c, ok := canonKeywords[strings.ToLower(k)]; ok {
		return c
	}
	return k
}
