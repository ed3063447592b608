package proxy

import (
	"bufio"
	"bytes"
	"io"
	"time"
)

// readBufferSize is the size of each direction's read and write buffers. A protocol line
// longer than this is still handled (it is assembled from several reads).
const readBufferSize = 64 << 10

// stampReader remembers when its last Read returned data, so a line's arrival time can be
// told apart from the time the proxy got round to it. It is owned by one pump goroutine.
type stampReader struct {
	r    io.Reader
	last time.Time
}

func (s *stampReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if n > 0 {
		s.last = time.Now()
	}
	return n, err
}

// lineReader reads IMAP protocol segments: runs of bytes up to and including LF. It is owned
// by one pump goroutine.
type lineReader struct {
	stamp stampReader
	br    *bufio.Reader
	buf   []byte // the current segment; valid until the next readSegment
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{stamp: stampReader{r: r}}
	lr.br = bufio.NewReaderSize(&lr.stamp, readBufferSize)
	return lr
}

// readSegment returns the next segment including its line ending, and when its first byte
// arrived. At end of stream a final unterminated segment is returned with io.EOF.
func (lr *lineReader) readSegment() ([]byte, time.Time, error) {
	arrival := lr.stamp.last
	buffered := lr.br.Buffered() > 0
	lr.buf = lr.buf[:0]
	for {
		chunk, err := lr.br.ReadSlice('\n')
		lr.buf = append(lr.buf, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if !buffered {
			arrival = lr.stamp.last
		}
		return lr.buf, arrival, err
	}
}

// literalAt reports whether segment (with or without its line ending) ends with a literal
// announcement: {n}, {n+}, {n-} (synchronizing or not) or the literal8 forms ~{n}, ~{n+}.
// It returns the literal's size and the offset where the announcement starts.
func literalAt(segment []byte) (size int64, start int, ok bool) {
	s := trimEOL(segment)
	if len(s) < 3 || s[len(s)-1] != '}' {
		return 0, 0, false
	}
	i := len(s) - 2
	if s[i] == '+' || s[i] == '-' {
		i--
	}
	end := i + 1
	for i >= 0 && s[i] >= '0' && s[i] <= '9' {
		i--
	}
	digits := s[i+1 : end]
	if len(digits) == 0 || len(digits) > 18 || i < 0 || s[i] != '{' {
		return 0, 0, false
	}
	for _, d := range digits {
		size = size*10 + int64(d-'0')
	}
	start = i
	if i > 0 && s[i-1] == '~' {
		start = i - 1
	}
	return size, start, true
}

// isSyncLiteral reports whether segment ends with a synchronizing literal announcement
// ({n} or ~{n}), for which a client waits for the server's continuation request.
func isSyncLiteral(segment []byte) bool {
	s := trimEOL(segment)
	_, _, ok := literalAt(s)
	return ok && s[len(s)-2] >= '0' && s[len(s)-2] <= '9'
}

// trimEOL removes a trailing CRLF or LF.
func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}

// firstTokens splits a protocol line into its first two space-separated tokens and the rest.
func firstTokens(line []byte) (first, second, rest []byte) {
	line = trimEOL(line)
	first, after, _ := bytes.Cut(line, []byte{' '})
	second, rest, _ = bytes.Cut(after, []byte{' '})
	return first, second, rest
}

// commandName returns a client command line's tag and upper-cased command name; "UID FETCH"
// and the like keep both words.
func commandName(line []byte) (tag, name string) {
	t, n, rest := firstTokens(line)
	name = string(bytes.ToUpper(n))
	if name == "UID" {
		sub, _, _ := bytes.Cut(rest, []byte{' '})
		name += " " + string(bytes.ToUpper(sub))
	}
	return string(t), name
}

// isUpdateWord reports whether w, the third token of an untagged line, names a response a
// server sends about a change of the selected mailbox: EXISTS, EXPUNGE, FETCH.
func isUpdateWord(w []byte) bool {
	return bytes.EqualFold(w, []byte("EXISTS")) || bytes.EqualFold(w, []byte("EXPUNGE")) ||
		bytes.EqualFold(w, []byte("FETCH"))
}

// isStatusWord reports whether w is a status response word (RFC 9051 §7.1).
func isStatusWord(w []byte) bool {
	for _, s := range [...]string{"OK", "NO", "BAD", "BYE", "PREAUTH"} {
		if bytes.EqualFold(w, []byte(s)) {
			return true
		}
	}
	return false
}
