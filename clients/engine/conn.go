package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/internal/deadline"
)

// conn is one logged-in IMAP connection of an engine. It counts every command into stats
// and closes the connection when a command outlives the command timeout (go-imap has no
// read timeout of its own) or when the round's context ends.
type conn struct {
	c         *imapclient.Client
	caps      imap.CapSet
	timeout   time.Duration
	stats     *clients.SyncStats
	selected  string
	sel       *imap.SelectData
	selID     string // the MAILBOXID (RFC 8474) the current selection announced, or ""
	mutations int    // commands sent that may change the server's mail (count)
	selMuts   int    // mutations when the current selection was made
	selGen    int    // counts the selections made
	condstore bool
	notes     *flagNotes // flag updates the server sent unasked
	tap       *tapConn   // the network connection, watched for BYE
	expunges  *atomic.Int64
	maxSize   int64 // the largest message body accepted
	// gone holds, by mailbox and UIDVALIDITY, the UIDs this session expunged itself: UIDs
	// are never given twice (RFC 3501 §2.3.1.1), so none of them can be listed again.
	gone     map[goneKey]map[uint32]bool
	timedOut atomic.Bool

	spareMu sync.Mutex
	spare   []byte // a body buffer to reuse (recycle)

	mu        sync.Mutex
	stopCtx   func() bool
	closeOnce sync.Once
}

// flagNotes records, while switched on, the flags of the selected mailbox's messages that
// the server reports unasked (another client changed them), by UID.
type flagNotes struct {
	mu    sync.Mutex
	flags map[uint32]Flags // nil: not recording
}

func (n *flagNotes) fetch(m *imapclient.FetchMessageData) {
	var uid imap.UID
	var flags []imap.Flag
	has := false
	for item := m.Next(); item != nil; item = m.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			uid = it.UID
		case imapclient.FetchItemDataFlags:
			flags, has = it.Flags, true
		}
	}
	if uid == 0 || !has {
		return // without a UID the update cannot be placed: left to the scan
	}
	n.put(uint32(uid), parseIMAPFlags(flags))
}

// put records the flags of uid, if recording.
func (n *flagNotes) put(uid uint32, flags Flags) {
	n.mu.Lock()
	if n.flags != nil {
		n.flags[uid] = flags
	}
	n.mu.Unlock()
}

// record switches recording on, forgetting what was recorded.
func (n *flagNotes) record() {
	n.mu.Lock()
	n.flags = map[uint32]Flags{}
	n.mu.Unlock()
}

// stop switches recording off and returns what was recorded.
func (n *flagNotes) stop() map[uint32]Flags {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.flags
	n.flags = nil
	return out
}

// errCommandTimeout is reported when the watchdog closed the connection.
var errCommandTimeout = errors.New("command timed out")

// errBadAnswer marks an answer the engine refuses to act on (it contradicts what the
// server said before or the protocol): the round fails, nothing it implied is committed.
var errBadAnswer = errors.New("refused the server's answer")

func (e *Engine) dial(ctx context.Context, stats *clients.SyncStats) (*conn, error) {
	if e.opts.Dial == nil {
		return nil, fmt.Errorf("engine: no Dial function")
	}
	nc, err := e.opts.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine: dial: %w", err)
	}
	notes := &flagNotes{}
	expunges := &atomic.Int64{}
	// go-imap sets and clears a read deadline around every response: lazily applied,
	// a flag scan of 50,000 messages costs no 100,000 timer changes.
	tap := &tapConn{Conn: bufferReads(deadline.Wrap(nc)), maxLiteral: e.opts.MaxMessageSize}
	c := imapclient.New(tap, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Fetch:   notes.fetch,
		Expunge: func(uint32) { expunges.Add(1) },
	}})
	cn := &conn{c: c, timeout: e.opts.CommandTimeout, stats: stats, notes: notes, tap: tap,
		expunges: expunges, maxSize: e.opts.MaxMessageSize}
	cn.bind(ctx)
	done := cn.watch()
	err = c.WaitGreeting()
	done()
	if err != nil {
		cn.close()
		return nil, cn.fail("greeting", "", err)
	}
	if c.State() != imap.ConnStateAuthenticated { // not greeted with PREAUTH (RFC 3501 §7.1.4)
		cn.count("LOGIN", false)
		done = cn.watch()
		err = c.Login(e.opts.Username, e.opts.Password).Wait()
		done()
		if err != nil {
			cn.close()
			return nil, cn.fail("LOGIN", "", err)
		}
	}
	caps := c.Caps()
	if len(caps) == 0 || caps.Has(imap.CapIMAP4rev1) && len(caps) == 1 {
		cn.count("CAPABILITY", false)
		done = cn.watch()
		caps, err = c.Capability().Wait()
		done()
		if err != nil {
			cn.close()
			return nil, cn.fail("CAPABILITY", "", err)
		}
	}
	cn.caps = caps
	return cn, nil
}

// bind closes the connection when ctx ends; a later bind replaces the earlier one.
func (cn *conn) bind(ctx context.Context) {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.stopCtx != nil {
		cn.stopCtx()
	}
	cn.stopCtx = context.AfterFunc(ctx, cn.close)
}

// watch arms the command watchdog; call the returned function when the command is done.
func (cn *conn) watch() func() {
	t := time.AfterFunc(cn.timeout, func() {
		cn.timedOut.Store(true)
		cn.close()
	})
	return func() { t.Stop() }
}

