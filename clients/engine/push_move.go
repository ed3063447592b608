package engine

import (
	"maps"
	"slices"

	"github.com/emersion/go-imap/v2"
)

// pushMoves moves messages from mailbox to dest. The entries are marked in flight with
// dest's UIDNEXT first, so that after a crash the engine looks for them there before moving
// again. Without COPYUID the messages are looked up in dest by Message-ID and content. Its
// steps: resumeMoves (moves a crash left in flight), sendMoves, finishMoves.
func (r *round) pushMoves(mailbox, dest string, entries []JournalEntry, recs map[LocalID]MessageRecord) error {
	destBox, ok, err := r.mailbox(dest)
	if err != nil {
		return err
	}
	if !ok || destBox.State != MailboxSynced {
		return nil // created first, or gone: reconciliation decides
	}
	var todo, inflight []JournalEntry
	for _, en := range entries {
		if en.State == EntryInFlight {
			inflight = append(inflight, en)
		} else {
			todo = append(todo, en)
		}
	}
	if len(inflight) > 0 {
		again, stop, err := r.resumeMoves(mailbox, dest, inflight, recs)
		if err != nil || stop {
			return err
		}
		todo = append(todo, again...)
	}
	if len(todo) == 0 {
		return nil
	}
	// A lookup in an earlier destination may have selected another mailbox: UIDs are only
	// ever used in their own mailbox, under their UIDVALIDITY.
	if _, err := r.selectForPush(mailbox); err == errSkip {
		return nil
	} else if err != nil {
		return err
	}
	st, err := r.markInFlight(dest, todo)
	if st == nil || err != nil {
		return err
	}
	sent, err := r.sendMoves(mailbox, dest, todo, recs)
	if sent == nil || err != nil {
		return err
	}
	return r.finishMoves(mailbox, dest, todo, recs, st.UIDValidity, sent)
}

// resumeMoves settles the moves a crash (or a lost answer) left in flight: those whose
// copy is found in dest are done (the original expunged if still there), the others are
// returned to be sent again. stop says the push of these moves ends here.
func (r *round) resumeMoves(mailbox, dest string, inflight []JournalEntry, recs map[LocalID]MessageRecord) (again []JournalEntry, stop bool, err error) {
	var left []uint32
	var echo map[uint32]Flags
	found, err := r.locate(dest, inflight, recs)
	if isGone(err) || err == errSkip {
		return nil, true, nil // gone, or its UIDs are being re-matched: the scan decides first
	}
	if err != nil {
		return nil, true, err
	}
	var src []uint32
	for id := range found {
		src = append(src, recs[id].UID)
	}
	if _, err := r.selectForPush(mailbox); err == errSkip {
		// The source's UIDs are unusable (a new UIDVALIDITY) or it is gone. The copies
		// found are moves done; the originals, if still there, are kept as deleted records
		// that the scan matches again and the next push expunges.
		return nil, true, r.adoptMoved(mailbox, dest, found, inflight, recs, nil, src)
	} else if err != nil {
		return nil, true, err
	}
	if len(found) > 0 {
		// The copy reached dest; without MOVE the original may still be here: expunge it
		// before recording the new location, or it would come back as new mail.
		if echo, left, err = r.expunge(mailbox, src); err != nil {
			return nil, true, err
		}
	}
	if err := r.adoptMoved(mailbox, dest, found, inflight, recs, echo, left); err != nil {
		return nil, true, err
	}
	for _, en := range inflight {
		if _, ok := found[en.Message]; !ok {
			if m := recs[en.Message]; m.MoveTo != dest {
				// The user moved it on meanwhile: the next push goes there.
				if err := r.retarget(m); err != nil {
					return nil, true, err
				}
				continue
			}
			again = append(again, en)
		}
	}
	return again, false, nil
}

// movesSent is what sendMoves learned: where the server put each original (COPYUID), under
// which UIDVALIDITY, and, for a COPY and an expunge, what the expunge left and the
// originals' flags just before it.
type movesSent struct {
	mapped   map[uint32]uint32
	validity uint32
	left     []uint32
	echo     map[uint32]Flags
}

