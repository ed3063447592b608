package engine

import (
	"fmt"
	"iter"
	"slices"
	"sort"

	"github.com/emersion/go-imap/v2"
)

// scanAll pulls every synced mailbox in name order, in two passes: first every mailbox's
// flags, expunges and new messages (headers only), so that a message that vanished from one
// mailbox is known before the new messages of any other are matched; then per mailbox the
// matching, the downloads and the commit.
func (r *round) scanAll() error {
	var boxes []MailboxRecord
	if err := r.view(func(tx Tx) error {
		var err error
		boxes, err = tx.Mailboxes()
		return err
	}); err != nil {
		return err
	}
	// A replica that never scanned a mailbox holds no server message a new one could be.
	r.fresh = true
	for _, mb := range boxes {
		if mb.UIDValidity != 0 {
			r.fresh = false
		}
	}
	var plans []*scanPlan
	for _, mb := range boxes {
		if mb.State != MailboxSynced {
			continue
		}
		p, err := r.prepareScan(mb)
		if err != nil {
			return err
		}
		if p != nil {
			plans = append(plans, p)
		}
		if err := r.ctx.Err(); err != nil {
			return err
		}
	}
	// The mailboxes whose UIDVALIDITY changed commit first: an orphan whose content is in
	// its own mailbox and, copied by another client, in another, is adopted where it was,
	// and the copy gets a record of its own (adoptedElsewhere).
	withOrphans := func(p *scanPlan) int {
		if len(p.orphans) > 0 {
			return 0
		}
		return 1
	}
	slices.SortStableFunc(plans, func(a, b *scanPlan) int { return withOrphans(a) - withOrphans(b) })
	for _, p := range plans {
		if err := r.commitScan(p); err != nil {
			return err
		}
		if err := r.ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// merge3 is the per-flag three-way merge: a flag the server changed since base takes the
// server's value, else the local value stays.
func merge3(local, base, server Flags) Flags {
	return local.Union(server.Minus(base)).Minus(base.Minus(server))
}

// scanPlan is what the first pass learned of one mailbox.
type scanPlan struct {
	mb           MailboxRecord
	data         *imap.SelectData
	mailboxID    string // MAILBOXID the SELECT announced, or ""
	recs         []MessageRecord
	known        uidMap[int] // UID → index in recs, in the current UIDVALIDITY
	present      uidMap[bool]
	serverFlags  uidMap[Flags]
	flagsAll     bool            // serverFlags holds every present UID (present is unused)
	presentKnown bool            // the server has the known UIDs, no more (present is unused)
	orphans      []MessageRecord // had UIDs of an old UIDVALIDITY
	inflight     []MessageRecord // appends in flight into this mailbox
	movesIn      []MessageRecord // moves in flight into this mailbox (the records, still at their source)
	inflightFrom map[LocalID]uint32
	copies       map[LocalID]bool // in-flight appends that are local copies
	msgs         []*serverMsg     // new server messages
	headersOnly  bool
	suspects     []uint32 // known UIDs whose size or internal date differ from the record (checkReused)
	leftFrom     uint32   // the lowest UID adoptedElsewhere left for the next round (0: none)
}

func (p *scanPlan) has(uid uint32) bool {
	switch {
	case p.flagsAll:
		return p.serverFlags.contains(uid)
	case p.presentKnown:
		return p.known.contains(uid)
	}
	return p.present.contains(uid)
}

// presentUIDs yields the UIDs the server has, in ascending order.
func (p *scanPlan) presentUIDs() iter.Seq[uint32] {
	switch {
	case p.flagsAll:
		return p.serverFlags.keys()
	case p.presentKnown:
		return p.known.keys()
	}
	return p.present.keys()
}

// idle reports whether committing p would change nothing at all.
func (p *scanPlan) idle() bool {
	if len(p.msgs) > 0 || len(p.orphans) > 0 || len(p.inflight) > 0 || len(p.movesIn) > 0 {
		return false
	}
	if p.mb.UIDValidity != p.data.UIDValidity || p.mb.UIDNext != uint32(p.data.UIDNext) ||
		p.mb.HighestModSeq != p.data.HighestModSeq {
		return false
	}
	for _, i := range p.known.all() {
		m := p.recs[i]
		s, ok := p.serverFlags.get(m.UID)
		if !ok && !p.has(m.UID) {
			return false
		}
		if ok && !s.Equal(m.Base) {
			return false
		}
	}
	return true
}

// create stores the server message s, downloaded whole, as a new record of mailbox.
func (r *round) create(tx Tx, mailbox string, s *serverMsg) (MessageRecord, error) {
	m, err := storeNew(tx, mailbox, s)
	if err == nil {
		r.st.LocalChanges++
	}
	return m, err
}

// storeNew is create without the round's count.
func storeNew(tx Tx, mailbox string, s *serverMsg) (MessageRecord, error) {
	id, err := tx.NextID()
	if err != nil {
		return MessageRecord{}, err
	}
	m := s.rec
	if s.staged == nil {
		m = newRecord(id, mailbox, s.body)
	}
	m.ID, m.Mailbox = id, mailbox
	m.UID, m.State, m.EverUID = s.uid, MsgSynced, true
	m.InternalDate, m.Flags, m.Base = s.date, s.flags, s.flags
	if err := tx.PutMessage(m); err != nil {
		return MessageRecord{}, err
	}
	if s.staged != nil {
		sp, ok := tx.(StagedPutter)
		if !ok {
			return MessageRecord{}, fmt.Errorf("engine: store: a staged body, but the transaction cannot put one")
		}
		if err := sp.PutStagedBody(id, s.staged); err != nil {
			return MessageRecord{}, err
		}
		s.staged = nil // the transaction's now: synced with it, or removed if it fails
	} else if err := tx.PutBody(id, s.body); err != nil {
		return MessageRecord{}, err
	}
	s.body = nil
	return m, nil
}

func mergeLocal(tx Tx, m MessageRecord, s Flags) (Flags, error) {
	en, ok, err := findEntry(tx, OpFlags, m.ID)
	if err != nil {
		return merge3(m.Flags, m.Base, s), err
	}
	return mergeWith(m, s, en, ok), nil
}

// mergeWith merges server flags s into m against m's base, keeping the flags the user
// touched since (en, m's flags entry, if ok).
func mergeWith(m MessageRecord, s Flags, en JournalEntry, ok bool) Flags {
	nf := merge3(m.Flags, m.Base, s)
	if ok && !en.Touched.IsZero() {
		nf = nf.Minus(en.Touched).Union(m.Flags.Intersect(en.Touched))
	}
	return nf
}

// mergeFlags merges server flags s into m against m's base; mj is the transaction's
// journal by message.
func (r *round) mergeFlags(tx Tx, m MessageRecord, s Flags, mj msgJournal) error {
	if m.State == MsgDeleted {
		m.Base = s
		return tx.PutMessage(m)
	}
	en, ok := mj.find(OpFlags, m.ID)
	nf := mergeWith(m, s, en, ok)
	if !nf.Equal(m.Flags) {
		r.st.LocalChanges++
	}
	m.Flags, m.Base = nf, s
	if err := tx.PutMessage(m); err != nil {
		return err
	}
	if s.System&FlagDeleted == 0 {
		if err := mj.drop(tx, m.ID, OpCarry); err != nil {
			return err // no longer marked \Deleted: nothing to carry
		}
	}
	if nf.Equal(s) {
		return mj.drop(tx, m.ID, OpFlags)
	}
	return nil
}

// adopt gives record id the identity of server message s in mailbox: after a UIDVALIDITY
// change (moved == false) or because another device moved it there (moved == true; the
// first move to reach the server wins). Local flag changes are kept and merged.
func (r *round) adopt(tx Tx, id LocalID, mailbox string, s *serverMsg, moved bool) (err error) {
	m, ok, err := tx.Message(id)
	if err != nil || !ok {
		return err
	}
	before := m.Visible()
	if m.State == MsgQuarantined {
		// Found again: it was moved while its mailbox's UIDVALIDITY changed.
		r.e.log.Info("quarantined message found again", "mailbox", mailbox, "label", m.Label)
		m.State = MsgSynced
	}
	if moved && m.MoveTo != "" && m.MoveTo != mailbox {
		r.st.Conflicts++ // our move lost the race
	}
	if moved {
		m.MoveTo = ""
		defer func() {
			if err == nil {
				err = dropEntries(tx, id, OpCarry)
			}
		}()
		if err := dropEntries(tx, id, OpMove); err != nil {
			return err
		}
	}
	if m.MoveTo == mailbox {
		// Here already, unless a move in flight may have taken it away: then the user
		// moved it back, and that waits until the move is found.
		if en, ok, err := findEntry(tx, OpMove, id); err != nil {
			return err
		} else if !ok || en.State != EntryInFlight {
			m.MoveTo = ""
		}
	}
	m.Mailbox, m.UID, m.EverUID = mailbox, s.uid, true
	if m.State == MsgDeleted {
		m.Base = s.flags // expunge beats move: the delete entry expunges it here
	} else {
		nf, err := mergeLocal(tx, m, s.flags)
		if err == nil && moved {
			nf, err = withCarry(tx, id, nf)
		}
		if err != nil {
			return err
		}
		if !nf.Equal(m.Flags) {
			r.st.LocalChanges++
		}
		m.Flags, m.Base = nf, s.flags
	}
	if m.Visible() != before {
		r.st.LocalChanges++
	}
	if err := tx.PutMessage(m); err != nil {
		return err
	}
	return journalFlags(tx, m)
}

// adoptMoveIn finishes a move in flight whose message the scan found in its destination
// (the round that sent it was cut short): the record takes the new location, and the
// original, if its source still lists it, is kept as a deleted record to expunge (a move
// without MOVE may have been cut between its COPY and its EXPUNGE).
func (r *round) adoptMoveIn(tx Tx, id LocalID, mailbox string, s *serverMsg) error {
	m, ok, err := tx.Message(id)
	if err != nil || !ok {
		return err
	}
	if _, gone := r.vanished[id]; gone {
		delete(r.vanished, id)
		if r.orphans[id] {
			r.movedOut[id] = true // the source's UIDs are re-matched later this round
		}
	} else if err := keepToExpunge(tx, m.Mailbox, m); err != nil {
		return err
	}
	next := m.MoveTo // the user may have moved it on while the move was in flight
	m.Mailbox, m.UID, m.MoveTo, m.EverUID = mailbox, s.uid, "", true
	if e, ok := r.moveEcho[id]; ok {
		// Changes that reached the original after the COPY, as the expunge saw them.
		if m.Flags, err = mergeEcho(tx, m, e); err != nil {
			return err
		}
	}
	nf, err := mergeLocal(tx, m, s.flags)
	if err == nil {
		// Writes that reached the original after the COPY, kept for the copy.
		nf, err = withCarry(tx, id, nf)
	}
	if err != nil {
		return err
	}
	m.Flags, m.Base = nf, s.flags
	if next != mailbox {
		m.MoveTo = next
	}
	if err := tx.PutMessage(m); err != nil {
		return err
	}
	if err := dropEntries(tx, id, OpMove, OpCarry); err != nil {
		return err
	}
	if m.MoveTo != "" {
		if _, err := tx.AddJournal(JournalEntry{Op: OpMove, Message: id, Mailbox: mailbox, Dest: m.MoveTo}); err != nil {
			return err
		}
	}
	return journalFlags(tx, m)
}

// quarantine sets aside a message that had a UID before a UIDVALIDITY reset and was not
// found again: kept, hidden, reported, never uploaded.
func (r *round) quarantine(tx Tx, m MessageRecord) error {
	if m.State == MsgDeleted {
		if err := dropEntries(tx, m.ID); err != nil {
			return err
		}
		return tx.DeleteMessage(m.ID)
	}
	if quirked, err := r.quirkOrphan(tx, m); quirked || err != nil {
		return err
	}
	r.e.log.Warn("message not found after a UIDVALIDITY change; quarantined", "mailbox", m.Mailbox, "label", m.Label)
	m.State, m.UID, m.MoveTo = MsgQuarantined, 0, ""
	if err := dropEntries(tx, m.ID); err != nil {
		return err
	}
	r.st.Quarantined++
	r.st.LocalChanges++
	return tx.PutMessage(m)
}

// movedDuringScan reports whether a message may have moved behind this round's scan: a
// vanished record with pending flag work was found nowhere, and a mailbox scanned this
// round has taken new messages since (its UIDNEXT grew, or its UIDVALIDITY changed). Only
// then does it ask the server, with a STATUS of each mailbox scanned.
func (r *round) movedDuringScan() (bool, error) {
	pending := false
	if err := r.view(func(tx Tx) error {
		for id, m := range r.vanished {
			if r.orphans[id] || m.State != MsgSynced {
				continue
			}
			_, carrying, err := findEntry(tx, OpCarry, id)
			if err != nil {
				return err
			}
			if !m.Flags.Equal(m.Base) || carrying {
				pending = true
				return nil
			}
		}
		return nil
	}); err != nil || !pending {
		return false, err
	}
	names := make([]string, 0, len(r.scanned))
	for name := range r.scanned {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		st, err := r.cn.status(name)
		if isGone(err) {
			continue
		}
		if err != nil {
			return false, err
		}
		seen := r.scanned[name]
		if st.UIDValidity != seen.UIDValidity || uint32(st.UIDNext) > uint32(seen.UIDNext) {
			return true, nil
		}
	}
	return false, nil
}

// forget deletes the record of a message gone from the server, with its journal entries.
func (r *round) forget(tx Tx, m MessageRecord) error {
	if m.Visible() != "" {
		r.st.LocalChanges++
	}
	if err := dropEntries(tx, m.ID); err != nil {
		return err
	}
	return tx.DeleteMessage(m.ID)
}

// carryFlags applies the flag changes m holds over its base (the user's pending intent),
// and the writes it carries (OpCarry), to c, the server copy m was moved to, and journals
// them for the server.
func carryFlags(tx Tx, m, c MessageRecord) error {
	nf := c.Flags.Union(m.Flags.Minus(m.Base)).Minus(m.Base.Minus(m.Flags))
	nf, err := withCarry(tx, m.ID, nf)
	if err != nil || nf.Equal(c.Flags) {
		return err
	}
	c.Flags = nf
	if err := tx.PutMessage(c); err != nil {
		return err
	}
	return journalFlags(tx, c)
}

// addCarry records that the user wrote the flags in wrote on m (with the values m.Flags
// has) while another device had it marked \Deleted.
func addCarry(tx Tx, m MessageRecord, wrote Flags) error {
	en, ok, err := findEntry(tx, OpCarry, m.ID)
	if err != nil {
		return err
	}
	want := m.Flags.Intersect(wrote)
	if !ok {
		_, err := tx.AddJournal(JournalEntry{Op: OpCarry, Message: m.ID, Mailbox: m.Mailbox, Touched: wrote, Want: want})
		return err
	}
	en.Want = en.Want.Minus(wrote).Union(want)
	en.Touched = en.Touched.Union(wrote)
	return tx.PutJournal(en)
}

// uncarry drops flags f from the writes message id carries (OpCarry).
func uncarry(tx Tx, id LocalID, f Flags) error {
	en, ok, err := findEntry(tx, OpCarry, id)
	if err != nil || !ok {
		return err
	}
	en.Touched, en.Want = en.Touched.Minus(f), en.Want.Minus(f)
	if en.Touched.IsZero() {
		return tx.DeleteJournal(en.Seq)
	}
	return tx.PutJournal(en)
}

// withCarry applies to f the writes message id carries (OpCarry), if any.
func withCarry(tx Tx, id LocalID, f Flags) (Flags, error) {
	en, ok, err := findEntry(tx, OpCarry, id)
	if err != nil || !ok {
		return f, err
	}
	return f.Minus(en.Touched).Union(en.Want), nil
}

// movedCopy finds the one synced record of m's content in another mailbox, not itself
// vanished this round; ok is false when there is none or more than one.
func (r *round) movedCopy(tx Tx, m MessageRecord) (MessageRecord, bool, error) {
	all, err := tx.AllMessages()
	if err != nil {
		return MessageRecord{}, false, err
	}
	var found []MessageRecord
	for _, c := range all {
		if c.ID == m.ID || c.Hash != m.Hash || c.Mailbox == m.Mailbox || c.State != MsgSynced || c.UID == 0 {
			continue
		}
		if _, gone := r.vanished[c.ID]; gone {
			continue
		}
		found = append(found, c)
	}
	if len(found) != 1 {
		return MessageRecord{}, false, nil
	}
	return found[0], true, nil
}

func sortUIDs(u []uint32) { sort.Slice(u, func(i, j int) bool { return u[i] < u[j] }) }