func (cn *conn) close() {
	cn.closeOnce.Do(func() { _ = cn.c.Close() })
}

func (cn *conn) closed() bool {
	select {
	case <-cn.c.Closed():
		return true
	default:
		return false
	}
}

func (cn *conn) count(name string, mutating bool) {
	cn.stats.Commands++
	if mutating {
		cn.stats.Mutations++
		cn.mutations++
	}
}

func (cn *conn) has(c imap.Cap) bool { return cn.caps.Has(c) }

// fail wraps a command error with the command and mailbox it came from, saying why the
// connection ended where the engine knows: its watchdog closed it, or the server said BYE
// (whose text go-imap drops). A command answered OK after a BYE fails too: the server is
// going away and its answer may be cut short.
func (cn *conn) fail(cmd, mailbox string, err error) error {
	bye, said := cn.tap.bye()
	refused := cn.tap.refusal()
	if isBad(err) && cmd != "CAPABILITY" {
		// The server may have changed its capabilities on this connection: read them again
		// so that later commands (and fallbacks) go by what it offers now.
		cn.recheck()
	}
	switch {
	case err == nil && !said:
		return nil
	case cn.timedOut.Load():
		err = fmt.Errorf("%w after %v; the connection was closed", errCommandTimeout, cn.timeout)
	case refused != nil:
		err = refused
	case said && err == nil:
		err = fmt.Errorf("the server said BYE %q", bye)
	case said:
		err = fmt.Errorf("the server said BYE %q: %w", bye, err)
	}
	return fail(cmd, mailbox, err)
}

// fail wraps a command error with the command and mailbox it came from.
func fail(cmd, mailbox string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = fmt.Errorf("connection lost: %w", err)
	}
	if mailbox == "" {
		return fmt.Errorf("engine: %s: %w", cmd, err)
	}
	return fmt.Errorf("engine: %s %q: %w", cmd, mailbox, err)
}

// isBad reports whether err is a tagged BAD response.
func isBad(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && ie.Type == imap.StatusResponseTypeBad
}

// recheck reads the capabilities again (after a BAD); on failure the old ones stay.
func (cn *conn) recheck() {
	if cn.closed() {
		return
	}
	cn.count("CAPABILITY", false)
	done := cn.watch()
	caps, err := cn.c.Capability().Wait()
	done()
	if err == nil && len(caps) > 0 {
		cn.caps = caps
	}
}

// isNo reports whether err is a tagged NO response, optionally with one of codes.
func isNo(err error, codes ...imap.ResponseCode) bool {
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Type != imap.StatusResponseTypeNo {
		return false
	}
	if len(codes) == 0 {
		return true
	}
	for _, c := range codes {
		if ie.Code == c {
			return true
		}
	}
	return false
}

// isGone reports whether err is a NO saying the mailbox does not exist (NONEXISTENT or
// TRYCREATE): a fact about the server, not a transient failure.
// A NO without a response code counts too: only a coded refusal (UNAVAILABLE, INUSE...)
// is taken as transient.
func isGone(err error) bool {
	return isNo(err, imap.ResponseCodeNonExistent, imap.ResponseCodeTryCreate, "")
}

// isFinal reports whether a NO to a mailbox command states a fact that retrying cannot
// change (the mailbox is missing or exists already, or the server will never allow it).
func isFinal(err error) bool {
	return isNo(err, imap.ResponseCodeNonExistent, imap.ResponseCodeTryCreate, imap.ResponseCodeAlreadyExists,
		imap.ResponseCodeCannot, imap.ResponseCodeNoPerm, "")
}

// isProtocolRefusal reports whether err is a NO or BAD: the server refused the command, the
// connection is still fine.
func isProtocolRefusal(err error) bool {
	var ie *imap.Error
	return errors.As(err, &ie) && (ie.Type == imap.StatusResponseTypeNo || ie.Type == imap.StatusResponseTypeBad)
}

// selectBox selects mailbox (with CONDSTORE where offered) unless it is selected already.
func (cn *conn) selectBox(mailbox string) (*imap.SelectData, error) {
	if cn.selected == mailbox && cn.sel != nil {
		return cn.sel, nil
	}
	cn.selected, cn.sel, cn.selID = "", nil, ""
	cn.count("SELECT", false)
	done := cn.watch()
	opts := &imap.SelectOptions{CondStore: cn.has(imap.CapCondStore)}
	cn.tap.takeMailboxID()
	prev := cn.c.Mailbox()
	exists := cn.tap.existsSeen()
	data, err := cn.c.Select(mailbox, opts).Wait()
	done()
	if err := cn.fail("SELECT", mailbox, err); err != nil {
		return nil, err
	}
	if cn.tap.existsSeen() == exists {
		// go-imap reads a SELECT without EXISTS as an empty mailbox: every message the
		// replica knows there would seem expunged, every new one would go unseen.
		return nil, fail("SELECT", mailbox, fmt.Errorf("%w: no EXISTS in the answer (RFC 3501 §6.3.1 requires one)", errBadAnswer))
	}
	cn.settleSelect(prev, mailbox)
	cn.selected, cn.sel, cn.selMuts = mailbox, data, cn.mutations
	cn.selGen++
	if id := cn.tap.takeMailboxID(); id != "" && cn.has(capObjectID) {
		cn.selID = id
	}
	return data, nil
}

