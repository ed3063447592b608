package engine

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// pushMessages replays the journal's message operations: deletes and moves per source
// mailbox, then appends per destination, then flag changes on the messages' current UIDs.
func (r *round) pushMessages() error {
	j, err := r.journal()
	if err != nil {
		return err
	}
	for _, en := range j {
		if en.Op == OpRemark {
			if err := r.remark(en); err != nil {
				return err
			}
		}
	}
	byBox := map[string][]JournalEntry{}
	var boxes []string
	appends := map[string][]JournalEntry{}
	var appendBoxes []string
	hasFlags := false
	for _, en := range j {
		switch en.Op {
		case OpDelete, OpMove:
			m, ok, err := r.message(en.Message)
			if err != nil {
				return err
			}
			if !ok {
				if err := r.update(func(tx Tx) error { return tx.DeleteJournal(en.Seq) }); err != nil {
					return err
				}
				continue
			}
			if _, seen := byBox[m.Mailbox]; !seen {
				boxes = append(boxes, m.Mailbox)
			}
			byBox[m.Mailbox] = append(byBox[m.Mailbox], en)
		case OpAppend:
			if _, seen := appends[en.Mailbox]; !seen {
				appendBoxes = append(appendBoxes, en.Mailbox)
			}
			appends[en.Mailbox] = append(appends[en.Mailbox], en)
		case OpFlags:
			hasFlags = true
		}
	}
	for _, box := range boxes {
		if err := r.pushBox(box, byBox[box]); err != nil {
			return err
		}
	}
	for _, box := range appendBoxes {
		if err := r.pushAppends(box, appends[box]); err != nil {
			return err
		}
	}
	if hasFlags {
		return r.pushFlags()
	}
	return nil
}

// selectForPush selects mailbox for UID commands. It returns errSkip when the mailbox is
// missing or its UIDVALIDITY is not the one the local UIDs belong to: UIDs are only ever
// used within their UIDVALIDITY.
func (r *round) selectForPush(mailbox string) (*imap.SelectData, error) {
	mb, ok, err := r.mailbox(mailbox)
	if err != nil {
		return nil, err
	}
	if !ok || mb.State == MailboxLocal {
		return nil, errSkip
	}
	data, err := r.cn.selectBox(mailbox)
	if isGone(err) {
		r.e.log.Info("mailbox gone from the server; its changes wait for reconciliation", "mailbox", mailbox, "err", err)
		return nil, errSkip
	}
	if err != nil {
		return nil, err
	}
	if mb.UIDValidity != data.UIDValidity && !r.e.opts.Quirks.Has(QuirkPairByUID) {
		r.blocked[mailbox] = true
		return nil, errSkip
	}
	if id := r.cn.mailboxID(); id != "" && mb.MailboxID != "" && id != mb.MailboxID {
		// Another mailbox under the name (the old one renamed away, this one renamed or
		// created here), even with the same UIDVALIDITY: its UIDs name other messages.
		// The reconciliation follows the old one; nothing is pushed here until then.
		r.blocked[mailbox] = true
		return nil, errSkip
	}
	return data, nil
}

