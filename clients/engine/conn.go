package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
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
	condstore bool
	notes     *flagNotes // flag updates the server sent unasked

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
	n.mu.Lock()
	if n.flags != nil {
		n.flags[uint32(uid)] = parseIMAPFlags(flags)
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
var errCommandTimeout = errors.New("engine: command timed out")

func (e *Engine) dial(ctx context.Context, stats *clients.SyncStats) (*conn, error) {
	if e.opts.Dial == nil {
		return nil, fmt.Errorf("engine: no Dial function")
	}
	nc, err := e.opts.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("engine: dial: %w", err)
	}
	notes := &flagNotes{}
	c := imapclient.New(nc, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Fetch: notes.fetch,
	}})
	cn := &conn{c: c, timeout: e.opts.CommandTimeout, stats: stats, notes: notes}
	cn.bind(ctx)
	done := cn.watch()
	err = c.WaitGreeting()
	done()
	if err != nil {
		cn.close()
		return nil, fmt.Errorf("engine: greeting: %w", err)
	}
	cn.count("LOGIN", false)
	done = cn.watch()
	err = c.Login(e.opts.Username, e.opts.Password).Wait()
	done()
	if err != nil {
		cn.close()
		return nil, fmt.Errorf("engine: LOGIN: %w", err)
	}
	caps := c.Caps()
	if len(caps) == 0 || caps.Has(imap.CapIMAP4rev1) && len(caps) == 1 {
		cn.count("CAPABILITY", false)
		done = cn.watch()
		caps, err = c.Capability().Wait()
		done()
		if err != nil {
			cn.close()
			return nil, fmt.Errorf("engine: CAPABILITY: %w", err)
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
	t := time.AfterFunc(cn.timeout, cn.close)
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
	}
}

func (cn *conn) has(c imap.Cap) bool { return cn.caps.Has(c) }

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
	cn.selected, cn.sel = "", nil
	cn.count("SELECT", false)
	done := cn.watch()
	opts := &imap.SelectOptions{CondStore: cn.has(imap.CapCondStore)}
	data, err := cn.c.Select(mailbox, opts).Wait()
	done()
	if err != nil {
		return nil, fail("SELECT", mailbox, err)
	}
	cn.selected, cn.sel = mailbox, data
	return data, nil
}

// reselect forces a fresh SELECT (to see the mailbox's current UIDNEXT and counts).
func (cn *conn) reselect(mailbox string) (*imap.SelectData, error) {
	cn.selected, cn.sel = "", nil
	return cn.selectBox(mailbox)
}

// fetch runs a UID FETCH and collects its results.
func (cn *conn) fetch(mailbox string, uids imap.UIDSet, opts *imap.FetchOptions) ([]*imapclient.FetchMessageBuffer, error) {
	cn.count("UID FETCH", false)
	done := cn.watch()
	opts.UID = true
	msgs, err := cn.c.Fetch(uids, opts).Collect()
	done()
	if err != nil {
		return nil, fail("UID FETCH", mailbox, err)
	}
	return msgs, nil
}