// settleSelect waits until go-imap has recorded the selection of mailbox that just
// completed (a new SelectedMailbox, replacing prev): its Wait returns before the client
// records it, and exists() read a moment too early gives the count of the mailbox selected
// before, or none after the server's [CLOSED] (RFC 7162 §3.2.11), against which a short
// FETCH answer would pass for complete.
func (cn *conn) settleSelect(prev *imapclient.SelectedMailbox, mailbox string) {
	for {
		mb := cn.c.Mailbox()
		if mb != nil && mb != prev && mb.Name == mailbox || cn.closed() {
			return
		}
		runtime.Gosched()
	}
}

// capObjectID is RFC 8474's capability, which go-imap v2.0.0-beta.8 does not name.
const capObjectID imap.Cap = "OBJECTID"

// mailboxID returns the MAILBOXID of the selected mailbox, or "" when the server offers
// none (go-imap does not parse it: the connection's tap reads it from SELECT's answer).
func (cn *conn) mailboxID() string { return cn.selID }

// reselect forces a fresh SELECT (to see the mailbox's current UIDNEXT and counts).
func (cn *conn) reselect(mailbox string) (*imap.SelectData, error) {
	cn.selected, cn.sel, cn.selID = "", nil, ""
	return cn.selectBox(mailbox)
}

// scanSelect selects mailbox for its scan: it keeps the current selection when that is of
// mailbox and nothing was sent since that may have changed the server's mail (the round's
// early SELECT of INBOX, selectInboxFirst), and selects afresh otherwise, to see the
// counters after the round's own changes. What others changed in between is seen by the
// next round, as what they change just after a SELECT is.
func (cn *conn) scanSelect(mailbox string) (*imap.SelectData, error) {
	if cn.unchangedSelection(mailbox) {
		return cn.sel, nil
	}
	return cn.reselect(mailbox)
}

// unchangedSelection reports whether mailbox is selected and nothing was sent since its
// SELECT that may have changed the server's mail.
func (cn *conn) unchangedSelection(mailbox string) bool {
	return cn.selected == mailbox && cn.sel != nil && cn.selMuts == cn.mutations
}

// fetch runs a UID FETCH and collects its results, within the engine's size limit: a
// message whose RFC822.SIZE is over MaxMessageSize fails the command (asked with the
// headers, before any body is fetched), and a body literal announced over it closes the
// connection instead of being read; either error names the mailbox and UID. The answer's
// literals together may hold MaxMessageSize and two batches of bodies (batchBytes): a
// server that sends more (a header asked of each message answered with a body, say) is
// refused, whatever its RFC822.SIZE said.
func (cn *conn) fetch(mailbox string, uids imap.UIDSet, opts *imap.FetchOptions) ([]*imapclient.FetchMessageBuffer, error) {
	fs := cn.fetchStream(mailbox, uids, opts)
	fs.collect = true
	var out []*imapclient.FetchMessageBuffer
	for {
		buf, err := fs.next()
		if err != nil {
			return nil, err
		}
		if buf == nil {
			break
		}
		out = append(out, buf)
	}
	if err := fs.close(); err != nil {
		return nil, err
	}
	return out, nil
}

// fetchStream is a UID FETCH whose messages are taken one at a time as they arrive, so
// that a download holds one body at a time however many it asks for. The command
// watchdog starts again with each message: a long download times out only when the
// server stops sending.
type fetchStream struct {
	cn      *conn
	mailbox string
	cmd     *imapclient.FetchCommand
	timer   *time.Timer
	big     error // the first message whose RFC822.SIZE is over the limit
	collect bool  // the caller keeps every message: held counts them all (fetch)
	held    int64 // literal bytes of the message (collect: of the answer) so far
}

// batchBytes is how many bytes of bodies (by RFC822.SIZE) one command asks for at most,
// beyond one message.
const batchBytes = 8 << 20

func (cn *conn) fetchStream(mailbox string, uids imap.UIDSet, opts *imap.FetchOptions) *fetchStream {
	cn.count("UID FETCH", false)
	opts.UID = true
	fs := &fetchStream{cn: cn, mailbox: mailbox}
	fs.timer = time.AfterFunc(cn.timeout, func() {
		cn.timedOut.Store(true)
		cn.close()
	})
	fs.cmd = cn.c.Fetch(uids, opts)
	return fs
}

// next returns the next message of the answer, or nil at its end (then call close). After
// an error the command is over and the connection closed.
func (fs *fetchStream) next() (*imapclient.FetchMessageBuffer, error) {
	msg := fs.cmd.Next()
	if msg == nil {
		return nil, nil
	}
	fs.timer.Reset(fs.cn.timeout)
	buf := &imapclient.FetchMessageBuffer{SeqNum: msg.SeqNum}
	if !fs.collect {
		fs.held = 0
	}
	for item := msg.Next(); item != nil; item = msg.Next() {
		switch it := item.(type) {
		case imapclient.FetchItemDataBodySection:
			b, err := fs.cn.readLiteral(fs.mailbox, buf, it.Literal, fs.limit()-fs.held)
			if errors.Is(err, errOverRoom) {
				what := "one message"
				if fs.collect {
					what = "one answer"
				}
				err = fail("UID FETCH", fs.mailbox, fmt.Errorf("%w: more than %d bytes of message text in %s; the connection was closed",
					errBadAnswer, fs.limit(), what))
			}
			if err != nil {
				fs.abort()
				return nil, err
			}
			fs.held += int64(len(b))
			buf.BodySection = append(buf.BodySection, imapclient.FetchBodySectionBuffer{Section: it.Section, Bytes: b})
		case imapclient.FetchItemDataFlags:
			buf.Flags = it.Flags
		case imapclient.FetchItemDataInternalDate:
			buf.InternalDate = it.Time
		case imapclient.FetchItemDataRFC822Size:
			buf.RFC822Size = it.Size
		case imapclient.FetchItemDataUID:
			buf.UID = it.UID
		case imapclient.FetchItemDataModSeq:
			buf.ModSeq = it.ModSeq
		}
	}
	if fs.big == nil && buf.RFC822Size > fs.cn.maxSize {
		fs.big = fs.cn.tooBig(fs.mailbox, buf, buf.RFC822Size)
	}
	return buf, nil
}

