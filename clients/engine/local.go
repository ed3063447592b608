package engine

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/syncharness/syncharness/clients"
)

// Local changes. Each applies to the store at once (the user sees it) and journals what the
// server still has to learn, keyed by local id. None talks to the server.

// Messages returns the records the user sees in mailbox, sorted by local id.
func (e *Engine) Messages(ctx context.Context, mailbox string) ([]MessageRecord, error) {
	var out []MessageRecord
	err := e.opts.Store.View(func(tx Tx) error {
		all, err := tx.AllMessages()
		if err != nil {
			return err
		}
		for _, m := range all {
			if m.Visible() == mailbox {
				out = append(out, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("engine: messages %q: %w", mailbox, err)
	}
	return out, ctx.Err()
}

// Body returns the raw message with local id id.
func (e *Engine) Body(ctx context.Context, id LocalID) ([]byte, error) {
	var out []byte
	err := e.opts.Store.View(func(tx Tx) error {
		b, err := tx.Body(id)
		out = append([]byte(nil), b...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("engine: body %d: %w", id, err)
	}
	return out, ctx.Err()
}

// local runs fn in a store update under the engine lock.
func (e *Engine) local(ctx context.Context, what string, fn func(tx Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.lock(); err != nil {
		return err
	}
	defer e.mu.Unlock()
	if err := e.opts.Store.Update(fn); err != nil {
		return fmt.Errorf("engine: %s: %w", what, err)
	}
	return nil
}

func visibleMessage(tx Tx, id LocalID) (MessageRecord, error) {
	m, ok, err := tx.Message(id)
	if err != nil {
		return m, err
	}
	if !ok || m.Visible() == "" {
		return m, fmt.Errorf("no message with local id %d", id)
	}
	return m, nil
}

func liveMailbox(tx Tx, name string) (MailboxRecord, error) {
	mb, ok, err := tx.Mailbox(name)
	if err != nil {
		return mb, err
	}
	if !ok || mb.State == MailboxDeleting {
		return mb, fmt.Errorf("unknown mailbox %q", name)
	}
	return mb, nil
}

// findEntry returns the journal entry of op for message id, if any.
func findEntry(tx Tx, op JournalOp, id LocalID) (JournalEntry, bool, error) {
	j, err := tx.Journal()
	if err != nil {
		return JournalEntry{}, false, err
	}
	for _, en := range j {
		if en.Op == op && en.Message == id {
			return en, true, nil
		}
	}
	return JournalEntry{}, false, nil
}

// msgJournal is a transaction's journal entries about messages, by message, for a step
// that merges many messages: findEntry and dropEntries read the whole journal per call.
// The step keeps it in step with the entries it drops (drop) and adds none.
type msgJournal map[LocalID][]JournalEntry

func readMsgJournal(tx Tx) (msgJournal, error) {
	j, err := tx.Journal()
	if err != nil {
		return nil, err
	}
	mj := msgJournal{}
	for _, en := range j {
		if en.Op != OpCreateMailbox && en.Op != OpRenameMailbox && en.Op != OpDeleteMailbox {
			mj[en.Message] = append(mj[en.Message], en)
		}
	}
	return mj, nil
}

// find is findEntry.
func (mj msgJournal) find(op JournalOp, id LocalID) (JournalEntry, bool) {
	for _, en := range mj[id] {
		if en.Op == op {
			return en, true
		}
	}
	return JournalEntry{}, false
}

// drop is dropEntries for one op.
func (mj msgJournal) drop(tx Tx, id LocalID, op JournalOp) error {
	if len(mj[id]) == 0 {
		return nil
	}
	kept := mj[id][:0]
	for _, en := range mj[id] {
		if en.Op != op {
			kept = append(kept, en)
		} else if err := tx.DeleteJournal(en.Seq); err != nil {
			return err
		}
	}
	mj[id] = kept
	return nil
}

// journalFlags makes sure a synced message whose flags differ from the last agreed ones
// has a flags entry in the journal, so that the difference is pushed.
func journalFlags(tx Tx, m MessageRecord) error {
	if m.State != MsgSynced || m.Flags.Equal(m.Base) {
		return nil
	}
	if _, ok, err := findEntry(tx, OpFlags, m.ID); err != nil || ok {
		return err
	}
	_, err := tx.AddJournal(JournalEntry{Op: OpFlags, Message: m.ID, Mailbox: m.Mailbox})
	return err
}

// dropEntries deletes the journal entries of message id with one of ops (all if none).
func dropEntries(tx Tx, id LocalID, ops ...JournalOp) error {
	j, err := tx.Journal()
	if err != nil {
		return err
	}
	for _, en := range j {
		if en.Message != id || en.Op == OpCreateMailbox || en.Op == OpRenameMailbox || en.Op == OpDeleteMailbox {
			continue
		}
		match := len(ops) == 0
		for _, op := range ops {
			match = match || en.Op == op
		}
		if match {
			if err := tx.DeleteJournal(en.Seq); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetFlags adds flags (system flags or keywords) to the messages.
func (e *Engine) SetFlags(ctx context.Context, ids []LocalID, flags []string) error {
	return e.changeFlags(ctx, ids, ParseFlags(flags), true)
}

// ClearFlags removes flags from the messages.
func (e *Engine) ClearFlags(ctx context.Context, ids []LocalID, flags []string) error {
	return e.changeFlags(ctx, ids, ParseFlags(flags), false)
}

func (e *Engine) changeFlags(ctx context.Context, ids []LocalID, f Flags, add bool) error {
	return e.local(ctx, "change flags", func(tx Tx) error {
		for _, id := range ids {
			m, err := visibleMessage(tx, id)
			if err != nil {
				return err
			}
			nf := m.Flags.Minus(f)
			if add {
				nf = m.Flags.Union(f)
			}
			if nf.Equal(m.Flags) {
				continue
			}
			m.Flags = nf
			if err := tx.PutMessage(m); err != nil {
				return err
			}
			if m.State != MsgSynced {
				continue // a new message carries its flags in its APPEND
			}
			if err := uncarry(tx, id, f); err != nil {
				return err // this write is newer than any kept for a copy
			}
			if en, ok, err := findEntry(tx, OpFlags, id); err != nil {
				return err
			} else if ok {
				en.Touched = en.Touched.Union(f)
				if err := tx.PutJournal(en); err != nil {
					return err
				}
			} else if _, err := tx.AddJournal(JournalEntry{Op: OpFlags, Message: id, Mailbox: m.Mailbox, Touched: f}); err != nil {
				return err
			}
		}
		return nil
	})
}

// Move moves the messages to mailbox dest.
func (e *Engine) Move(ctx context.Context, ids []LocalID, dest string) error {
	return e.local(ctx, "move", func(tx Tx) error {
		if _, err := liveMailbox(tx, dest); err != nil {
			return err
		}
		for _, id := range ids {
			if err := moveLocal(tx, id, dest); err != nil {
				return err
			}
		}
		return nil
	})
}

func moveLocal(tx Tx, id LocalID, dest string) error {
	m, err := visibleMessage(tx, id)
	if err != nil {
		return err
	}
	if m.Visible() == dest {
		return nil
	}
	if m.State == MsgNew {
		en, ok, err := findEntry(tx, OpAppend, id)
		if err != nil {
			return err
		}
		if !ok || en.State != EntryInFlight {
			m.Mailbox = dest
			if err := tx.PutMessage(m); err != nil {
				return err
			}
			if ok {
				en.Mailbox = dest
				return tx.PutJournal(en)
			}
			return nil
		}
		// Its APPEND may have reached m.Mailbox already: it is moved as a message on the
		// server once the sync has found it there (or appended it again).
	}
	if en, ok, err := findEntry(tx, OpMove, id); err != nil {
		return err
	} else if ok && en.State == EntryInFlight {
		// The move may have happened: its entry keeps where to look for the message, and
		// the new destination waits in MoveTo until the sync has found it.
		m.MoveTo = dest
		return tx.PutMessage(m)
	}
	if dest == m.Mailbox {
		m.MoveTo = ""
		if err := tx.PutMessage(m); err != nil {
			return err
		}
		return dropEntries(tx, id, OpMove)
	}
	m.MoveTo = dest
	if err := tx.PutMessage(m); err != nil {
		return err
	}
	en, ok, err := findEntry(tx, OpMove, id)
	if err != nil {
		return err
	}
	if ok {
		en.Dest, en.State, en.UIDNext, en.UIDValidity = dest, EntryPending, 0, 0
		return tx.PutJournal(en)
	}
	_, err = tx.AddJournal(JournalEntry{Op: OpMove, Message: id, Mailbox: m.Mailbox, Dest: dest})
	return err
}

// Copy copies the messages to mailbox dest and returns the copies' local ids.
func (e *Engine) Copy(ctx context.Context, ids []LocalID, dest string) ([]LocalID, error) {
	var out []LocalID
	err := e.local(ctx, "copy", func(tx Tx) error {
		out = out[:0]
		if _, err := liveMailbox(tx, dest); err != nil {
			return err
		}
		for _, id := range ids {
			m, err := visibleMessage(tx, id)
			if err != nil {
				return err
			}
			body, err := tx.Body(id)
			if err != nil {
				return err
			}
			nid, err := tx.NextID()
			if err != nil {
				return err
			}
			// The copy's base is its source's: what the user changed on the source and the
			// server has not seen yet is a change of the copy too.
			c := MessageRecord{ID: nid, Mailbox: dest, State: MsgNew, Size: m.Size, InternalDate: m.InternalDate,
				Hash: m.Hash, MessageID: m.MessageID, Label: m.Label, Flags: m.Flags, Base: m.Base}
			if err := tx.PutMessage(c); err != nil {
				return err
			}
			if err := tx.PutBody(nid, body); err != nil {
				return err
			}
			en := JournalEntry{Op: OpAppend, Message: nid, Mailbox: dest}
			if m.State == MsgSynced {
				// On the server now: copy it there. A message not uploaded yet is
				// appended with the flags it has now, as the user copied it.
				en.Source = id
			}
			if _, err := tx.AddJournal(en); err != nil {
				return err
			}
			out = append(out, nid)
		}
		return nil
	})
	return out, err
}

// Delete deletes (expunges) the messages.
func (e *Engine) Delete(ctx context.Context, ids []LocalID) error {
	return e.local(ctx, "delete", func(tx Tx) error {
		for _, id := range ids {
			if err := deleteLocal(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
}

func deleteLocal(tx Tx, id LocalID) error {
	m, err := visibleMessage(tx, id)
	if err != nil {
		return err
	}
	if m.State == MsgNew {
		en, ok, err := findEntry(tx, OpAppend, id)
		if err != nil {
			return err
		}
		if !ok || en.State != EntryInFlight {
			if err := dropEntries(tx, id); err != nil {
				return err
			}
			return tx.DeleteMessage(id)
		}
		// The APPEND may have reached the server before a crash: keep the record hidden
		// until the engine knows; if found, it is expunged, else forgotten.
	}
	m.State = MsgDeleted
	m.MoveTo = ""
	if err := tx.PutMessage(m); err != nil {
		return err
	}
	if err := dropEntries(tx, id, OpFlags); err != nil {
		return err
	}
	if en, ok, err := findEntry(tx, OpMove, id); err != nil {
		return err
	} else if ok && en.State != EntryInFlight {
		// A move in flight stays: its copy may be on the server, and is deleted too.
		if err := tx.DeleteJournal(en.Seq); err != nil {
			return err
		}
	}
	_, err = tx.AddJournal(JournalEntry{Op: OpDelete, Message: id, Mailbox: m.Mailbox})
	return err
}

// TrashMailbox returns the mailbox Trash moves to: the one with the \Trash special use,
// else the one named "Trash".
func trashMailbox(tx Tx) (string, error) {
	mbs, err := tx.Mailboxes()
	if err != nil {
		return "", err
	}
	named := ""
	for _, mb := range mbs {
		if mb.State == MailboxDeleting {
			continue
		}
		if strings.EqualFold(mb.SpecialUse, `\Trash`) {
			return mb.Name, nil
		}
		if mb.Name == "Trash" {
			named = mb.Name
		}
	}
	if named == "" {
		return "", fmt.Errorf("no \\Trash mailbox")
	}
	return named, nil
}

// Trash moves the messages to the Trash mailbox (the \Trash special-use mailbox, else the
// one named "Trash"). Messages already there are deleted.
func (e *Engine) Trash(ctx context.Context, ids []LocalID) error {
	return e.local(ctx, "trash", func(tx Tx) error {
		trash, err := trashMailbox(tx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			m, err := visibleMessage(tx, id)
			if err != nil {
				return err
			}
			if m.Visible() == trash {
				err = deleteLocal(tx, id)
			} else {
				err = moveLocal(tx, id, trash)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Append adds a new message to mailbox with flags and internal date (zero: now) and returns
// its local id.
func (e *Engine) Append(ctx context.Context, mailbox string, raw []byte, flags []string, date time.Time) (LocalID, error) {
	var id LocalID
	err := e.local(ctx, "append", func(tx Tx) error {
		if _, err := liveMailbox(tx, mailbox); err != nil {
			return err
		}
		var err error
		if id, err = tx.NextID(); err != nil {
			return err
		}
		if date.IsZero() {
			date = time.Now()
		}
		m := newRecord(id, mailbox, raw)
		m.State = MsgNew
		m.InternalDate = date.Unix()
		m.Flags = ParseFlags(flags)
		if err := tx.PutMessage(m); err != nil {
			return err
		}
		if err := tx.PutBody(id, raw); err != nil {
			return err
		}
		_, err = tx.AddJournal(JournalEntry{Op: OpAppend, Message: id, Mailbox: mailbox})
		return err
	})
	return id, err
}

// newRecord describes raw as a message record (identity fields only).
func newRecord(id LocalID, mailbox string, raw []byte) MessageRecord {
	return MessageRecord{ID: id, Mailbox: mailbox, Size: uint32(len(raw)), Hash: contentHash(raw),
		MessageID: clients.MessageID(raw), Label: clients.Label(raw)}
}

func contentHash(raw []byte) [32]byte {
	var h [32]byte
	b, err := hex.DecodeString(clients.ContentHash(raw))
	if err == nil {
		copy(h[:], b)
	}
	return h
}

func hashString(h [32]byte) string { return hex.EncodeToString(h[:]) }

// CreateMailbox creates a mailbox.
func (e *Engine) CreateMailbox(ctx context.Context, name string) error {
	return e.local(ctx, "create mailbox "+name, func(tx Tx) error {
		if name == "" {
			return fmt.Errorf("empty mailbox name")
		}
		if _, ok, err := tx.Mailbox(name); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("mailbox %q exists", name)
		}
		if err := tx.PutMailbox(MailboxRecord{Name: name, State: MailboxLocal}); err != nil {
			return err
		}
		_, err := tx.AddJournal(JournalEntry{Op: OpCreateMailbox, Mailbox: name})
		return err
	})
}

// RenameMailbox renames mailbox old to name.
func (e *Engine) RenameMailbox(ctx context.Context, old, name string) error {
	return e.local(ctx, "rename mailbox "+old, func(tx Tx) error {
		mb, err := liveMailbox(tx, old)
		if err != nil {
			return err
		}
		if strings.EqualFold(old, "INBOX") {
			return fmt.Errorf("INBOX cannot be renamed")
		}
		if _, ok, err := tx.Mailbox(name); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("mailbox %q exists", name)
		}
		if err := tx.DeleteMailbox(old); err != nil {
			return err
		}
		mb.Name = name
		if err := tx.PutMailbox(mb); err != nil {
			return err
		}
		if err := renameRecords(tx, old, name); err != nil {
			return err
		}
		j, err := tx.Journal()
		if err != nil {
			return err
		}
		merged := false
		for _, en := range j {
			changed := false
			switch {
			case (en.Op == OpCreateMailbox && en.Mailbox == old || en.Op == OpRenameMailbox && en.Dest == old) &&
				en.State == EntryInFlight:
				// The server may have it under the old name already: rename it there too.
			case en.Op == OpCreateMailbox && en.Mailbox == old:
				en.Mailbox, changed, merged = name, true, true
			case en.Op == OpRenameMailbox && en.Dest == old:
				en.Dest, changed, merged = name, true, true
			case en.Op != OpRenameMailbox && en.Op != OpDeleteMailbox && en.Mailbox == old:
				en.Mailbox, changed = name, true
			}
			if en.Op == OpMove && en.Dest == old {
				en.Dest, changed = name, true
			}
			if changed {
				if err := tx.PutJournal(en); err != nil {
					return err
				}
			}
		}
		if merged {
			return nil
		}
		_, err = tx.AddJournal(JournalEntry{Op: OpRenameMailbox, Mailbox: old, Dest: name})
		return err
	})
}

// DeleteMailbox deletes a mailbox and the messages in it.
func (e *Engine) DeleteMailbox(ctx context.Context, name string) error {
	return e.local(ctx, "delete mailbox "+name, func(tx Tx) error {
		mb, err := liveMailbox(tx, name)
		if err != nil {
			return err
		}
		if strings.EqualFold(name, "INBOX") {
			return fmt.Errorf("INBOX cannot be deleted")
		}
		all, err := tx.AllMessages()
		if err != nil {
			return err
		}
		for _, m := range all {
			if m.Visible() != name {
				continue
			}
			if m.Mailbox == name && m.State == MsgSynced {
				// DELETE on the server removes it with the mailbox.
				if err := dropEntries(tx, m.ID); err != nil {
					return err
				}
				if err := tx.DeleteMessage(m.ID); err != nil {
					return err
				}
				continue
			}
			if err := deleteLocal(tx, m.ID); err != nil {
				return err
			}
		}
		if mb.State == MailboxLocal {
			// Never reached the server: forget it and its creation. Unless its creation
			// was sent and its outcome is unknown, here or under the name it had before a
			// rename (the create entry of that name is in flight, and a rename entry
			// brings it here): then the server may have it, and it is deleted there too.
			j, err := tx.Journal()
			if err != nil {
				return err
			}
			var creates []JournalEntry
			for _, en := range j {
				if en.Op == OpCreateMailbox && en.Mailbox == name && en.State != EntryInFlight {
					creates = append(creates, en)
				}
			}
			if len(creates) > 0 {
				for _, en := range creates {
					if err := tx.DeleteJournal(en.Seq); err != nil {
						return err
					}
				}
				return tx.DeleteMailbox(name)
			}
		}
		mb.State = MailboxDeleting
		if err := tx.PutMailbox(mb); err != nil {
			return err
		}
		_, err = tx.AddJournal(JournalEntry{Op: OpDeleteMailbox, Mailbox: name})
		return err
	})
}
