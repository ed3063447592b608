package fakeserver

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// A Fault is a change to the server or its behaviour, applied with Server.Apply while
// clients are connected. Name returns the verb the scenario language uses for it.
type Fault interface {
	Name() string
	apply(s *Server) error
}

// FaultNames returns the Name of every fault type, sorted.
func FaultNames() []string {
	faults := []Fault{
		UIDValidityBump{}, UIDValidityReset{}, RenumberSilently{}, Drop{}, Fail{}, Latency{},
		SetCaps{}, Deliver{}, Store{Add: true}, Store{}, MoveMessages{}, CopyMessages{},
		ExpungeMessages{}, CreateMailbox{}, RenameMailbox{}, DeleteMailbox{},
		ReuseExpungedUIDs{}, OmitExpungeNotifications{},
	}
	out := make([]string, len(faults))
	for i, f := range faults {
		out[i] = f.Name()
	}
	slices.Sort(out)
	return out
}

// Apply applies a fault now. Its effect on the state is complete when Apply returns;
// sessions that must be disconnected receive their BYE shortly after.
func (s *Server) Apply(f Fault) error {
	if f == nil {
		return fmt.Errorf("fakeserver: apply: nil fault")
	}
	return f.apply(s)
}

// Drop closes connections abruptly, without BYE: every connection when User and Session
// are both zero, else the connections of User, or the one of Session.
type Drop struct {
	User    string
	Session uint64
}

// Name returns "drop".
func (Drop) Name() string { return "drop" }

func (f Drop) apply(s *Server) error {
	s.mu.Lock()
	var victims []*trackedConn
	switch {
	case f.User == "" && f.Session == 0:
		for c := range s.conns {
			victims = append(victims, c)
		}
	default:
		for id, sess := range s.byID {
			if (f.Session == 0 || id == f.Session) && (f.User == "" || sess.userName == f.User) {
				victims = append(victims, sess.tc)
			}
		}
	}
	s.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
	s.record(Event{User: f.User, Session: f.Session, Kind: "drop", Detail: fmt.Sprintf("%d connections closed", len(victims))})
	return nil
}

// Fail makes the next N commands (only those named Command, when set: "FETCH" matches
// FETCH and UID FETCH, "UID FETCH" only the latter) fail with Response, such as
// `NO [UNAVAILABLE] try later`, `BAD no` or `BYE going away` (BYE also closes the
// connection). Commands that do not reach the backend (CAPABILITY, NOOP, LOGOUT, ENABLE,
// STARTTLS) never fail.
type Fail struct {
	N        int
	Command  string
	Response string
}

// Name returns "fail".
func (Fail) Name() string { return "fail" }

// failRule is an installed Fail with its remaining count; guarded by Server.mu.
type failRule struct {
	left    int
	command string
	resp    *imap.Error
	text    string
}

// ParseResponse parses a status response such as `NO [UNAVAILABLE] try later`.
func ParseResponse(resp string) (*imap.Error, error) {
	typ, rest, _ := strings.Cut(strings.TrimSpace(resp), " ")
	e := &imap.Error{Type: imap.StatusResponseType(strings.ToUpper(typ))}
	switch e.Type {
	case imap.StatusResponseTypeNo, imap.StatusResponseTypeBad, imap.StatusResponseTypeBye:
	default:
		return nil, fmt.Errorf("fakeserver: fail: response %q: want NO, BAD or BYE", resp)
	}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return nil, fmt.Errorf("fakeserver: fail: response %q: unterminated response code", resp)
		}
		code := strings.TrimSpace(rest[1:end])
		if code == "" || strings.ContainsAny(code, " \t") {
			return nil, fmt.Errorf("fakeserver: fail: response %q: response code must be one atom", resp)
		}
		e.Code = imap.ResponseCode(strings.ToUpper(code))
		rest = strings.TrimSpace(rest[end+1:])
	}
	if rest == "" {
		rest = "Injected failure"
	}
	e.Text = rest
	return e, nil
}

func (f Fail) apply(s *Server) error {
	if f.N <= 0 {
		return fmt.Errorf("fakeserver: fail: count %d: want at least 1", f.N)
	}
	resp, err := ParseResponse(f.Response)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.fails = append(s.fails, &failRule{left: f.N, command: upper(strings.TrimSpace(f.Command)), resp: resp, text: f.Response})
	s.failsLeft.Store(int64(len(s.fails)))
	s.mu.Unlock()
	return nil
}

