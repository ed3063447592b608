package fakeserver

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"
)

// session is the backend of one IMAP connection. Apart from the fields marked otherwise,
// it is used only by the connection's goroutine (and by its IDLE goroutine while the
// connection goroutine waits for DONE).
type session struct {
	srv  *Server
	id   uint64
	conn *imapserver.Conn
	tc   *trackedConn
	caps imap.CapSet // the connection's capability set, shared with its imapserver.Server
	gen  uint64      // the server capability generation caps reflects

	user     *user
	userName string // guarded by srv.mu, for Drop

	mbox     *mailbox // selected mailbox; its data is guarded by user.mu
	readOnly bool
	view     []uint32 // UIDs this client knows about, ascending: its sequence numbers

	qmu    sync.Mutex
	queue  []update // pending notifications for the selected mailbox
	gone   string   // non-empty: the selected mailbox vanished, why
	notify chan struct{}
	idle   idleState // guarded by qmu
	// stamps are the dates of the update lines written in IDLE that PushStamp has not yet
	// handed out, in writing order; heldUntil is when the idle-every mode last let held
	// lines go (0 otherwise). Guarded by qmu; only with a logical clock (SetClock).
	stamps    []time.Duration
	heldUntil time.Duration

	written int // updates written by flush; only the session's goroutine uses it
}

var (
	_ imapserver.Session            = (*session)(nil)
	_ imapserver.SessionMove        = (*session)(nil)
	_ imapserver.SessionNamespace   = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
)

type updateKind int

const (
	updateExists updateKind = iota
	updateExpunge
	updateFlags
)

// update is one change of the selected mailbox that a session has not yet been told about.
type update struct {
	kind  updateKind
	uid   uint32
	flags []string
	at    time.Duration // when the change was made, on the logical clock (SetClock)
}

func (s *Server) newSession(c *imapserver.Conn, tc *trackedConn, caps imap.CapSet, gen uint64) *session {
	s.mu.Lock()
	s.nextSession++
	sess := &session{srv: s, id: s.nextSession, conn: c, tc: tc, caps: caps, gen: gen, notify: make(chan struct{}, 1)}
	if tc != nil {
		s.closedAddrs.Delete(tc.RemoteAddr().String()) // a port used again
	}
	s.byID[sess.id] = sess
	s.mu.Unlock()
	return sess
}

// push queues an update. Callers hold the user's lock.
func (s *session) push(u update) {
	u.at, _ = s.srv.now()
	s.qmu.Lock()
	s.queue = append(s.queue, u)
	s.qmu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// supersede drops the queued flag updates of the messages in out: the response about to
// be written reports their current flags, and an older update written after it would
// contradict it. Callers hold the user's lock, so every update queued so far is older.
func (s *session) supersede(out []fetched) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	flags := false
	for _, u := range s.queue {
		flags = flags || u.kind == updateFlags
	}
	if !flags {
		return
	}
	reported := make(map[uint32]bool, len(out))
	for _, f := range out {
		reported[f.uid] = true
	}
	q := make([]update, 0, len(s.queue))
	for _, u := range s.queue {
		if u.kind != updateFlags || !reported[u.uid] {
			q = append(q, u)
		}
	}
	s.queue = q
}

// markGone detaches the session from its selected mailbox. Callers hold the user's lock.
func (s *session) markGone(reason string) {
	s.qmu.Lock()
	s.gone = reason
	s.queue = nil
	s.qmu.Unlock()
}

// bye disconnects sessions with an untagged BYE, in the background.
func (srv *Server) bye(sessions []*session, text string) {
	for _, s := range sessions {
		if s.tc != nil {
			srv.closedAddrs.Store(s.tc.RemoteAddr().String(), true)
		}
		srv.byes.Add(1)
		go func() {
			defer srv.byes.Done()
			if err := s.conn.Bye(text); err != nil {
				srv.logger.Debug("fakeserver: bye", "session", s.id, "err", err)
			}
		}()
	}
}

// begin runs before every command that reaches the backend: it picks up capability
// changes and consumes an injected failure.
func (s *session) begin(cmd string) error {
	s.syncCaps()
	return s.srv.takeFail(s, cmd)
}

