package engine

import (
	"maps"
	"slices"
	"sort"
)

// The second pass of the scan (scanAll, scan.go), one mailbox at a time: the new messages
// matched with what the replica had, then everything committed in one transaction.

// commitScan matches a mailbox's new messages (in-flight appends, orphans of a UIDVALIDITY
// change, messages vanished anywhere this round), downloads the rest and commits, data
// first and the watermarks in the same transaction.
// Its steps: matchNew, then in one transaction commitFlags, commitAppended, the moves in
// flight (adoptMoveIn), commitOrphans, commitMoved, commitCreated and commitWatermarks.
func (r *round) commitScan(p *scanPlan) error {
	defer r.dropStaged(p.msgs) // bodies fetched for messages that no record took
	pairs, err := r.matchNew(p)
	if err != nil {
		return err
	}
	if p.idle() {
		return nil
	}
	return r.update(func(tx Tx) error {
		if err := r.commitFlags(tx, p); err != nil {
			return err
		}
		if err := r.commitAppended(tx, p, pairs.inflight); err != nil {
			return err
		}
		for _, id := range slices.Sorted(maps.Keys(pairs.movesIn)) {
			if err := r.adoptMoveIn(tx, id, p.mb.Name, pairs.movesIn[id]); err != nil {
				return err
			}
		}
		if err := r.commitOrphans(tx, p, pairs.orphans); err != nil {
			return err
		}
		if err := r.commitMoved(tx, p, pairs.moved); err != nil {
			return err
		}
		if err := r.commitCreated(tx, p); err != nil {
			return err
		}
		return r.commitWatermarks(tx, p)
	})
}

// newPairs are the records that the new messages of a mailbox turned out to be, by kind
// of record: appends in flight, moves in flight into it, orphans of a UIDVALIDITY change,
// and records vanished elsewhere this round (moved by another client).
type newPairs struct {
	inflight, movesIn, orphans, moved map[LocalID]*serverMsg
}

// matchNew pairs p's new messages with the records they may be: by (Message-ID, size)
// from their headers, confirmed by content, then by content alone; the bodies it needs are
// fetched (and staged in the store, fetchBodies).
func (r *round) matchNew(p *scanPlan) (newPairs, error) {
	pairs := newPairs{inflight: map[LocalID]*serverMsg{}, movesIn: map[LocalID]*serverMsg{},
		orphans: map[LocalID]*serverMsg{}, moved: map[LocalID]*serverMsg{}}
	if len(p.msgs) == 0 || !p.headersOnly {
		return pairs, nil
	}
	vanishedRecs := r.vanishedElsewhere(p)
	eligible := func(from uint32) []*serverMsg {
		var out []*serverMsg
		for _, s := range p.msgs {
			if s.uid >= from {
				out = append(out, s)
			}
		}
		return out
	}
	for _, m := range p.inflight {
		maps.Copy(pairs.inflight, pairByID([]MessageRecord{m}, eligible(p.inflightFrom[m.ID])))
	}
	for _, m := range p.movesIn {
		maps.Copy(pairs.movesIn, pairByID([]MessageRecord{m}, eligible(p.inflightFrom[m.ID])))
	}
	maps.Copy(pairs.orphans, pairByID(p.orphans, p.msgs))
	// A record deleted here this round only matches a message still marked \Deleted.
	var marked, unmarked []MessageRecord
	for _, m := range vanishedRecs {
		if r.marked[m.ID] {
			marked = append(marked, m)
		} else {
			unmarked = append(unmarked, m)
		}
	}
	var deletedMsgs []*serverMsg
	for _, s := range p.msgs {
		if s.flags.System&FlagDeleted != 0 {
			deletedMsgs = append(deletedMsgs, s)
		}
	}
	vanishedRecs = unmarked
	maps.Copy(pairs.moved, pairByID(marked, deletedMsgs))
	maps.Copy(pairs.moved, pairByID(vanishedRecs, p.msgs))
	// A pair by (Message-ID, size) stands once its content is confirmed: a draft saved
	// again keeps both, with other bytes.
	groups := [][]MessageRecord{p.inflight, p.movesIn, p.orphans, marked, vanishedRecs}
	groupPairs := []map[LocalID]*serverMsg{pairs.inflight, pairs.movesIn, pairs.orphans, pairs.moved, pairs.moved}
	var rest []*serverMsg
	for i, g := range groups {
		rest = append(rest, unconfirmed(g, groupPairs[i])...)
	}
	for _, s := range p.msgs {
		if !s.taken {
			rest = append(rest, s)
		}
	}
	if len(rest) > 0 {
		if _, err := r.cn.selectBox(p.mb.Name); err != nil {
			return pairs, err
		}
		if err := r.fetchBodies(p.mb.Name, rest); err != nil {
			return pairs, err
		}
	}
	for i, g := range groups {
		dropMismatched(g, groupPairs[i])
	}
	for _, m := range p.inflight {
		if _, ok := pairs.inflight[m.ID]; !ok {
			pairByHash([]MessageRecord{m}, eligible(p.inflightFrom[m.ID]), pairs.inflight)
		}
	}
	for _, m := range p.movesIn {
		if _, ok := pairs.movesIn[m.ID]; !ok {
			pairByHash([]MessageRecord{m}, eligible(p.inflightFrom[m.ID]), pairs.movesIn)
		}
	}
	pairByHash(p.orphans, p.msgs, pairs.orphans)
	pairByHash(marked, deletedMsgs, pairs.moved)
	pairByHash(vanishedRecs, p.msgs, pairs.moved)
	return pairs, nil
}