// sendMoves moves todo with UID MOVE, or COPY and an expunge where the server has no MOVE
// (or stopped offering it). nil with no error: the mailbox is gone, the moves dropped.
func (r *round) sendMoves(mailbox, dest string, todo []JournalEntry, recs map[LocalID]MessageRecord) (*movesSent, error) {
	var uids []uint32
	for _, en := range todo {
		uids = append(uids, recs[en.Message].UID)
	}
	set := uidSet(uids)
	sent := &movesSent{mapped: map[uint32]uint32{}}
	if r.cn.has(imap.CapMove) {
		data, err := r.cn.move(mailbox, set, dest)
		if isGone(err) {
			return nil, r.dropMoves(todo, err)
		}
		if isBad(err) && !r.cn.has(imap.CapMove) {
			// The server stopped offering MOVE on this connection: nothing was moved.
			r.e.log.Warn("UID MOVE refused and MOVE no longer offered; moving with COPY", "mailbox", mailbox, "err", err)
		} else if err != nil {
			return nil, err
		} else if data != nil {
			sent.validity = data.UIDValidity
			if src, ok := data.SourceUIDs.(imap.UIDSet); ok {
				if dst, ok := data.DestUIDs.(imap.UIDSet); ok {
					pairUIDs(src, dst, len(uids), sent.mapped)
				}
			}
			return sent, nil
		}
	}
	data, err := r.cn.copy(mailbox, set, dest)
	if isGone(err) {
		return nil, r.dropMoves(todo, err)
	}
	if err != nil {
		return nil, err
	}
	sent.validity = data.UIDValidity
	pairUIDs(data.SourceUIDs, data.DestUIDs, len(uids), sent.mapped)
	if sent.echo, sent.left, err = r.expunge(mailbox, uids); err != nil {
		return nil, err
	}
	return sent, nil
}

// finishMoves records where todo's messages are now: by COPYUID, else looked up in dest
// (validity is dest's UIDVALIDITY when the moves were marked in flight).
func (r *round) finishMoves(mailbox, dest string, todo []JournalEntry, recs map[LocalID]MessageRecord, validity uint32, sent *movesSent) error {
	found := map[LocalID]uint32{}
	var missing []JournalEntry
	var uidNext uint32
	for _, en := range todo {
		if nu, ok := sent.mapped[recs[en.Message].UID]; ok && sent.validity == validity {
			found[en.Message] = nu
			uidNext = en.UIDNext // dest's, when the moves were marked in flight
		} else {
			missing = append(missing, en)
		}
	}
	if fresh, err := r.freshUIDs(dest, uidNext, slices.Collect(maps.Values(found))); err != nil {
		return err
	} else if !fresh {
		missing = missing[:0]
		for _, en := range todo {
			en.UIDNext = lookFrom(en.UIDNext, found[en.Message])
			missing = append(missing, en)
		}
		clear(found)
	}
	if len(missing) > 0 {
		more, err := r.locate(dest, missing, recs)
		if err == errSkip {
			// dest's UIDs are being re-matched: the missing moves stay in flight for the
			// scan to find; the others are done.
			var done []JournalEntry
			for _, en := range todo {
				if _, ok := found[en.Message]; ok {
					done = append(done, en)
				} else if e, ok := sent.echo[recs[en.Message].UID]; ok {
					r.moveEcho[en.Message] = e
				}
			}
			todo = done
		} else if err != nil {
			return err
		}
		for id, u := range more {
			found[id] = u
		}
	}
	return r.adoptMoved(mailbox, dest, found, todo, recs, sent.echo, sent.left)
}

// pairUIDs pairs the UIDs of a COPYUID (RFC 4315), given after asked UIDs were copied or
// moved, into out: the source set's n-th UID with the destination set's. A COPYUID whose
// sets differ in size, or hold more than asked, pairs nothing (the messages are looked up,
// as without UIDPLUS); its sets are counted before they are expanded, as a server's
// "1:4294967295" would take 16 GB.
func pairUIDs(src, dst imap.UIDSet, asked int, out map[uint32]uint32) {
	ns, ok1 := uidCount(src)
	nd, ok2 := uidCount(dst)
	if !ok1 || !ok2 || ns != nd || ns > uint64(asked) {
		return
	}
	s, _ := src.Nums()
	d, _ := dst.Nums()
	if len(s) != len(d) { // counted equal, but Nums expands a range high to low to nothing
		return
	}
	for i := range s {
		out[uint32(s[i])] = uint32(d[i])
	}
}

// dropMoves gives up moves the server refused for good (the destination is gone): the
// messages stay where the server has them.
func (r *round) dropMoves(entries []JournalEntry, cause error) error {
	r.e.log.Warn("move refused; messages stay in place", "err", cause)
	return r.update(func(tx Tx) error {
		for _, en := range entries {
			m, ok, err := tx.Message(en.Message)
			if err != nil {
				return err
			}
			if ok && m.MoveTo != "" {
				m.MoveTo = ""
				if err := tx.PutMessage(m); err != nil {
					return err
				}
				r.st.LocalChanges++
				r.st.Conflicts++
			}
			if err := tx.DeleteJournal(en.Seq); err != nil {
				return err
			}
		}
		return nil
	})
}

