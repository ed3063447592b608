package engine

import "github.com/emersion/go-imap/v2"

// Quirks switches on deliberately wrong behaviour. Each quirk reproduces one bug real sync
// engines have (DESIGN.md §5), so that the harness can prove its checkers catch it. A correct
// engine runs with none.
type Quirks uint32

// The quirks.
const (
	// QuirkPairByUID ignores UIDVALIDITY changes and keeps pairing messages by their old
	// UIDs (F1).
	QuirkPairByUID Quirks = 1 << iota
	// QuirkWholeFlagSet replays flag changes as UID STORE FLAGS with the whole local set:
	// the last writer wins and a concurrent change on the server is lost (F11).
	QuirkWholeFlagSet
	// QuirkPlainExpunge deletes with STORE \Deleted and a plain EXPUNGE, removing other
	// clients' \Deleted messages too (F10).
	QuirkPlainExpunge
	// QuirkWatermarkFirst saves a mailbox's UIDNEXT before the new messages' data, so a
	// round interrupted in between skips those messages for ever (F6).
	QuirkWatermarkFirst
	// QuirkForgetJournalOnCrash loses the journal of offline changes when the device crashes.
	QuirkForgetJournalOnCrash
	// QuirkReupload uploads again the messages that disappeared from the server (F7), also
	// those not found again after a UIDVALIDITY change, instead of quarantining them (F2).
	QuirkReupload
	// QuirkDropOrphans forgets the messages not found again after a UIDVALIDITY change:
	// they vanish from the device unreported instead of being quarantined (F1).
	QuirkDropOrphans
	// QuirkSearchPastInFlight looks for an APPEND found in flight after a crash from the
	// UIDNEXT saved with it plus one, instead of that UIDNEXT: the message the server stored
	// under it, its answer lost, is not found and is appended again (F5).
	QuirkSearchPastInFlight
	// QuirkUnmarkedAppend sends an APPEND before committing its in-flight mark: a crash
	// after the server stored the message, before its answer arrived, leaves the entry
	// pending, and the message is appended again (F5).
	QuirkUnmarkedAppend
	// QuirkSkipDeleted does not download new messages already marked \Deleted, as if they
	// were gone: devices disagree about what the mailbox holds (F17).
	QuirkSkipDeleted
)

// Has reports whether q includes every quirk of o.
func (q Quirks) Has(o Quirks) bool { return q&o == o && o != 0 }

// quirkOrphan applies QuirkReupload or QuirkDropOrphans to a message not found again after
// a UIDVALIDITY change, reporting whether it did (the message is then not quarantined).
func (r *round) quirkOrphan(tx Tx, m MessageRecord) (bool, error) {
	switch {
	case r.e.opts.Quirks.Has(QuirkReupload):
		// Deliberately wrong: push it back up as new mail.
		m.UID, m.State, m.MoveTo = 0, MsgNew, ""
		if err := dropEntries(tx, m.ID); err != nil {
			return true, err
		}
		if err := tx.PutMessage(m); err != nil {
			return true, err
		}
		_, err := tx.AddJournal(JournalEntry{Op: OpAppend, Message: m.ID, Mailbox: m.Mailbox})
		return true, err
	case r.e.opts.Quirks.Has(QuirkDropOrphans):
		// Deliberately wrong: forget it without a word.
		if err := dropEntries(tx, m.ID); err != nil {
			return true, err
		}
		return true, tx.DeleteMessage(m.ID)
	}
	return false, nil
}

// quirkInFlight applies QuirkSearchPastInFlight to the append entries found in flight: the
// copy it returns is what the search for them starts from.
func (r *round) quirkInFlight(inflight []JournalEntry) []JournalEntry {
	if !r.e.opts.Quirks.Has(QuirkSearchPastInFlight) {
		return inflight
	}
	// Deliberately wrong: one past the first UID the APPEND could have been given.
	past := append([]JournalEntry(nil), inflight...)
	for i := range past {
		if past[i].UIDNext != 0 {
			past[i].UIDNext++
		}
	}
	return past
}

// quirkMark applies QuirkUnmarkedAppend: it returns the function that marks appends in
// flight before they are sent.
func (r *round) quirkMark() func(mailbox string, todo []JournalEntry) (*imap.StatusData, error) {
	if !r.e.opts.Quirks.Has(QuirkUnmarkedAppend) {
		return r.markInFlight
	}
	return func(mailbox string, todo []JournalEntry) (*imap.StatusData, error) {
		st, err := r.cn.status(mailbox)
		if isGone(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		// Deliberately wrong: the mark is kept in memory only; the journal still says
		// pending until the answer is recorded.
		for i := range todo {
			todo[i].State, todo[i].UIDNext, todo[i].UIDValidity = EntryInFlight, uint32(st.UIDNext), st.UIDValidity
		}
		return st, nil
	}
}

// quirkNewMail applies QuirkSkipDeleted to the new messages a scan fetched.
func (r *round) quirkNewMail(msgs []*serverMsg) []*serverMsg {
	if !r.e.opts.Quirks.Has(QuirkSkipDeleted) {
		return msgs
	}
	// Deliberately wrong: leave out what is marked \Deleted.
	out := msgs[:0:0]
	for _, s := range msgs {
		if s.flags.System&FlagDeleted == 0 {
			out = append(out, s)
		}
	}
	return out
}