// vanishedElsewhere returns, by local id, the records of the vanished pool that are not
// p's own orphans, and the quarantined records the scan came across.
func (r *round) vanishedElsewhere(p *scanPlan) []MessageRecord {
	own := map[LocalID]bool{}
	for _, m := range p.orphans {
		own[m.ID] = true
	}
	var out []MessageRecord
	for _, m := range r.vanished {
		if !own[m.ID] {
			out = append(out, m)
		}
	}
	for _, m := range r.quarantined {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// commitFlags merges the flags the server changed into the records of p's known messages.
func (r *round) commitFlags(tx Tx, p *scanPlan) error {
	mj, err := readMsgJournal(tx)
	if err != nil {
		return err
	}
	for _, i := range p.known.all() {
		m := p.recs[i]
		if !p.has(m.UID) {
			continue // in the vanished pool
		}
		s, ok := p.serverFlags.get(m.UID)
		if !ok || s.Equal(m.Base) {
			continue
		}
		// The commit of another mailbox this round may have changed the record (a move
		// in flight finished there): read it again.
		cur, ok, err := tx.Message(m.ID)
		if err != nil {
			return err
		}
		if !ok || cur.Mailbox != m.Mailbox || cur.UID != m.UID {
			continue
		}
		if err := r.mergeFlags(tx, cur, s, mj); err != nil {
			return err
		}
	}
	return nil
}

// commitAppended gives the appends in flight that arrived their UIDs.
func (r *round) commitAppended(tx Tx, p *scanPlan, pairs map[LocalID]*serverMsg) error {
	for _, id := range slices.Sorted(maps.Keys(pairs)) {
		s := pairs[id]
		m, ok, err := tx.Message(id)
		if err != nil {
			return err
		}
		if !ok {
			continue // gone meanwhile: the pairs after it still commit
		}
		if p.copies[id] {
			m.Flags = merge3(m.Flags, m.Base, s.flags)
		}
		m.UID, m.EverUID, m.Base = s.uid, true, s.flags
		if m.State == MsgNew {
			m.State = MsgSynced
		}
		if err := tx.PutMessage(m); err != nil {
			return err
		}
		if err := journalFlags(tx, m); err != nil {
			return err
		}
		if err := dropEntries(tx, id, OpAppend); err != nil {
			return err
		}
	}
	return nil
}

// commitOrphans gives the orphans of a UIDVALIDITY change found again their new UIDs; one
// whose move in flight finished in its destination is the original here, to expunge.
func (r *round) commitOrphans(tx Tx, p *scanPlan, pairs map[LocalID]*serverMsg) error {
	name := p.mb.Name
	for _, id := range slices.Sorted(maps.Keys(pairs)) {
		s := pairs[id]
		if r.movedOut[id] {
			m, ok, err := tx.Message(id)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			m.Mailbox, m.UID = name, s.uid
			if err := keepToExpunge(tx, name, m); err != nil {
				return err
			}
			continue
		}
		if r.adoptedElsewhere(p, id, s) {
			continue
		}
		if err := r.adopt(tx, id, name, s, false); err != nil {
			return err
		}
		delete(r.vanished, id)
	}
	return nil
}

// commitMoved adopts the records that vanished elsewhere (or were quarantined) and turned
// up here: someone moved them.
func (r *round) commitMoved(tx Tx, p *scanPlan, pairs map[LocalID]*serverMsg) error {
	name := p.mb.Name
	for _, id := range slices.Sorted(maps.Keys(pairs)) {
		s := pairs[id]
		if r.adoptedElsewhere(p, id, s) {
			continue
		}
		v, ok := r.vanished[id]
		if !ok {
			v = r.quarantined[id]
			delete(r.quarantined, id)
		}
		if err := r.adopt(tx, id, name, s, v.Mailbox != name || v.State == MsgQuarantined); err != nil {
			return err
		}
		delete(r.vanished, id)
	}
	return nil
}

// adoptedElsewhere reports whether the record id, paired with s in p's mailbox, was
// adopted by the commit of another mailbox earlier in the round (it left the vanished
// pool): a record found in two places (an orphan of a UIDVALIDITY change whose content
// another mailbox holds too) goes to the first, and s is then a message of its own:
// commitCreated makes its record, or, where its body was not fetched, the next round
// (the UIDNEXT committed stops below it). Adopted again, the record left the first
// mailbox's message without one, under a UIDNEXT already committed: the next round
// found it "late" and held every record found nowhere.
func (r *round) adoptedElsewhere(p *scanPlan, id LocalID, s *serverMsg) bool {
	_, vanished := r.vanished[id]
	_, quarantined := r.quarantined[id]
	if vanished || quarantined {
		return false
	}
	s.taken = false
	if !s.hashed && (p.leftFrom == 0 || s.uid < p.leftFrom) {
		p.leftFrom = s.uid
	}
	return true
}

// commitCreated makes records of the new messages that no record turned out to be.
func (r *round) commitCreated(tx Tx, p *scanPlan) error {
	for _, s := range p.msgs {
		if s.taken || !s.hashed {
			continue
		}
		m, err := r.create(tx, p.mb.Name, s)
		if err != nil {
			return err
		}
		r.created = append(r.created, m)
	}
	return nil
}

// commitWatermarks records the mailbox's UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and
// MAILBOXID as the scan found them, after the data (the same transaction).
func (r *round) commitWatermarks(tx Tx, p *scanPlan) error {
	name := p.mb.Name
	mb := p.mb
	mb.UIDValidity = p.data.UIDValidity
	mb.UIDNext = uint32(p.data.UIDNext)
	mb.HighestModSeq = p.data.HighestModSeq
	if p.leftFrom != 0 && p.leftFrom < mb.UIDNext {
		// A message left for the next round (adoptedElsewhere): new to it, not late.
		mb.UIDNext, mb.HighestModSeq = p.leftFrom, 0
	}
	if p.mailboxID != "" {
		mb.MailboxID = p.mailboxID
	}
	for _, m := range p.orphans {
		if _, left := r.vanished[m.ID]; left {
			// An orphan keeps its old UID until the end of the round settles it: till
			// then the old UIDVALIDITY stays, so that a round cut short matches again.
			mb.UIDValidity = p.mb.UIDValidity
			r.settleValidity[name] = p.data.UIDValidity
			break
		}
	}
	return tx.PutMailbox(mb)
}