// syncCaps applies capability switches made since the connection's last command.
func (s *session) syncCaps() {
	if s.gen == s.srv.capsGenA.Load() {
		return
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.gen == s.srv.capsGen {
		return
	}
	set, gen := s.srv.capSetLocked()
	for c := range s.caps {
		if _, ok := set[c]; !ok {
			delete(s.caps, c)
		}
	}
	for c := range set {
		s.caps[c] = struct{}{}
	}
	s.gen = gen
}

func (s *session) has(c imap.Cap) bool {
	if c == imap.CapIdle {
		return s.srv.capOn(imap.CapIdle)
	}
	_, ok := s.caps[c]
	return ok
}

func errNo(code imap.ResponseCode, format string, args ...any) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: fmt.Sprintf(format, args...)}
}

func errBad(format string, args ...any) error {
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: fmt.Sprintf(format, args...)}
}

func errNoMailbox(name string) error {
	return errNo(imap.ResponseCodeNonExistent, "No such mailbox %q", name)
}

// Close ends the session.
func (s *session) Close() error {
	if s.user != nil {
		s.user.mu.Lock()
		if s.mbox != nil {
			delete(s.mbox.sessions, s)
		}
		s.user.mu.Unlock()
	}
	s.srv.mu.Lock()
	delete(s.srv.byID, s.id)
	s.srv.mu.Unlock()
	s.srv.sessions.Done()
	return nil
}

// AppendLimit returns the largest message APPEND accepts.
func (s *session) AppendLimit() uint32 { return s.srv.maxLit }

// Login authenticates the session.
func (s *session) Login(username, password string) error {
	if err := s.begin("LOGIN"); err != nil {
		return err
	}
	return s.login(username, password)
}

// AuthenticateMechanisms lists PLAIN, the one mechanism the fake server offers.
func (s *session) AuthenticateMechanisms() []string { return []string{sasl.Plain} }

// Authenticate starts AUTHENTICATE. Its injected failure is taken here, before go-imap
// holds the connection's response encoder for the SASL exchange: a BYE sent from inside
// the exchange (as Login's would be) would wait for that encoder forever.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	if err := s.begin("AUTHENTICATE"); err != nil {
		return nil, err
	}
	if mech != sasl.Plain {
		return nil, errNo("", "SASL mechanism not supported")
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return errNo(imap.ResponseCodeAuthorizationFailed, "SASL identity not supported")
		}
		return s.login(username, password)
	}), nil
}

func (s *session) login(username, password string) error {
	u, err := s.srv.lookupUser(username)
	if err != nil || u.password != password {
		return imapserver.ErrAuthFailed
	}
	s.user = u
	s.srv.mu.Lock()
	s.userName = u.name
	s.srv.mu.Unlock()
	s.srv.record(Event{User: u.name, Session: s.id, Kind: "login"})
	return nil
}

// Namespace reports the single personal namespace.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	if err := s.begin("NAMESPACE"); err != nil {
		return nil, err
	}
	if !s.has(imap.CapNamespace) {
		return nil, errBad("Unknown command")
	}
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: Delimiter}}}, nil
}

// Select selects a mailbox and starts this session's view of it.
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	cmd := "SELECT"
	if options.ReadOnly {
		cmd = "EXAMINE"
	}
	if err := s.begin(cmd); err != nil {
		return nil, err
	}
	s.detach()
	name = canonicalName(name)
	u := s.user
	u.mu.Lock()
	defer u.mu.Unlock()
	m, ok := u.mailboxes[name]
	if !ok {
		return nil, errNoMailbox(name)
	}
	if m.noSelect {
		return nil, errNo(imap.ResponseCodeNonExistent, "Mailbox %q is not selectable", name)
	}
	s.mbox = m
	s.readOnly = options.ReadOnly
	s.view = make([]uint32, len(m.msgs))
	var firstUnseen uint32
	for i, msg := range m.msgs {
		s.view[i] = msg.uid
		if firstUnseen == 0 && !hasFlag(msg.flags, `\Seen`) {
			firstUnseen = uint32(i + 1)
		}
	}
	s.qmu.Lock()
	s.queue, s.gone = nil, ""
	s.qmu.Unlock()
	m.sessions[s] = struct{}{}
	perm := []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft, imap.FlagWildcard}
	if s.readOnly {
		perm = nil
	}
	return &imap.SelectData{
		Flags:             []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft},
		PermanentFlags:    perm,
		NumMessages:       uint32(len(m.msgs)),
		FirstUnseenSeqNum: firstUnseen,
		UIDNext:           imap.UID(m.uidNext),
		UIDValidity:       m.uidValidity,
	}, nil
}

