package engine

import (
	"maps"
	"slices"

	"github.com/emersion/go-imap/v2"
)

// pushFlags replays flag changes: per mailbox, +FLAGS for what the user added and -FLAGS
// for what they removed since the last agreed flags, never the whole set. Its steps, per
// mailbox: planStores, sendStores, commitStores.
func (r *round) pushFlags() error {
	byBox, entryOf, err := r.flagWork()
	if err != nil {
		return err
	}
	for _, box := range slices.Sorted(maps.Keys(byBox)) {
		if _, err := r.selectForPush(box); err == errSkip {
			continue
		} else if err != nil {
			return err
		}
		plan := r.planStores(byBox[box], entryOf)
		sent, err := r.sendStores(box, plan)
		if err != nil {
			return err
		}
		if err := r.commitStores(byBox[box], entryOf, plan, sent); err != nil {
			return err
		}
	}
	return nil
}

// flagWork returns the records with flag changes to push, by mailbox, and their journal
// entries. A copy takes its source's flags on the server when it is made: the source's
// own later changes wait until its copies are made.
func (r *round) flagWork() (map[string][]MessageRecord, map[LocalID][]JournalEntry, error) {
	j, err := r.journal()
	if err != nil {
		return nil, nil, err
	}
	byBox := map[string][]MessageRecord{}
	entryOf := map[LocalID][]JournalEntry{}
	copying := map[LocalID]bool{}
	for _, en := range j {
		if en.Op == OpAppend && en.Source != 0 && en.State == EntryPending {
			copying[en.Source] = true
		}
	}
	err = r.view(func(tx Tx) error {
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
	})
	return byBox, entryOf, err
}

// flagChange is one STORE: an operation and its flags.
type flagChange struct {
	op    imap.StoreFlagsOp
	flags Flags
}

// storePlan is what a mailbox's flag pushes send: the UIDs of each change, in the order
// the changes were first needed, and the records with nothing to write.
type storePlan struct {
	groups map[flagChange][]uint32
	order  []flagChange
	idle   map[LocalID]bool
}

func (p *storePlan) add(c flagChange, uid uint32) {
	if _, ok := p.groups[c]; !ok {
		p.order = append(p.order, c)
	}
	p.groups[c] = append(p.groups[c], uid)
}

// planStores groups the flag changes of recs into STOREs: what the user added since the
// last agreed flags, and what they removed, each flag they wrote with its current value.
func (r *round) planStores(recs []MessageRecord, entryOf map[LocalID][]JournalEntry) *storePlan {
	p := &storePlan{groups: map[flagChange][]uint32{}, idle: map[LocalID]bool{}}
	for _, m := range recs {
		if r.e.opts.Quirks.Has(QuirkWholeFlagSet) {
			if !m.Flags.Equal(m.Base) {
				p.add(flagChange{imap.StoreFlagsSet, m.Flags}, m.UID)
			} else {
				p.idle[m.ID] = true
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
			p.add(flagChange{imap.StoreFlagsAdd, a}, m.UID)
		}
		if !d.IsZero() {
			p.add(flagChange{imap.StoreFlagsDel, d}, m.UID)
		}
		p.idle[m.ID] = a.IsZero() && d.IsZero()
	}
	return p
}

// storeResult is what the STOREs of a mailbox did: the flags the server reported, and
// the UIDs on which a STORE did not show its change.
type storeResult struct {
	got         map[uint32]Flags
	unconfirmed map[uint32]bool
}

// sendStores sends plan's STOREs to box.
func (r *round) sendStores(box string, plan *storePlan) (storeResult, error) {
	res := storeResult{got: map[uint32]Flags{}, unconfirmed: map[uint32]bool{}}
	for _, c := range plan.order {
		var fl []imap.Flag
		for _, n := range c.flags.Names() {
			fl = append(fl, imap.Flag(n))
		}
		flags, err := r.cn.store(box, uidSet(plan.groups[c]), c.op, fl)
		if isNo(err, "", "EXPUNGEISSUE") {
			// RFC 3501 §6.4.8: UID STORE ignores UIDs that are gone, yet some servers
			// refuse a set whose messages were all expunged ("NO No messages matched").
			// The write stays in the journal and the scan decides: a message gone is
			// expunged (delete beats flag), one still there is written again next round.
			// A refusal with another code (UNAVAILABLE…) fails the round as before.
			r.e.log.Info("server refused UID STORE; the scan decides", "mailbox", box, "err", err)
			for _, u := range plan.groups[c] {
				res.unconfirmed[u] = true
			}
			continue
		}
		if err != nil {
			return res, err
		}
		for _, u := range plan.groups[c] {
			if f, ok := flags[imap.UID(u)]; ok {
				res.got[u] = f
			} else {
				res.unconfirmed[u] = true
			}
		}
	}
	return res, nil
}

// commitStores records what the STOREs of a mailbox did: each record the server confirmed
// takes the server's flags as agreed, and its journal entries are done; one not confirmed
// left its mailbox, and the scan decides.
func (r *round) commitStores(recs []MessageRecord, entryOf map[LocalID][]JournalEntry, plan *storePlan, sent storeResult) error {
	return r.update(func(tx Tx) error {
		for _, old := range recs {
			m, ok, err := tx.Message(old.ID)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if plan.idle[old.ID] {
				// Nothing to write: done.
			} else if s, ok := sent.got[m.UID]; ok && !sent.unconfirmed[m.UID] {
				if err := r.agreeFlags(tx, m, s, entryOf[m.ID]); err != nil {
					return err
				}
			} else if len(plan.order) > 0 {
				continue // the message left its mailbox: the scan decides
			}
			for _, en := range entryOf[m.ID] {
				if err := tx.DeleteJournal(en.Seq); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// agreeFlags records s, the flags the server reported after a STORE, as m's agreed flags.
func (r *round) agreeFlags(tx Tx, m MessageRecord, s Flags, entries []JournalEntry) error {
	wrote := m.Flags.Minus(m.Base).Union(m.Base.Minus(m.Flags))
	for _, en := range entries {
		wrote = wrote.Union(en.Touched)
	}
	if s.System&FlagDeleted != 0 && m.Flags.System&FlagDeleted == 0 && !r.cn.has(imap.CapMove) {
		// Marked \Deleted by another device: on a server without MOVE, a move may be
		// between its COPY and its EXPUNGE. Keep the write for the copy. (With MOVE a
		// move has no such window.)
		if err := addCarry(tx, m, wrote); err != nil {
			return err
		}
	}
	// The server's flags, in the user's spelling where the server keeps another
	// (keywords are compared without case).
	nf := s.SpelledAs(m.Flags)
	if !nf.Equal(m.Flags) {
		r.st.LocalChanges++
	}
	m.Flags, m.Base = nf, s
	return tx.PutMessage(m)
}

func flagStrings(fl []imap.Flag) []string {
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = string(f)
	}
	return out
}
