package fakeserver

import (
	"fmt"
	"slices"
	"time"
)

// Snapshot is the whole state of one account, read without IMAP.
type Snapshot struct {
	Mailboxes []MailboxSnapshot // sorted by name
}

// Mailbox returns the snapshot of the named mailbox.
func (s Snapshot) Mailbox(name string) (MailboxSnapshot, bool) {
	name = canonicalName(name)
	for _, m := range s.Mailboxes {
		if m.Name == name {
			return m, true
		}
	}
	return MailboxSnapshot{}, false
}

// MailboxSnapshot is one mailbox in a Snapshot.
type MailboxSnapshot struct {
	Name          string
	UIDValidity   uint32
	UIDNext       uint32
	HighestModSeq uint64
	SpecialUse    []string
	Subscribed    bool
	NoSelect      bool
	Messages      []MessageSnapshot // ascending UID
}

// MessageSnapshot is one message in a MailboxSnapshot.
type MessageSnapshot struct {
	UID          uint32
	Flags        []string // sorted
	InternalDate time.Time
	Size         int64
	ModSeq       uint64
	Body         []byte // shared with the server: do not modify
}

// Snapshot returns a copy of the user's whole state.
func (s *Server) Snapshot(userName string) (Snapshot, error) {
	u, err := s.lookupUser(userName)
	if err != nil {
		return Snapshot{}, fmt.Errorf("fakeserver: snapshot: %w", err)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	names := make([]string, 0, len(u.mailboxes))
	for n := range u.mailboxes {
		names = append(names, n)
	}
	slices.Sort(names)
	var snap Snapshot
	for _, n := range names {
		m := u.mailboxes[n]
		ms := MailboxSnapshot{
			Name:          m.name,
			UIDValidity:   m.uidValidity,
			UIDNext:       m.uidNext,
			HighestModSeq: m.modseq,
			SpecialUse:    slices.Clone(m.specialUse),
			Subscribed:    m.subscribed,
			NoSelect:      m.noSelect,
			Messages:      make([]MessageSnapshot, len(m.msgs)),
		}
		for i, msg := range m.msgs {
			ms.Messages[i] = MessageSnapshot{
				UID:          msg.uid,
				Flags:        slices.Clone(msg.flags),
				InternalDate: msg.date,
				Size:         int64(len(msg.body)),
				ModSeq:       msg.modseq,
				Body:         msg.body,
			}
		}
		snap.Mailboxes = append(snap.Mailboxes, ms)
	}
	return snap, nil
}
