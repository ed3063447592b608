package engine

import (
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
)

// A UID names one message for as long as the UIDVALIDITY stays (RFC 3501 §2.3.1.1). A
// server that gives a known UID to other content breaks that, and adopting its answer would
// show the new message under the old one's text, or push the old one's flags, moves and
// deletes onto it. The flag scan asks each known message's RFC822.SIZE along with its FLAGS
// (with CONDSTORE, where only changed messages answer, its INTERNALDATE too: neither changes
// while a message lives) and compares them with the record; where they differ the body is
// fetched: other content fails the round, naming the mailbox, the UID and what differed,
// and nothing of the mailbox is adopted. Other content of the same size under a UID stays
// unseen on a server without CONDSTORE (the dates of a full scan cost too much to parse). A
// UID the engine never knew (one expunged before this replica saw it) is a new message to
// it, whatever the server did with the number before.

// noteIdentity compares what the flag scan said of UID uid (size and internal date, 0 when
// not asked) with the record the plan knows under it, and remembers a UID that differs.
func (p *scanPlan) noteIdentity(uid, size uint32, date int64) {
	i, ok := p.known.get(uid)
	if !ok {
		return
	}
	m := p.recs[i]
	if (size != 0 && m.Size != 0 && size != m.Size) || (date != 0 && m.InternalDate != 0 && date != m.InternalDate) {
		p.suspects = append(p.suspects, uid)
	}
}

// checkReused fetches the bodies of the plan's suspects (known UIDs whose size or internal
// date differ from their records) and fails with errBadAnswer on the first whose content is
// not the record's. One with the record's content only had its size or date recorded from
// the local copy (a server that ends lines otherwise, or dates an APPEND itself): the
// record takes the server's values, so the next round has nothing to fetch.
func (r *round) checkReused(p *scanPlan) error {
	if len(p.suspects) == 0 {
		return nil
	}
	name := p.mb.Name
	var set imap.UIDSet
	for _, u := range p.suspects {
		set.AddNum(imap.UID(u))
	}
	bufs, err := r.cn.fetch(name, set, &imap.FetchOptions{RFC822Size: true, InternalDate: true,
		BodySection: []*imap.FetchItemBodySection{bodySection}})
	if err != nil {
		return err
	}
	var fixed []MessageRecord
	answered := make(map[uint32]bool, len(bufs))
	for _, b := range bufs {
		i, ok := p.known.get(uint32(b.UID))
		if !ok {
			continue
		}
		answered[uint32(b.UID)] = true
		m := p.recs[i]
		body := b.FindBodySection(bodySection)
		if body == nil {
			return fail("UID FETCH", name, fmt.Errorf("%w: no body for UID %d", errBadAnswer, b.UID))
		}
		size, date := uint32(b.RFC822Size), m.InternalDate
		if !b.InternalDate.IsZero() {
			date = b.InternalDate.Unix()
		}
		if contentHash(body) != m.Hash {
			return fail("UID FETCH", name, fmt.Errorf("%w: UID %d under UIDVALIDITY %d holds other content than the "+
				"message the replica has under it (%s): the server re-used the UID (RFC 3501 §2.3.1.1)",
				errBadAnswer, b.UID, p.data.UIDValidity, identityDiff(m, size, date)))
		}
		m.Size, m.InternalDate = size, date
		p.recs[i] = m
		fixed = append(fixed, m)
	}
	for _, u := range p.suspects {
		if !answered[u] {
			// Listed a moment ago with another size or date than its record, and now not
			// there at all: one of the two answers is wrong (a misread UID looks so).
			return fail("UID FETCH", name, fmt.Errorf("%w: UID %d was listed with another size or date than the replica's, and a fetch of it finds nothing",
				errBadAnswer, u))
		}
	}
	return r.update(func(tx Tx) error {
		for _, m := range fixed {
			if err := tx.PutMessage(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// identityDiff says how a server's size and internal date differ from record m's.
func identityDiff(m MessageRecord, size uint32, date int64) string {
	var s string
	if size != m.Size {
		s = fmt.Sprintf("size %d, was %d", size, m.Size)
	}
	if date != m.InternalDate {
		if s != "" {
			s += "; "
		}
		s += fmt.Sprintf("internal date %s, was %s", time.Unix(date, 0).UTC().Format(time.RFC3339),
			time.Unix(m.InternalDate, 0).UTC().Format(time.RFC3339))
	}
	if s == "" {
		s = "same size and internal date"
	}
	return s
}

// unixOrZero returns t in Unix seconds, or 0 for the zero time (not asked or not sent).
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