// detach leaves the selected mailbox, if any.
func (s *session) detach() {
	if s.mbox == nil {
		return
	}
	s.user.mu.Lock()
	delete(s.mbox.sessions, s)
	s.user.mu.Unlock()
	s.mbox, s.view, s.readOnly = nil, nil, false
	s.qmu.Lock()
	s.queue, s.gone = nil, ""
	s.qmu.Unlock()
}

// Unselect leaves the selected mailbox (UNSELECT, and CLOSE after its expunge).
func (s *session) Unselect() error {
	s.syncCaps()
	s.detach()
	return nil
}

// selected checks, with the user's lock held, that the selected mailbox still exists.
func (s *session) selected() error {
	if s.mbox == nil {
		return errBad("No mailbox selected")
	}
	s.qmu.Lock()
	gone := s.gone
	s.qmu.Unlock()
	if gone != "" {
		return errNo(imap.ResponseCodeNonExistent, "%s", gone)
	}
	return nil
}

// Create creates a mailbox and any missing parents.
func (s *session) Create(name string, options *imap.CreateOptions) error {
	if err := s.begin("CREATE"); err != nil {
		return err
	}
	var use []string
	if options != nil {
		for _, a := range options.SpecialUse {
			use = append(use, string(a))
		}
	}
	return s.srv.create(s.user, canonicalName(name), use, s.id)
}

// Delete deletes a mailbox.
func (s *session) Delete(name string) error {
	if err := s.begin("DELETE"); err != nil {
		return err
	}
	return s.srv.deleteMailbox(s.user, canonicalName(name), s)
}

// Rename renames a mailbox and its children.
func (s *session) Rename(oldName, newName string, options *imap.RenameOptions) error {
	if err := s.begin("RENAME"); err != nil {
		return err
	}
	return s.srv.rename(s.user, canonicalName(oldName), canonicalName(newName), s)
}

// Subscribe adds a mailbox to the subscriptions.
func (s *session) Subscribe(name string) error {
	if err := s.begin("SUBSCRIBE"); err != nil {
		return err
	}
	return s.subscribe(canonicalName(name), true)
}

// Unsubscribe removes a mailbox from the subscriptions.
func (s *session) Unsubscribe(name string) error {
	if err := s.begin("UNSUBSCRIBE"); err != nil {
		return err
	}
	return s.subscribe(canonicalName(name), false)
}

func (s *session) subscribe(name string, on bool) error {
	u := s.user
	u.mu.Lock()
	defer u.mu.Unlock()
	m, ok := u.mailboxes[name]
	if !ok {
		return errNoMailbox(name)
	}
	m.subscribed = on
	kind := "subscribe"
	if !on {
		kind = "unsubscribe"
	}
	s.srv.record(Event{User: u.name, Session: s.id, Kind: kind, Mailbox: name})
	return nil
}

// List lists mailboxes (LIST, LSUB, LIST-EXTENDED, LIST-STATUS, SPECIAL-USE).
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if err := s.begin("LIST"); err != nil {
		return err
	}
	if len(patterns) == 0 || (len(patterns) == 1 && patterns[0] == "") {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: Delimiter})
	}
	specialUse := s.has(imap.CapSpecialUse)
	u := s.user
	u.mu.Lock()
	names := make([]string, 0, len(u.mailboxes))
	for n := range u.mailboxes {
		names = append(names, n)
	}
	slices.Sort(names)
	var out []*imap.ListData
	for _, n := range names {
		m := u.mailboxes[n]
		match := false
		for _, p := range patterns {
			if imapserver.MatchList(n, Delimiter, ref, p) {
				match = true
				break
			}
		}
		if !match || (options.SelectSubscribed && !m.subscribed) || (options.SelectSpecialUse && len(m.specialUse) == 0) {
			continue
		}
		d := &imap.ListData{Delim: Delimiter, Mailbox: n}
		if m.noSelect {
			d.Attrs = append(d.Attrs, imap.MailboxAttrNoSelect)
		}
		if hasChildren(names, n) {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasChildren)
		} else {
			d.Attrs = append(d.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if m.subscribed && (options.ReturnSubscribed || options.SelectSubscribed) {
			d.Attrs = append(d.Attrs, imap.MailboxAttrSubscribed)
		}
		if specialUse {
			for _, a := range m.specialUse {
				d.Attrs = append(d.Attrs, imap.MailboxAttr(a))
			}
		}
		if options.ReturnStatus != nil && !m.noSelect {
			d.Status = statusData(m, options.ReturnStatus)
		}
		out = append(out, d)
	}
	u.mu.Unlock()
	for _, d := range out {
		if err := w.WriteList(d); err != nil {
			return err
		}
	}
	return nil
}

