package engine

import (
	"sort"

	"github.com/emersion/go-imap/v2"
)

// pushFlags replays flag changes: per mailbox, +FLAGS for what the user added and -FLAGS
// for what they removed since the last agreed flags, never the whole set.
func (r *round) pushFlags() error {
	j, err := r.journal()
	if err != nil {
		return err
	}
	byBox := map[string][]MessageRecord{}
	entryOf := map[LocalID][]JournalEntry{}
	// A copy takes its source's flags on the server when it is made: the source's own
	// later changes wait until its copies are made.
	copying := map[LocalID]bool{}
	for _, en := range j {
		if en.Op == OpAppend && en.Source != 0 && en.State == EntryPending {
			copying[en.Source] = true
		}
	}
	if err := r.view(func(tx Tx) error {
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
	}); err != nil {
		return err
	}
	boxes := make([]string, 0, len(byBox))
	for b := range byBox {
		boxes = append(boxes, b)
	}
	sort.Strings(boxes)
	for _, box := range boxes {
		if _, err := r.selectForPush(box); err == errSkip {
			continue
		} else if err != nil {
			return err
		}
		got := map[uint32]Flags{}
		unconfirmed := map[uint32]bool{} // a STORE did not show its change on these
		type change struct {
			op    imap.StoreFlagsOp
			flags Flags
		}
		groups := map[change][]uint32{}
		var order []change
		add := func(c change, uid uint32) {
			if _, ok := groups[c]; !ok {
				order = append(order, c)
			}
			groups[c] = append(groups[c], uid)
		}
		idle := map[LocalID]bool{} // nothing to write
		for _, m := range byBox[box] {
			if r.e.opts.Quirks.Has(QuirkWholeFlagSet) {
				if !m.Flags.Equal(m.Base) {
					add(change{imap.StoreFlagsSet, m.Flags}, m.UID)
				} else {
					idle[m.ID] = true
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
				add(change{imap.StoreFlagsAdd, a}, m.UID)
			}
			if !d.IsZero() {
				add(change{imap.StoreFlagsDel, d}, m.UID)
			}
			idle[m.ID] = a.IsZero() && d.IsZero()
		}
		for _, c := range order {
			var fl []imap.Flag
			for _, n := range c.flags.Names() {
				fl = append(fl, imap.Flag(n))
			}
			res, err := r.cn.store(box, uidSet(groups[c]), c.op, fl)
			if isNo(err, "", "EXPUNGEISSUE") {
				// RFC 3501 §6.4.8: UID STORE ignores UIDs that are gone, yet some servers
				// refuse a set whose messages were all expunged ("NO No messages
				// matched"). The write stays in the journal and the scan decides: a
				// message gone is expunged (delete beats flag), one still there is
				// written again next round. A refusal with another code (UNAVAILABLE…)
				// fails the round as before.
				r.e.log.Info("server refused UID STORE; the scan decides", "mailbox", box, "err", err)
				for _, u := range groups[c] {
					unconfirmed[u] = true
				}
				continue
			}
			if err != nil {
				return err
			}
			for _, u := range groups[c] {
				if f, ok := res[imap.UID(u)]; ok {
					got[u] = f
				} else {
					unconfirmed[u] = true
				}
			}
		}
		if err := r.update(func(tx Tx) error {
			for _, old := range byBox[box] {
				m, ok, err := tx.Message(old.ID)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				if idle[old.ID] {
					// Nothing to write: done.
				} else if s, ok := got[m.UID]; ok && !unconfirmed[m.UID] {
					wrote := m.Flags.Minus(m.Base).Union(m.Base.Minus(m.Flags))
					for _, en := range entryOf[m.ID] {
						wrote = wrote.Union(en.Touched)
					}
					if s.System&FlagDeleted != 0 && m.Flags.System&FlagDeleted == 0 && !r.cn.has(imap.CapMove) {
						// Marked \Deleted by another device: on a server without MOVE, a
						// move may be between its COPY and its EXPUNGE. Keep the write for
						// the copy. (With MOVE a move has no such window.)
						if err := addCarry(tx, m, wrote); err != nil {
							return err
						}
					}
					// The server's flags, in the user's spelling where the server
					// keeps another (keywords are compared without case).
					nf := s.SpelledAs(m.Flags)
					if !nf.Equal(m.Flags) {
						r.st.LocalChanges++
					}
					m.Flags, m.Base = nf, s
					if err := tx.PutMessage(m); err != nil {
						return err
					}
				} else if len(order) > 0 {
					continue // the message left its mailbox: the scan decides
				}
				for _, en := range entryOf[m.ID] {
					if err := tx.DeleteJournal(en.Seq); err != nil {
						return err
					}
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func flagStrings(fl []imap.Flag) []string {
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = string(f)
	}
	return out
}
