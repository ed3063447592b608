package fakeserver

import "slices"

// Event is one state change, or one fault taking effect, in the order the server made it.
type Event struct {
	Clock       uint64   // logical clock, strictly increasing per server
	User        string   // the account changed; "" for server-wide faults
	Session     uint64   // the session that made the change; 0 for changes made through Apply
	Kind        string   // "append", "store", "expunge", "move", "copy", "create", "rename", "delete", "login", "drop", "fail", ...
	Mailbox     string   // the mailbox changed (the source of a move or copy, the old name of a rename)
	Dest        string   // the destination of a move or copy, the new name of a rename
	UIDs        []uint32 // the UIDs affected in Mailbox
	DestUIDs    []uint32 // the UIDs the messages got in Dest, in the order of UIDs
	Flags       []string // the flags stored or delivered; the SPECIAL-USE attributes of a created mailbox
	UIDValidity uint32   // the UIDVALIDITY of Mailbox after the change
	Detail      string   // anything else, in words
}

// record stamps e with the next clock value and appends it to the history.
func (s *Server) record(e Event) {
	s.histMu.Lock()
	s.clock++
	e.Clock = s.clock
	s.history = append(s.history, e)
	s.histMu.Unlock()
}

// History returns a copy of every event so far, in clock order.
func (s *Server) History() []Event {
	s.histMu.Lock()
	defer s.histMu.Unlock()
	out := make([]Event, len(s.history))
	for i, e := range s.history {
		e.UIDs = slices.Clone(e.UIDs)
		e.DestUIDs = slices.Clone(e.DestUIDs)
		e.Flags = slices.Clone(e.Flags)
		out[i] = e
	}
	return out
}
