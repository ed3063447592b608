package fakeserver

import (
	"fmt"
	"slices"
)

// UIDValidityBump gives a mailbox a new UIDVALIDITY and keeps every UID, as servers do
// spuriously (failure F3). Sessions that have it selected are disconnected with BYE.
type UIDValidityBump struct{ User, Mailbox string }

// Name returns "uidvalidity-bump".
func (UIDValidityBump) Name() string { return "uidvalidity-bump" }

func (f UIDValidityBump) apply(s *Server) error {
	return s.renumber(f.Name(), f.User, f.Mailbox, func(u *user, m *mailbox) string {
		old := m.uidValidity
		m.uidValidity = u.newUIDValidity()
		m.expunged = nil
		return fmt.Sprintf("UIDVALIDITY %d -> %d, UIDs kept", old, m.uidValidity)
	})
}

// UIDValidityReset gives a mailbox a new UIDVALIDITY and renumbers its messages 1..n in
// a seeded random order (failure F1). Sessions that have it selected are disconnected.
type UIDValidityReset struct{ User, Mailbox string }

// Name returns "uidvalidity-reset".
func (UIDValidityReset) Name() string { return "uidvalidity-reset" }

func (f UIDValidityReset) apply(s *Server) error {
	return s.renumber(f.Name(), f.User, f.Mailbox, func(u *user, m *mailbox) string {
		old := m.uidValidity
		m.uidValidity = u.newUIDValidity()
		order := u.rng.Perm(len(m.msgs))
		msgs := make([]*message, len(m.msgs))
		for newPos, oldPos := range order {
			msgs[newPos] = m.msgs[oldPos]
			msgs[newPos].uid = uint32(newPos + 1)
		}
		m.msgs = msgs
		m.uidNext = uint32(len(msgs) + 1)
		m.expunged = nil
		return fmt.Sprintf("UIDVALIDITY %d -> %d, UIDs renumbered 1..%d", old, m.uidValidity, len(msgs))
	})
}

// RenumberSilently gives every message of a mailbox a new UID, in the same order, and
// keeps UIDVALIDITY: a server bug (failure F4) a client must detect. Sessions that have
// the mailbox selected are disconnected.
type RenumberSilently struct{ User, Mailbox string }

// Name returns "renumber-silently".
func (RenumberSilently) Name() string { return "renumber-silently" }

func (f RenumberSilently) apply(s *Server) error {
	return s.renumber(f.Name(), f.User, f.Mailbox, func(u *user, m *mailbox) string {
		for _, msg := range m.msgs {
			msg.uid = m.uidNext
			m.uidNext++
		}
		return fmt.Sprintf("UIDs renumbered from %d with UIDVALIDITY %d kept", m.uidNext-uint32(len(m.msgs)), m.uidValidity)
	})
}

// renumber runs change on a mailbox with the user's lock held, records the old UIDs (in
// the new order) and the new ones, and disconnects the sessions that had it selected.
func (s *Server) renumber(kind, userName, name string, change func(*user, *mailbox) string) error {
	u, err := s.lookupUser(userName)
	if err != nil {
		return fmt.Errorf("fakeserver: %s: %w", kind, err)
	}
	name = canonicalName(name)
	u.mu.Lock()
	m, err := u.mailboxLocked(name)
	if err != nil {
		u.mu.Unlock()
		return fmt.Errorf("fakeserver: %s %q: %w", kind, name, err)
	}
	byes := m.evictSessions(nil, "UIDVALIDITY changed")
	ids := make(map[*message]uint32, len(m.msgs))
	for _, msg := range m.msgs {
		ids[msg] = msg.uid
	}
	detail := change(u, m)
	m.modseq++
	var oldUIDs, newUIDs []uint32
	for _, msg := range m.msgs {
		msg.modseq = m.modseq
		oldUIDs = append(oldUIDs, ids[msg])
		newUIDs = append(newUIDs, msg.uid)
	}
	s.record(Event{User: u.name, Kind: kindOf(kind), Mailbox: name, UIDs: oldUIDs, DestUIDs: slices.Clone(newUIDs), UIDValidity: m.uidValidity, Detail: detail})
	u.mu.Unlock()
	s.bye(byes, "Mailbox UIDVALIDITY or UIDs changed, select it again")
	return nil
}

func kindOf(faultName string) string {
	if faultName == "renumber-silently" {
		return "renumber"
	}
	return faultName
}
