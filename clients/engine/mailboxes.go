package engine

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// pushMailboxOps replays the journal's mailbox creations and renames (deletes == false), or
// its mailbox deletions (deletes == true, after the message operations, so that messages
// moved out of a mailbox leave it before it goes).
func (r *round) pushMailboxOps(deletes bool) error {
	j, err := r.journal()
	if err != nil {
		return err
	}
	for _, en := range j {
		switch {
		case !deletes && en.Op == OpCreateMailbox:
			err = r.pushCreate(en)
		case !deletes && en.Op == OpRenameMailbox:
			err = r.pushRename(en)
		case deletes && en.Op == OpDeleteMailbox:
			err = r.pushDelete(en)
		default:
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sendingMailboxOp marks a mailbox creation or rename in flight before it is sent, so that a
// later local rename never folds into one the server may already have carried out (its
// answer lost): the server would keep the first name next to the second.
func (r *round) sendingMailboxOp(en *JournalEntry) error {
	if en.State == EntryInFlight {
		return nil
	}
	en.State = EntryInFlight
	return r.update(func(tx Tx) error { return tx.PutJournal(*en) })
}

func (r *round) pushCreate(en JournalEntry) error {
	if err := r.sendingMailboxOp(&en); err != nil {
		return err
	}
	err := r.cn.simple("CREATE", en.Mailbox, true, r.cn.c.Create(en.Mailbox, nil))
	if isNo(err, "") {
		// Some servers refuse CREATE of an existing mailbox without [ALREADYEXISTS]
		// ("NO Mailbox already exists"): LIST decides. A mailbox there now is what the
		// user asked for; otherwise the refusal stands and the next round tries again.
		if ok, lerr := r.listed(en.Mailbox); lerr != nil {
			return lerr
		} else if ok {
			r.e.log.Info("CREATE refused, but LIST shows the mailbox; carrying on", "mailbox", en.Mailbox, "err", err)
			err = nil
		}
	}
	if err != nil && !isNo(err, imap.ResponseCodeAlreadyExists) {
		return err
	}
	return r.update(func(tx Tx) error {
		if err := onServer(tx, en.Mailbox); err != nil {
			return err
		}
		return tx.DeleteJournal(en.Seq)
	})
}

// onServer marks a local mailbox that its CREATE (or a RENAME) has put on the server as
// synced; any other record is left as it is.
func onServer(tx Tx, name string) error {
	mb, ok, err := tx.Mailbox(name)
	if err != nil || !ok || mb.State != MailboxLocal {
		return err
	}
	mb.State = MailboxSynced
	return tx.PutMailbox(mb)
}

// listed reports whether LIST shows mailbox as one that can hold messages.
func (r *round) listed(mailbox string) (bool, error) {
	list, err := r.cn.list()
	if err != nil {
		return false, err
	}
	for _, l := range list {
		if l.Mailbox == mailbox && !noSelect(l.Attrs) {
			return true, nil
		}
	}
	return false, nil
}

func (r *round) pushRename(en JournalEntry) error {
	if err := r.sendingMailboxOp(&en); err != nil {
		return err
	}
	err := r.cn.simple("RENAME", en.Mailbox, true, r.cn.c.Rename(en.Mailbox, en.Dest, nil))
	if err != nil && !isFinal(err) {
		return err
	}
	refused := err != nil
	if err != nil {
		// The old mailbox is gone (another device deleted or renamed it) or the new name is
		// taken: the server's state wins; the mailbox list reconciliation takes over.
		r.e.log.Warn("rename refused; the server's mailboxes win", "from", en.Mailbox, "to", en.Dest, "err", err)
		r.st.Conflicts++
	}
	return r.update(func(tx Tx) error {
		// A mailbox created under the old name while that creation was in flight is on the
		// server now, under the new name (unless the server refused the rename).
		if !refused {
			if err := onServer(tx, en.Dest); err != nil {
				return err
			}
		}
		return tx.DeleteJournal(en.Seq)
	})
}

func (r *round) pushDelete(en JournalEntry) error {
	err := r.cn.simple("DELETE", en.Mailbox, true, r.cn.c.Delete(en.Mailbox))
	if err != nil && !isFinal(err) {
		return err
	}
	return r.update(func(tx Tx) error {
		if mb, ok, err := tx.Mailbox(en.Mailbox); err != nil {
			return err
		} else if ok && mb.State == MailboxDeleting {
			msgs, err := tx.Messages(en.Mailbox)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				if err := dropEntries(tx, m.ID); err != nil {
					return err
				}
				if err := tx.DeleteMessage(m.ID); err != nil {
					return err
				}
			}
			if err := tx.DeleteMailbox(en.Mailbox); err != nil {
				return err
			}
		}
		return tx.DeleteJournal(en.Seq)
	})
}

// specialUse returns the SPECIAL-USE attribute of a LIST entry, or "".
func specialUse(attrs []imap.MailboxAttr) string {
	for _, a := range attrs {
		switch strings.ToLower(string(a)) {
		case `\trash`, `\sent`, `\drafts`, `\junk`, `\archive`, `\all`, `\flagged`:
			return string(a)
		}
	}
	return ""
}

func noSelect(attrs []imap.MailboxAttr) bool {
	for _, a := range attrs {
		switch strings.ToLower(string(a)) {
		case `\noselect`, `\nonexistent`:
			return true
		}
	}
	return false
}

// reconcileMailboxes brings the local mailbox list in line with the server's: mailboxes new
// on the server appear locally; synced mailboxes gone from the server go locally, their
// messages into the vanished pool (a rename elsewhere shows up as a new mailbox whose
// messages adopt them). Local-only ones wait for the journal.
func (r *round) reconcileMailboxes() error {
	server, err := r.serverMailboxes()
	if err != nil {
		return err
	}
	r.st.MailboxesSeen = len(server)
	var local []MailboxRecord
	if err := r.view(func(tx Tx) error {
		local, err = tx.Mailboxes()
		return err
	}); err != nil {
		return err
	}
	if err := r.confirmGone(server, local); err != nil {
		return err
	}
	replaced, err := r.replacedMailboxes(server, local)
	if err != nil {
		return err
	}
	r.replaced = replaced
	renamed, err := r.renamedMailboxes(server, local)
	if err != nil {
		return err
	}
	return r.update(func(tx Tx) error { return r.reconcileLocal(tx, server, replaced, renamed) })
}

// serverMailboxes lists the server's selectable mailboxes with their special uses, and
// keeps their LIST-STATUS counters (listStatus). An answer that would make the engine
// delete local mail it cannot account for is refused: INBOX always exists (RFC 3501
// §5.1), and a server never has no mailbox.
func (r *round) serverMailboxes() (map[string]string, error) {
	list, err := r.cn.list()
	if err != nil {
		return nil, err
	}
	server := map[string]string{}
	r.listStatus = map[string]*imap.StatusData{}
	for _, l := range list {
		if noSelect(l.Attrs) {
			continue
		}
		server[l.Mailbox] = specialUse(l.Attrs)
		if l.Status != nil && !r.cn.openOnServer(l.Mailbox) {
			// A STATUS of the mailbox the session has selected may lag behind what the
			// session has been told (RFC 3501 §6.3.10): that one is selected to be seen.
			r.listStatus[l.Mailbox] = l.Status
		}
	}
	if len(server) == 0 {
		return nil, fail("LIST", "", fmt.Errorf("%w: the server listed no mailboxes; keeping the local ones", errBadAnswer))
	}
	inbox := false
	for n := range server {
		inbox = inbox || strings.EqualFold(n, "INBOX")
	}
	if !inbox {
		return nil, fail("LIST", "", fmt.Errorf("%w: the server did not list INBOX as selectable; keeping the local mailboxes", errBadAnswer))
	}
	return server, nil
}

// confirmGone asks the server about each synced mailbox of the replica (local) that its
// LIST answer (server) left out, before the mailbox's records go: a LIST that drops a line
// would otherwise cost the replica a whole mailbox. A mailbox STATUS still finds was left
// out by mistake: the answer is refused. One STATUS per mailbox gone, none otherwise.
func (r *round) confirmGone(server map[string]string, local []MailboxRecord) error {
	for _, mb := range local {
		if _, ok := server[mb.Name]; ok || mb.State != MailboxSynced {
			continue
		}
		_, err := r.cn.status(mb.Name)
		if err == nil {
			return fail("LIST", "", fmt.Errorf("%w: it left out %q, which STATUS finds; keeping the local mailboxes", errBadAnswer, mb.Name))
		}
		if !isProtocolRefusal(err) {
			return err
		}
	}
	return nil
}

// reconcileLocal applies the server's mailbox list (server: name → special use) to the
// replica: mailboxes followed where another client renamed them (renamed: new name → old),
// new ones added, replaced and gone ones followed into the vanished pool.
func (r *round) reconcileLocal(tx Tx, server map[string]string, replaced map[string]bool, renamed map[string]string) error {
	local, err := tx.Mailboxes()
	if err != nil {
		return err
	}
	have := map[string]MailboxRecord{}
	for _, mb := range local {
		have[mb.Name] = mb
	}
	followed := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(renamed)) {
		old := renamed[name]
		ok, err := r.followRename(tx, have[old], name)
		if err != nil {
			return err
		}
		if ok {
			followed[old] = true
			mb := have[old]
			mb.Name = name
			have[name] = mb
			delete(have, old)
		}
	}
	names := make([]string, 0, len(server))
	for n := range server {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		mb, ok := have[n]
		if ok && replaced[n] {
			// The mailbox that had this name left it: follow it as if it were gone
			// (a rename shows it elsewhere), and take this one as new.
			if err := r.mailboxGone(tx, mb); err != nil {
				return err
			}
			ok = false
		}
		if !ok {
			if err := tx.PutMailbox(MailboxRecord{Name: n, SpecialUse: server[n]}); err != nil {
				return err
			}
			r.st.LocalChanges++
			continue
		}
		if mb.SpecialUse != server[n] {
			mb.SpecialUse = server[n]
			if err := tx.PutMailbox(mb); err != nil {
				return err
			}
		}
	}
	for _, mb := range local {
		if _, ok := server[mb.Name]; ok || mb.State != MailboxSynced || followed[mb.Name] {
			continue
		}
		if err := r.mailboxGone(tx, mb); err != nil {
			return err
		}
	}
	if r.e.unfinished.Load() {
		return r.rehomeStranded(tx)
	}
	return nil
}

// replacedMailboxes returns the synced mailboxes whose name now belongs to another
// mailbox on the server: where the server offers OBJECTID (RFC 8474), a SELECT whose
// MAILBOXID is not the one the last scan saw. Two folders that swapped names, or a folder
// re-created under the name of one renamed away, keep their names and may keep their
// UIDVALIDITY (servers that take it from the clock give one to folders made in the same
// second, and RENAME keeps it), so without MAILBOXID nothing tells them apart. Without
// OBJECTID it returns nothing and costs nothing; with it, one SELECT per such mailbox.
// local is the replica's mailbox list (read where OBJECTID is offered).
func (r *round) replacedMailboxes(server map[string]string, local []MailboxRecord) (map[string]bool, error) {
	if !r.cn.has(capObjectID) {
		return nil, nil
	}
	out := map[string]bool{}
	for _, mb := range local {
		if _, ok := server[mb.Name]; !ok || mb.MailboxID == "" || mb.State != MailboxSynced {
			continue
		}
		_, err := r.cn.selectBox(mb.Name)
		if isGone(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if id := r.cn.mailboxID(); id != "" && id != mb.MailboxID {
			r.e.log.Info("another mailbox under the name (MAILBOXID changed)", "mailbox", mb.Name, "was", mb.MailboxID, "now", id)
			out[mb.Name] = true
		}
	}
	return out, nil
}

// renamedMailboxes finds, where the server offers OBJECTID (RFC 8474), the mailboxes
// another client renamed: a name new to the replica whose MAILBOXID and UIDVALIDITY are
// those of a synced mailbox whose name the server no longer lists. It returns the new
// names with the old ones. It costs one SELECT per new name, and only when a known name
// is gone; without OBJECTID nothing, and a rename is followed by matching the messages
// again (by Message-ID, size and content).
func (r *round) renamedMailboxes(server map[string]string, local []MailboxRecord) (map[string]string, error) {
	if !r.cn.has(capObjectID) {
		return nil, nil
	}
	have := map[string]bool{}
	gone := map[string]MailboxRecord{} // by MAILBOXID
	for _, mb := range local {
		have[mb.Name] = true
		if _, listed := server[mb.Name]; !listed && mb.State == MailboxSynced && mb.MailboxID != "" {
			gone[mb.MailboxID] = mb
		}
	}
	out := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(server)) {
		if have[name] || len(gone) == 0 {
			continue
		}
		data, err := r.cn.selectBox(name)
		if isGone(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if mb, ok := gone[r.cn.mailboxID()]; ok && data.UIDValidity == mb.UIDValidity {
			r.e.log.Info("mailbox renamed by another client (same MAILBOXID); following it", "mailbox", mb.Name, "now", name)
			out[name] = mb.Name
			delete(gone, mb.MailboxID)
		}
	}
	return out, nil
}

// followRename moves the replica's mailbox mb under name, where another client renamed it:
// the same MAILBOXID and UIDVALIDITY make it the same mailbox, so its records keep their
// UIDs and nothing is downloaded again; the journal's pending work on it follows it. With
// a local create, rename or delete of the mailbox pending it does not follow (false): the
// mailbox is then taken for gone, as without MAILBOXID.
func (r *round) followRename(tx Tx, mb MailboxRecord, name string) (bool, error) {
	old := mb.Name
	j, err := tx.Journal()
	if err != nil {
		return false, err
	}
	for _, en := range j {
		switch en.Op {
		case OpCreateMailbox, OpRenameMailbox, OpDeleteMailbox:
			if en.Mailbox == old || en.Dest == old {
				return false, nil
			}
		}
	}
	if err := tx.DeleteMailbox(old); err != nil {
		return false, err
	}
	mb.Name = name
	if err := tx.PutMailbox(mb); err != nil {
		return false, err
	}
	if err := renameRecords(tx, old, name); err != nil {
		return false, err
	}
	for _, en := range j {
		if en.Mailbox != old && en.Dest != old {
			continue
		}
		if en.Mailbox == old {
			en.Mailbox = name
		}
		if en.Dest == old {
			en.Dest = name
		}
		if err := tx.PutJournal(en); err != nil {
			return false, err
		}
	}
	r.st.LocalChanges++
	return true, nil
}

// renameRecords moves every record in (or moving into) mailbox old to name.
func renameRecords(tx Tx, old, name string) error {
	all, err := tx.AllMessages()
	if err != nil {
		return err
	}
	for _, m := range all {
		if m.Mailbox != old && m.MoveTo != old {
			continue
		}
		if m.Mailbox == old {
			m.Mailbox = name
		}
		if m.MoveTo == old {
			m.MoveTo = name
		}
		if err := tx.PutMessage(m); err != nil {
			return err
		}
	}
	return nil
}

// mailboxGone handles a synced mailbox that the server no longer has (deleted or renamed
// by another client). Messages with UIDs join the vanished pool: a rename shows up as a new
// mailbox whose messages adopt them. Messages never uploaded go to INBOX, as a move into a
// mailbox that no longer exists is given up: the folder is never resurrected and no mail
// is lost.
func (r *round) mailboxGone(tx Tx, mb MailboxRecord) error {
	r.goneBoxes[mb.Name] = true
	r.e.unfinished.Store(true) // its records are stranded until finishVanished settles them
	msgs, err := tx.Messages(mb.Name)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := r.strand(tx, m); err != nil {
			return err
		}
	}
	// Moves into the vanished mailbox cannot happen any more.
	c, err := tx.Counts(mb.Name)
	if err != nil {
		return err
	}
	if c.MovesIn > 0 {
		all, err := tx.AllMessages()
		if err != nil {
			return err
		}
		for _, m := range all {
			if m.MoveTo == mb.Name {
				if err := r.cancelMove(tx, m); err != nil {
					return err
				}
			}
		}
	}
	r.st.LocalChanges++
	return tx.DeleteMailbox(mb.Name)
}

// strand handles a message whose mailbox left the server: never uploaded, it goes to
// INBOX; with a UID, it joins the vanished pool (a rename shows it elsewhere).
func (r *round) strand(tx Tx, m MessageRecord) error {
	const home = "INBOX"
	switch {
	case m.State == MsgNew:
		m.Mailbox = home
		if err := tx.PutMessage(m); err != nil {
			return err
		}
		if en, ok, err := findEntry(tx, OpAppend, m.ID); err != nil {
			return err
		} else if ok {
			en.Mailbox, en.State, en.UIDNext, en.UIDValidity = home, EntryPending, 0, 0
			if err := tx.PutJournal(en); err != nil {
				return err
			}
		}
		r.st.LocalChanges++
	case m.UID != 0:
		r.vanished[m.ID] = m
	}
	return nil
}

// cancelMove gives up m's move into a mailbox that left the server.
func (r *round) cancelMove(tx Tx, m MessageRecord) error {
	m.MoveTo = ""
	if err := tx.PutMessage(m); err != nil {
		return err
	}
	r.st.Conflicts++
	r.st.LocalChanges++
	return dropEntries(tx, m.ID, OpMove)
}

// rehomeStranded finds what a round cut short after its mailbox reconciliation left
// behind: messages whose mailbox, or whose pending move's destination, is no longer
// known. They are handled as mailboxGone handles them.
func (r *round) rehomeStranded(tx Tx) error {
	boxes, err := tx.Mailboxes()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, mb := range boxes {
		known[mb.Name] = true
	}
	// The store knows every name records use: only a name not known means work.
	inUse, err := tx.InUse()
	if err != nil {
		return err
	}
	stranded := false
	for _, n := range inUse {
		stranded = stranded || !known[n]
	}
	if !stranded {
		return nil
	}
	all, err := tx.AllMessages()
	if err != nil {
		return err
	}
	for _, m := range all {
		if !known[m.Mailbox] {
			if err := r.strand(tx, m); err != nil {
				return err
			}
			if m, _, err = tx.Message(m.ID); err != nil {
				return err
			}
		}
		if m.MoveTo != "" && !known[m.MoveTo] {
			if err := r.cancelMove(tx, m); err != nil {
				return err
			}
		}
	}
	return nil
}