func hasChildren(sorted []string, name string) bool {
	prefix := name + string(Delimiter)
	i, _ := slices.BinarySearch(sorted, prefix)
	return i < len(sorted) && strings.HasPrefix(sorted[i], prefix)
}

func statusData(m *mailbox, o *imap.StatusOptions) *imap.StatusData {
	d := &imap.StatusData{Mailbox: m.name}
	if o.NumMessages {
		n := uint32(len(m.msgs))
		d.NumMessages = &n
	}
	if o.NumRecent {
		var n uint32
		d.NumRecent = &n
	}
	if o.UIDNext {
		d.UIDNext = imap.UID(m.uidNext)
	}
	if o.UIDValidity {
		d.UIDValidity = m.uidValidity
	}
	if o.NumUnseen {
		n := uint32(len(m.msgs)) - m.nSeen
		d.NumUnseen = &n
	}
	if o.NumDeleted {
		n := m.nDeleted
		d.NumDeleted = &n
	}
	if o.Size {
		n := m.size
		d.Size = &n
	}
	return d
}

// Status reports a mailbox's counters.
func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	if err := s.begin("STATUS"); err != nil {
		return nil, err
	}
	name = canonicalName(name)
	u := s.user
	u.mu.Lock()
	defer u.mu.Unlock()
	m, ok := u.mailboxes[name]
	if !ok || m.noSelect {
		return nil, errNoMailbox(name)
	}
	return statusData(m, options), nil
}

// Append stores a new message.
func (s *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	if err := s.begin("APPEND"); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(r)
	if err == nil && int64(len(body)) != r.Size() {
		// go-imap's literal reader ends without an error where the connection did: a
		// message cut short is never stored.
		err = fmt.Errorf("%d bytes of a literal of %d: %w", len(body), r.Size(), io.ErrUnexpectedEOF)
	}
	if err != nil {
		return nil, fmt.Errorf("fakeserver: append: read message: %w", err)
	}
	var flags []string
	for _, f := range options.Flags {
		flags = append(flags, string(f))
	}
	date := options.Time
	if date.IsZero() {
		date = time.Now()
	}
	uid, uidValidity, err := s.srv.deliver(s.user, canonicalName(name), body, normalizeFlags(flags), date, s.id)
	if err != nil {
		return nil, err
	}
	if !s.has(imap.CapUIDPlus) {
		return nil, nil
	}
	return &imap.AppendData{UID: imap.UID(uid), UIDValidity: uidValidity}, nil
}

// Poll writes the pending notifications of the selected mailbox. Without allowExpunge it
// stops before the first EXPUNGE (RFC 3501 7.4.1).
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	s.syncCaps()
	return s.flush(w, allowExpunge, false)
}