// limit is how many bytes the literals of one message may hold together (MaxMessageSize),
// or those of a collected answer (that and two batches, batchBytes).
func (fs *fetchStream) limit() int64 {
	if fs.collect {
		return fs.cn.maxSize + 2*batchBytes
	}
	return fs.cn.maxSize
}

// close ends the command and returns its outcome.
func (fs *fetchStream) close() error {
	defer fs.timer.Stop()
	if err := fs.cn.fail("UID FETCH", fs.mailbox, fs.cmd.Close()); err != nil {
		return err
	}
	return fs.big
}

// abort gives the command up: the connection is closed rather than the rest of the answer
// read, and the round ends with an error.
func (fs *fetchStream) abort() {
	fs.timer.Stop()
	// go-imap's Close waits for its reader, which may be waiting for this command's
	// consumer to take the next message: hang up first, then drain, then close.
	_ = fs.cn.tap.Close()
	_ = fs.cmd.Close()
	fs.cn.close()
}

// errOverRoom is readLiteral's error for a literal over its room (the caller says which).
var errOverRoom = errors.New("over the room left")

// readLiteral reads a body literal of at most MaxMessageSize bytes, and at most room.
func (cn *conn) readLiteral(mailbox string, buf *imapclient.FetchMessageBuffer, lit imap.LiteralReader, room int64) ([]byte, error) {
	if lit == nil {
		return nil, nil
	}
	// go-imap's reader waits until the literal is read: the network connection is closed
	// first, so that what is left of it ends at once.
	refuse := func(size int64) error {
		_ = cn.tap.Conn.Close()
		_, _ = io.Copy(io.Discard, lit)
		if size > cn.maxSize {
			return cn.tooBig(mailbox, buf, size)
		}
		return errOverRoom
	}
	n := lit.Size()
	if n > min(cn.maxSize, room) {
		return nil, refuse(n)
	}
	if n < 0 {
		// No announced size: read up to the limit, growing the buffer as it comes.
		limit := min(cn.maxSize, room)
		b, err := io.ReadAll(io.LimitReader(lit, limit+1))
		if err != nil {
			return nil, cn.fail("UID FETCH", mailbox, err)
		}
		if int64(len(b)) > limit {
			return nil, refuse(int64(len(b)))
		}
		return b, nil
	}
	// One buffer of the announced size (at most the limit): growing one as io.ReadAll does
	// holds up to twice the body and leaves the smaller copies as garbage.
	b := cn.bodyBuffer(int(n))
	if _, err := io.ReadFull(lit, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, cn.fail("UID FETCH", mailbox, err)
	}
	return b, nil
}

// maxSpare is the largest body buffer kept for reuse.
const maxSpare = 1 << 20

// bodyBuffer returns a buffer of n bytes for a body: the spare one when it is large
// enough, else a new one.
func (cn *conn) bodyBuffer(n int) []byte {
	cn.spareMu.Lock()
	defer cn.spareMu.Unlock()
	if b := cn.spare; cap(b) >= n {
		cn.spare = nil
		return b[:n]
	}
	return make([]byte, n)
}

// recycle hands back a body buffer nothing refers to any more (a body the store copied),
// for the next body: a first sync then leaves no body behind as garbage.
func (cn *conn) recycle(b []byte) {
	if cap(b) > maxSpare {
		return
	}
	cn.spareMu.Lock()
	defer cn.spareMu.Unlock()
	if cap(b) > cap(cn.spare) {
		cn.spare = b
	}
}

// tooBig is the error for a message over the size limit.
func (cn *conn) tooBig(mailbox string, buf *imapclient.FetchMessageBuffer, size int64) error {
	which := fmt.Sprintf("UID %d", buf.UID)
	if buf.UID == 0 {
		which = fmt.Sprintf("message %d (the server sent no UID before the body)", buf.SeqNum)
	}
	return fail("UID FETCH", mailbox, fmt.Errorf("%w: %s is %d bytes, over the limit of %d", ErrMessageTooBig, which, size, cn.maxSize))
}

// ErrMessageTooBig is returned (wrapped) for a message bigger than Options.MaxMessageSize.
var ErrMessageTooBig = errors.New("message too big")

// store runs a UID STORE +FLAGS or -FLAGS (a whole-set FLAGS only for a quirk) and returns
// the server's flags for the UIDs it reported as changed. A FETCH response that does not
// show the change (a notification of someone else's earlier change, arriving while the
// STORE runs) is not taken as its result: that UID's outcome is left unknown.
func (cn *conn) store(mailbox string, uids imap.UIDSet, op imap.StoreFlagsOp, flags []imap.Flag) (map[imap.UID]Flags, error) {
	cn.count("UID STORE", true)
	done := cn.watch()
	msgs, err := cn.c.Store(uids, &imap.StoreFlags{Op: op, Flags: flags}, nil).Collect()
	done()
	if err := cn.fail("UID STORE", mailbox, err); err != nil {
		return nil, err
	}
	want := parseIMAPFlags(flags)
	out := make(map[imap.UID]Flags, len(msgs))
	for _, m := range msgs {
		if m.UID == 0 || !uids.Contains(m.UID) {
			continue
		}
		got := parseIMAPFlags(m.Flags)
		ok := false
		switch op {
		case imap.StoreFlagsAdd:
			ok = got.Has(want)
		case imap.StoreFlagsDel:
			ok = got.Minus(want).Equal(got)
		default:
			ok = got.Equal(want)
		}
		if ok {
			out[m.UID] = got
		}
	}
	return out, nil
}