// store runs a UID STORE +FLAGS or -FLAGS (a whole-set FLAGS only for a quirk) and returns
// the server's flags for the UIDs it reported as changed. A FETCH response that does not
// show the change (a notification of someone else's earlier change, arriving while the
// STORE runs) is not taken as its result: that UID's outcome is left unknown.
func (cn *conn) store(mailbox string, uids imap.UIDSet, op imap.StoreFlagsOp, flags []imap.Flag) (map[imap.UID]Flags, error) {
	cn.count("UID STORE", true)
	done := cn.watch()
	msgs, err := cn.c.Store(uids, &imap.StoreFlags{Op: op, Flags: flags}, nil).Collect()
	done()
	if err != nil {
		return nil, fail("UID STORE", mailbox, err)
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
			ok = got.Minus(want) == got
		default:
			ok = got == want
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
	done := cn.watch()
	data, err := cn.c.UIDSearch(criteria, opts).Wait()
	done()
	if err != nil {
		return nil, fail("UID SEARCH", mailbox, err)
	}
	return data.AllUIDs(), nil
}

func (cn *conn) uidExpunge(mailbox string, uids imap.UIDSet) error {
	cn.count("UID EXPUNGE", true)
	done := cn.watch()
	_, err := cn.c.UIDExpunge(uids).Collect()
	done()
	if err != nil {
		return fail("UID EXPUNGE", mailbox, err)
	}
	return nil
}

func (cn *conn) plainExpunge(mailbox string) error {
	cn.count("EXPUNGE", true)
	done := cn.watch()
	_, err := cn.c.Expunge().Collect()
	done()
	if err != nil {
		return fail("EXPUNGE", mailbox, err)
	}
	return nil
}

func (cn *conn) simple(name, mailbox string, mutating bool, cmd *imapclient.Command) error {
	cn.count(name, mutating)
	done := cn.watch()
	err := cmd.Wait()
	done()
	if err != nil {
		return fail(name, mailbox, err)
	}
	return nil
}

func (cn *conn) status(mailbox string) (*imap.StatusData, error) {
	cn.count("STATUS", false)
	done := cn.watch()
	data, err := cn.c.Status(mailbox, &imap.StatusOptions{UIDNext: true, UIDValidity: true, NumMessages: true}).Wait()
	done()
	if err != nil {
		return nil, fail("STATUS", mailbox, err)
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
		return nil, fail("APPEND", mailbox, err)
	}
	if err := cmd.Close(); err != nil {
		return nil, fail("APPEND", mailbox, err)
	}
	data, err := cmd.Wait()
	if err != nil {
		return nil, fail("APPEND", mailbox, err)
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
	if err != nil {
		return nil, fail("UID MOVE", mailbox, err)
	}
	return data, nil
}

func (cn *conn) copy(mailbox string, uids imap.UIDSet, dest string) (*imap.CopyData, error) {
	cn.count("UID COPY", true)
	done := cn.watch()
	data, err := cn.c.Copy(uids, dest).Wait()
	done()
	if err != nil {
		return nil, fail("UID COPY", mailbox, err)
	}
	return data, nil
}

func (cn *conn) list() ([]*imap.ListData, error) {
	cn.count("LIST", false)
	var opts *imap.ListOptions
	if cn.has(imap.CapSpecialUse) {
		opts = &imap.ListOptions{ReturnSpecialUse: true}
	}
	done := cn.watch()
	data, err := cn.c.List("", "*", opts).Collect()
	done()
	if err != nil {
		return nil, fail("LIST", "", err)
	}
	return data, nil
}

// fetchChanged fetches the flags of messages changed since modseq (CONDSTORE).
func (cn *conn) fetchChanged(mailbox string, modseq uint64) ([]*imapclient.FetchMessageBuffer, error) {
	return cn.fetch(mailbox, imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}},
		&imap.FetchOptions{Flags: true, ChangedSince: modseq})
}

// fetchFlags runs UID FETCH 1:* (FLAGS) and returns the flags by UID, streaming the
// responses instead of buffering them.
func (cn *conn) fetchFlags(mailbox string, hint int) (map[uint32]Flags, error) {
	cn.count("UID FETCH", false)
	done := cn.watch()
	defer done()
	out := make(map[uint32]Flags, hint)
	cmd := cn.c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true})
	for msg := cmd.Next(); msg != nil; msg = cmd.Next() {
		var uid imap.UID
		var flags Flags
		for item := msg.Next(); item != nil; item = msg.Next() {
			switch it := item.(type) {
			case imapclient.FetchItemDataUID:
				uid = it.UID
			case imapclient.FetchItemDataFlags:
				flags = parseIMAPFlags(it.Flags)
			}
		}
		if uid != 0 {
			out[uint32(uid)] = flags
		}
	}
	if err := cmd.Close(); err != nil {
		return nil, fail("UID FETCH", mailbox, err)
	}
	return out, nil
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
