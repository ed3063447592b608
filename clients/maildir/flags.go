package maildir

import (
	"sort"
	"strings"
)

// Flags is a set of the six standard Maildir flags. Its String form is the flag letters in
// ASCII order, as they appear after ":2," in a file name.
type Flags uint8

// The standard Maildir flags. Each maps to one IMAP flag (see IMAPFlag).
const (
	Draft   Flags = 1 << iota // D: \Draft
	Flagged                   // F: \Flagged
	Passed                    // P: resent, forwarded or bounced ($Forwarded)
	Replied                   // R: \Answered
	Seen                      // S: \Seen
	Trashed                   // T: \Deleted (marked for removal, still present)
)

// flagLetters lists the standard flags in ASCII order of their letters.
var flagLetters = [...]struct {
	flag   Flags
	letter byte
	imap   string
}{
	{Draft, 'D', `\Draft`},
	{Flagged, 'F', `\Flagged`},
	{Passed, 'P', `$Forwarded`},
	{Replied, 'R', `\Answered`},
	{Seen, 'S', `\Seen`},
	{Trashed, 'T', `\Deleted`},
}

// String returns the flag letters in ASCII order ("FS" for Flagged|Seen, "" for none).
func (f Flags) String() string {
	var b strings.Builder
	for _, l := range flagLetters {
		if f&l.flag != 0 {
			b.WriteByte(l.letter)
		}
	}
	return b.String()
}

// Has reports whether every flag of g is in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// ParseFlags splits the letters after ":2," into the standard flags and the other letters
// (lowercase keyword letters some servers use, experimental letters). Other letters are
// returned in ASCII order without duplicates, so that a rename can keep them.
func ParseFlags(letters string) (std Flags, other string) {
	var rest []byte
	for i := 0; i < len(letters); i++ {
		c := letters[i]
		if f, ok := flagForLetter(c); ok {
			std |= f
			continue
		}
		if c == ',' { // some writers separate letters; it carries no meaning
			continue
		}
		rest = append(rest, c)
	}
	if len(rest) == 0 {
		return std, ""
	}
	sort.Slice(rest, func(i, j int) bool { return rest[i] < rest[j] })
	out := rest[:1]
	for _, c := range rest[1:] {
		if c != out[len(out)-1] {
			out = append(out, c)
		}
	}
	return std, string(out)
}

func flagForLetter(c byte) (Flags, bool) {
	for _, l := range flagLetters {
		if l.letter == c {
			return l.flag, true
		}
	}
	return 0, false
}

// IMAPFlags returns the IMAP flags that f stands for, in the order of the Maildir letters.
func (f Flags) IMAPFlags() []string {
	var out []string
	for _, l := range flagLetters {
		if f&l.flag != 0 {
			out = append(out, l.imap)
		}
	}
	return out
}

// FromIMAP splits IMAP flags into the Maildir flags they map to and the rest (every
// keyword and system flag without a letter, such as \Recent or $Junk). Matching is
// case-insensitive, as IMAP flags are; the rest keeps its spelling and order.
//
// Keywords have no place in a standard Maildir file name: a caller that needs them keeps
// them in its own index keyed by the message's Key (the engine's disk store keeps all of a
// message's flags in its database and only mirrors the standard ones into the name).
func FromIMAP(flags []string) (std Flags, rest []string) {
	for _, fl := range flags {
		matched := false
		for _, l := range flagLetters {
			if strings.EqualFold(fl, l.imap) {
				std |= l.flag
				matched = true
				break
			}
		}
		if !matched {
			rest = append(rest, fl)
		}
	}
	return std, rest
}