func (cn *conn) search(mailbox string, criteria *imap.SearchCriteria) ([]imap.UID, error) {
	cn.count("UID SEARCH", false)
	var opts *imap.SearchOptions
	if cn.has(imap.CapESearch) {
		opts = &imap.SearchOptions{ReturnAll: true}
	}
	want, gone := cn.exists(), cn.expunges.Load()
	done := cn.watch()
	data, err := cn.c.UIDSearch(criteria, opts).Wait()
	done()
	if err := cn.fail("UID SEARCH", mailbox, err); err != nil {
		return nil, err
	}
	// A set of UIDs is ranges (ESEARCH: "ALL 1:4294967295" is 14 bytes): counted first,
	// not expanded, as no mailbox holds more messages than it announced.
	room := cn.exists() + int(cn.expunges.Load()-gone)
	if set, ok := data.All.(imap.UIDSet); ok {
		if n, static := uidCount(set); !static || n > uint64(room) {
			listed := fmt.Sprintf("%d UIDs", n)
			if !static {
				listed = "UIDs up to *"
			}
			return nil, fail("UID SEARCH", mailbox, fmt.Errorf("%w: %s listed where the mailbox has %d messages (EXISTS)",
				errBadAnswer, listed, room))
		}
	}
	uids := data.AllUIDs()
	if reflect.DeepEqual(*criteria, imap.SearchCriteria{}) {
		// SEARCH ALL lists what is present: what it leaves out would be taken for expunged.
		if err := cn.complete(len(uids), want, gone); err != nil {
			return nil, fail("UID SEARCH", mailbox, err)
		}
	}
	return uids, nil
}

type goneKey struct {
	mailbox  string
	validity uint32
}

// expungedIn returns the UIDs of mailbox under validity that this session expunged itself
// (UID EXPUNGE).
func (cn *conn) expungedIn(mailbox string, validity uint32) map[uint32]bool {
	return cn.gone[goneKey{mailbox, validity}]
}

func (cn *conn) uidExpunge(mailbox string, uids imap.UIDSet) error {
	asked, _ := uids.Nums() // none for a set ending in *: nothing is noted then
	cn.count("UID EXPUNGE", true)
	done := cn.watch()
	seqs, err := cn.c.UIDExpunge(uids).Collect()
	done()
	if err := cn.fail("UID EXPUNGE", mailbox, err); err != nil {
		return err
	}
	if len(asked) > 0 && len(seqs) == len(asked) && cn.selected == mailbox && cn.sel != nil {
		// Every UID asked is gone (another client may have cleared \Deleted on one in
		// between: then not all are, and none is noted).
		k := goneKey{mailbox, cn.sel.UIDValidity}
		if cn.gone == nil {
			cn.gone = map[goneKey]map[uint32]bool{}
		}
		if cn.gone[k] == nil {
			cn.gone[k] = map[uint32]bool{}
		}
		for _, u := range asked {
			cn.gone[k][uint32(u)] = true
		}
	}
	return nil
}

func (cn *conn) plainExpunge(mailbox string) error {
	cn.count("EXPUNGE", true)
	done := cn.watch()
	_, err := cn.c.Expunge().Collect()
	done()
	if err := cn.fail("EXPUNGE", mailbox, err); err != nil {
		return err
	}
	return nil
}

func (cn *conn) simple(name, mailbox string, mutating bool, cmd *imapclient.Command) error {
	cn.count(name, mutating)
	done := cn.watch()
	err := cmd.Wait()
	done()
	if err := cn.fail(name, mailbox, err); err != nil {
		return err
	}
	return nil
}

func (cn *conn) status(mailbox string) (*imap.StatusData, error) {
	cn.count("STATUS", false)
	done := cn.watch()
	data, err := cn.c.Status(mailbox, &imap.StatusOptions{UIDNext: true, UIDValidity: true, NumMessages: true}).Wait()
	done()
	if err := cn.fail("STATUS", mailbox, err); err != nil {
		return nil, err
	}
	return data, nil
}

func (cn *conn) append(mailbox string, raw []byte, flags []imap.Flag, date time.Time) (*imap.AppendData, error) {
	cn.count("APPEND", true)
	done := cn.watch()
	defer done()
	cmd := cn.c.Append(mailbox, int64(len(raw)), &imap.AppendOptions{Flags: flags, Time: date})
	if _, err := cmd.Write(raw); err != nil {
		_ = cmd.Close()
		return nil, cn.fail("APPEND", mailbox, err)
	}
	if err := cmd.Close(); err != nil {
		return nil, cn.fail("APPEND", mailbox, err)
	}
	data, err := cmd.Wait()
	if err := cn.fail("APPEND", mailbox, err); err != nil {
		return nil, err
	}
	return data, nil
}

