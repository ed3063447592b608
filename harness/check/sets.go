package check

import (
	"sort"
	"strings"
)

// gone is the location of a message that is not on the server (expunged, or never made).
const gone = ""

// locSet is a sorted set of the mailboxes a message may be in; gone means it may be absent.
type locSet []string

func (l locSet) has(m string) bool {
	for _, x := range l {
		if x == m {
			return true
		}
	}
	return false
}

func (l locSet) only(m string) bool { return len(l) == 1 && l[0] == m }

func (l locSet) with(ms ...string) locSet {
	out := append(locSet(nil), l...)
	for _, m := range ms {
		if !out.has(m) {
			out = append(out, m)
		}
	}
	sort.Strings(out)
	return out
}

func (l locSet) without(m string) locSet {
	out := make(locSet, 0, len(l))
	for _, x := range l {
		if x != m {
			out = append(out, x)
		}
	}
	return out
}

func (l locSet) union(o locSet) locSet { return l.with(o...) }

func (l locSet) equal(o locSet) bool {
	if len(l) != len(o) {
		return false
	}
	for i := range l {
		if l[i] != o[i] {
			return false
		}
	}
	return true
}

// mailboxes returns l without gone.
func (l locSet) mailboxes() []string { return l.without(gone) }

// bits is a set of boolean values: which values a flag (set or not) or a mailbox (exists
// or not) may have.
type bits uint8

const (
	mayBeFalse bits = 1 << iota
	mayBeTrue
	eitherValue = mayBeFalse | mayBeTrue
)

func bitOf(v bool) bits {
	if v {
		return mayBeTrue
	}
	return mayBeFalse
}

func (b bits) allows(v bool) bool { return b&bitOf(v) != 0 }

// flagVal is the allowed values of one flag of a message.
type flagVal struct {
	name string
	v    bits
}

// flagMap holds the allowed values of a message's flags, sorted by name; a flag not listed
// may only be unset. Names are kept as canonFlag gives them, whatever get and set are
// given.
type flagMap []flagVal

func (f flagMap) get(name string) bits {
	name = canonFlag(name)
	for _, x := range f {
		if x.name == name {
			return x.v
		}
	}
	return mayBeFalse
}

func (f flagMap) set(name string, v bits) flagMap {
	name = canonFlag(name)
	out := make(flagMap, 0, len(f)+1)
	done := false
	for _, x := range f {
		if x.name == name {
			x.v = v
			done = true
		}
		if x.v != mayBeFalse {
			out = append(out, x)
		}
	}
	if !done && v != mayBeFalse {
		out = append(out, flagVal{name, v})
		sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	}
	return out
}

func (f flagMap) union(o flagMap) flagMap {
	out := append(flagMap(nil), f...)
	for _, x := range o {
		out = out.set(x.name, out.get(x.name)|x.v)
	}
	for _, x := range f { // flags in f but not in o: o allows unset
		out = out.set(x.name, out.get(x.name)|o.get(x.name))
	}
	return out
}

func (f flagMap) equal(o flagMap) bool {
	if len(f) != len(o) {
		return false
	}
	for i := range f {
		if f[i] != o[i] {
			return false
		}
	}
	return true
}

func flagsOf(names []string) flagMap {
	var f flagMap
	for _, n := range names {
		f = f.set(canonFlag(n), mayBeTrue)
	}
	return f
}

// canonFlag gives system flags their usual spelling and keywords lower case: flag and
// keyword names are case-insensitive atoms (RFC 3501 §2.3.2), so a device that shows the
// user's `$Label1` where the server stores `$label1` holds the same flag. (A server that
// changes the case is reported on the wire, S12.)
func canonFlag(f string) string {
	if !strings.HasPrefix(f, `\`) {
		for i := 0; i < len(f); i++ {
			if 'A' <= f[i] && f[i] <= 'Z' {
				return strings.ToLower(f)
			}
		}
		return f
	}
	for _, s := range []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`, `\Recent`} {
		if strings.EqualFold(f, s) {
			return s
		}
	}
	return f
}

// describe renders allowed flags: set ones plainly, either-way ones with a question mark.
func (f flagMap) describe() string {
	var parts []string
	for _, x := range f {
		switch x.v {
		case mayBeTrue:
			parts = append(parts, x.name)
		case eitherValue:
			parts = append(parts, x.name+"?")
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

// describeFlags renders a message's flags, sorted, without \Recent (a session flag, not
// part of a message's state).
func describeFlags(flags []string) string {
	switch len(flags) {
	case 0:
		return "none"
	case 1:
		if f := canonFlag(flags[0]); f != `\Recent` {
			return f
		}
		return "none"
	}
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if f = canonFlag(f); f != `\Recent` {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return "none"
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
