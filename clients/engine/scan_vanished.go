package engine

import (
	"maps"
	"slices"
)

// finishVanished settles the records whose UIDs disappeared and that no new server message
// adopted: a copy downloaded earlier this round takes over their local changes; the rest is
// deleted locally (the server expunged it: delete beats flag and move). Never re-uploaded.
// In a round with a suspect answer nothing is settled: every record waits for the next.
func (r *round) finishVanished() error {
	if len(r.vanished) == 0 && len(r.settleValidity) == 0 {
		r.e.unfinished.Store(false)
		return nil
	}
	if r.suspect != "" {
		// An answer of the round named a UID that cannot be there (suspectAnswer): what
		// seems gone may be hidden by it. Held as they are, like a round cut short: the
		// orphans keep their UIDVALIDITY, and the next round settles every record.
		r.e.log.Warn("messages found nowhere held for the next round: an answer named a UID that cannot be there",
			"why", r.suspect, "held", len(r.vanished))
		r.vanished, r.settleValidity = map[LocalID]MessageRecord{}, map[string]uint32{}
		return nil // records of a mailbox found gone stay stranded: unfinished stays set
	}
	unsettled, err := r.movedDuringScan()
	if err != nil {
		return err
	}
	return r.update(func(tx Tx) error {
		defer func() { r.settleValidity = map[string]uint32{} }()
		if err := r.settleValidities(tx); err != nil {
			return err
		}
		byHash := map[[32]byte][]MessageRecord{}
		for _, c := range r.created {
			byHash[c.Hash] = append(byHash[c.Hash], c)
		}
		// In id order: two vanished records with the same content take their copies in
		// the same order every run.
		held := 0
		for _, id := range slices.Sorted(maps.Keys(r.vanished)) {
			v, left := r.vanished[id]
			if !left {
				continue
			}
			m, ok, err := tx.Message(id)
			if err != nil {
				return err
			}
			if !ok || m.UID != v.UID || m.Mailbox != v.Mailbox {
				continue // adopted meanwhile
			}
			if r.goneBoxes[m.Mailbox] && !r.orphans[m.ID] {
				// Its mailbox left the server this round, and it is nowhere else: a LIST
				// that left out the mailbox's new name (renamed by another client) looks
				// so. Held, stranded under the old name, until the next round, which
				// finds it or lets it go: a mailbox's mail goes after two rounds. Not
				// where another mailbox took the name (MAILBOXID changed): a record there
				// would pass for one of the new mailbox's.
				_, named, err := tx.Mailbox(m.Mailbox)
				if err != nil {
					return err
				}
				if !named {
					held++
					continue
				}
			}
			if err := r.settleVanished(tx, m, byHash, unsettled); err != nil {
				return err
			}
		}
		if held > 0 {
			r.e.log.Info("messages of a mailbox gone from the server held for the next round", "held", held)
		} else {
			r.e.unfinished.Store(false)
		}
		r.vanished = map[LocalID]MessageRecord{}
		return nil
	})
}

// settleValidities records the new UIDVALIDITY of the mailboxes whose orphans this round
// settles (commitWatermarks kept the old one till now).
func (r *round) settleValidities(tx Tx) error {
	for name, v := range r.settleValidity {
		mb, ok, err := tx.Mailbox(name)
		if err != nil {
			return err
		}
		if ok {
			mb.UIDValidity = v
			if err := tx.PutMailbox(mb); err != nil {
				return err
			}
		}
	}
	return nil
}

// settleVanished settles one record found nowhere this round. byHash holds the records
// created this round by content, each taken once; unsettled says mail may have moved
// behind the scan (movedDuringScan).
func (r *round) settleVanished(tx Tx, m MessageRecord, byHash map[[32]byte][]MessageRecord, unsettled bool) error {
	if r.orphans[m.ID] {
		return r.settleOrphan(tx, m)
	}
	if r.e.opts.Quirks.Has(QuirkReupload) && m.State == MsgSynced {
		// Deliberately wrong: push the vanished message back up.
		m.UID, m.State, m.MoveTo = 0, MsgNew, ""
		if err := dropEntries(tx, m.ID); err != nil {
			return err
		}
		if err := tx.PutMessage(m); err != nil {
			return err
		}
		_, err := tx.AddJournal(JournalEntry{Op: OpAppend, Message: m.ID, Mailbox: m.Mailbox})
		return err
	}
	if list := byHash[m.Hash]; len(list) > 0 && m.State == MsgSynced {
		// Moved elsewhere and already downloaded there: carry the local flag changes.
		c, ok, err := tx.Message(list[0].ID)
		byHash[m.Hash] = list[1:]
		if err != nil {
			return err
		}
		if ok {
			if err := carryFlags(tx, m, c); err != nil {
				return err
			}
		}
		return r.forget(tx, m)
	}
	_, carrying, err := findEntry(tx, OpCarry, m.ID)
	if err != nil {
		return err
	}
	switch {
	case m.State == MsgSynced && (!m.Flags.Equal(m.Base) || carrying):
		// Moved elsewhere and downloaded there in an earlier round (the move was half
		// done when that round ran): carry the local flag changes to the one copy of the
		// same content in another mailbox.
		c, ok, err := r.movedCopy(tx, m)
		if err != nil {
			return err
		}
		switch {
		case ok:
			if err := carryFlags(tx, m, c); err != nil {
				return err
			}
		case unsettled:
			// Found nowhere, but a mailbox took new messages after it was scanned: the
			// message may have moved there behind the scan. The record is held as it is,
			// pending work and all; the next round finds it or lets it go.
			r.e.log.Info("message with pending changes found nowhere while mail moved; held for the next round",
				"mailbox", m.Mailbox, "label", m.Label)
			return nil
		default:
			r.st.Conflicts++ // expunge beats flag
		}
	case m.State == MsgSynced && m.MoveTo != "":
		r.st.Conflicts++ // expunge beats move
	}
	return r.forget(tx, m)
}

// settleOrphan settles a record of an old UIDVALIDITY found nowhere: moved before the
// change, its one copy elsewhere takes the local flag changes; else it is set aside.
func (r *round) settleOrphan(tx Tx, m MessageRecord) error {
	c, ok, err := r.movedCopy(tx, m)
	if err != nil {
		return err
	}
	if !ok || m.State != MsgSynced {
		return r.quarantine(tx, m)
	}
	if err := carryFlags(tx, m, c); err != nil {
		return err
	}
	return r.forget(tx, m)
}
