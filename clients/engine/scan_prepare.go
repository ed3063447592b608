package engine

import (
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// The first pass of the scan (scanAll, scan.go), one mailbox at a time: what the server
// holds, against what the replica has.

// prepareScan selects a mailbox and learns its UIDVALIDITY, flags, expunges and new
// messages. Records whose UIDs vanished join the round's vanished pool. Its steps:
// readPlan (the replica's side), indexRecords, checkUIDNext, scanFlags (the server's
// side), checkReused (reuse.go), newUIDs, fetchNew.
func (r *round) prepareScan(mb MailboxRecord) (*scanPlan, error) {
	name := mb.Name
	if same, err := r.unchangedByStatus(mb); same || err != nil {
		return nil, err
	}
	data, err := r.cn.scanSelect(name)
	if isGone(err) {
		r.e.log.Info("mailbox not selectable; skipped this round", "mailbox", name, "err", err)
		// What seems gone elsewhere may have moved into it: nothing is let go this round.
		r.suspectAnswer(fmt.Sprintf("%s could not be selected (%v)", name, err))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r.scanned[name] = data
	p := &scanPlan{mb: mb, data: data, mailboxID: r.cn.mailboxID(),
		inflightFrom: map[LocalID]uint32{}, copies: map[LocalID]bool{}}
	if mb.UIDValidity == data.UIDValidity && data.HighestModSeq < mb.HighestModSeq {
		// HIGHESTMODSEQ never goes down under one UIDVALIDITY (RFC 7162 §3.1.1). One of the
		// two answers was wrong: a CHANGEDSINCE from the higher one would miss every change
		// made up to it, for good. The mailbox is scanned in full instead (every flag) and
		// the value this SELECT gave is kept.
		r.e.log.Warn("HIGHESTMODSEQ went back; scanning the mailbox in full", "mailbox", name,
			"recorded", mb.HighestModSeq, "now", data.HighestModSeq)
		p.mb.HighestModSeq = 0
	}
	rs, err := r.readPlan(p)
	if err != nil {
		return nil, err
	}
	changed := mb.UIDValidity != 0 && mb.UIDValidity != data.UIDValidity && !r.e.opts.Quirks.Has(QuirkPairByUID)
	r.indexRecords(p, rs.recs, changed)
	if err := r.checkUIDNext(p, changed); err != nil {
		return nil, err
	}
	allNew, err := r.scanFlags(p, rs, changed)
	if err != nil {
		return nil, err
	}
	if err := r.checkReused(p); err != nil {
		return nil, err
	}
	uids, err := r.newUIDs(p, allNew)
	if err != nil {
		return nil, err
	}
	if err := r.fetchNew(p, uids); err != nil {
		return nil, err
	}
	return p, nil
}

// replicaSide is what readPlan learned of the replica's records of a mailbox.
type replicaSide struct {
	recs []MessageRecord
	// unchanged: CONDSTORE says nothing happened since the last commit and the records
	// tally with the server's count, so they need no reading (a round costs O(mailboxes)).
	unchanged bool
	// changedOnly: the same, but HIGHESTMODSEQ moved: only flags changed, and recs are
	// the records of the messages changedBufs names (changedRecords). changedBufs is kept
	// when the replica could not serve it (a full scan then uses the answer).
	changedOnly bool
	changedBufs []*imapclient.FetchMessageBuffer
}

// readPlan reads the replica's side of p: the appends and moves in flight into the
// mailbox, and its records, all of them unless CONDSTORE proves that none or only some
// changed.
func (r *round) readPlan(p *scanPlan) (replicaSide, error) {
	var rs replicaSide
	mb, data, name := p.mb, p.data, p.mb.Name
	if err := r.view(func(tx Tx) error {
		if err := r.inflightInto(tx, p); err != nil {
			return err
		}
		if mb.UIDValidity != 0 && mb.UIDValidity == data.UIDValidity && data.HighestModSeq != 0 &&
			mb.HighestModSeq != 0 && mb.UIDNext == uint32(data.UIDNext) &&
			len(p.inflight) == 0 && len(p.movesIn) == 0 && !r.replaced[name] {
			c, err := tx.Counts(name)
			if err != nil {
				return err
			}
			if c.Quarantined == 0 && c.OnServer == int(data.NumMessages) {
				rs.unchanged = mb.HighestModSeq == data.HighestModSeq
				rs.changedOnly = !rs.unchanged
				return nil
			}
		}
		var err error
		rs.recs, err = tx.Messages(name)
		return err
	}); err != nil {
		return rs, err
	}
	if !rs.changedOnly {
		return rs, nil
	}
	recs, bufs, ok, err := r.changedRecords(name, mb.HighestModSeq)
	if err != nil {
		return rs, err
	}
	rs.changedBufs = bufs // a full scan uses the answer too
	if ok {
		rs.recs = recs
		return rs, nil
	}
	rs.changedOnly = false
	err = r.view(func(tx Tx) error { rs.recs, err = tx.Messages(name); return err })
	return rs, err
}

// inflightInto finds in the journal the appends and moves in flight into p's mailbox,
// with the UIDNEXT from which their copies may have arrived.
func (r *round) inflightInto(tx Tx, p *scanPlan) error {
	j, err := tx.Journal()
	if err != nil {
		return err
	}
	name := p.mb.Name
	from := func(en JournalEntry) uint32 {
		if en.UIDValidity != p.data.UIDValidity {
			return 1
		}
		return en.UIDNext
	}
	for _, en := range j {
		if en.State != EntryInFlight {
			continue
		}
		if en.Op == OpMove && en.Dest == name {
			if m, ok, err := tx.Message(en.Message); err != nil {
				return err
			} else if ok && m.UID != 0 && m.MoveTo != "" && m.State == MsgSynced {
				p.movesIn = append(p.movesIn, m)
				p.inflightFrom[m.ID] = from(en)
			}
		}
		if en.Op == OpAppend && en.Mailbox == name {
			if m, ok, err := tx.Message(en.Message); err != nil {
				return err
			} else if ok && m.UID == 0 && (m.State == MsgNew || m.State == MsgDeleted) {
				p.inflight = append(p.inflight, m)
				p.inflightFrom[m.ID] = from(en)
				if en.Source != 0 {
					p.copies[m.ID] = true
				}
			}
		}
	}
	return nil
}

// indexRecords indexes p's records by UID; after a UIDVALIDITY change (changed) the
// records with UIDs become orphans, in the vanished pool until they are found.
func (r *round) indexRecords(p *scanPlan, recs []MessageRecord, changed bool) {
	if r.replaced[p.mb.Name] {
		// Records of the mailbox that left the name this round (another mailbox has it
		// now: see replacedMailboxes) are in the vanished pool, not here.
		kept := recs[:0:0]
		for _, m := range recs {
			if _, gone := r.vanished[m.ID]; !gone {
				kept = append(kept, m)
			}
		}
		recs = kept
	}
	p.recs = recs
	limit := max(p.mb.UIDNext, uint32(p.data.UIDNext))
	for _, m := range recs {
		limit = max(limit, m.UID+1)
	}
	p.known = newUIDMap[int](limit, len(recs))
	for i, m := range recs {
		if m.State == MsgQuarantined {
			r.quarantined[m.ID] = m
		}
		if m.UID == 0 || (m.State != MsgSynced && m.State != MsgDeleted) {
			continue
		}
		if changed {
			p.orphans = append(p.orphans, m)
			// Not found here, it may be found in another mailbox (folders that swapped
			// names); whatever is found nowhere is quarantined at the end of the round.
			r.vanished[m.ID] = m
			r.orphans[m.ID] = true
		} else {
			p.known.set(m.UID, i)
		}
	}
}

// checkUIDNext refuses a UIDNEXT that went back under the same UIDVALIDITY and, after a
// UIDVALIDITY change, starts the mailbox's watermarks again.
//
// A refused UIDNEXT also withdraws the trust the replica put in its own watermarks: one of
// the two answers was wrong, and the engine cannot tell which. The earlier one may be
// (a UIDNEXT one too high looks like a message added and expunged), and refusing every
// later, true answer would stop the mailbox's sync for good. So the refusal forgets the
// mailbox's UIDNEXT and HIGHESTMODSEQ: the next round scans it in full, every UID and its
// flags and identity (checkReused), as after a first sync, and keeps the UIDNEXT that
// scan finds. Nothing of the replica's mail or pending work is touched.
func (r *round) checkUIDNext(p *scanPlan, changed bool) error {
	mb, data := p.mb, p.data
	if !changed && mb.UIDValidity == data.UIDValidity && uint32(data.UIDNext) < mb.UIDNext {
		// UIDs are never given twice under one UIDVALIDITY (RFC 3501 §2.3.1.1).
		err := fail("SELECT", mb.Name, fmt.Errorf("%w: UIDNEXT went back from %d to %d under UIDVALIDITY %d",
			errBadAnswer, mb.UIDNext, data.UIDNext, data.UIDValidity))
		if ferr := r.forgetWatermarks(mb.Name); ferr != nil {
			return errors.Join(err, ferr)
		}
		return err
	}
	if changed {
		r.e.log.Warn("UIDVALIDITY changed; re-matching messages", "mailbox", mb.Name,
			"old", mb.UIDValidity, "new", data.UIDValidity)
		p.mb.UIDNext, p.mb.HighestModSeq = 0, 0
	}
	return nil
}

// forgetWatermarks clears the UIDNEXT and HIGHESTMODSEQ recorded for mailbox, so that
// the next round scans it in full (checkUIDNext).
func (r *round) forgetWatermarks(mailbox string) error {
	return r.update(func(tx Tx) error {
		mb, ok, err := tx.Mailbox(mailbox)
		if err != nil || !ok {
			return err
		}
		mb.UIDNext, mb.HighestModSeq = 0, 0
		return tx.PutMailbox(mb)
	})
}

// scanFlags learns the server's side of p: which UIDs are present and the flags of those
// that may have changed, the cheapest way the server and the replica allow. It returns
// every UID of the mailbox when the replica knows none of them (all are new).
func (r *round) scanFlags(p *scanPlan, rs replicaSide, changed bool) ([]uint32, error) {
	name, data := p.mb.Name, p.data
	condstore := data.HighestModSeq != 0 && p.mb.HighestModSeq != 0 && !changed && p.mb.UIDValidity == data.UIDValidity
	noteAll := func(bufs []*imapclient.FetchMessageBuffer) {
		for _, b := range bufs {
			p.serverFlags.set(uint32(b.UID), ParseFlags(flagStrings(b.Flags)))
			p.noteIdentity(uint32(b.UID), uint32(b.RFC822Size), unixOrZero(b.InternalDate))
		}
	}
	if data.NumMessages == 0 && p.known.len() > 0 {
		// Every record would go: make sure. A search that lists any UID fails, as it
		// lists more than the mailbox has (EXISTS 0).
		if _, err := r.cn.search(name, &imap.SearchCriteria{}); err != nil {
			return nil, err
		}
	}
	switch {
	case data.NumMessages == 0, rs.unchanged:
	case condstore && data.HighestModSeq == p.mb.HighestModSeq && uint32(data.UIDNext) == p.mb.UIDNext &&
		int(data.NumMessages) == p.known.len():
		p.presentKnown = true
	case rs.changedOnly:
		p.presentKnown = true
		noteAll(rs.changedBufs)
	case condstore:
		bufs := rs.changedBufs
		if bufs == nil {
			var err error
			if bufs, err = r.changesSince(name, p.mb.HighestModSeq); err != nil {
				return nil, err
			}
		}
		noteAll(bufs)
		uids, err := r.cn.search(name, &imap.SearchCriteria{})
		if err != nil {
			return nil, err
		}
		p.present = newUIDMap[bool](uint32(data.UIDNext), len(uids))
		for _, u := range uids {
			p.present.set(uint32(u), true)
		}
	case p.known.len() == 0:
		// No local message to compare flags with (a first sync): the UIDs are enough, as
		// each new message's flags come with it, and all of them are new.
		uids, err := r.cn.search(name, &imap.SearchCriteria{})
		if err != nil {
			return nil, err
		}
		return uint32s(uids), nil
	default:
		flags, err := r.cn.fetchFlags(name, uint32(data.UIDNext), p.known.len(), p.noteIdentity)
		if err != nil {
			return nil, err
		}
		p.serverFlags, p.flagsAll = flags, true
	}
	return nil, nil
}

// newUIDs returns the UIDs of p's mailbox that the replica does not know, and puts the
// known ones the server no longer has in the vanished pool.
func (r *round) newUIDs(p *scanPlan, allNew []uint32) ([]uint32, error) {
	name, data, quirks := p.mb.Name, p.data, r.e.opts.Quirks
	watermark := p.mb.UIDNext
	if quirks.Has(QuirkWatermarkFirst) && uint32(data.UIDNext) != p.mb.UIDNext {
		// Deliberately wrong: the watermark goes first, the data later.
		wm := p.mb
		wm.UIDValidity, wm.UIDNext = data.UIDValidity, uint32(data.UIDNext)
		if err := r.update(func(tx Tx) error { return tx.PutMailbox(wm) }); err != nil {
			return nil, err
		}
	}
	var out []uint32
	consider := func(u uint32) {
		if p.known.contains(u) {
			return
		}
		if u < watermark && quirks.Has(QuirkWatermarkFirst) {
			return
		}
		if u < watermark {
			r.e.log.Warn("server UID below the watermark appeared late; fetching it", "mailbox", name, "uid", u)
			r.suspectAnswer(fmt.Sprintf("%s: UID %d appeared below the UIDNEXT %d committed before", name, u, watermark))
		}
		if data.UIDNext != 0 && u >= uint32(data.UIDNext) && r.cn.exists() <= int(data.NumMessages) {
			r.suspectAnswer(fmt.Sprintf("%s: UID %d is at or above UIDNEXT %d, and no message came", name, u, data.UIDNext))
		}
		out = append(out, u)
	}
	for _, u := range allNew {
		consider(u)
	}
	for u := range p.presentUIDs() {
		consider(u)
	}
	for _, i := range p.known.all() {
		if m := p.recs[i]; !p.has(m.UID) {
			r.vanished[m.ID] = m
		}
	}
	for u := range r.cn.expungedIn(name, data.UIDValidity) {
		if !p.presentKnown && p.has(u) { // listed by the server, not taken from the replica
			r.suspectAnswer(fmt.Sprintf("%s: UID %d, which this session expunged, is listed present", name, u))
		}
	}
	return out, nil
}

// suspectAnswer notes that an answer of the round named a UID that cannot be there: a
// new message below the UIDNEXT committed before (new messages take UIDs at or above it,
// RFC 3501 §2.3.1.1), or at or above the UIDNEXT of the SELECT with no message come since.
// One such UID is what a corrupted answer looks like (a UID misread or misspelt: the
// message it belonged to seems gone), or a server that shows mail late. Either way the
// engine fetches the UID and lets no record go this round (finishVanished): what the next
// round still cannot find, it deletes then.
func (r *round) suspectAnswer(why string) {
	if r.suspect == "" {
		r.suspect = why
	}
}

// fetchNew fetches p's new messages: a fresh replica, which has nothing a new message
// could be, downloads and stores them at once (downloadFresh); otherwise their headers,
// for the matching in commitScan.
func (r *round) fetchNew(p *scanPlan, uids []uint32) error {
	if len(uids) == 0 {
		return nil
	}
	p.headersOnly = !r.fresh || len(p.orphans) > 0 || len(p.inflight) > 0 || len(p.movesIn) > 0
	opts := &imap.FetchOptions{Flags: true, RFC822Size: true, InternalDate: true}
	if !p.headersOnly {
		opts.BodySection = []*imap.FetchItemBodySection{bodySection}
		return r.downloadFresh(p.mb.Name, p.data.UIDValidity, uids, opts)
	}
	opts.BodySection = []*imap.FetchItemBodySection{msgIDSection}
	bufs, err := r.cn.fetch(p.mb.Name, uidSet(uids), opts)
	if err != nil {
		return err
	}
	if err := checkAnswered(p.mb.Name, uids, bufs); err != nil {
		return err
	}
	p.msgs = r.quirkNewMail(describeMsgs(bufs, 1))
	return nil
}

// checkAnswered refuses an answer to a fetch of new messages by UID that does not answer
// each UID asked, once: the messages are matched with the replica's records by what the
// answer says of them, and a UID misread there would give one message's record another's
// UID. A message expunged between the scan and this fetch makes the round fail too; the
// next round no longer lists it.
func checkAnswered(mailbox string, asked []uint32, bufs []*imapclient.FetchMessageBuffer) error {
	want := make(map[uint32]bool, len(asked))
	for _, u := range asked {
		want[u] = true
	}
	for _, b := range bufs {
		if !want[uint32(b.UID)] {
			return fail("UID FETCH", mailbox, fmt.Errorf("%w: a fetch of new messages answered UID %d, not asked or twice", errBadAnswer, b.UID))
		}
		delete(want, uint32(b.UID))
	}
	if len(want) > 0 {
		return fail("UID FETCH", mailbox, fmt.Errorf("%w: a fetch of new messages left out %d of the %d UIDs asked", errBadAnswer, len(want), len(asked)))
	}
	return nil
}

// unchangedByStatus reports whether the mailbox's counters from LIST-STATUS prove that
// nothing happened in it since the last commit: the same UIDVALIDITY, UIDNEXT and
// HIGHESTMODSEQ, as many messages as the replica has there, and nothing of this replica in
// flight into it. Then the mailbox is not selected at all, so that a round that finds
// nothing costs O(mailboxes) at the server too (on a Maildir server, selecting a mailbox
// of 50,000 messages costs more than everything else in such a round). The counters of
// the mailbox the connection had selected during the LIST are not kept (reconcileMailboxes).
func (r *round) unchangedByStatus(mb MailboxRecord) (bool, error) {
	st := r.listStatus[mb.Name]
	if st == nil || st.NumMessages == nil || st.HighestModSeq == 0 || mb.UIDValidity == 0 ||
		mb.HighestModSeq == 0 || r.replaced[mb.Name] ||
		st.UIDValidity != mb.UIDValidity || uint32(st.UIDNext) != mb.UIDNext || st.HighestModSeq != mb.HighestModSeq {
		return false, nil
	}
	same := false
	err := r.view(func(tx Tx) error {
		j, err := tx.Journal()
		if err != nil {
			return err
		}
		for _, en := range j {
			if en.State == EntryInFlight && (en.Op == OpMove && en.Dest == mb.Name || en.Op == OpAppend && en.Mailbox == mb.Name) {
				return nil
			}
		}
		c, err := tx.Counts(mb.Name)
		if err != nil {
			return err
		}
		same = c.Quarantined == 0 && c.OnServer == int(*st.NumMessages)
		return nil
	})
	if same {
		// What movedDuringScan compares the mailbox's later STATUS with.
		r.scanned[mb.Name] = &imap.SelectData{UIDValidity: st.UIDValidity, UIDNext: st.UIDNext,
			NumMessages: *st.NumMessages, HighestModSeq: st.HighestModSeq}
	}
	return same, err
}

// setValidity records the UIDVALIDITY of the mailbox's first messages.
func setValidity(tx Tx, mailbox string, validity uint32) error {
	mb, ok, err := tx.Mailbox(mailbox)
	if err != nil || !ok || mb.UIDValidity == validity {
		return err
	}
	mb.UIDValidity = validity
	return tx.PutMailbox(mb)
}
