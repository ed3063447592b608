package clients

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Labels. Every message the harness makes carries its label three times: in its
// Message-ID (<LABEL.RUN@syncharness.invalid>), its Subject and the first line of its body,
// so that any view of it maps back to a label, even without a Message-ID and after an engine
// adds headers.

// LabelDomain is the domain part of the Message-IDs the harness makes.
const LabelDomain = "syncharness.invalid"

// MessageSpec describes a message for MakeMessage.
type MessageSpec struct {
	Label       string
	Run         string    // run id, part of the Message-ID
	NoMessageID bool      // leave out the Message-ID header
	Size        int       // pad the body to at least this many bytes
	Date        time.Time // Date header; zero: 2026-01-02 03:04:05 UTC
	Seed        int64     // varies the filler text deterministically
}

// MakeMessage returns a deterministic RFC 5322 message (CRLF line endings) for spec.
func MakeMessage(spec MessageSpec) []byte {
	date := spec.Date
	if date.IsZero() {
		date = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	var b bytes.Buffer
	b.WriteString("From: Sender <sender@" + LabelDomain + ">\r\n")
	b.WriteString("To: User <user@" + LabelDomain + ">\r\n")
	b.WriteString("Subject: " + spec.Label + "\r\n")
	b.WriteString("Date: " + date.Format(time.RFC1123Z) + "\r\n")
	if !spec.NoMessageID {
		b.WriteString("Message-ID: <" + spec.Label + "." + spec.Run + "@" + LabelDomain + ">\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	b.WriteString(spec.Label + "\r\n")
	fmt.Fprintf(&b, "This is message %s of run %s.\r\n", spec.Label, spec.Run)
	x := uint64(spec.Seed)*6364136223846793005 + 1442695040888963407
	for line := 0; b.Len() < spec.Size; line++ {
		x = x*6364136223846793005 + 1442695040888963407
		fmt.Fprintf(&b, "filler %d %016x lorem ipsum dolor sit amet consectetur adipiscing\r\n", line, x)
	}
	return b.Bytes()
}

// Label returns the label a message carries: the local part of a syncharness Message-ID
// before the first dot, else the Subject, else the first body line. It returns "" for a
// message that carries none.
func Label(raw []byte) string {
	hdr, body := splitMessage(raw)
	var subject []byte
	label, found := "", false
	eachLine(hdr, func(line []byte) bool {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return true
		}
		value = bytes.TrimSpace(value)
		switch {
		case asciiFold(name, "message-id"):
			id := bytes.Trim(value, "<>")
			if local, domain, ok := bytes.Cut(id, []byte("@")); ok && string(domain) == LabelDomain {
				l, _, _ := bytes.Cut(local, []byte("."))
				label, found = string(l), true
				return false
			}
		case asciiFold(name, "subject"):
			subject = value
		}
		return true
	})
	if found {
		return label
	}
	if len(subject) > 0 {
		return string(subject)
	}
	first, _, _ := bytes.Cut(body, []byte("\n"))
	return string(bytes.TrimSpace(first))
}

// eachLine calls fn with each line of b, without its line ending, until fn returns false.
// Label and MessageID run for every message a round downloads: they allocate nothing but
// their result.
func eachLine(b []byte, fn func(line []byte) bool) {
	for len(b) > 0 {
		line, rest, _ := bytes.Cut(b, []byte("\n"))
		b = rest
		if !fn(bytes.TrimSuffix(line, []byte("\r"))) {
			return
		}
	}
}

// asciiFold reports whether b is want (lower case ASCII) in any case.
func asciiFold(b []byte, want string) bool {
	if len(b) != len(want) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// MessageID returns the Message-ID header value of raw without angle brackets, or "".
func MessageID(raw []byte) string {
	hdr, _ := splitMessage(raw)
	id := ""
	eachLine(hdr, func(line []byte) bool {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("message-id")) {
			id = string(bytes.Trim(bytes.TrimSpace(value), "<>"))
			return false
		}
		return true
	})
	return id
}

// ContentHash is the identity of a message's content: the hex SHA-256 of the raw message
// with line endings normalised to CRLF.
func ContentHash(raw []byte) string {
	h := sha256.New()
	start := 0
	for i, c := range raw {
		if c == '\n' {
			end := i
			if end > start && raw[end-1] == '\r' {
				end--
			}
			h.Write(raw[start:end])
			h.Write([]byte("\r\n"))
			start = i + 1
		}
	}
	h.Write(raw[start:])
	return hex.EncodeToString(h.Sum(nil))
}

func splitMessage(raw []byte) (header, body []byte) {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[:i], raw[i+4:]
	}
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		return raw[:i], raw[i+2:]
	}
	return raw, nil
}
