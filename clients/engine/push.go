package engine

import (
	"sort"

	"github.com/emersion/go-imap/v2"
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

// freshUIDs checks the UIDs a server says it gave new messages in mailbox (APPENDUID,
// COPYUID) before records take them: each at or above the UIDNEXT the mailbox had before
// the command (uidNext; 0 when not known), none twice, none held by a record of the
// mailbox. One that fails names another message (one the replica has, or one it has not
// seen yet): a record taking it would hold another message's UID, and every later scan
// would find other content under it. The caller then looks the messages up, as on a
// server without UIDPLUS.
func (r *round) freshUIDs(mailbox string, uidNext uint32, uids []uint32) (bool, error) {
	seen := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		if u == 0 || u < uidNext || seen[u] {
			r.e.log.Warn("the server gave a new message a UID it cannot have; looking the message up", "mailbox", mailbox, "uid", u, "uidnext", uidNext)
			return false, nil
		}
		seen[u] = true
	}
	held := false
	err := r.view(func(tx Tx) error {
		for _, u := range uids {
			recs, err := tx.MessagesByUID(mailbox, u)
			if err != nil {
				return err
			}
			held = held || len(recs) > 0
		}
		return nil
	})
	if held {
		r.e.log.Warn("the server gave a new message a UID a record holds; looking the message up", "mailbox", mailbox, "uids", uids)
	}
	return !held, err
}

// lookFrom is where to look for a new message whose UID the server's answers contradict:
// from the UIDNEXT before the command, or from the UID the server gave it if that is lower
// (either answer may be the wrong one; 0 is no UID).
func lookFrom(uidNext, claimed uint32) uint32 {
	if claimed != 0 && claimed < uidNext {
		return claimed
	}
	return uidNext
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