func (cn *conn) move(mailbox string, uids imap.UIDSet, dest string) (*imapclient.MoveData, error) {
	if !cn.has(imap.CapMove) {
		return nil, fmt.Errorf("engine: internal: MOVE without the capability")
	}
	cn.count("UID MOVE", true)
	done := cn.watch()
	data, err := cn.c.Move(uids, dest).Wait()
	done()
	if err := cn.fail("UID MOVE", mailbox, err); err != nil {
		return nil, err
	}
	return data, nil
}

func (cn *conn) copy(mailbox string, uids imap.UIDSet, dest string) (*imap.CopyData, error) {
	cn.count("UID COPY", true)
	done := cn.watch()
	data, err := cn.c.Copy(uids, dest).Wait()
	done()
	if err := cn.fail("UID COPY", mailbox, err); err != nil {
		return nil, err
	}
	return data, nil
}

// list lists every mailbox, with its special use where the server offers SPECIAL-USE and,
// where it offers LIST-STATUS (RFC 5819) and CONDSTORE, each mailbox's counters
// (ListData.Status), with which a round can tell an unchanged mailbox without selecting it.
func (cn *conn) list() ([]*imap.ListData, error) {
	cn.count("LIST", false)
	opts := &imap.ListOptions{ReturnSpecialUse: cn.has(imap.CapSpecialUse)}
	if cn.listStatus() {
		opts.ReturnStatus = &imap.StatusOptions{UIDValidity: true, UIDNext: true, NumMessages: true, HighestModSeq: true}
	}
	done := cn.watch()
	data, err := cn.c.List("", "*", opts).Collect()
	done()
	if err := cn.fail("LIST", "", err); err != nil {
		return nil, err
	}
	return data, nil
}

// listStatus reports whether list asks for each mailbox's counters: HIGHESTMODSEQ is what
// tells a mailbox whose flags changed, so without CONDSTORE the counters would prove nothing.
func (cn *conn) listStatus() bool {
	return (cn.has(imap.CapListStatus) || cn.has(imap.CapIMAP4rev2)) && cn.has(imap.CapCondStore)
}

// openOnServer reports whether the server's session has mailbox selected: a STATUS of the
// selected mailbox may lag behind what the session has been told (RFC 3501 §6.3.10).
func (cn *conn) openOnServer(mailbox string) bool {
	mb := cn.c.Mailbox()
	return mb != nil && (mb.Name == mailbox || strings.EqualFold(mb.Name, "INBOX") && strings.EqualFold(mailbox, "INBOX"))
}

// fetchChanged fetches the flags and internal dates of messages changed since modseq
// (CONDSTORE); the dates let checkReused see a UID given to other content. Not their
// sizes: Dovecot finds a Maildir message's size through its file name, so it reads the
// mailbox's whole UID list to answer (1,000 changed messages of 50,000: 146 ms with
// RFC822.SIZE, 6-7 ms with FLAGS and INTERNALDATE).
func (cn *conn) fetchChanged(mailbox string, modseq uint64) ([]*imapclient.FetchMessageBuffer, error) {
	return cn.fetch(mailbox, imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}},
		&imap.FetchOptions{Flags: true, InternalDate: true, ChangedSince: modseq})
}

// fetchFlags runs UID FETCH 1:* (FLAGS) and returns the flags by UID (about hint of them,
// mostly below uidNext: see uidMap), streaming the responses instead of buffering them;
// the connection's tap reads the plain answers itself (flagtap.go).
// The answer must hold every message the mailbox had
// when the command was sent, less those expunged meanwhile: a message left out would be
// taken for expunged, so a short answer is an error, not a list of expunges. (go-imap gives
// the command each UID once, so two messages claiming one UID make the answer short.)
// With ident set, each message's RFC822.SIZE is asked too and handed to ident (see
// checkReused); not its INTERNALDATE, whose parsing would make a no-change round on 50,000
// messages a third slower.
func (cn *conn) fetchFlags(mailbox string, uidNext uint32, hint int, ident func(uid, size uint32, date int64)) (uidMap[Flags], error) {
	cn.count("UID FETCH", false)
	done := cn.watch()
	defer done()
	want, gone := cn.exists(), cn.expunges.Load()
	out := newUIDMap[Flags](uidNext, hint)
	var mu sync.Mutex // out and ident: the tap's answers come on go-imap's reader
	note := func(uid, size uint32, flags Flags) {
		out.set(uid, flags)
		if ident != nil {
			ident(uid, size, 0)
		}
	}
	cn.tap.takeFlags(func(a flagAnswer) bool {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := out.get(a.uid); dup {
			return false
		}
		note(a.uid, a.size, a.flags)
		return true
	})
	defer cn.tap.stopTaking()
	opts := &imap.FetchOptions{UID: true, Flags: true, RFC822Size: ident != nil}
	cmd := cn.c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, opts)
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var uid imap.UID
		var flags Flags
		var size uint32
		hasFlags := false
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataFlags:
				flags, hasFlags = parseIMAPFlags(it.Flags), true
			case imapclient.FetchItemDataRFC822Size:
				size = uint32(it.Size)
			}
		}
		if uid == 0 {
			continue
		}
		mu.Lock()
		if _, taken := out.get(uint32(uid)); !taken {
			note(uint32(uid), size, flags)
		} else if hasFlags {
			// The tap took this UID's first answer: go-imap would have given the command
			// that one, and this second one to the unasked updates.
			cn.notes.put(uint32(uid), flags)
		}
		mu.Unlock()
	}
	err := cmd.Close()
	cn.tap.stopTaking() // returns once no answer is being offered: out is the scan's alone
	if err := cn.fail("UID FETCH", mailbox, err); err != nil {
		return uidMap[Flags]{}, err
	}
	if err := cn.complete(out.len(), want, gone); err != nil {
		return uidMap[Flags]{}, fail("UID FETCH", mailbox, err)
	}
	return out, nil
}