// uidSet returns uids as a compact UID set (runs as ranges).
func uidSet(uids []uint32) imap.UIDSet {
	sorted := append([]uint32(nil), uids...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var s imap.UIDSet
	for i := 0; i < len(sorted); {
		j := i
		for j+1 < len(sorted) && sorted[j+1] <= sorted[j]+1 {
			j++
		}
		s = append(s, imap.UIDRange{Start: imap.UID(sorted[i]), Stop: imap.UID(sorted[j])})
		i = j + 1
	}
	return s
}

// pushBox replays deletes and moves of messages whose server copy is in mailbox.
func (r *round) pushBox(mailbox string, entries []JournalEntry) error {
	if err := r.settleDeletedMoves(mailbox, entries); err != nil {
		return err
	}
	if _, err := r.selectForPush(mailbox); err == errSkip {
		return nil
	} else if err != nil {
		return err
	}
	recs := map[LocalID]MessageRecord{}
	if err := r.view(func(tx Tx) error {
		for _, en := range entries {
			m, ok, err := tx.Message(en.Message)
			if err != nil {
				return err
			}
			if ok && m.Mailbox == mailbox && m.UID != 0 {
				recs[m.ID] = m
			}
		}
		return nil
	}); err != nil {
		return err
	}
	var dels []JournalEntry
	moves := map[string][]JournalEntry{}
	var dests []string
	for _, en := range entries {
		if _, ok := recs[en.Message]; !ok {
			continue
		}
		switch en.Op {
		case OpDelete:
			dels = append(dels, en)
		case OpMove:
			m := recs[en.Message]
			if m.MoveTo == "" {
				continue
			}
			dest := m.MoveTo
			if en.State == EntryInFlight {
				dest = en.Dest // where the message may be already
			}
			if _, seen := moves[dest]; !seen {
				dests = append(dests, dest)
			}
			moves[dest] = append(moves[dest], en)
		}
	}
	if len(dels) > 0 {
		if err := r.pushDeletes(mailbox, dels, recs); err != nil {
			return err
		}
	}
	for _, dest := range dests {
		if err := r.pushMoves(mailbox, dest, moves[dest], recs); err != nil {
			return err
		}
	}
	return nil
}

// settleDeletedMoves finishes the moves in flight of messages the user deleted since: a
// copy found in the destination is kept as a deleted record there, to be expunged as the
// original is.
func (r *round) settleDeletedMoves(mailbox string, entries []JournalEntry) error {
	for _, en := range entries {
		if en.Op != OpMove || en.State != EntryInFlight {
			continue
		}
		m, ok, err := r.message(en.Message)
		if err != nil {
			return err
		}
		if !ok || m.State != MsgDeleted || m.Mailbox != mailbox || m.UID == 0 {
			continue
		}
		found, err := r.locate(en.Dest, []JournalEntry{en}, map[LocalID]MessageRecord{m.ID: m})
		if isGone(err) || err == errSkip {
			continue // the destination is gone or being re-matched: a later round
		}
		if err != nil {
			return err
		}
		if err := r.update(func(tx Tx) error {
			if u, ok := found[m.ID]; ok {
				c := m
				c.UID = u
				if err := keepToExpunge(tx, en.Dest, c); err != nil {
					return err
				}
			}
			return tx.DeleteJournal(en.Seq)
		}); err != nil {
			return err
		}
	}
	return nil
}

func (r *round) pushDeletes(mailbox string, dels []JournalEntry, recs map[LocalID]MessageRecord) error {
	var uids []uint32
	for _, en := range dels {
		uids = append(uids, recs[en.Message].UID)
	}
	existed, _, err := r.expunge(mailbox, uids)
	if err != nil {
		return err // what is left is expunged next round: the delete entries stay
	}
	r.st.Expunged += len(existed)
	// The records stay (hidden) until the scan has seen the UIDs gone: a message another
	// device moved between our STORE and our EXPUNGE shows up elsewhere, still marked
	// \Deleted, and the delete follows it there (expunge beats move).
	//
	// So do their delete entries, and that is what makes a delete that did not take happen
	// after all: another client cleared \Deleted between our STORE and our EXPUNGE, the
	// EXPUNGE's answer was lost, the round stopped. The cost: a delete pushed after the
	// round's scan (by pushAgain, say for the copy a move in flight left behind) is sent
	// once more at the start of the next round, before that round's scan sees the UID gone:
	// a UID STORE and a UID EXPUNGE of a UID no longer there, which change nothing (UIDs
	// are not reused under one UIDVALIDITY; without UIDPLUS it is the whole expunge of RFC
	// 4549 §4.2.4 once more, for nothing). Dropping the entry here instead would need to
	// tell our EXPUNGE's removals from another device's move, which the UIDs alone do not.
	for _, en := range dels {
		if _, ok := existed[recs[en.Message].UID]; ok {
			r.marked[en.Message] = true
		}
	}
	return nil
}

// expunge removes uids from the selected mailbox without touching any other message:
// STORE +FLAGS \Deleted then UID EXPUNGE; without UIDPLUS, RFC 4549 §4.2.4: clear \Deleted
// on the other marked messages, EXPUNGE, mark them again. It returns the UIDs that existed
// with the flags the STORE reported for them and, without UIDPLUS, those still there
// afterwards: another client doing the same at the same time clears \Deleted on ours while
// it expunges its own.
func (r *round) expunge(mailbox string, uids []uint32) (existed map[uint32]Flags, left []uint32, err error) {
	set := uidSet(uids)
	res, err := r.cn.store(mailbox, set, imap.StoreFlagsAdd, []imap.Flag{imap.FlagDeleted})
	if err != nil {
		return nil, nil, err
	}
	existed = map[uint32]Flags{}
	for u, f := range res {
		existed[uint32(u)] = f
	}
	// Changes other clients make to these messages until they are gone are reported
	// unasked: the latest flags, not the STORE's, are the original's last ones.
	r.cn.notes.record()
	defer func() {
		for u, f := range r.cn.notes.stop() {
			if _, ok := existed[u]; ok && existed != nil {
				existed[u] = f
			}
		}
	}()
	if r.e.opts.Quirks.Has(QuirkPlainExpunge) {
		return existed, nil, r.cn.plainExpunge(mailbox)
	}
	if r.cn.has(imap.CapUIDPlus) {
		return existed, nil, r.cn.uidExpunge(mailbox, set)
	}
	left = uids
	for attempt := 0; attempt < maxExpungeAttempts && len(left) > 0; attempt++ {
		if attempt > 0 {
			if _, err := r.cn.store(mailbox, uidSet(left), imap.StoreFlagsAdd, []imap.Flag{imap.FlagDeleted}); err != nil {
				return nil, nil, err
			}
		}
		if left, err = r.expungeOnly(mailbox, left); err != nil {
			return nil, nil, err
		}
	}
	return existed, left, nil
}

// maxExpungeAttempts bounds the tries of the expunge without UIDPLUS in one round.
const maxExpungeAttempts = 3

// remark marks \Deleted again on the messages an interrupted expunge without UIDPLUS
// cleared it on. Under another UIDVALIDITY it waits until the scan has matched the
// mailbox's records again and marks the records' new UIDs; with the mailbox gone there is
// nothing left to do.
func (r *round) remark(en JournalEntry) error {
	data, err := r.cn.selectBox(en.Mailbox)
	if err != nil && !isGone(err) {
		return err
	}
	uids := en.UIDs
	if err == nil && data.UIDValidity != en.UIDValidity {
		if stale, err := r.staleUIDs(en.Mailbox, data.UIDValidity); err != nil || stale {
			return err // after the scan
		}
		uids = nil
		if err := r.view(func(tx Tx) error {
			for _, id := range en.IDs {
				m, ok, err := tx.Message(id)
				if err != nil {
					return err
				}
				if ok && m.Mailbox == en.Mailbox && m.UID != 0 {
					uids = append(uids, m.UID)
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if err == nil && len(uids) > 0 {
		if _, err := r.cn.store(en.Mailbox, uidSet(uids), imap.StoreFlagsAdd, []imap.Flag{imap.FlagDeleted}); err != nil {
			return err
		}
	}
	return r.update(func(tx Tx) error { return tx.DeleteJournal(en.Seq) })
}

// confirmDeleted returns the messages of set whose FLAGS, fetched now, hold \Deleted. A
// server's SEARCH DELETED was seen to list messages without it: clearing \Deleted on them
// and setting it back would mark innocent mail for deletion (I6), so the expunge of RFC
// 4549 §4.2.4 touches only what the server's own FLAGS confirm.
func (r *round) confirmDeleted(mailbox string, set imap.UIDSet) (imap.UIDSet, error) {
	msgs, err := r.cn.fetch(mailbox, set, &imap.FetchOptions{Flags: true})
	if err != nil {
		return nil, err
	}
	var out imap.UIDSet
	for _, m := range msgs {
		if slices.ContainsFunc(m.Flags, func(f imap.Flag) bool { return strings.EqualFold(string(f), string(imap.FlagDeleted)) }) {
			out.AddNum(m.UID)
		} else {
			r.e.log.Info("SEARCH DELETED listed a message without \\Deleted; left alone", "mailbox", mailbox, "uid", m.UID)
		}
	}
	return out, nil
}

// expungeOnly expunges uids, already marked \Deleted, without UID EXPUNGE, and returns
// those still there.
func (r *round) expungeOnly(mailbox string, uids []uint32) ([]uint32, error) {
	marked, err := r.cn.search(mailbox, &imap.SearchCriteria{Flag: []imap.Flag{imap.FlagDeleted}})
	if err != nil {
		return nil, err
	}
	mine := map[imap.UID]bool{}
	for _, u := range uids {
		mine[imap.UID(u)] = true
	}
	var others imap.UIDSet
	for _, u := range marked {
		if !mine[u] {
			others.AddNum(u)
		}
	}
	if len(others) > 0 {
		if others, err = r.confirmDeleted(mailbox, others); err != nil {
			return nil, err
		}
	}
	var remark uint64
	if len(others) > 0 {
		// Journal first: if the round stops before the others are marked again, the next
		// one marks them.
		nums, _ := others.Nums()
		en := JournalEntry{Op: OpRemark, Mailbox: mailbox, UIDs: make([]uint32, len(nums))}
		for i, u := range nums {
			en.UIDs[i] = uint32(u)
		}
		if r.cn.sel != nil {
			en.UIDValidity = r.cn.sel.UIDValidity
		}
		if err := r.update(func(tx Tx) error {
			recs, err := tx.Messages(mailbox)
			if err != nil {
				return err
			}
			marked := map[uint32]bool{}
			for _, u := range en.UIDs {
				marked[u] = true
			}
			for _, m := range recs {
				if m.UID != 0 && marked[m.UID] {
					en.IDs = append(en.IDs, m.ID)
				}
			}
			remark, err = tx.AddJournal(en)
			return err
		}); err != nil {
			return nil, err
		}
		if _, err := r.cn.store(mailbox, others, imap.StoreFlagsDel, []imap.Flag{imap.FlagDeleted}); err != nil {
			return nil, err
		}
	}
	if err := r.cn.plainExpunge(mailbox); err != nil {
		return nil, err
	}
	if len(others) > 0 {
		if _, err := r.cn.store(mailbox, others, imap.StoreFlagsAdd, []imap.Flag{imap.FlagDeleted}); err != nil {
			return nil, err
		}
		if err := r.update(func(tx Tx) error { return tx.DeleteJournal(remark) }); err != nil {
			return nil, err
		}
	}
	still, err := r.cn.search(mailbox, &imap.SearchCriteria{UID: []imap.UIDSet{uidSet(uids)}})
	if err != nil {
		return nil, err
	}
	out := make([]uint32, len(still))
	for i, u := range still {
		out[i] = uint32(u)
	}
	return out, nil
}

// pushMoves moves messages from mailbox to dest. The entries are marked in flight with
// dest's UIDNEXT first, so that after a crash the engine looks for them there before moving
// again. Without COPYUID the messages are looked up in dest by Message-ID and content.
func (r *round) pushMoves(mailbox, dest string, entries []JournalEntry, recs map[LocalID]MessageRecord) error {
	destBox, ok, err := r.mailbox(dest)
	if err != nil {
		return err
	}
	if !ok || destBox.State != MailboxSynced {
		return nil // created first, or gone: reconciliation decides
	}
	// Crash recovery: entries in flight may have been moved already.
	var todo []JournalEntry
	var inflight []JournalEntry
	for _, en := range entries {
		if en.State == EntryInFlight {
			inflight = append(inflight, en)
		} else {
			todo = append(todo, en)
		}
	}
	if len(inflight) > 0 {
		var left []uint32
		var echo map[uint32]Flags
		found, err := r.locate(dest, inflight, recs)
		if isGone(err) || err == errSkip {
			return nil // gone, or its UIDs are being re-matched: the scan decides first
		}
		if err != nil {
			return err
		}
		var src []uint32
		for id := range found {
			src = append(src, recs[id].UID)
		}
		if _, err := r.selectForPush(mailbox); err == errSkip {
			// The source's UIDs are unusable (a new UIDVALIDITY) or it is gone. The copies
			// found are moves done; the originals, if still there, are kept as deleted
			// records that the scan matches again and the next push expunges.
			return r.adoptMoved(mailbox, dest, found, inflight, recs, nil, src)
		} else if err != nil {
			return err
		}
		if len(found) > 0 {
			// The copy reached dest; without MOVE the original may still be here: expunge
			// it before recording the new location, or it would come back as new mail.
			if echo, left, err = r.expunge(mailbox, src); err != nil {
				return err
			}
		}
		if err := r.adoptMoved(mailbox, dest, found, inflight, recs, echo, left); err != nil {
			return err
		}
		for _, en := range inflight {
			if _, ok := found[en.Message]; !ok {
				if m := recs[en.Message]; m.MoveTo != dest {
					// The user moved it on meanwhile: the next push goes there.
					if err := r.retarget(m); err != nil {
						return err
					}
					continue
				}
				todo = append(todo, en)
			}
		}
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
	var uids []uint32
	for _, en := range todo {
		uids = append(uids, recs[en.Message].UID)
	}
	set := uidSet(uids)
	mapped := map[uint32]uint32{}
	var validity uint32
	var left []uint32         // originals the expunge could not remove
	var echo map[uint32]Flags // the originals' flags just before the expunge
	var moved *imapclient.MoveData
	if r.cn.has(imap.CapMove) {
		data, err := r.cn.move(mailbox, set, dest)
		if isGone(err) {
			return r.dropMoves(todo, err)
		}
		if isBad(err) && !r.cn.has(imap.CapMove) {
			// The server stopped offering MOVE on this connection: nothing was moved.
			r.e.log.Warn("UID MOVE refused and MOVE no longer offered; moving with COPY", "mailbox", mailbox, "err", err)
		} else if err != nil {
			return err
		}
		moved = data
	}
	if data := moved; data != nil {
		validity = data.UIDValidity
		if src, ok := data.SourceUIDs.(imap.UIDSet); ok {
			if dst, ok := data.DestUIDs.(imap.UIDSet); ok {
				pairUIDs(src, dst, mapped)
			}
		}
	} else {
		data, err := r.cn.copy(mailbox, set, dest)
		if isGone(err) {
			return r.dropMoves(todo, err)
		}
		if err != nil {
			return err
		}
		validity = data.UIDValidity
		pairUIDs(data.SourceUIDs, data.DestUIDs, mapped)
		if echo, left, err = r.expunge(mailbox, uids); err != nil {
			return err
		}
	}
	found := map[LocalID]uint32{}
	var missing []JournalEntry
	for _, en := range todo {
		if nu, ok := mapped[recs[en.Message].UID]; ok && validity == st.UIDValidity {
			found[en.Message] = nu
		} else {
			missing = append(missing, en)
		}
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
				} else if e, ok := echo[recs[en.Message].UID]; ok {
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
	return r.adoptMoved(mailbox, dest, found, todo, recs, echo, left)
}

func pairUIDs(src, dst imap.UIDSet, out map[uint32]uint32) {
	s, ok1 := src.Nums()
	d, ok2 := dst.Nums()
	if !ok1 || !ok2 || len(s) != len(d) {
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

// pushAppends uploads new messages to mailbox. Each is marked in flight with the mailbox's
// UIDNEXT before its APPEND; entries found in flight (a crash) are first looked for from
// that UID on.
func (r *round) pushAppends(mailbox string, entries []JournalEntry) error {
	mb, ok, err := r.mailbox(mailbox)
	if err != nil {
		return err
	}
	if !ok || mb.State != MailboxSynced {
		return nil
	}
	recs := map[LocalID]MessageRecord{}
	if err := r.view(func(tx Tx) error {
		for _, en := range entries {
			m, ok, err := tx.Message(en.Message)
			if err != nil {
				return err
			}
			if ok && m.UID == 0 && m.Mailbox == mailbox && (m.State == MsgNew || m.State == MsgDeleted) {
				recs[m.ID] = m
			}
		}
		return nil
	}); err != nil {
		return err
	}
	var todo, inflight []JournalEntry
	for _, en := range entries {
		if _, ok := recs[en.Message]; !ok {
			if err := r.update(func(tx Tx) error { return tx.DeleteJournal(en.Seq) }); err != nil {
				return err
			}
			continue
		}
		if en.State == EntryInFlight {
			inflight = append(inflight, en)
		} else {
			todo = append(todo, en)
		}
	}
	if len(inflight) > 0 {
		found, err := r.locate(mailbox, r.quirkInFlight(inflight), recs)
		if isGone(err) || err == errSkip {
			return nil // gone, or its UIDs are being re-matched: the scan decides first
		}
		if err != nil {
			return err
		}
		if err := r.adoptAppended(mailbox, found, inflight); err != nil {
			return err
		}
		for _, en := range inflight {
			if _, ok := found[en.Message]; ok {
				continue
			}
			if recs[en.Message].State == MsgDeleted {
				// Deleted by the user and never reached the server: forget it.
				if err := r.update(func(tx Tx) error {
					if err := dropEntries(tx, en.Message); err != nil {
						return err
					}
					return tx.DeleteMessage(en.Message)
				}); err != nil {
					return err
				}
				continue
			}
			todo = append(todo, en)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	st, err := r.quirkMark()(mailbox, todo)
	if st == nil || err != nil {
		return err
	}
	for _, en := range todo {
		m := recs[en.Message]
		if en.Source != 0 {
			done, err := r.pushCopy(mailbox, en, m, st)
			if err != nil {
				return err
			}
			if done {
				continue
			}
		}
		var body []byte
		if err := r.view(func(tx Tx) error {
			b, err := tx.Body(m.ID)
			body = append([]byte(nil), b...)
			return err
		}); err != nil {
			return err
		}
		var flags []imap.Flag
		for _, f := range m.Flags.Names() {
			flags = append(flags, imap.Flag(f))
		}
		data, err := r.cn.append(mailbox, body, flags, time.Unix(m.InternalDate, 0))
		if isGone(err) {
			return nil // the mailbox left the server: the reconciliation of mailboxes decides
		}
		if err != nil {
			return err
		}
		r.st.Uploaded++
		found := map[LocalID]uint32{}
		if data.UID != 0 && data.UIDValidity == st.UIDValidity {
			found[m.ID] = uint32(data.UID)
		} else {
			more, err := r.locate(mailbox, []JournalEntry{en}, recs)
			if err == errSkip {
				continue // stays in flight: the scan finds it
			}
			if err != nil {
				return err
			}
			found = more
		}
		if err := r.adoptAppended(mailbox, found, []JournalEntry{en}); err != nil {
			return err
		}
	}
	return nil
}

// adoptAppended records the UIDs of appended messages (found: local id → UID).
func (r *round) adoptAppended(mailbox string, found map[LocalID]uint32, entries []JournalEntry) error {
	if len(found) == 0 {
		return nil
	}
	return r.update(func(tx Tx) error {
		for _, en := range entries {
			u, ok := found[en.Message]
			if !ok {
				continue
			}
			if err := pinValidity(tx, mailbox, en.UIDValidity); err != nil {
				return err
			}
			m, ok, err := tx.Message(en.Message)
			if err != nil {
				return err
			}
			if ok {
				m.UID, m.EverUID = u, true
				if m.State == MsgNew {
					m.State = MsgSynced
				}
				f, known := r.located[m.ID]
				switch {
				case en.Source != 0 && known:
					// A copy made on the server has the source's flags there: merge them
					// against the flags it had when the user copied it.
					m.Flags, m.Base = merge3(m.Flags, m.Base, f), f
				case en.Source != 0:
					// Flags unknown yet: the scan merges them against the copy-time flags.
				case known:
					// Found after a crash: the server has the flags of the first APPEND.
					m.Base = f
				default:
					m.Base = m.Flags
				}
				if err := tx.PutMessage(m); err != nil {
					return err
				}
				if err := journalFlags(tx, m); err != nil {
					return err
				}
			}
			if err := tx.DeleteJournal(en.Seq); err != nil {
				return err
			}
		}
		return nil
	})
}

// pushFlags replays flag changes: per mailbox, +FLAGS for what the user added and -FLAGS
// for what they removed since the last agreed flags, never the whole set.
func (r *round) pushFlags() error {
	j, err := r.journal()
	if err != nil {
		return err
	}
	byBox := map[string][]MessageRecord{}
	entryOf := map[LocalID][]JournalEntry{}
	// A copy takes its source's flags on the server when it is made: the source's own
	// later changes wait until its copies are made.
	copying := map[LocalID]bool{}
	for _, en := range j {
		if en.Op == OpAppend && en.Source != 0 && en.State == EntryPending {
			copying[en.Source] = true
		}
	}
	if err := r.view(func(tx Tx) error {
		for _, en := range j {
			if en.Op != OpFlags || copying[en.Message] {
				continue
			}
			m, ok, err := tx.Message(en.Message)
			if err != nil {
				return err
			}
			if !ok || m.State != MsgSynced || m.UID == 0 {
				continue
			}
			if _, dup := entryOf[m.ID]; !dup {
				byBox[m.Mailbox] = append(byBox[m.Mailbox], m)
			}
			entryOf[m.ID] = append(entryOf[m.ID], en)
		}
		return nil
	}); err != nil {
		return err
	}
	boxes := make([]string, 0, len(byBox))
	for b := range byBox {
		boxes = append(boxes, b)
	}
	sort.Strings(boxes)
	for _, box := range boxes {
		if _, err := r.selectForPush(box); err == errSkip {
			continue
		} else if err != nil {
			return err
		}
		got := map[uint32]Flags{}
		unconfirmed := map[uint32]bool{} // a STORE did not show its change on these
		type change struct {
			op    imap.StoreFlagsOp
			flags Flags
		}
		groups := map[change][]uint32{}
		var order []change
		add := func(c change, uid uint32) {
			if _, ok := groups[c]; !ok {
				order = append(order, c)
			}
			groups[c] = append(groups[c], uid)
		}
		idle := map[LocalID]bool{} // nothing to write
		for _, m := range byBox[box] {
			if r.e.opts.Quirks.Has(QuirkWholeFlagSet) {
				if !m.Flags.Equal(m.Base) {
					add(change{imap.StoreFlagsSet, m.Flags}, m.UID)
				} else {
					idle[m.ID] = true
				}
				continue
			}
			var touched Flags
			for _, en := range entryOf[m.ID] {
				touched = touched.Union(en.Touched)
			}
			a := m.Flags.Minus(m.Base).Union(touched.Intersect(m.Flags))
			d := m.Base.Minus(m.Flags).Union(touched.Minus(m.Flags))
			if !a.IsZero() {
				add(change{imap.StoreFlagsAdd, a}, m.UID)
			}
			if !d.IsZero() {
				add(change{imap.StoreFlagsDel, d}, m.UID)
			}
			idle[m.ID] = a.IsZero() && d.IsZero()
		}
		for _, c := range order {
			var fl []imap.Flag
			for _, n := range c.flags.Names() {
				fl = append(fl, imap.Flag(n))
			}
			res, err := r.cn.store(box, uidSet(groups[c]), c.op, fl)
			if isNo(err, "", "EXPUNGEISSUE") {
				// RFC 3501 §6.4.8: UID STORE ignores UIDs that are gone, yet some servers
				// refuse a set whose messages were all expunged ("NO No messages
				// matched"). The write stays in the journal and the scan decides: a
				// message gone is expunged (delete beats flag), one still there is
				// written again next round. A refusal with another code (UNAVAILABLE…)
				// fails the round as before.
				r.e.log.Info("server refused UID STORE; the scan decides", "mailbox", box, "err", err)
				for _, u := range groups[c] {
					unconfirmed[u] = true
				}
				continue
			}
			if err != nil {
				return err
			}
			for _, u := range groups[c] {
				if f, ok := res[imap.UID(u)]; ok {
					got[u] = f
				} else {
					unconfirmed[u] = true
				}
			}
		}
		if err := r.update(func(tx Tx) error {
			for _, old := range byBox[box] {
				m, ok, err := tx.Message(old.ID)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				if idle[old.ID] {
					// Nothing to write: done.
				} else if s, ok := got[m.UID]; ok && !unconfirmed[m.UID] {
					wrote := m.Flags.Minus(m.Base).Union(m.Base.Minus(m.Flags))
					for _, en := range entryOf[m.ID] {
						wrote = wrote.Union(en.Touched)
					}
					if s.System&FlagDeleted != 0 && m.Flags.System&FlagDeleted == 0 && !r.cn.has(imap.CapMove) {
						// Marked \Deleted by another device: on a server without MOVE, a
						// move may be between its COPY and its EXPUNGE. Keep the write for
						// the copy. (With MOVE a move has no such window.)
						if err := addCarry(tx, m, wrote); err != nil {
							return err
						}
					}
					// The server's flags, in the user's spelling where the server
					// keeps another (keywords are compared without case).
					nf := s.SpelledAs(m.Flags)
					if !nf.Equal(m.Flags) {
						r.st.LocalChanges++
					}
					m.Flags, m.Base = nf, s
					if err := tx.PutMessage(m); err != nil {
						return err
					}
				} else if len(order) > 0 {
					continue // the message left its mailbox: the scan decides
				}
				for _, en := range entryOf[m.ID] {
					if err := tx.DeleteJournal(en.Seq); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func flagStrings(fl []imap.Flag) []string {
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = string(f)
	}
	return out
}

// pushCopy makes a local copy on the server with UID COPY from its source, so that the copy
// gets the flags the source has there by then. It reports false when the copy has to be
// uploaded instead (its source was never on the server, or the user deleted it locally).
// A copy whose source is not under its UID waits for the scan to find the source again; a
// source gone for good takes the copy with it.
func (r *round) pushCopy(dest string, en JournalEntry, m MessageRecord, st *imap.StatusData) (bool, error) {
	src, ok, err := r.message(en.Source)
	if err != nil {
		return false, err
	}
	if !ok {
		r.e.log.Info("copy source gone from the server; copy dropped", "mailbox", dest, "label", m.Label)
		r.st.Conflicts++
		r.st.LocalChanges++
		return true, r.update(func(tx Tx) error {
			if err := dropEntries(tx, m.ID); err != nil {
				return err
			}
			return tx.DeleteMessage(m.ID)
		})
	}
	if src.State != MsgSynced || src.UID == 0 {
		return false, nil
	}
	wait := func() (bool, error) {
		return true, r.update(func(tx Tx) error {
			en.State, en.UIDNext, en.UIDValidity = EntryPending, 0, 0
			return tx.PutJournal(en)
		})
	}
	if _, err := r.selectForPush(src.Mailbox); err == errSkip {
		return wait()
	} else if err != nil {
		return false, err
	}
	data, err := r.cn.copy(src.Mailbox, uidSet([]uint32{src.UID}), dest)
	if isGone(err) {
		return wait()
	}
	if err != nil {
		return false, err
	}
	found := map[LocalID]uint32{}
	mapped := map[uint32]uint32{}
	pairUIDs(data.SourceUIDs, data.DestUIDs, mapped)
	if u, ok := mapped[src.UID]; ok && data.UIDValidity == st.UIDValidity {
		found[m.ID] = u
	} else {
		more, err := r.locate(dest, []JournalEntry{en}, map[LocalID]MessageRecord{m.ID: m})
		if err == errSkip {
			return true, nil // stays in flight: the scan finds it
		}
		if err != nil {
			return false, err
		}
		found = more
	}
	if len(found) == 0 {
		return wait()
	}
	return true, r.adoptAppended(dest, found, []JournalEntry{en})
}

// markInFlight records todo as in flight, with the UIDNEXT and UIDVALIDITY mailbox has now,
// before the commands go out: after a crash, the engine looks for their results from that
// UID on. It returns the mailbox's status, or nil and no error when the mailbox is gone
// from the server.
func (r *round) markInFlight(mailbox string, todo []JournalEntry) (*imap.StatusData, error) {
	st, err := r.cn.status(mailbox)
	if isGone(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := r.update(func(tx Tx) error {
		for i := range todo {
			todo[i].State, todo[i].UIDNext, todo[i].UIDValidity = EntryInFlight, uint32(st.UIDNext), st.UIDValidity
			if err := tx.PutJournal(todo[i]); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return st, nil
}

// staleUIDs reports whether the local records of mailbox hold UIDs of another UIDVALIDITY
// than validity, the server's: until the scan has matched them again, nothing may be
// looked up or added there by UID.
func (r *round) staleUIDs(mailbox string, validity uint32) (bool, error) {
	if r.e.opts.Quirks.Has(QuirkPairByUID) {
		return false, nil
	}
	mb, ok, err := r.mailbox(mailbox)
	if err != nil || !ok {
		return false, err
	}
	if mb.UIDValidity != 0 && mb.UIDValidity != validity {
		r.blocked[mailbox] = true
		return true, nil
	}
	return false, nil
}

// message reads the local record of a message.
func (r *round) message(id LocalID) (m MessageRecord, ok bool, err error) {
	err = r.view(func(tx Tx) error {
		m, ok, err = tx.Message(id)
		return err
	})
	return m, ok, err
}

// mailbox reads the local record of a mailbox.
func (r *round) mailbox(name string) (mb MailboxRecord, ok bool, err error) {
	err = r.view(func(tx Tx) error {
		mb, ok, err = tx.Mailbox(name)
		return err
	})
	return mb, ok, err
}
