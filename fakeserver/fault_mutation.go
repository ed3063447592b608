package fakeserver

import (
	"fmt"
	"slices"
	"time"
)

// The faults in this file change a mailbox as another client would, and sessions that
// have it selected are told with the usual EXISTS, EXPUNGE and FETCH FLAGS responses.
// They fail, changing nothing, when a named UID or mailbox does not exist.

// Deliver appends a message. A zero Date means now.
type Deliver struct {
	User, Mailbox string
	Body          []byte
	Flags         []string
	Date          time.Time
}

// Name returns "deliver".
func (Deliver) Name() string { return "deliver" }

func (f Deliver) apply(s *Server) error {
	u, err := s.lookupUser(f.User)
	if err != nil {
		return fmt.Errorf("fakeserver: deliver: %w", err)
	}
	date := f.Date
	if date.IsZero() {
		date = time.Now()
	}
	if _, _, err := s.deliver(u, canonicalName(f.Mailbox), slices.Clone(f.Body), normalizeFlags(f.Flags), date, 0); err != nil {
		return fmt.Errorf("fakeserver: deliver to %q: %w", f.Mailbox, err)
	}
	return nil
}

// Store adds (Add) or removes flags on messages: "flag" or "unflag".
type Store struct {
	User, Mailbox string
	UIDs          []uint32
	Add           bool
	Flags         []string
}

// Name returns "flag" when Add is set, else "unflag".
func (f Store) Name() string {
	if f.Add {
		return "flag"
	}
	return "unflag"
}