// uidCount returns how many UIDs set holds, without expanding it; static is false for a
// set that ends in "*".
func uidCount(set imap.UIDSet) (n uint64, static bool) {
	for _, r := range set {
		if r.Start == 0 || r.Stop == 0 {
			return 0, false
		}
		n += uint64(max(r.Start, r.Stop)-min(r.Start, r.Stop)) + 1
	}
	return n, true
}

// uint32s converts UIDs to the engine's uint32s.
func uint32s(uids []imap.UID) []uint32 {
	out := make([]uint32, len(uids))
	for i, u := range uids {
		out[i] = uint32(u)
	}
	return out
}

// exists returns the selected mailbox's message count as the server last announced it.
func (cn *conn) exists() int {
	if mb := cn.c.Mailbox(); mb != nil {
		return int(mb.NumMessages)
	}
	return 0
}

// complete checks that an answer about every message of the selected mailbox (FETCH 1:*,
// SEARCH ALL) covers got messages of the want it had before the command, less the expunges
// announced since gone was read.
func (cn *conn) complete(got, want int, gone int64) error {
	want -= int(cn.expunges.Load() - gone)
	if got < want {
		return fmt.Errorf("%w: %d messages where the mailbox has %d (EXISTS); the rest are not taken for expunged",
			errBadAnswer, got, want)
	}
	return nil
}

// readBuffer is how much a connection reads from the network at a time.
const readBuffer = 64 << 10

// bufferedConn reads the network readBuffer bytes at a time. go-imap reads through a
// buffer of 4 KiB and straight into a literal's buffer, a system call each: three or
// more per message of a first sync, 10% of the engine's processor time there.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func bufferReads(c net.Conn) *bufferedConn {
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBuffer)}
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// maxLine is the longest line (without its literals) the engine reads from a server: far
// above any answer it asks for (a UID SEARCH answer without ESEARCH lists 900,000 UIDs of
// 8 digits in 8 MiB), and the bound on what go-imap holds of one line, which it reads
// whole, however long (an atom byte by byte: its growing buffers come to about six times
// the line).
const maxLine = 8 << 20

// spareResponses is how many untagged responses one command's answer may hold beyond twice
// the largest mailbox the server announced on the connection (EXISTS): an answer about
// each message (FETCH 1:*, EXPUNGE) has one a message, a LIST-STATUS two a mailbox.
const spareResponses = 100_000

// responseBytes is how many bytes of lines (literals left out) one command's answer may
// hold for each response it may hold, beyond one line of maxLine: a flag scan's line
// takes 40-100.
const responseBytes = 256

// tapConn watches the server's lines, skipping literals, for an untagged BYE, whose text
// go-imap does not keep, and takes the answers of a flag scan out of the stream (flagtap.go).
// It hangs up on a line longer than maxLine and on a literal announced over maxLiteral
// (the engine's MaxMessageSize), wherever they come: go-imap would read either whole. It
// also hangs up on a command's answer of more untagged responses than its mailboxes can
// explain (responseRoom), or of more bytes: go-imap keeps what most of them say until the
// command completes (a LIST's mailboxes, a SEARCH's UIDs), and a flag scan keeps each UID.
type tapConn struct {
	net.Conn
	mu          sync.Mutex
	line        []byte // the start of the current line
	lineLen     int64  // the current line's length so far, literals left out
	tail        []byte // its last bytes, for a literal's announcement
	skip        int64  // literal bytes still to pass
	literal     bool   // the last line announced a literal: the next one continues its response
	maxLiteral  int64  // the largest literal read (0: no limit)
	refused     error  // why the tap hung up, if it did
	existsLines int64  // "* N EXISTS" lines seen
	maxExists   int64  // the largest N of those
	responses   int64  // untagged responses since the last tagged one
	answerBytes int64  // the bytes of their lines, literals left out
	byeText     string
	byeSeen     bool
	boxID       string // the last * OK [MAILBOXID (…)] seen

	// While a flag scan runs (takeFlags), and until what it held back is passed on.
	taking  atomic.Bool // Read goes through readTaking; set under mu
	taker   *flagTaker
	held    []byte // the start of a line not yet complete
	out     []byte // bytes read and passed on; Read has returned those before outPos
	outPos  int
	scratch []byte
	readErr error // the network's error, returned once out is empty
	passing bool  // the rest of a line too long to take passes
}

func (t *tapConn) Read(p []byte) (int, error) {
	if t.taking.Load() {
		return t.readTaking(p)
	}
	n, err := t.Conn.Read(p)
	t.mu.Lock()
	if t.taker == nil {
		t.scanLocked(p[:n])
		t.mu.Unlock()
		return n, err
	}
	// A flag scan began while this read waited: what it read goes through the filter.
	t.filtered(p[:n], err)
	t.mu.Unlock()
	return t.readTaking(p)
}

func (t *tapConn) scan(p []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.scanLocked(p)
}

