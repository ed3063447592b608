package engine

import (
	"context"
	"errors"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
)

// round is the state of one Sync round. Its maps live for the round only; each is written
// by the steps named in its group (round.go has the order in which they run) and read by
// the later steps named with it. Nothing of it is shared between goroutines.
type round struct {
	e   *Engine
	ctx context.Context
	st  *clients.SyncStats
	cn  *conn

	// Written by the push steps (push_*.go), read by the same steps or by the scan.

	// blocked lists mailboxes whose UIDVALIDITY changed: nothing is pushed there until the
	// scan has re-matched their messages. Written and read by selectForPush and staleUIDs.
	blocked map[string]bool
	// marked lists deleted records whose UID this round marked \Deleted: if they vanished
	// before our EXPUNGE (moved), only a copy still marked \Deleted is theirs. Written by
	// pushDeletes, read by commitScan.
	marked map[LocalID]bool
	// moveEcho holds, for moves without MOVE left in flight for the scan to find, the
	// original's flags as the expunge's STORE saw them. Written by pushMoves, read by
	// adoptMoveIn.
	moveEcho map[LocalID]Flags
	// located holds the server flags of messages found by locate. Written by locate, read
	// by adoptAppended.
	located map[LocalID]Flags

	// Written by the reconciliation of mailboxes (mailboxes.go), read by the scan.

	// replaced lists mailboxes whose name another mailbox took (MAILBOXID changed): the
	// old one's records are in the vanished pool (replacedMailboxes). Written by
	// reconcileMailboxes, read by prepareScan.
	replaced map[string]bool
	// goneBoxes lists the synced mailboxes this round found gone from the server (deleted,
	// or renamed by another client): their records found nowhere are held one round
	// (finishVanished). Written by mailboxGone, read by finishVanished.
	goneBoxes map[string]bool
	// listStatus holds the counters LIST-STATUS gave for each mailbox (see conn.list), with
	// which the scan skips the SELECT of a mailbox that has not changed. Written by
	// reconcileMailboxes, read by prepareScan.
	listStatus map[string]*imap.StatusData
	// early holds what selectInboxFirst fetched of INBOX before the LIST: the flags
	// changed since the committed HIGHESTMODSEQ, for the scan (changesSince).
	early *earlyChanges

	// Written by the scan (scan.go), read by the scan and by finishVanished.

	// fresh is set when the replica holds no server message yet (a first sync). Written by
	// scanAll, read by prepareScan.
	fresh bool
	// scanned holds what the scan's SELECT of each mailbox said, so that the end of the
	// round can tell whether mail moved behind it. Written by prepareScan, read by
	// movedDuringScan.
	scanned map[string]*imap.SelectData
	// vanished holds records whose UID disappeared from their mailbox (or whose mailbox
	// disappeared) this round. A new server message elsewhere that is the same message
	// adopts the record (someone moved it); whatever is left at the end is deleted.
	// Written by prepareScan, strand, commitScan, adoptMoveIn and finishVanished; read by
	// movedCopy and movedDuringScan too.
	vanished map[LocalID]MessageRecord
	// orphans marks the vanished records that had UIDs of a replaced UIDVALIDITY: found
	// nowhere, they are quarantined instead of deleted. Written by prepareScan, read by
	// adoptMoveIn, finishVanished and movedDuringScan.
	orphans map[LocalID]bool
	// quarantined holds the quarantined records the scan came across: a message that turns
	// up again (moved while its mailbox's UIDVALIDITY changed) is adopted back. Written by
	// prepareScan, read and emptied by commitScan.
	quarantined map[LocalID]MessageRecord
	// created lists the records made from new server messages this round, so that a
	// vanished record found after its new copy was downloaded can still be recognised.
	// Written by commitScan, read by finishVanished.
	created []MessageRecord
	// movedOut marks orphans whose move in flight the scan finished in their destination
	// before their source was matched again: the source's match is the original, to
	// expunge. Written by adoptMoveIn, read by commitScan.
	movedOut map[LocalID]bool
	// settleValidity holds the new UIDVALIDITY of mailboxes whose orphans finishVanished
	// settles: only then is it recorded. Written by commitScan, read by finishVanished.
	settleValidity map[string]uint32
	// suspect says why an answer of this round cannot be taken at its word (it named a UID
	// that cannot be there, or a mailbox could not be selected): the records found nowhere
	// are held for the next round, not deleted. Written by prepareScan and newUIDs, read by
	// finishVanished.
	suspect string
}