// flush writes the queued updates. dated is true in IDLE: each line written is then dated
// for PushStamp just before it is written, when the server has a logical clock.
func (s *session) flush(w *imapserver.UpdateWriter, allowExpunge, dated bool) error {
	s.qmu.Lock()
	q := s.queue
	if !allowExpunge {
		i := slices.IndexFunc(q, func(u update) bool { return u.kind == updateExpunge })
		if i >= 0 {
			s.queue = q[i:]
			q = q[:i]
		} else {
			s.queue = nil
		}
	} else {
		s.queue = nil
	}
	s.qmu.Unlock()
	if _, ok := s.srv.now(); !ok {
		dated = false
	}
	date := func(at time.Duration) {
		if dated {
			s.dateLine(at)
		}
	}

	exists := false
	var existsAt time.Duration
	for i := 0; i < len(q); i++ {
		up := q[i]
		switch up.kind {
		case updateExists:
			if n := len(s.view); n == 0 || s.view[n-1] < up.uid {
				s.view = append(s.view, up.uid)
			} else if j, found := slices.BinarySearch(s.view, up.uid); !found {
				s.view = slices.Insert(s.view, j, up.uid)
			}
			exists, existsAt = true, max(existsAt, up.at)
			continue
		}
		if exists {
			exists = false
			date(existsAt)
			if err := w.WriteNumMessages(uint32(len(s.view))); err != nil {
				return err
			}
			s.written++
		}
		if up.kind == updateExpunge {
			j := i + 1
			for j < len(q) && q[j].kind == updateExpunge {
				j++
			}
			if err := s.expungeRun(w, q[i:j], date); err != nil {
				return err
			}
			i = j - 1
			continue
		}
		if j, found := slices.BinarySearch(s.view, up.uid); found {
			date(up.at)
			if err := w.WriteMessageFlags(uint32(j+1), imap.UID(up.uid), toFlags(up.flags)); err != nil {
				return err
			}
			s.written++
		}
	}
	if exists {
		s.written++
		date(existsAt)
		return w.WriteNumMessages(uint32(len(s.view)))
	}
	return nil
}

// expungeRun removes a run of expunged UIDs from the view and writes their EXPUNGEs,
// dating each line (see flush). A run in ascending UID order (the usual case) costs one
// pass over the view.
func (s *session) expungeRun(w *imapserver.UpdateWriter, run []update, date func(time.Duration)) error {
	idxs := make([]int, 0, len(run))
	dates := make([]time.Duration, 0, len(run))
	ascending := true
	for _, up := range run {
		j, found := slices.BinarySearch(s.view, up.uid)
		if !found {
			continue // never announced to this session, or already gone
		}
		if n := len(idxs); n > 0 && idxs[n-1] >= j {
			ascending = false
		}
		idxs = append(idxs, j)
		dates = append(dates, up.at)
	}
	if !ascending {
		for _, up := range run {
			j, found := slices.BinarySearch(s.view, up.uid)
			if !found {
				continue
			}
			s.view = slices.Delete(s.view, j, j+1)
			date(up.at)
			if err := w.WriteExpunge(uint32(j + 1)); err != nil {
				return err
			}
			s.written++
		}
		return nil
	}
	for k, j := range idxs {
		// Each earlier EXPUNGE of the run removed one message below this one.
		date(dates[k])
		if err := w.WriteExpunge(uint32(j - k + 1)); err != nil {
			return err
		}
		s.written++
	}
	kept := s.view[:0]
	next := 0
	for j, uid := range s.view {
		if next < len(idxs) && idxs[next] == j {
			next++
			continue
		}
		kept = append(kept, uid)
	}
	s.view = kept
	return nil
}

// Idle writes notifications as they come until stop is closed. While it runs, the session
// tells IdleQuiet whether it has written anything since IDLE began or has updates still
// to write: a change reaches an idling session's queue before the command that made it
// completes, so the harness can wait until every watching client has been told of it and
// has reacted (see IdleQuiet).
func (s *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	if !s.srv.capOn(imap.CapIdle) {
		return errBad("IDLE is disabled on this server")
	}
	if err := s.srv.takeFail(s, "IDLE"); err != nil {
		return err
	}
	s.qmu.Lock()
	s.idle = idleState{on: true}
	s.stamps, s.heldUntil = nil, 0
	s.qmu.Unlock()
	defer func() {
		s.qmu.Lock()
		s.idle = idleState{}
		s.qmu.Unlock()
	}()
	if s.mbox == nil {
		<-stop
		return nil
	}
	for {
		if wait := s.idleHold(); wait > 0 { // the idle-every mode (mode_idle.go)
			s.qmu.Lock()
			s.idle.held = true
			s.qmu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return nil
			}
			at, _ := s.srv.now()
			s.qmu.Lock()
			s.idle.held = false
			s.heldUntil = at
			s.qmu.Unlock()
		}
		s.qmu.Lock()
		s.idle.flushing = true
		s.qmu.Unlock()
		before := s.written
		err := s.flush(w, true, true)
		s.qmu.Lock()
		s.idle.flushing = false
		s.idle.woken = s.idle.woken || s.written != before
		s.qmu.Unlock()
		if err != nil {
			return err
		}
		select {
		case <-s.notify:
		case <-stop:
			return nil
		}
	}
}