func (t *tapConn) scanLocked(p []byte) {
	for len(p) > 0 {
		if t.skip > 0 {
			k := int64(len(p))
			if k > t.skip {
				k = t.skip
			}
			t.skip -= k
			p = p[k:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			i = len(p)
		}
		part := p[:i]
		if t.lineLen += int64(len(part)); t.lineLen > maxLine {
			t.refuse(fmt.Errorf("%w: a line longer than %d bytes", errBadAnswer, maxLine))
		}
		t.answerBytes += int64(len(part))
		if limit := maxLine + responseBytes*t.responseRoom(); t.answerBytes > limit {
			t.refuse(fmt.Errorf("%w: more than %d bytes of untagged responses to one command", errBadAnswer, limit))
		}
		if room := 512 - len(t.line); room > 0 {
			t.line = append(t.line, part[:min(room, len(part))]...)
		}
		t.tail = append(t.tail, part[max(0, len(part)-32):]...)
		if len(t.tail) > 32 {
			t.tail = append(t.tail[:0], t.tail[len(t.tail)-32:]...)
		}
		if i == len(p) {
			return
		}
		p = p[i+1:]
		t.endLine()
	}
}

// endLine looks at a complete line: a BYE is kept (and hangs up); a literal's
// announcement skips it. It runs for every line the server sends (a FETCH 1:* answer is
// one per message), so it allocates only for the lines it keeps.
func (t *tapConn) endLine() {
	line := bytes.TrimRight(t.line, "\r")
	if !t.literal && len(line) > 0 { // the line begins a response
		switch line[0] {
		case '*':
			if t.responses++; t.responses > t.responseRoom() {
				t.refuse(fmt.Errorf("%w: more than %d untagged responses to one command (twice the largest mailbox, %d messages, and %d)",
					errBadAnswer, t.responseRoom(), t.maxExists, spareResponses))
			}
		case '+':
		default: // a command's completion
			t.responses, t.answerBytes = 0, 0
		}
	}
	if len(line) >= 5 && bytes.EqualFold(line[:5], []byte("* BYE")) {
		t.byeText, t.byeSeen = strings.TrimSpace(string(line[5:])), true
		// The server is going away (RFC 3501 §7.1.5): whatever it sends after this
		// cannot make the command succeed (fail), so the engine hangs up at once rather
		// than wait for a close that a server may never make, and the command waiting
		// fails now, not when its watchdog gives up. What was read goes on to go-imap.
		_ = t.Conn.Close()
	}
	if n, ok := existsCount(line); ok {
		t.existsLines++
		t.maxExists = max(t.maxExists, n)
	}
	const idCode = "* OK [MAILBOXID ("
	if len(line) > len(idCode) && bytes.EqualFold(line[:len(idCode)], []byte(idCode)) {
		if id, _, ok := bytes.Cut(line[len(idCode):], []byte(")")); ok {
			t.boxID = string(id)
		}
	}
	tail := bytes.TrimRight(t.tail, "\r")
	t.literal = false
	if k := len(tail); k > 0 && tail[k-1] == '}' {
		if open := bytes.LastIndexByte(tail, '{'); open >= 0 {
			if n, err := strconv.ParseInt(strings.TrimSuffix(string(tail[open+1:k-1]), "+"), 10, 64); err == nil && n >= 0 {
				t.skip, t.literal = n, true
				if t.maxLiteral > 0 && n > t.maxLiteral {
					t.refuse(fmt.Errorf("%w: a literal of %d bytes, over the limit of %d (MaxMessageSize)", errBadAnswer, n, t.maxLiteral))
				}
			}
		}
	}
	t.line, t.tail, t.lineLen = t.line[:0], t.tail[:0], 0
}

// existsCount reads line as "* N EXISTS".
func existsCount(line []byte) (int64, bool) {
	const suffix = " EXISTS"
	if len(line) < len("* 0")+len(suffix) || line[0] != '*' || line[1] != ' ' ||
		!bytes.EqualFold(line[len(line)-len(suffix):], []byte(suffix)) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(line[2:len(line)-len(suffix)]), 10, 32)
	return int64(n), err == nil
}

// responseRoom is how many untagged responses one command's answer may hold. t.mu is held.
func (t *tapConn) responseRoom() int64 {
	return 2*t.maxExists + spareResponses
}

// existsSeen returns how many "* N EXISTS" lines the server has sent.
func (t *tapConn) existsSeen() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.existsLines
}

// refuse hangs up because of what the server sent: what was read goes on to go-imap, whose
// command then fails, and fail reports why (a body literal's own check, with its UID, is
// readLiteral's). t.mu is held.
func (t *tapConn) refuse(why error) {
	if t.refused == nil {
		t.refused = fmt.Errorf("%w; the connection was closed", why)
		_ = t.Conn.Close()
	}
}

// refusal returns why the tap hung up, or nil.
func (t *tapConn) refusal() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.refused
}

// takeMailboxID returns the MAILBOXID seen last and forgets it.
func (t *tapConn) takeMailboxID() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	id := t.boxID
	t.boxID = ""
	return id
}

// bye returns the text of the BYE the server sent, if any.
func (t *tapConn) bye() (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byeText, t.byeSeen
}

// parseIMAPFlags is ParseFlags for flags as go-imap returns them, without allocating when
// there are no keywords.
func parseIMAPFlags(fl []imap.Flag) Flags {
	var f Flags
	var kws []string
	for _, x := range fl {
		n := string(x)
		if strings.HasPrefix(n, `\`) {
			f.System |= systemFlag(n)
			continue
		}
		if n != "" {
			kws = append(kws, n)
		}
	}
	if kws != nil {
		f.Keywords = joinKeywords(kws)
	}
	return f
}