func newRound(ctx context.Context, e *Engine, st *clients.SyncStats) *round {
	return &round{e: e, ctx: ctx, st: st, vanished: map[LocalID]MessageRecord{},
		orphans: map[LocalID]bool{}, marked: map[LocalID]bool{},
		located: map[LocalID]Flags{}, blocked: map[string]bool{}, movedOut: map[LocalID]bool{},
		quarantined: map[LocalID]MessageRecord{}, moveEcho: map[LocalID]Flags{},
		settleValidity: map[string]uint32{}, scanned: map[string]*imap.SelectData{}, goneBoxes: map[string]bool{}}
}

// Sync runs one full round: mailbox list, journal replay, then every mailbox's new messages,
// flag changes and expunges, merged under the conflict rules and committed (data before
// watermarks). After an error the store is consistent and the next round finishes the work.
func (e *Engine) Sync(ctx context.Context) (clients.SyncStats, error) {
	var st clients.SyncStats
	if err := e.lock(); err != nil {
		return st, err
	}
	defer e.mu.Unlock()
	r := newRound(ctx, e, &st)
	err := r.run()
	var se *storeError
	if err != nil && !isProtocolRefusal(err) && !errors.Is(err, errBadAnswer) && !errors.As(err, &se) && ctx.Err() == nil && !e.closing() {
		// The server dropped the connection (a BYE after a UIDVALIDITY reset, a restart):
		// the store is consistent, so the round starts again once on a new connection.
		// An answer the engine refused is not retried: the round reports it, and the next
		// round asks again.
		e.log.Info("connection lost; retrying the round", "err", err)
		e.dropConn()
		r = newRound(ctx, e, &st)
		err = r.run()
	}
	if err != nil {
		e.unfinished.Store(true)
	}
	if err != nil && !isProtocolRefusal(err) {
		// The connection may be in any state: start afresh next round.
		e.dropConn()
	}
	if err == nil {
		err = ctx.Err()
	}
	return st, err
}

