package fakeserver

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Server modes make the fake server behave as real servers were seen to behave where the
// RFCs leave the choice to the server (or where a widely deployed server breaks a rule in
// a way the harness must tell apart from an engine's failure). Unlike the wire bugs they
// change the model, not only the stream. A mode is switched on per user with Mode.
var modeDocs = map[string]string{
	"specialuse-toplevel": "special uses only on top-level mailboxes: CREATE with USE below the top level is answered NO SPECIAL-USE flag conflict and creates nothing; DELETE of a mailbox holding a special use is refused until SETMETADATA mailbox (/private/specialuse NIL) removes it (METADATA emulated for that one entry)",
	"uidvalidity-clock":   "UIDVALIDITY from a clock in seconds: mailboxes made in the same second (no message changed in between) share one, and RENAME keeps it (breaks RFC 3501 §2.3.1.1 once two such mailboxes swap names: S3)",
	"mailboxid":           "advertises OBJECTID and gives each mailbox a MAILBOXID (RFC 8474) that RENAME keeps and a re-created mailbox does not: in SELECT/EXAMINE, CREATE and STATUS (MAILBOXID)",
	"idle-every":          "IDLE sessions are told of changes only every N of real time (idle-every=60s): the server polls instead of being woken; RFC 2177 sets no bound",
}

// ModeNames returns the names of the server modes, sorted.
func ModeNames() []string {
	out := make([]string, 0, len(modeDocs))
	for n := range modeDocs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ModeDoc returns what the mode name does, or "" for an unknown name.
func ModeDoc(name string) string { return modeDocs[name] }

// ParseMode splits "name" or "name=value" and checks both: idle-every takes a duration,
// the others no value.
func ParseMode(s string) (Mode, error) {
	name, value, hasValue := strings.Cut(strings.TrimSpace(s), "=")
	if _, ok := modeDocs[name]; !ok {
		return Mode{}, fmt.Errorf("server mode %q: want one of %s", name, strings.Join(ModeNames(), ", "))
	}
	m := Mode{Mode: name, On: true}
	switch name {
	case "idle-every":
		if !hasValue {
			return Mode{}, fmt.Errorf("server mode %q: want idle-every=DURATION, e.g. idle-every=60s", s)
		}
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return Mode{}, fmt.Errorf("server mode %q: want a positive duration such as 60s", s)
		}
		m.Every = d
	default:
		if hasValue {
			return Mode{}, fmt.Errorf("server mode %q takes no value", name)
		}
	}
	return m, nil
}

// Mode switches a server mode (ModeNames) on or off for User.
type Mode struct {
	User string
	Mode string
	On   bool
	// Every is idle-every's period.
	Every time.Duration
}

// Name returns "server-mode".
func (Mode) Name() string { return "server-mode" }

func (f Mode) apply(s *Server) error {
	if _, ok := modeDocs[f.Mode]; !ok {
		return fmt.Errorf("fakeserver: server mode %q: want one of %s", f.Mode, strings.Join(ModeNames(), ", "))
	}
	u, err := s.lookupUser(f.User)
	if err != nil {
		return fmt.Errorf("fakeserver: server mode %s: %w", f.Mode, err)
	}
	u.mu.Lock()
	if u.modes == nil {
		u.modes = map[string]bool{}
	}
	u.modes[f.Mode] = f.On
	if f.Mode == "idle-every" {
		u.idleEvery = 0
		if f.On {
			u.idleEvery, u.idleEpoch = f.Every, time.Now()
		}
	}
	u.mu.Unlock()
	detail := fmt.Sprintf("%s %v", f.Mode, f.On)
	if f.Every > 0 {
		detail += " every " + f.Every.String()
	}
	s.record(Event{User: f.User, Kind: f.Name(), Detail: detail})
	return nil
}

// mode reports whether mode name is on for u. The caller holds u.mu.
func (u *user) mode(name string) bool { return u.modes[name] }

// wireModes reports whether a mode that rewrites the stream is on for any user.
func (s *Server) wireModes() bool {
	s.mu.Lock()
	users := make([]*user, 0, len(s.users))
	for _, u := range s.users {
		users = append(users, u)
	}
	s.mu.Unlock()
	for _, u := range users {
		u.mu.Lock()
		on := u.mode("specialuse-toplevel") || u.mode("mailboxid")
		u.mu.Unlock()
		if on {
			return true
		}
	}
	return false
}

// errSpecialUseConflict is the answer of a server that gives special uses to top-level
// mailboxes only, as it was seen in the field.
func errSpecialUseConflict() error {
	return errNo("", "SPECIAL-USE flag conflict")
}