// Expunge removes the \Deleted messages (only those in uids, for UID EXPUNGE).
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	cmd := "EXPUNGE"
	if uids != nil {
		cmd = "UID EXPUNGE"
	}
	if err := s.begin(cmd); err != nil {
		return err
	}
	if uids != nil && !s.has(imap.CapUIDPlus) {
		return errBad("Unknown command")
	}
	u := s.user
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := s.selected(); err != nil {
		return err
	}
	if s.readOnly {
		return errNo(codeReadOnly, "Mailbox is read-only")
	}
	m := s.mbox
	if m.nDeleted == 0 {
		return nil
	}
	var idxs []int
	if uids != nil {
		for _, uid := range s.resolveUIDSet(*uids) {
			if i, ok := m.find(uid); ok && hasFlag(m.msgs[i].flags, `\Deleted`) {
				idxs = append(idxs, i)
			}
		}
	} else {
		for i, msg := range m.msgs {
			if hasFlag(msg.flags, `\Deleted`) {
				idxs = append(idxs, i)
			}
		}
	}
	gone := u.removeMessages(m, idxs, s)
	if len(gone) > 0 {
		s.srv.record(Event{User: u.name, Session: s.id, Kind: "expunge", Mailbox: m.name, UIDs: gone, UIDValidity: m.uidValidity})
	}
	return nil
}

// Copy copies messages to another mailbox.
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	if err := s.begin(cmdName("COPY", numSet)); err != nil {
		return nil, err
	}
	data, err := s.transfer(numSet, canonicalName(dest), false)
	if err != nil || data == nil || !s.has(imap.CapUIDPlus) {
		return nil, err
	}
	return data, nil
}

// Move moves messages to another mailbox (RFC 6851).
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	if err := s.begin(cmdName("MOVE", numSet)); err != nil {
		return err
	}
	if !s.has(imap.CapMove) {
		return errBad("Unknown command")
	}
	data, err := s.transfer(numSet, canonicalName(dest), true)
	if err != nil {
		return err
	}
	if data != nil && s.has(imap.CapUIDPlus) {
		return w.WriteCopyData(data)
	}
	return nil
}

// transfer copies or moves messages; the source's EXPUNGEs reach this session through
// Poll, after the COPYUID response. It returns nil data when no message was addressed.
func (s *session) transfer(numSet imap.NumSet, dest string, move bool) (*imap.CopyData, error) {
	u := s.user
	u.mu.Lock()
	if err := s.selected(); err != nil {
		u.mu.Unlock()
		return nil, err
	}
	if move && s.readOnly {
		u.mu.Unlock()
		return nil, errNo(codeReadOnly, "Mailbox is read-only")
	}
	d, ok := u.mailboxes[dest]
	if !ok || d.noSelect {
		u.mu.Unlock()
		return nil, errNo(imap.ResponseCodeTryCreate, "No such mailbox %q", dest)
	}
	if move && d == s.mbox {
		u.mu.Unlock()
		return nil, errNo(imap.ResponseCodeCannot, "Source and destination are the same mailbox")
	}
	uids := s.resolveUIDs(numSet)
	src, dst, byes := s.srv.transferLocked(u, s.mbox, uids, d, move, s, s.id)
	uidValidity := d.uidValidity
	u.mu.Unlock()
	s.srv.bye(byes, "Mailbox changed")
	if len(src) == 0 {
		return nil, nil
	}
	var data imap.CopyData
	data.UIDValidity = uidValidity
	for i := range src {
		data.SourceUIDs.AddNum(imap.UID(src[i]))
		data.DestUIDs.AddNum(imap.UID(dst[i]))
	}
	return &data, nil
}

func cmdName(name string, numSet imap.NumSet) string {
	if _, ok := numSet.(imap.UIDSet); ok {
		return "UID " + name
	}
	return name
}

func toFlags(flags []string) []imap.Flag {
	out := make([]imap.Flag, len(flags))
	for i, f := range flags {
		out[i] = imap.Flag(f)
	}
	return out
}

// bodyHeader returns the header part of a message, up to and including the blank line.
func bodyHeader(body []byte) []byte {
	if i := bytes.Index(body, []byte("\r\n\r\n")); i >= 0 {
		return body[:i+4]
	}
	if i := bytes.Index(body, []byte("\n\n")); i >= 0 {
		return body[:i+2]
	}
	return body
}
