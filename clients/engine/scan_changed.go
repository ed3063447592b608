package engine

import (
	"github.com/emersion/go-imap/v2/imapclient"
)

// changedRecords serves a CONDSTORE mailbox whose UIDVALIDITY, UIDNEXT and message count
// are as last committed while its HIGHESTMODSEQ moved: it asks the flags changed since
// modseq (UID FETCH 1:* CHANGEDSINCE) and reads only the records of the UIDs in the answer,
// through the store's UID index, so a round with 1,000 changed flags reads about 1,000
// records however large the mailbox, and sends no UID SEARCH ALL.
//
// What this relies on: no message came (every new message takes a UID at or above the
// UIDNEXT, which has not moved), so the server's UIDs are a subset of those at the last
// commit, which the replica holds one record each for (the count of records on the
// server, Counts.OnServer); without QRESYNC an expunge is not reported, but it lowers
// the message count, so an equal count means the subset is the whole: nothing was
// expunged. The CHANGEDSINCE answer is short of EXISTS by design, so it is not checked
// against it; a full scan's answer is (fetchFlags, search).
//
// ok is false when a UID in the answer has no single record on the server (a replica that
// does not hold what its counts say): the caller then scans the mailbox in full, with the
// answer already fetched.
func (r *round) changedRecords(mailbox string, modseq uint64) (recs []MessageRecord, bufs []*imapclient.FetchMessageBuffer, ok bool, err error) {
	bufs, err = r.changesSince(mailbox, modseq)
	if err != nil {
		return nil, nil, false, err
	}
	recs = make([]MessageRecord, 0, len(bufs))
	err = r.view(func(tx Tx) error {
		for _, b := range bufs {
			found, err := tx.MessagesByUID(mailbox, uint32(b.UID))
			if err != nil {
				return err
			}
			n := 0
			for _, m := range found {
				if m.State == MsgSynced || m.State == MsgDeleted {
					recs = append(recs, m)
					n++
				}
			}
			if n != 1 {
				r.e.log.Warn("a changed UID has no single record; scanning the mailbox in full", "mailbox", mailbox, "uid", b.UID, "records", n)
				return nil
			}
		}
		ok = true
		return nil
	})
	if err != nil || !ok {
		return nil, bufs, false, err
	}
	return recs, bufs, true, nil
}