func (r *round) run() error {
	cn := r.e.cn.Load()
	if cn != nil && !cn.closed() {
		// A kept connection may have been dropped by the server meanwhile (BYE).
		cn.stats = r.st
		cn.bind(r.ctx)
		if err := cn.simple("NOOP", "", false, cn.c.Noop()); err != nil {
			r.e.dropConn()
			cn = nil
		}
	}
	fresh := cn == nil || cn.closed()
	if fresh {
		var err error
		cn, err = r.e.dial(r.ctx, r.st)
		if err != nil {
			return err
		}
		r.e.cn.Store(cn)
	} else {
		cn.stats = r.st
		cn.bind(r.ctx)
	}
	cn.selected, cn.sel = "", nil
	r.cn = cn
	steps := []func() error{
		func() error { return r.selectInboxFirst(fresh) },
		func() error { return r.pushMailboxOps(false) },
		r.pushMessages,
		func() error { return r.pushMailboxOps(true) },
		r.reconcileMailboxes,
		r.scanAll,
		r.finishVanished,
		r.pushAgain,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
		if err := r.ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// selectInboxFirst selects INBOX before anything else on a new connection to a server
// whose LIST-STATUS lets the round skip unchanged mailboxes. INBOX always exists (RFC 3501
// §5.1) and is where mail arrives; and a server may open a mailbox much faster before the
// session's first LIST than after it: Dovecot 2.3 answers the first SELECT of a Maildir
// INBOX of 50,000 messages in 0.4-3 ms, but 140-300 ms once the session has listed, and
// opens it to answer its STATUS in LIST-STATUS (150-190 ms, with its defaults) unless it
// is selected. The scan keeps this selection when nothing changed since (scanSelect). A
// refusal is left to the LIST and the scan, which know what to do without INBOX.
func (r *round) selectInboxFirst(fresh bool) error {
	if !fresh || !r.cn.listStatus() {
		return nil
	}
	data, err := r.cn.selectBox("INBOX")
	if err != nil {
		if !isProtocolRefusal(err) {
			return err
		}
		r.e.log.Info("INBOX not selectable before the LIST", "err", err)
		return nil
	}
	return r.fetchEarly(data)
}

// earlyChanges is the answer to a UID FETCH CHANGEDSINCE modseq of mailbox, sent in the
// connection's selection number selGen.
type earlyChanges struct {
	mailbox string
	modseq  uint64
	selGen  int
	bufs    []*imapclient.FetchMessageBuffer
}

// fetchEarly asks, right after the early SELECT of INBOX, for the flags changed there
// since the last commit, when its HIGHESTMODSEQ moved under the same UIDVALIDITY and the
// replica has nothing to push (which would change INBOX first): Dovecot answers it in
// 4-6 ms before the session's LIST and in 140-155 ms after (the first access to a mailbox
// after a LIST syncs it in full). The scan uses the answer if nothing was sent meanwhile
// that may have changed the server's mail (changesSince).
func (r *round) fetchEarly(data *imap.SelectData) error {
	var mb MailboxRecord
	pending := false
	if err := r.view(func(tx Tx) error {
		var err error
		if mb, _, err = tx.Mailbox("INBOX"); err != nil {
			return err
		}
		j, err := tx.Journal()
		pending = len(j) > 0
		return err
	}); err != nil {
		return err
	}
	if pending || mb.State != MailboxSynced || mb.UIDValidity == 0 || mb.UIDValidity != data.UIDValidity ||
		mb.HighestModSeq == 0 || data.HighestModSeq == 0 || data.HighestModSeq <= mb.HighestModSeq {
		return nil
	}
	bufs, err := r.cn.fetchChanged("INBOX", mb.HighestModSeq)
	if isProtocolRefusal(err) {
		r.e.log.Info("no early CHANGEDSINCE answer for INBOX; the scan asks again", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	r.early = &earlyChanges{mailbox: "INBOX", modseq: mb.HighestModSeq, selGen: r.cn.selGen, bufs: bufs}
	return nil
}

// changesSince returns the messages of mailbox (selected) whose flags changed since
// modseq: the early answer when it is for the same question in the same selection (whose
// counters the scan stores) and nothing was sent since that may have changed the server's
// mail, else a new UID FETCH CHANGEDSINCE.
func (r *round) changesSince(mailbox string, modseq uint64) ([]*imapclient.FetchMessageBuffer, error) {
	if e := r.early; e != nil && e.mailbox == mailbox {
		r.early = nil
		if e.modseq == modseq && r.cn.selGen == e.selGen && r.cn.unchangedSelection(mailbox) {
			return e.bufs, nil
		}
	}
	return r.cn.fetchChanged(mailbox, modseq)
}

// update commits fn in one store transaction.
func (r *round) update(fn func(tx Tx) error) error {
	if err := r.e.opts.Store.Update(fn); err != nil {
		return &storeError{err}
	}
	return nil
}

func (r *round) view(fn func(tx Tx) error) error {
	if err := r.e.opts.Store.View(fn); err != nil {
		return &storeError{err}
	}
	return nil
}

// storeError is a failure of the store (as opposed to the server or the network).
type storeError struct{ err error }

func (e *storeError) Error() string { return "engine: store: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

func (r *round) journal() ([]JournalEntry, error) {
	var j []JournalEntry
	err := r.view(func(tx Tx) error {
		var err error
		j, err = tx.Journal()
		return err
	})
	return j, err
}

var errSkip = errors.New("skip")

// pushAgain replays what the scan made possible (changes kept across a UIDVALIDITY change,
// flag changes following a message moved elsewhere) in the same round.
func (r *round) pushAgain() error {
	j, err := r.journal()
	if err != nil || len(j) == 0 {
		return err
	}
	if err := r.pushMailboxOps(false); err != nil {
		return err
	}
	if err := r.pushMessages(); err != nil {
		return err
	}
	return r.pushMailboxOps(true)
}
