package check

import (
	"fmt"
	"sort"
	"strings"
)

// CheckPush checks P1 (push delivery) on the transcripts in lines and returns one Result
// per device that breaks it.
//
// A connection on which a device sent IDLE is its push connection; the mailbox it last
// selected there (SELECT or EXAMINE) is the one it watches. When the server sends an update
// while that connection idles (an untagged EXISTS, EXPUNGE or FETCH), the device must fetch
// what changed before it idles there again: select the watched mailbox on any connection,
// or FETCH or SEARCH on the push connection itself. A device that goes back to IDLE without
// doing so shows stale mail until some later, unrelated change, and breaks P1. A
// connection that ends after the update (the device stopped watching, or was cut) breaks
// nothing: the bound is the next IDLE, and, in deterministic runs, where every step waits
// until each watching device idles again, the next step.
func CheckPush(lines []WireLine) []Result {
	ordered := append([]WireLine(nil), lines...)
	sort.SliceStable(ordered, func(i, j int) bool { return ordered[i].Time < ordered[j].Time })
	type pushConn struct {
		mailbox string
		idling  bool
		wake    string // the update that woke it and is not yet fetched
		woken   bool
	}
	type device struct {
		conns map[int]*pushConn
		found *Result
	}
	devs := map[string]*device{}
	var order []string
	for _, l := range ordered {
		d := devs[l.Device]
		if d == nil {
			d = &device{conns: map[int]*pushConn{}}
			devs[l.Device] = d
			order = append(order, l.Device)
		}
		if d.found != nil {
			continue
		}
		if l.Dir != 'C' && l.Dir != 'S' {
			if l.Dir != 'M' && strings.Contains(strings.ToLower(l.Text), "opened") {
				delete(d.conns, l.Conn) // a new connection with a number used before
			}
			continue
		}
		c := d.conns[l.Conn]
		if c == nil {
			c = &pushConn{}
			d.conns[l.Conn] = c
		}
		if l.Dir == 'S' {
			if c.idling && !c.woken && isPushUpdate(l.Text) {
				c.woken, c.wake = true, l.Text
			}
			continue
		}
		if c.idling {
			if strings.EqualFold(strings.TrimSpace(l.Text), "DONE") {
				c.idling = false
			}
			continue
		}
		verb, arg := commandVerb(l.Text)
		switch verb {
		case "SELECT", "EXAMINE":
			mb := unquoteMailbox(arg)
			c.mailbox = mb
			for _, o := range d.conns {
				if o.woken && o.mailbox == mb {
					o.woken, o.wake = false, ""
				}
			}
		case "FETCH", "SEARCH", "UID FETCH", "UID SEARCH":
			c.woken, c.wake = false, ""
		case "IDLE":
			if c.woken {
				d.found = &Result{Invariant: P1Push, Title: title(P1Push), Devices: []string{l.Device},
					Message: fmt.Sprintf("%s was told of a change in %s while idling (%q) and went back to IDLE without fetching it",
						l.Device, c.mailbox, c.wake)}
			}
			c.idling = true
		}
	}
	var out []Result
	for _, name := range order {
		if r := devs[name].found; r != nil {
			out = append(out, *r)
		}
	}
	return out
}

// isPushUpdate reports whether a server line is an update a watcher must act on.
func isPushUpdate(text string) bool {
	f := strings.Fields(text)
	if len(f) < 3 || f[0] != "*" {
		return false
	}
	switch strings.ToUpper(f[2]) {
	case "EXISTS", "EXPUNGE", "FETCH":
		return true
	}
	return false
}

// commandVerb returns a client command's name ("UID FETCH" for UID commands) and its first
// argument.
func commandVerb(text string) (verb, arg string) {
	f := strings.Fields(text)
	if len(f) < 2 {
		return "", ""
	}
	verb, rest := strings.ToUpper(f[1]), f[2:]
	if verb == "UID" && len(rest) > 0 {
		verb, rest = "UID "+strings.ToUpper(rest[0]), rest[1:]
	}
	if len(rest) > 0 {
		arg = rest[0]
	}
	if verb == "SELECT" || verb == "EXAMINE" {
		// A quoted name may hold spaces.
		_, after, _ := strings.Cut(text, f[1]+" ")
		arg = strings.TrimSpace(after)
		if i := strings.Index(arg, " ("); i > 0 && !strings.HasPrefix(arg, "\"") {
			arg = arg[:i]
		} else if strings.HasPrefix(arg, "\"") {
			if j := strings.Index(arg[1:], "\""); j >= 0 {
				arg = arg[:j+2]
			}
		}
	}
	return verb, arg
}

func unquoteMailbox(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.ReplaceAll(s[1:len(s)-1], `\"`, `"`)
	}
	if strings.EqualFold(s, "INBOX") {
		return "INBOX"
	}
	return s
}