// adoptMoved records the new location of moved messages (found: local id → UID in dest).
// Entries not found are finished too: the message left its source some other way (another
// device moved or expunged it first) and the scan of the mailboxes decides where it is.
// An original still in source (left: its UIDs) after its copy reached dest is kept as a
// hidden deleted record with a delete entry, so that the next round expunges it instead of
// downloading it as new mail. echo holds the originals' flags as the expunge's STORE saw
// them (moves without MOVE): another device's change that reached the original after
// the COPY is merged in and written to the copy.
func (r *round) adoptMoved(source, dest string, found map[LocalID]uint32, entries []JournalEntry, recs map[LocalID]MessageRecord, echo map[uint32]Flags, left []uint32) error {
	stuck := map[uint32]bool{}
	for _, u := range left {
		stuck[u] = true
	}
	return r.update(func(tx Tx) error {
		for _, en := range entries {
			m, ok, err := tx.Message(en.Message)
			if err != nil {
				return err
			}
			if !ok {
				if err := tx.DeleteJournal(en.Seq); err != nil {
					return err
				}
				continue
			}
			u, moved := found[en.Message]
			if !moved {
				if en.State == EntryInFlight {
					// Sent and not found in dest: the message was not under its UID (moved or
					// expunged by someone else, renumbered). The scan finds out; the move
					// stays pending until then.
					en.State, en.UIDNext, en.UIDValidity = EntryPending, 0, 0
					if err := tx.PutJournal(en); err != nil {
						return err
					}
				}
				continue
			}
			orig := recs[en.Message]
			if orig.UID != 0 && stuck[orig.UID] {
				if err := keepToExpunge(tx, source, orig); err != nil {
					return err
				}
			}
			next := m.MoveTo // the user may have moved it on while the move was in flight
			if err := pinValidity(tx, dest, en.UIDValidity); err != nil {
				return err
			}
			m.Mailbox, m.UID, m.MoveTo, m.EverUID = dest, u, "", true
			if next != "" && next != dest {
				m.MoveTo = next
				if _, err := tx.AddJournal(JournalEntry{Op: OpMove, Message: m.ID, Mailbox: dest, Dest: next}); err != nil {
					return err
				}
			}
			if e, ok := echo[orig.UID]; ok && m.State == MsgSynced {
				if m.Flags, err = mergeEcho(tx, m, e); err != nil {
					return err
				}
			}
			if err := tx.PutMessage(m); err != nil {
				return err
			}
			if err := journalFlags(tx, m); err != nil {
				return err
			}
			if err := tx.DeleteJournal(en.Seq); err != nil {
				return err
			}
		}
		return nil
	})
}

// retarget points the move entry of m, a move in flight not found in its destination, at
// the destination the user chose since (or drops it if that is where m is).
func (r *round) retarget(m MessageRecord) error {
	return r.update(func(tx Tx) error {
		en, ok, err := findEntry(tx, OpMove, m.ID)
		if err != nil || !ok {
			return err
		}
		cur, ok, err := tx.Message(m.ID)
		if err != nil || !ok {
			return err
		}
		if cur.MoveTo == "" || cur.MoveTo == cur.Mailbox {
			cur.MoveTo = ""
			if err := tx.PutMessage(cur); err != nil {
				return err
			}
			return tx.DeleteJournal(en.Seq)
		}
		en.Dest, en.State, en.UIDNext, en.UIDValidity = cur.MoveTo, EntryPending, 0, 0
		return tx.PutJournal(en)
	})
}

// mergeEcho merges into m's flags the original's flags e that the expunge's STORE of a
// move without MOVE reported: the changes other devices made after the COPY. The echo has
// the \Deleted the expunge set; the copy has the original's.
func mergeEcho(tx Tx, m MessageRecord, e Flags) (Flags, error) {
	deleted := Flags{System: FlagDeleted}
	return mergeLocal(tx, m, e.Minus(deleted).Union(m.Base.Intersect(deleted)))
}

// pinValidity records validity as the UIDVALIDITY of mailbox if no scan has recorded one
// yet: a UID given to a record there (an APPEND's, a move's) belongs to it, and a later
// change must be seen as one.
func pinValidity(tx Tx, mailbox string, validity uint32) error {
	if validity == 0 {
		return nil
	}
	mb, ok, err := tx.Mailbox(mailbox)
	if err != nil || !ok || mb.UIDValidity != 0 {
		return err
	}
	mb.UIDValidity = validity
	return tx.PutMailbox(mb)
}

// keepToExpunge records m's original, still under its UID in mailbox, as a hidden deleted
// record of its own with a delete entry.
func keepToExpunge(tx Tx, mailbox string, m MessageRecord) error {
	id, err := tx.NextID()
	if err != nil {
		return err
	}
	g := m
	g.ID, g.Mailbox, g.MoveTo, g.State = id, mailbox, "", MsgDeleted
	if err := tx.PutMessage(g); err != nil {
		return err
	}
	_, err = tx.AddJournal(JournalEntry{Op: OpDelete, Message: id, Mailbox: mailbox})
	return err
}
