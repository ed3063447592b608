package fakeserver

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
)

// The operations below are shared by IMAP sessions and by the outside-client faults of
// Apply; actor is the session making the change (nil from Apply) and sid its id (0).

// deliver appends one message to a mailbox.
func (srv *Server) deliver(u *user, name string, body []byte, flags []string, date time.Time, sid uint64) (uid, uidValidity uint32, err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	m, ok := u.mailboxes[name]
	if !ok || m.noSelect {
		return 0, 0, errNo(imap.ResponseCodeTryCreate, "No such mailbox %q", name)
	}
	msg := u.addMessage(m, body, flags, date)
	srv.record(Event{User: u.name, Session: sid, Kind: "append", Mailbox: name, UIDs: []uint32{msg.uid}, Flags: slices.Clone(flags), UIDValidity: m.uidValidity})
	return msg.uid, m.uidValidity, nil
}

func validSpecialUse(use []string) error {
	for _, a := range use {
		if !slices.ContainsFunc(specialUses, func(s string) bool { return strings.EqualFold(s, a) }) {
			return errNo(codeUseAttr, "Unknown special-use attribute %q", a)
		}
	}
	return nil
}

func canonicalSpecialUse(use []string) []string {
	out := make([]string, 0, len(use))
	for _, a := range use {
		for _, s := range specialUses {
			if strings.EqualFold(s, a) {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// create makes a mailbox and every missing parent. Creating a \Noselect name makes it
// selectable again, with a fresh UIDVALIDITY.
func (srv *Server) create(u *user, name string, use []string, sid uint64) error {
	if name == "" || strings.Contains(name, "//") || strings.HasPrefix(name, "/") {
		return errNo(imap.ResponseCodeCannot, "Invalid mailbox name %q", name)
	}
	if err := validSpecialUse(use); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(use) > 0 && u.mode("specialuse-toplevel") && strings.ContainsRune(name, Delimiter) {
		return errSpecialUseConflict()
	}
	if m, ok := u.mailboxes[name]; ok {
		if !m.noSelect {
			return errNo(imap.ResponseCodeAlreadyExists, "Mailbox %q already exists", name)
		}
		delete(u.mailboxes, name)
	}
	parts := strings.Split(name, string(Delimiter))
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], string(Delimiter))
		if _, ok := u.mailboxes[parent]; !ok {
			p := u.newMailbox(parent, nil)
			srv.record(Event{User: u.name, Session: sid, Kind: "create", Mailbox: parent, UIDValidity: p.uidValidity, Detail: "parent of " + name})
		}
	}
	m := u.newMailbox(name, canonicalSpecialUse(use))
	srv.record(Event{User: u.name, Session: sid, Kind: "create", Mailbox: name, UIDValidity: m.uidValidity, Flags: slices.Clone(m.specialUse)})
	return nil
}

// deleteMailbox removes a mailbox. One with children keeps its name as \Noselect (RFC
// 3501 6.3.4). Other sessions that have it selected are disconnected with BYE; actor's own
// selection becomes unusable.
func (srv *Server) deleteMailbox(u *user, name string, actor *session) error {
	var sid uint64
	if actor != nil {
		sid = actor.id
	}
	u.mu.Lock()
	m, ok := u.mailboxes[name]
	if !ok {
		u.mu.Unlock()
		return errNoMailbox(name)
	}
	if name == "INBOX" {
		u.mu.Unlock()
		return errNo(imap.ResponseCodeCannot, "INBOX cannot be deleted")
	}
	if len(m.specialUse) > 0 && u.mode("specialuse-toplevel") {
		u.mu.Unlock()
		return errNo(codeUseAttr, "Mailbox %q has special use %s: remove it first (SETMETADATA %q (/private/specialuse NIL))", name, strings.Join(m.specialUse, " "), name)
	}
	kids := u.children(name)
	if len(kids) > 0 && m.noSelect {
		u.mu.Unlock()
		return errNo(imap.ResponseCodeInUse, "Mailbox %q has children and is not selectable", name)
	}
	byes := m.evictSessions(actor, "Mailbox deleted")
	if actor != nil && actor.mbox == m {
		delete(m.sessions, actor)
		actor.markGone("Mailbox was deleted")
	}
	detail := ""
	if len(kids) > 0 {
		// A fresh mailbox object: sessions still pointing at the old one see it gone.
		nm := &mailbox{name: name, noSelect: true, subscribed: m.subscribed, uidNext: 1, sessions: make(map[*session]struct{})}
		u.mailboxes[name] = nm
		detail = "kept as \\Noselect: it has children"
	} else {
		delete(u.mailboxes, name)
	}
	srv.record(Event{User: u.name, Session: sid, Kind: "delete", Mailbox: name, UIDValidity: m.uidValidity, UIDs: uidsOf(m), Detail: detail})
	u.mu.Unlock()
	srv.bye(byes, "Selected mailbox was deleted")
	return nil
}

func uidsOf(m *mailbox) []uint32 {
	out := make([]uint32, len(m.msgs))
	for i, msg := range m.msgs {
		out[i] = msg.uid
	}
	return out
}

// rename renames a mailbox and its children, creating missing parents of the new name.
// Renaming INBOX moves its messages to a new mailbox and leaves INBOX empty (RFC 3501
// 6.3.5). Other sessions that have a renamed mailbox selected are disconnected with BYE.
func (srv *Server) rename(u *user, oldName, newName string, actor *session) error {
	var sid uint64
	if actor != nil {
		sid = actor.id
	}
	if newName == "" || strings.Contains(newName, "//") || strings.HasPrefix(newName, "/") {
		return errNo(imap.ResponseCodeCannot, "Invalid mailbox name %q", newName)
	}
	u.mu.Lock()
	m, ok := u.mailboxes[oldName]
	if !ok {
		u.mu.Unlock()
		return errNoMailbox(oldName)
	}
	if _, exists := u.mailboxes[newName]; exists {
		u.mu.Unlock()
		return errNo(imap.ResponseCodeAlreadyExists, "Mailbox %q already exists", newName)
	}
	if newName == oldName || strings.HasPrefix(newName, oldName+string(Delimiter)) {
		u.mu.Unlock()
		return errNo(imap.ResponseCodeCannot, "Cannot rename %q into itself", oldName)
	}
	parts := strings.Split(newName, string(Delimiter))
	for i := 1; i < len(parts); i++ {
		parent := strings.Join(parts[:i], string(Delimiter))
		if _, ok := u.mailboxes[parent]; !ok {
			p := u.newMailbox(parent, nil)
			srv.record(Event{User: u.name, Session: sid, Kind: "create", Mailbox: parent, UIDValidity: p.uidValidity, Detail: "parent of " + newName})
		}
	}
	if oldName == "INBOX" {
		nm := u.newMailbox(newName, nil)
		idxs := make([]int, len(m.msgs))
		for i := range idxs {
			idxs[i] = i
		}
		moved := slices.Clone(m.msgs)
		src := u.removeMessages(m, idxs, nil)
		m.expunged = nil // those messages live on in the new mailbox
		var dst []uint32
		for _, msg := range moved {
			dst = append(dst, u.addMessage(nm, msg.body, msg.flags, msg.date).uid)
		}
		srv.record(Event{User: u.name, Session: sid, Kind: "rename", Mailbox: oldName, Dest: newName, UIDs: src, DestUIDs: dst, UIDValidity: nm.uidValidity, Detail: "INBOX emptied into the new mailbox"})
		u.mu.Unlock()
		return nil
	}
	var byes []*session
	for _, old := range append([]string{oldName}, u.children(oldName)...) {
		mb := u.mailboxes[old]
		byes = append(byes, mb.evictSessions(actor, "Mailbox renamed")...)
		delete(u.mailboxes, old)
		mb.name = newName + strings.TrimPrefix(old, oldName)
		u.mailboxes[mb.name] = mb
		srv.record(Event{User: u.name, Session: sid, Kind: "rename", Mailbox: old, Dest: mb.name, UIDValidity: mb.uidValidity})
	}
	u.mu.Unlock()
	srv.bye(byes, "Selected mailbox was renamed")
	return nil
}

// transferLocked copies (or moves) the messages with the given UIDs from src to dst and
// returns the source UIDs that still existed and their new UIDs. The caller holds u.mu.
func (srv *Server) transferLocked(u *user, src *mailbox, uids []uint32, dst *mailbox, move bool, actor *session, sid uint64) (from, to []uint32, byes []*session) {
	var idxs []int
	for _, uid := range uids {
		i, ok := src.find(uid)
		if !ok {
			continue
		}
		msg := src.msgs[i]
		nm := u.addMessage(dst, msg.body, msg.flags, msg.date)
		from = append(from, uid)
		to = append(to, nm.uid)
		idxs = append(idxs, i)
	}
	if len(from) == 0 {
		return nil, nil, nil
	}
	kind := "copy"
	if move {
		kind = "move"
		slices.Sort(idxs)
		u.removeMessages(src, idxs, actor)
	}
	srv.record(Event{User: u.name, Session: sid, Kind: kind, Mailbox: src.name, Dest: dst.name, UIDs: from, DestUIDs: to, UIDValidity: dst.uidValidity})
	return from, to, nil
}

// mailboxLocked finds a selectable mailbox. The caller holds u.mu.
func (u *user) mailboxLocked(name string) (*mailbox, error) {
	m, ok := u.mailboxes[name]
	if !ok || m.noSelect {
		return nil, fmt.Errorf("no mailbox %q", name)
	}
	return m, nil
}
