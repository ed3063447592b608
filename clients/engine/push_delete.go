package engine

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
)

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
		en := JournalEntry{Op: OpRemark, Mailbox: mailbox, UIDs: uint32s(nums)}
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
	return uint32s(still), nil
}