// takeFail consumes one injected failure matching cmd, if any, and returns it as the
// command's error. A BYE failure also disconnects the session.
func (s *Server) takeFail(sess *session, cmd string) error {
	if s.failsLeft.Load() == 0 {
		return nil
	}
	s.mu.Lock()
	var rule *failRule
	for i, r := range s.fails {
		if r.command == "" || r.command == cmd || "UID "+r.command == cmd {
			rule = r
			r.left--
			if r.left == 0 {
				s.fails = slices.Delete(s.fails, i, i+1)
				s.failsLeft.Store(int64(len(s.fails)))
			}
			break
		}
	}
	name := sess.userName
	s.mu.Unlock()
	if rule == nil {
		return nil
	}
	s.record(Event{User: name, Session: sess.id, Kind: "fail", Detail: cmd + ": " + rule.text})
	resp := *rule.resp
	if resp.Type == imap.StatusResponseTypeBye {
		if err := sess.conn.Bye(resp.Text); err != nil {
			s.logger.Debug("fakeserver: bye", "session", sess.id, "err", err)
		}
	}
	return &resp
}

// Latency delays every response by D (zero removes the delay).
type Latency struct{ D time.Duration }

// Name returns "latency".
func (Latency) Name() string { return "latency" }

func (f Latency) apply(s *Server) error {
	if f.D < 0 {
		return fmt.Errorf("fakeserver: latency %v: negative", f.D)
	}
	s.latency.Store(int64(f.D))
	s.record(Event{Kind: "latency", Detail: f.D.String()})
	return nil
}

// SetCaps switches capabilities off and on: UIDPLUS, MOVE, IDLE, ESEARCH, LIST-EXTENDED,
// LIST-STATUS, SPECIAL-USE, LITERAL+, NAMESPACE. New connections get the new set; open
// ones from their next command on (their next CAPABILITY after one more command).
type SetCaps struct {
	Disable []string
	Enable  []string
}

// Name returns "caps".
func (SetCaps) Name() string { return "caps" }

func (f SetCaps) apply(s *Server) error {
	if err := s.setCaps(f.Disable, f.Enable); err != nil {
		return err
	}
	s.record(Event{Kind: "caps", Detail: fmt.Sprintf("disable %v enable %v", f.Disable, f.Enable)})
	return nil
}

// ReuseExpungedUIDs switches a known-bad mode on or off: while on, APPEND and COPY give
// new messages the lowest UID expunged earlier in the mailbox, breaking RFC 3501 2.3.1.1.
type ReuseExpungedUIDs struct {
	User string
	On   bool
}

// Name returns "reuse-expunged-uids".
func (ReuseExpungedUIDs) Name() string { return "reuse-expunged-uids" }

func (f ReuseExpungedUIDs) apply(s *Server) error {
	u, err := s.lookupUser(f.User)
	if err != nil {
		return fmt.Errorf("fakeserver: %s: %w", f.Name(), err)
	}
	u.mu.Lock()
	u.reuseExpunged = f.On
	u.mu.Unlock()
	s.record(Event{User: f.User, Kind: f.Name(), Detail: fmt.Sprint(f.On)})
	return nil
}

// OmitExpungeNotifications switches a known-bad mode on or off: while on, sessions are
// not told about messages other sessions (or Apply) expunge.
type OmitExpungeNotifications struct {
	User string
	On   bool
}

// Name returns "omit-expunge-notifications".
func (OmitExpungeNotifications) Name() string { return "omit-expunge-notifications" }

func (f OmitExpungeNotifications) apply(s *Server) error {
	u, err := s.lookupUser(f.User)
	if err != nil {
		return fmt.Errorf("fakeserver: %s: %w", f.Name(), err)
	}
	u.mu.Lock()
	u.omitExpunge = f.On
	u.mu.Unlock()
	s.record(Event{User: f.User, Kind: f.Name(), Detail: fmt.Sprint(f.On)})
	return nil
}

func upper(s string) string { return strings.ToUpper(s) }
