package check

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// WireLine is one line of a device's proxy transcript: a command or response with each
// literal summarised as "{N bytes}" (as the proxy records it), or the literal's text if a
// transcript keeps it. Lines of one device and connection are in the order they crossed
// the proxy.
type WireLine struct {
	Device string
	Conn   int  // connection number within the device
	Dir    byte // 'C' client to server, 'S' server to client, 'M' see End; anything else is an event
	Text   string
	// Time is when the line crossed the proxy, on one clock for every device; lines of all
	// devices are judged in this order (ties keep the order given). All zero: the order
	// given.
	Time time.Duration
	// End, on a line with Dir 'M', closes the span from Time in which the server's state
	// changed outside the transcripts (a scenario's server step; an instant when End is
	// not after Time); Text says what it was.
	End time.Duration
}

// WireOptions say what the scenario did on purpose, so that CheckWireWith does not blame
// the server for it.
type WireOptions struct {
	// Injected reports that the scenario made the server fail commands (server fail): S9 and
	// S10 are then not judged, since the failures may be the injected ones.
	Injected bool
	// Reads are the harness's own reads of the server, judged for S3 with the transcripts
	// (wire_reads.go).
	Reads []ServerRead
}

// maxWireRows bounds the rows of one wire result's table.
const maxWireRows = 10

// CheckWire checks the server invariants seen on the wire on the transcripts in lines and
// returns every violation, with Server set: one Result per invariant and device.
//
// Per connection it follows the selected mailbox (from SELECT/EXAMINE and their tagged
// completion, after every earlier command completed), its UIDVALIDITY and UIDNEXT, the
// message count (EXISTS, EXPUNGE) and the sequence number → UID map (FETCH responses
// carrying UID). It reports:
//   - S1: a FETCH whose UID is not above the UID of a lower sequence number, or not below
//     that of a higher one;
//   - S2: a FETCH with a UID at or above the UIDNEXT the selection announced, before any
//     EXISTS announced new messages;
//   - S3: one UID of one mailbox and UIDVALIDITY reported with two different contents
//     (RFC822.SIZE, the size of one body section, or its Message-ID), on any connection of
//     any device;
//   - S4: an EXPUNGE of sequence number 0 or beyond the current message count.
//
// It is conservative: whatever it cannot follow for sure (a VANISHED response, a mailbox
// named by a literal, a line cut short) stops the judgement that needs it, so a correct
// server is never reported.
func CheckWire(lines []WireLine) []Result {
	return CheckWireWith(lines, WireOptions{})
}

// CheckWireWith is CheckWire with the server invariants S5–S13 of ServerInvariants as well
// (see wire_rfc.go), judged as opts allows.
func CheckWireWith(lines []WireLine, opts WireOptions) []Result {
	w := newWireChecker(opts)
	sorted := append([]WireLine(nil), lines...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Time < sorted[j].Time })
	reads := sortedReads(opts.Reads)
	for _, l := range sorted {
		for len(reads) > 0 && reads[0].Time <= l.Time {
			w.read(reads[0])
			reads = reads[1:]
		}
		w.line(l)
	}
	for _, r := range reads {
		w.read(r)
	}
	var out []Result
	for _, inv := range serverInvariants {
		for _, dev := range w.order {
			if r := w.found[inv.ID+"\x00"+dev]; r != nil {
				out = append(out, *r)
			}
		}
	}
	return out
}

func newWireChecker(opts WireOptions) *wireChecker {
	return &wireChecker{opts: opts, conns: map[connKey]*connState{}, contents: map[uidKey]*uidContent{},
		found: map[string]*Result{}, uidNext: map[mbKey]uidNextSeen{}, expunged: map[uidKey]expungeSeen{}}
}

type connKey struct {
	device string
	conn   int
}

type uidKey struct {
	mailbox     string
	uidValidity uint32
	uid         uint32
}

type uidContent struct {
	size     int64 // -1 unknown
	sections map[string]int64
	msgID    string
	where    string // device and connection that first reported it
}

type selection struct {
	active      bool
	mailbox     string // "" unknown
	uidValidity uint32
	uidNext     uint32
	count       int // -1 unknown
	grown       bool
	uids        []uint32        // by sequence number - 1; 0 unknown
	since       time.Duration   // when its SELECT or EXAMINE was sent
	gone        map[uint32]bool // UIDs this selection was told expunged (S8)
}