// withMailbox runs fn on a selectable mailbox with the user's lock held, after checking
// that every UID exists there.
func (s *Server) withMailbox(verb, userName, name string, uids []uint32, fn func(u *user, m *mailbox) error) error {
	u, err := s.lookupUser(userName)
	if err != nil {
		return fmt.Errorf("fakeserver: %s: %w", verb, err)
	}
	name = canonicalName(name)
	u.mu.Lock()
	defer u.mu.Unlock()
	m, err := u.mailboxLocked(name)
	if err != nil {
		return fmt.Errorf("fakeserver: %s: %w", verb, err)
	}
	var missing []uint32
	for _, uid := range uids {
		if _, ok := m.find(uid); !ok {
			missing = append(missing, uid)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("fakeserver: %s: %q has no UID %v", verb, name, missing)
	}
	return fn(u, m)
}

func (f Store) apply(s *Server) error {
	op, detail := storeDel, "-FLAGS"
	if f.Add {
		op, detail = storeAdd, "+FLAGS"
	}
	flags := normalizeFlags(f.Flags)
	return s.withMailbox(f.Name(), f.User, f.Mailbox, f.UIDs, func(u *user, m *mailbox) error {
		var changed []uint32
		for _, uid := range f.UIDs {
			i, _ := m.find(uid)
			msg := m.msgs[i]
			if u.setFlags(m, msg, applyStore(msg.flags, op, flags), nil) {
				changed = append(changed, uid)
			}
		}
		if len(changed) > 0 {
			s.record(Event{User: u.name, Kind: "store", Mailbox: m.name, UIDs: changed, Flags: flags, UIDValidity: m.uidValidity, Detail: detail})
		}
		return nil
	})
}

// MoveMessages moves messages to Dest.
type MoveMessages struct {
	User, Mailbox string
	UIDs          []uint32
	Dest          string
}

// Name returns "move".
func (MoveMessages) Name() string { return "move" }

func (f MoveMessages) apply(s *Server) error {
	return s.applyTransfer(f.Name(), f.User, f.Mailbox, f.UIDs, f.Dest, true)
}

// CopyMessages copies messages to Dest.
type CopyMessages struct {
	User, Mailbox string
	UIDs          []uint32
	Dest          string
}

// Name returns "copy".
func (CopyMessages) Name() string { return "copy" }

func (f CopyMessages) apply(s *Server) error {
	return s.applyTransfer(f.Name(), f.User, f.Mailbox, f.UIDs, f.Dest, false)
}

func (s *Server) applyTransfer(verb, userName, src string, uids []uint32, dest string, move bool) error {
	return s.withMailbox(verb, userName, src, uids, func(u *user, m *mailbox) error {
		d, err := u.mailboxLocked(canonicalName(dest))
		if err != nil {
			return fmt.Errorf("fakeserver: %s: %w", verb, err)
		}
		if move && d == m {
			return fmt.Errorf("fakeserver: %s: source and destination are both %q", verb, m.name)
		}
		sorted := slices.Clone(uids)
		slices.Sort(sorted)
		s.transferLocked(u, m, slices.Compact(sorted), d, move, nil, 0)
		return nil
	})
}

// ExpungeMessages expunges the messages with the given UIDs, \Deleted or not; with no
// UIDs it expunges every \Deleted message.
type ExpungeMessages struct {
	User, Mailbox string
	UIDs          []uint32
}

// Name returns "expunge".
func (ExpungeMessages) Name() string { return "expunge" }

func (f ExpungeMessages) apply(s *Server) error {
	return s.withMailbox(f.Name(), f.User, f.Mailbox, f.UIDs, func(u *user, m *mailbox) error {
		var idxs []int
		if len(f.UIDs) == 0 {
			for i, msg := range m.msgs {
				if hasFlag(msg.flags, `\Deleted`) {
					idxs = append(idxs, i)
				}
			}
		} else {
			for _, uid := range f.UIDs {
				i, _ := m.find(uid)
				idxs = append(idxs, i)
			}
			slices.Sort(idxs)
			idxs = slices.Compact(idxs)
		}
		if gone := u.removeMessages(m, idxs, nil); len(gone) > 0 {
			s.record(Event{User: u.name, Kind: "expunge", Mailbox: m.name, UIDs: gone, UIDValidity: m.uidValidity})
		}
		return nil
	})
}

// CreateMailbox creates a mailbox, its missing parents, with SPECIAL-USE attributes
// such as `\Trash`.
//
// The mailbox field is Mailbox, not Name: a Go type cannot have a field and a method
// both called Name.
type CreateMailbox struct {
	User, Mailbox string
	SpecialUse    []string
}

// Name returns "create".
func (CreateMailbox) Name() string { return "create" }

func (f CreateMailbox) apply(s *Server) error {
	u, err := s.lookupUser(f.User)
	if err != nil {
		return fmt.Errorf("fakeserver: create: %w", err)
	}
	if err := s.create(u, canonicalName(f.Mailbox), f.SpecialUse, 0); err != nil {
		return fmt.Errorf("fakeserver: create %q: %w", f.Mailbox, err)
	}
	return nil
}

// RenameMailbox renames a mailbox and its children.
type RenameMailbox struct{ User, Old, New string }

// Name returns "rename".
func (RenameMailbox) Name() string { return "rename" }

func (f RenameMailbox) apply(s *Server) error {
	u, err := s.lookupUser(f.User)
	if err != nil {
		return fmt.Errorf("fakeserver: rename: %w", err)
	}
	if err := s.rename(u, canonicalName(f.Old), canonicalName(f.New), nil); err != nil {
		return fmt.Errorf("fakeserver: rename %q to %q: %w", f.Old, f.New, err)
	}
	return nil
}

// DeleteMailbox deletes a mailbox: "remove". As in CreateMailbox, the mailbox field is
// Mailbox.
type DeleteMailbox struct{ User, Mailbox string }

// Name returns "remove".
func (DeleteMailbox) Name() string { return "remove" }

func (f DeleteMailbox) apply(s *Server) error {
	u, err := s.lookupUser(f.User)
	if err != nil {
		return fmt.Errorf("fakeserver: remove: %w", err)
	}
	if err := s.deleteMailbox(u, canonicalName(f.Mailbox), nil); err != nil {
		return fmt.Errorf("fakeserver: remove %q: %w", f.Mailbox, err)
	}
	return nil
}
