package engine

import (
	"time"

	"github.com/emersion/go-imap/v2"
)

// pushAppends uploads new messages to mailbox. Each is marked in flight with the mailbox's
// UIDNEXT before its APPEND; entries found in flight (a crash) are first looked for from
// that UID on. Its steps: appendWork, resumeAppends, then appendOne per message.
func (r *round) pushAppends(mailbox string, entries []JournalEntry) error {
	mb, ok, err := r.mailbox(mailbox)
	if err != nil {
		return err
	}
	if !ok || mb.State != MailboxSynced {
		return nil
	}
	recs, todo, inflight, err := r.appendWork(mailbox, entries)
	if err != nil {
		return err
	}
	if len(inflight) > 0 {
		again, stop, err := r.resumeAppends(mailbox, inflight, recs)
		if err != nil || stop {
			return err
		}
		todo = append(todo, again...)
	}
	if len(todo) == 0 {
		return nil
	}
	st, err := r.quirkMark()(mailbox, todo)
	if st == nil || err != nil {
		return err
	}
	for _, en := range todo {
		if stop, err := r.appendOne(mailbox, en, recs, st); err != nil || stop {
			return err
		}
	}
	return nil
}

// appendWork reads the records of entries still to upload into mailbox, drops the
// entries whose message is no longer one, and splits the rest into those to send and those
// in flight.
func (r *round) appendWork(mailbox string, entries []JournalEntry) (recs map[LocalID]MessageRecord, todo, inflight []JournalEntry, err error) {
	recs = map[LocalID]MessageRecord{}
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
		return nil, nil, nil, err
	}
	for _, en := range entries {
		if _, ok := recs[en.Message]; !ok {
			if err := r.update(func(tx Tx) error { return tx.DeleteJournal(en.Seq) }); err != nil {
				return nil, nil, nil, err
			}
			continue
		}
		if en.State == EntryInFlight {
			inflight = append(inflight, en)
		} else {
			todo = append(todo, en)
		}
	}
	return recs, todo, inflight, nil
}

// resumeAppends settles the appends a crash (or a lost answer) left in flight: those found
// in the mailbox are done, one the user deleted meanwhile is forgotten, the others are
// returned to be sent again. stop says the push of these appends ends here.
func (r *round) resumeAppends(mailbox string, inflight []JournalEntry, recs map[LocalID]MessageRecord) (again []JournalEntry, stop bool, err error) {
	found, err := r.locate(mailbox, r.quirkInFlight(inflight), recs)
	if isGone(err) || err == errSkip {
		return nil, true, nil // gone, or its UIDs are being re-matched: the scan decides first
	}
	if err != nil {
		return nil, true, err
	}
	if err := r.adoptAppended(mailbox, found, inflight); err != nil {
		return nil, true, err
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
				return nil, true, err
			}
			continue
		}
		again = append(again, en)
	}
	return again, false, nil
}

// appendOne uploads one message (a local copy of a message on the server by UID COPY,
// pushCopy) and records its UID, by APPENDUID or looked up. stop says the mailbox left the
// server: the reconciliation of mailboxes decides.
func (r *round) appendOne(mailbox string, en JournalEntry, recs map[LocalID]MessageRecord, st *imap.StatusData) (stop bool, err error) {
	m := recs[en.Message]
	if en.Source != 0 {
		done, err := r.pushCopy(mailbox, en, m, st)
		if err != nil || done {
			return false, err
		}
	}
	var body []byte
	if err := r.view(func(tx Tx) error {
		b, err := tx.Body(m.ID)
		body = append([]byte(nil), b...)
		return err
	}); err != nil {
		return false, err
	}
	var flags []imap.Flag
	for _, f := range m.Flags.Names() {
		flags = append(flags, imap.Flag(f))
	}
	data, err := r.cn.append(mailbox, body, flags, time.Unix(m.InternalDate, 0))
	if isGone(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	r.st.Uploaded++
	found := map[LocalID]uint32{}
	fresh := data.UID != 0 && data.UIDValidity == st.UIDValidity
	if fresh {
		if fresh, err = r.freshUIDs(mailbox, uint32(st.UIDNext), []uint32{uint32(data.UID)}); err != nil {
			return false, err
		}
	}
	if fresh {
		found[m.ID] = uint32(data.UID)
	} else {
		en.UIDNext = lookFrom(en.UIDNext, uint32(data.UID))
		more, err := r.locate(mailbox, []JournalEntry{en}, recs)
		if err == errSkip {
			return false, nil // stays in flight: the scan finds it
		}
		if err != nil {
			return false, err
		}
		found = more
	}
	return false, r.adoptAppended(mailbox, found, []JournalEntry{en})
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
	pairUIDs(data.SourceUIDs, data.DestUIDs, 1, mapped)
	u, fresh := mapped[src.UID]
	if fresh = fresh && data.UIDValidity == st.UIDValidity; fresh {
		if fresh, err = r.freshUIDs(dest, uint32(st.UIDNext), []uint32{u}); err != nil {
			return false, err
		}
	}
	if fresh {
		found[m.ID] = u
	} else {
		en.UIDNext = lookFrom(en.UIDNext, u)
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