type connState struct {
	key         connKey
	cmds        map[string]sentCommand // commands sent and not completed, by tag
	rfc         rfcState
	sel         selection
	outstanding []string // tags sent and not completed, in order
	selectTag   string   // tag of the SELECT/EXAMINE whose selection is current
	waiting     *pendingSelect
	closeTag    string // tag of an UNSELECT/CLOSE in progress
}

type pendingSelect struct {
	tag     string
	mailbox string
	sent    time.Duration
}

type wireChecker struct {
	opts       WireOptions
	readHashes map[uidKey]string // content hashes the harness's reads showed (wire_reads.go)
	now        time.Duration     // the Time of the line being judged
	spans      []span            // mutating commands and server steps
	uidNext    map[mbKey]uidNextSeen
	expunged   map[uidKey]expungeSeen
	conns      map[connKey]*connState
	contents   map[uidKey]*uidContent
	found      map[string]*Result
	order      []string // devices in order of first report
}

func (w *wireChecker) report(id string, l WireLine, mailbox, problem string) {
	w.reportCmd(id, l, "", mailbox, problem)
}

// reportCmd records a finding of invariant id on line l, in answer to command cmd ("" when
// unknown: the command the line answers is then looked up).
func (w *wireChecker) reportCmd(id string, l WireLine, cmd, mailbox, problem string) {
	if cmd == "" {
		if c := w.conns[connKey{l.Device, l.Conn}]; c != nil {
			cmd = c.commandFor(l.Text)
		}
	}
	key := id + "\x00" + l.Device
	r := w.found[key]
	if r == nil {
		msg := fmt.Sprintf("%s (%s, connection %d", problem, l.Device, l.Conn)
		if rfc := ServerRFC(id); rfc != "" {
			msg += "; " + rfc
		}
		r = &Result{Invariant: id, Title: title(id), Server: true, Devices: []string{l.Device},
			Message: msg + ")", At: l.Time,
			Table: &Table{Columns: []string{"device", "conn", "mailbox", "command", "response", "problem"}}}
		w.found[key] = r
		known := false
		for _, d := range w.order {
			known = known || d == l.Device
		}
		if !known {
			w.order = append(w.order, l.Device)
		}
	}
	if len(r.Table.Rows) < maxWireRows {
		r.Table.Rows = append(r.Table.Rows, []string{l.Device, strconv.Itoa(l.Conn), dashed(mailbox), dashed(cmd), l.Text, problem})
	}
}

func (w *wireChecker) line(l WireLine) {
	w.now = l.Time
	if l.Dir == 'M' {
		w.spans = append(w.spans, span{start: l.Time, end: max(l.End, l.Time)})
		return
	}
	k := connKey{l.Device, l.Conn}
	c := w.conns[k]
	if c == nil || (l.Dir != 'C' && l.Dir != 'S') {
		if l.Dir != 'C' && l.Dir != 'S' {
			if strings.Contains(strings.ToLower(l.Text), "open") {
				w.closeConn(k)
				delete(w.conns, k) // a new connection with a reused number
			}
			return
		}
		c = w.newConn(k)
	}
	cut := strings.Contains(l.Text, "... (") && strings.HasSuffix(l.Text, " more bytes)")
	if cut {
		// Cut short: its end is unknown. Keep following the connection, judge nothing.
		if l.Dir == 'S' && strings.HasPrefix(l.Text, "* ") {
			if strings.Contains(strings.ToUpper(l.Text), " FETCH ") {
				return
			}
		}
	}
	if l.Dir == 'C' {
		w.client(c, l)
		w.rfcClient(c, l)
		return
	}
	w.rfcServer(c, l, cut)
	w.server(c, l)
}

func (w *wireChecker) client(c *connState, l WireLine) {
	tag, rest, ok := strings.Cut(l.Text, " ")
	if !ok || tag == "" || tag == "DONE" || strings.HasPrefix(tag, "+") {
		return
	}
	cmd, args, _ := strings.Cut(rest, " ")
	switch strings.ToUpper(cmd) {
	case "LOGIN", "AUTHENTICATE", "STARTTLS":
		// Only the start of a connection: a transcript without connection events may
		// reuse a connection number.
		w.closeConn(c.key)
		*c = *w.newConn(c.key)
	}
	c.outstanding = append(c.outstanding, tag)
	switch strings.ToUpper(cmd) {
	case "SELECT", "EXAMINE":
		c.waiting = &pendingSelect{tag: tag, mailbox: mailboxArg(args), sent: l.Time}
		w.maybeStartSelect(c)
	case "UNSELECT", "CLOSE":
		c.closeTag = tag
	}
}

// maybeStartSelect starts the new selection once every command sent before it completed:
// until then, untagged responses belong to the old one.
func (w *wireChecker) maybeStartSelect(c *connState) {
	p := c.waiting
	if p == nil || len(c.outstanding) == 0 || c.outstanding[0] != p.tag {
		return
	}
	c.sel = selection{active: true, mailbox: p.mailbox, count: -1, since: p.sent}
	c.rfc.reset()
	c.selectTag = p.tag
	c.waiting = nil
}

// mailboxArg returns the mailbox named by the first argument, or "" when it cannot be
// known (a literal).
func mailboxArg(args string) string {
	args = strings.TrimSpace(args)
	if args == "" || args[0] == '{' || args[0] == '~' {
		return ""
	}
	var name string
	if args[0] == '"' {
		var b strings.Builder
		for i := 1; i < len(args); i++ {
			switch args[i] {
			case '\\':
				if i+1 < len(args) {
					i++
					b.WriteByte(args[i])
				}
			case '"':
				name = b.String()
				return canonMailbox(name)
			default:
				b.WriteByte(args[i])
			}
		}
		return "" // unterminated
	}
	name, _, _ = strings.Cut(args, " ")
	return canonMailbox(name)
}

func canonMailbox(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	return name
}

func (w *wireChecker) server(c *connState, l WireLine) {
	text := l.Text
	if strings.HasPrefix(text, "+") {
		return
	}
	if !strings.HasPrefix(text, "* ") {
		w.tagged(c, text)
		return
	}
	body := text[2:]
	first, rest, _ := strings.Cut(body, " ")
	if n, err := strconv.ParseUint(first, 10, 32); err == nil {
		kind, items, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(kind) {
		case "EXISTS":
			w.exists(c, int(n))
		case "EXPUNGE":
			w.expunge(c, l, uint32(n))
		case "FETCH":
			w.fetch(c, l, uint32(n), items)
		}
		return
	}
	switch strings.ToUpper(first) {
	case "OK", "NO", "BAD":
		w.responseCode(c, rest)
	case "VANISHED":
		c.sel.count, c.sel.uids = -1, nil // not followed: stop judging counts
	}
}

func (w *wireChecker) tagged(c *connState, text string) {
	tag, rest, _ := strings.Cut(text, " ")
	status, _, _ := strings.Cut(rest, " ")
	status = strings.ToUpper(status)
	for i, t := range c.outstanding {
		if t == tag {
			c.outstanding = append(c.outstanding[:i], c.outstanding[i+1:]...)
			break
		}
	}
	if c.waiting != nil && c.waiting.tag == tag {
		// Completed before every earlier command did: which responses were whose is unknown.
		c.waiting, c.sel = nil, selection{count: -1}
	}
	switch tag {
	case c.selectTag:
		c.selectTag = ""
		if status != "OK" {
			c.sel = selection{count: -1} // a failed SELECT leaves nothing selected
		}
	case c.closeTag:
		c.closeTag = ""
		if status == "OK" {
			c.sel = selection{count: -1}
		}
	}
	w.maybeStartSelect(c)
}

func (w *wireChecker) responseCode(c *connState, rest string) {
	if !c.sel.active || !strings.HasPrefix(rest, "[") {
		return
	}
	code, _, ok := strings.Cut(rest[1:], "]")
	if !ok {
		return
	}
	name, arg, _ := strings.Cut(code, " ")
	v, err := strconv.ParseUint(arg, 10, 32)
	if err != nil {
		return
	}
	switch strings.ToUpper(name) {
	case "UIDVALIDITY":
		c.sel.uidValidity = uint32(v)
	case "UIDNEXT":
		if c.selectTag != "" { // only the one announced when selecting
			c.sel.uidNext = uint32(v)
		}
	}
}

func (w *wireChecker) exists(c *connState, n int) {
	s := &c.sel
	if !s.active {
		return
	}
	switch {
	case s.count < 0:
		if c.selectTag == "" {
			return // joined a selection midway: nothing known
		}
		s.count = n
		s.uids = make([]uint32, n)
	case n > s.count:
		s.grown = true
		s.uids = append(s.uids, make([]uint32, n-s.count)...)
		s.count = n
	case n < s.count:
		s.count, s.uids = -1, nil // a shrinking EXISTS: not followed
	}
}

func (w *wireChecker) expunge(c *connState, l WireLine, seq uint32) {
	s := &c.sel
	if seq == 0 {
		w.report(S6SeqNumber, l, s.mailbox, fmt.Sprintf("the server expunged message 0 in %s: sequence numbers start at 1", dashed(s.mailbox)))
		return
	}
	if !s.active || s.count < 0 {
		return
	}
	if int(seq) > s.count {
		w.report(S4Expunge, l, s.mailbox, fmt.Sprintf("the server expunged message %d of %d in %s", seq, s.count, dashed(s.mailbox)))
		return
	}
	w.noteExpunged(c, l, s.uids[seq-1])
	s.uids = append(s.uids[:seq-1], s.uids[seq:]...)
	s.count--
}

func (w *wireChecker) fetch(c *connState, l WireLine, seq uint32, items string) {
	s := &c.sel
	if seq == 0 {
		w.report(S6SeqNumber, l, s.mailbox, fmt.Sprintf("the server sent a FETCH for message 0 in %s: sequence numbers start at 1", dashed(s.mailbox)))
		return
	}
	if !s.active {
		return
	}
	f := parseFetch(items)
	if f.uid == 0 {
		return
	}
	w.fetchFlags(c, l, f.uid, items)
	mb := dashed(s.mailbox)
	if s.uidNext != 0 && !s.grown && f.uid >= s.uidNext {
		w.report(S2UIDNext, l, s.mailbox, fmt.Sprintf("the server reported UID %d in %s, not below the UIDNEXT %d it announced", f.uid, mb, s.uidNext))
	}
	if s.count >= 0 && int(seq) <= s.count {
		s.uids[seq-1] = f.uid
		for i, steps := int(seq)-2, 0; i >= 0 && steps < 64; i, steps = i-1, steps+1 {
			if u := s.uids[i]; u != 0 {
				if u >= f.uid {
					w.report(S1UIDsAscending, l, s.mailbox, fmt.Sprintf("UIDs not ascending in %s: message %d has UID %d, message %d has UID %d", mb, i+1, u, seq, f.uid))
				}
				break
			}
		}
		for i, steps := int(seq), 0; i < len(s.uids) && steps < 64; i, steps = i+1, steps+1 {
			if u := s.uids[i]; u != 0 {
				if u <= f.uid {
					w.report(S1UIDsAscending, l, s.mailbox, fmt.Sprintf("UIDs not ascending in %s: message %d has UID %d, message %d has UID %d", mb, seq, f.uid, i+1, u))
				}
				break
			}
		}
	}
	if s.mailbox == "" || s.uidValidity == 0 {
		return
	}
	k := uidKey{s.mailbox, s.uidValidity, f.uid}
	where := fmt.Sprintf("%s connection %d", l.Device, l.Conn)
	prev := w.contents[k]
	if prev == nil {
		prev = &uidContent{size: -1, sections: map[string]int64{}, where: where}
		w.contents[k] = prev
	}
	reused := false
	defer func() {
		if !reused { // a UID that came back with other content is S3's
			w.checkAlive(c, l, f.uid)
		}
	}()
	reuse := func(what string) {
		reused = true
		w.report(S3UIDReuse, l, s.mailbox, fmt.Sprintf("UID %d in %s (UIDVALIDITY %d) names two messages: %s (first seen on %s)", f.uid, mb, s.uidValidity, what, prev.where))
	}
	if f.size >= 0 {
		if prev.size >= 0 && prev.size != f.size {
			reuse(fmt.Sprintf("RFC822.SIZE %d, then %d", prev.size, f.size))
		} else {
			prev.size = f.size
		}
	}
	for sec, n := range f.sections {
		if old, ok := prev.sections[sec]; ok && old != n {
			reuse(fmt.Sprintf("BODY[%s] of %d bytes, then %d", sec, old, n))
		} else {
			prev.sections[sec] = n
		}
	}
	if f.msgID != "" {
		if prev.msgID != "" && prev.msgID != f.msgID {
			reuse(fmt.Sprintf("Message-ID %s, then %s", prev.msgID, f.msgID))
		} else {
			prev.msgID = f.msgID
		}
	}
}

// fetchItems is what the checker reads from one FETCH response.
type fetchItems struct {
	uid      uint32
	size     int64            // RFC822.SIZE; -1 absent
	sections map[string]int64 // body section (with partial origin) → literal size
	msgID    string           // Message-ID, when a body or header section shows it
}

// parseFetch reads the top-level items of a FETCH response's parenthesised list.
func parseFetch(s string) fetchItems {
	f := fetchItems{size: -1, sections: map[string]int64{}}
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "(") {
		return f
	}
	s = s[1:]
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" || s[0] == ')' {
			return f
		}
		name, rest := fetchName(s)
		if name == "" {
			return f
		}
		value, rest, ok := fetchValue(strings.TrimLeft(rest, " "))
		if !ok {
			return f
		}
		s = rest
		upper := strings.ToUpper(name)
		switch {
		case upper == "UID":
			if v, err := strconv.ParseUint(value, 10, 32); err == nil {
				f.uid = uint32(v)
			}
		case upper == "RFC822.SIZE":
			if v, err := strconv.ParseInt(value, 10, 64); err == nil {
				f.size = v
			}
		case strings.HasPrefix(upper, "BODY["):
			sec := upper[len("BODY"):]
			if n, ok := literalSize(value); ok {
				f.sections[sec] = n
			} else if id := messageIDIn(value); id != "" {
				f.msgID = id
			}
		}
	}
}

// fetchName reads an item name, brackets and partial origin included: BODY[HEADER.FIELDS
// (MESSAGE-ID)]<0>.
func fetchName(s string) (name, rest string) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ' ', ')', '(':
			if depth == 0 {
				return s[:i], s[i:]
			}
		}
	}
	return s, ""
}

// fetchValue reads one value: a number or atom, a quoted string, a parenthesised list or a
// literal (summarised as {N bytes}, or {N} followed by its text).
func fetchValue(s string) (value, rest string, ok bool) {
	if s == "" {
		return "", "", false
	}
	switch s[0] {
	case '"':
		for i := 1; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '"':
				return s[:i+1], s[i+1:], true
			}
		}
		return "", "", false
	case '(':
		depth := 0
		for i := 0; i < len(s); i++ {
			switch s[i] {
			case '"':
				for i++; i < len(s) && s[i] != '"'; i++ {
					if s[i] == '\\' {
						i++
					}
				}
			case '(':
				depth++
			case ')':
				depth--
				if depth == 0 {
					return s[:i+1], s[i+1:], true
				}
			}
		}
		return "", "", false
	case '{', '~':
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", "", false
		}
		return s[:end+1], s[end+1:], true
	}
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == ')' {
			return s[:i], s[i:], true
		}
	}
	return s, "", true
}

// literalSize reads "{N bytes}" (a proxy summary) or "{N}".
func literalSize(v string) (int64, bool) {
	v = strings.TrimPrefix(v, "~")
	if !strings.HasPrefix(v, "{") || !strings.HasSuffix(v, "}") {
		return 0, false
	}
	inner := strings.TrimSuffix(strings.TrimSuffix(v[1:len(v)-1], " bytes"), "+")
	n, err := strconv.ParseInt(inner, 10, 64)
	return n, err == nil
}

// messageIDIn finds a Message-ID header in a quoted section value.
func messageIDIn(v string) string {
	i := strings.Index(strings.ToLower(v), "message-id:")
	if i < 0 {
		return ""
	}
	rest := strings.TrimSpace(v[i+len("message-id:"):])
	if j := strings.IndexAny(rest, "\r\n\""); j >= 0 {
		rest = rest[:j]
	}
	return strings.TrimSpace(rest)
}
