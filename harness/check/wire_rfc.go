package check

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The server invariants S5–S13 (ServerInvariants): every line the server sent is held
// against the RFCs, with the command it answers. Each judgement that depends on the
// server's state (S7, S8, S12, S13) is made only where nothing the transcripts cannot show
// could explain what the server said: another connection's mutating command or a server
// step in between, a line cut short, a selection not followed.

// sentCommand is a command a client sent, kept until its tagged completion.
type sentCommand struct {
	text     string
	verb     string        // upper case, "UID " included: "UID STORE"
	args     string        // what follows the verb
	sent     time.Duration // when it crossed the proxy
	span     int           // index in wireChecker.spans of a mutating command, else -1
	store    *storeCmd     // a UID STORE that sets keywords (S12)
	search   *searchCmd    // a UID SEARCH by flags (S13)
	selected string        // the mailbox selected when it was sent
	expunges *int          // EXPUNGE responses that answered it (S8)
}

// storeCmd is a UID STORE that sets keywords; S12 judges the first FETCH of each UID.
type storeCmd struct {
	uids     map[uint32]bool
	keywords []string
	judged   map[uint32]bool
}

// searchCmd is a UID SEARCH whose criteria the checker can evaluate on FLAGS alone.
type searchCmd struct {
	conds   []flagCond
	results []uint32
	lines   []WireLine // the * SEARCH lines
}

// flagCond is one search key: the message has flag (or has not, with not).
type flagCond struct {
	key  string // the criteria as sent: "DELETED", "KEYWORD $Label1"
	flag string
	not  bool
}

// span is a time in which the server's state may have changed outside one connection's
// sight: a mutating command from sent to completed, or a server step. end < 0: open.
type span struct {
	conn       connKey
	start, end time.Duration
}

// flagSeen is the FLAGS of one message as the server last sent them to a connection.
type flagSeen struct {
	flags []string
	from  time.Duration // when the command they answer was sent: the state is no older
}

// rfcState is what S5–S13 follow on one connection.
type rfcState struct {
	flags     map[uint32]flagSeen // in the current selection, by UID
	spellings map[string]string   // keyword, lower case → the spellings seen in this selection ("\x00"-joined)
	permAll   bool                // PERMANENTFLAGS has \*
	perm      map[string]bool     // PERMANENTFLAGS, lower case; nil: not announced
	searched  []*doneSearch       // UID SEARCHes by flag completed in this selection (S13)
	changes   int                 // mutating commands this connection sent so far
}

// doneSearch is a completed UID SEARCH by flag, held against the FLAGS that come after it.
type doneSearch struct {
	cmd      sentCommand
	results  map[uint32]bool
	changes  int // rfcState.changes when it completed
	reported bool
}

type mbKey struct {
	mailbox     string
	uidValidity uint32
}

type uidNextSeen struct {
	value uint32
	at    time.Duration
	where string
}

type expungeSeen struct {
	at    time.Duration
	where string
}

func (w *wireChecker) newConn(k connKey) *connState {
	c := &connState{key: k, sel: selection{count: -1}, cmds: map[string]sentCommand{}}
	c.rfc.reset()
	w.conns[k] = c
	return c
}

// closeConn leaves a connection's commands in flight open for ever: the server may still
// carry them out.
func (w *wireChecker) closeConn(k connKey) {}

func (r *rfcState) reset() {
	r.flags = map[uint32]flagSeen{}
	r.spellings = map[string]string{}
	r.permAll, r.perm = false, nil
	r.searched = nil
}

// commandFor returns the command a server line answers: its tag's for a tagged line, the
// oldest command in progress for an untagged one.
func (c *connState) commandFor(text string) string {
	if cmd, ok := c.answering(text); ok {
		return cmd.text
	}
	return ""
}

func (c *connState) answering(text string) (sentCommand, bool) {
	if !strings.HasPrefix(text, "*") && !strings.HasPrefix(text, "+") {
		tag, _, _ := strings.Cut(text, " ")
		cmd, ok := c.cmds[tag]
		return cmd, ok
	}
	for _, t := range c.outstanding {
		if cmd, ok := c.cmds[t]; ok {
			return cmd, true
		}
	}
	return sentCommand{}, false
}

// since is when the state an untagged line shows may have been taken: when the command it
// answers was sent, or the line's own time.
func (c *connState) since(l WireLine) time.Duration {
	if cmd, ok := c.answering(l.Text); ok {
		return cmd.sent
	}
	return l.Time
}

func mutatingVerb(verb string) bool {
	switch strings.TrimPrefix(verb, "UID ") {
	case "APPEND", "STORE", "COPY", "MOVE", "EXPUNGE", "CREATE", "DELETE", "RENAME", "CLOSE":
		return true
	}
	return false
}

func (w *wireChecker) rfcClient(c *connState, l WireLine) {
	tag, rest, ok := strings.Cut(l.Text, " ")
	if !ok || tag == "" || tag == "DONE" || strings.HasPrefix(tag, "+") {
		return
	}
	verb, args, _ := strings.Cut(rest, " ")
	verb = strings.ToUpper(verb)
	if verb == "UID" {
		v2, a2, _ := strings.Cut(args, " ")
		verb, args = "UID "+strings.ToUpper(v2), a2
	}
	cmd := sentCommand{text: l.Text, verb: verb, args: args, sent: l.Time, span: -1, selected: c.sel.mailbox, expunges: new(int)}
	if mutatingVerb(verb) {
		w.spans = append(w.spans, span{conn: c.key, start: l.Time, end: -1})
		cmd.span = len(w.spans) - 1
		c.rfc.changes++
	}
	switch verb {
	case "STORE", "UID STORE":
		cmd.store = c.rfc.storeSent(verb, args)
	case "UID SEARCH":
		cmd.search = parseFlagSearch(args)
	}
	c.cmds[tag] = cmd
}

// storeSent forgets the FLAGS a STORE may change without telling (.SILENT, a sequence
// set) and returns what S12 checks of a UID STORE that sets keywords.
func (r *rfcState) storeSent(verb, args string) *storeCmd {
	set, rest, _ := strings.Cut(strings.TrimSpace(args), " ")
	item, list, _ := strings.Cut(strings.TrimSpace(rest), " ")
	item = strings.ToUpper(item)
	if strings.HasPrefix(item, "(") {
		item = "" // a modifier (UNCHANGEDSINCE): not followed
	}
	silent := strings.HasSuffix(item, ".SILENT")
	uids := uidSet(set)
	if verb != "UID STORE" || silent || uids == nil || item == "" {
		r.flags = map[uint32]flagSeen{}
		return nil
	}
	for u := range uids {
		delete(r.flags, u)
	}
	if item != "+FLAGS" && item != "FLAGS" {
		return nil
	}
	var kws []string
	for _, f := range flagList(list) {
		if !strings.HasPrefix(f, `\`) {
			kws = append(kws, f)
		}
	}
	if len(kws) == 0 {
		return nil
	}
	return &storeCmd{uids: uids, keywords: kws, judged: map[uint32]bool{}}
}

// uidSet expands a UID set of at most 10,000 UIDs without "*"; nil otherwise.
func uidSet(s string) map[uint32]bool {
	out := map[uint32]bool{}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil || a == 0 {
			return nil
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil || b == 0 {
				return nil
			}
		}
		if a > b {
			a, b = b, a
		}
		if b-a > 10000 || len(out) > 10000 {
			return nil
		}
		for u := a; u <= b; u++ {
			out[uint32(u)] = true
		}
	}
	return out
}

// flagList reads "(\Seen $Label1)" or a single flag.
func flagList(s string) []string {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "("), ")")
	return strings.Fields(s)
}

var searchFlags = map[string]string{
	"ANSWERED": `\Answered`, "DELETED": `\Deleted`, "DRAFT": `\Draft`, "FLAGGED": `\Flagged`, "SEEN": `\Seen`,
}

// parseFlagSearch reads UID SEARCH criteria made only of flag keys (DELETED, UNSEEN,
// KEYWORD k…), ALL and UID sets; nil for anything else.
func parseFlagSearch(args string) *searchCmd {
	toks := strings.Fields(args)
	sc := &searchCmd{}
	for i := 0; i < len(toks); i++ {
		t := strings.ToUpper(toks[i])
		switch {
		case t == "ALL":
		case t == "UID" && i+1 < len(toks):
			i++
		case t == "CHARSET" && i+1 < len(toks):
			i++
		case t == "RETURN" && i+1 < len(toks):
			// RFC 4731: only RETURN (ALL) or RETURN () lists every result.
			if opts := strings.ToUpper(toks[i+1]); opts != "(ALL)" && opts != "()" {
				return nil
			}
			i++
		case searchFlags[t] != "":
			sc.conds = append(sc.conds, flagCond{key: t, flag: searchFlags[t]})
		case strings.HasPrefix(t, "UN") && searchFlags[t[2:]] != "":
			sc.conds = append(sc.conds, flagCond{key: t, flag: searchFlags[t[2:]], not: true})
		case (t == "KEYWORD" || t == "UNKEYWORD") && i+1 < len(toks):
			sc.conds = append(sc.conds, flagCond{key: t + " " + toks[i+1], flag: toks[i+1], not: t == "UNKEYWORD"})
			i++
		default:
			return nil
		}
	}
	if len(sc.conds) == 0 {
		return nil
	}
	return sc
}

func (w *wireChecker) rfcServer(c *connState, l WireLine, cut bool) {
	text := l.Text
	if strings.HasPrefix(text, "+") {
		return
	}
	if !cut {
		if why := malformed(text); why != "" {
			w.report(S5Malformed, l, c.sel.mailbox, "malformed response: "+why)
		}
	}
	if !strings.HasPrefix(text, "* ") {
		w.rfcTagged(c, l)
		return
	}
	first, rest, _ := strings.Cut(text[2:], " ")
	if _, err := strconv.ParseUint(first, 10, 32); err == nil && strings.EqualFold(strings.TrimSpace(rest), "EXPUNGE") {
		if cmd, ok := c.answering(text); ok {
			*cmd.expunges++
		}
	}
	switch strings.ToUpper(first) {
	case "OK", "NO", "BAD", "BYE":
		code, arg, _ := responseCode(rest)
		if strings.ToUpper(first) != "OK" {
			w.internalError(c, l, "", code)
		}
		if code == "PERMANENTFLAGS" && c.sel.active {
			c.rfc.perm = map[string]bool{}
			for _, f := range flagList(arg) {
				if f == `\*` {
					c.rfc.permAll = true
				}
				c.rfc.perm[strings.ToLower(f)] = true
			}
		}
	case "FLAGS":
		if c.sel.active {
			for _, f := range flagList(rest) {
				c.rfc.spell(f)
			}
		}
	case "SEARCH":
		if cut {
			return
		}
		for _, t := range c.outstanding {
			if cmd, ok := c.cmds[t]; ok && cmd.search != nil {
				for _, f := range strings.Fields(rest) {
					if n, err := strconv.ParseUint(f, 10, 32); err == nil {
						cmd.search.results = append(cmd.search.results, uint32(n))
					}
				}
				cmd.search.lines = append(cmd.search.lines, l)
				break
			}
		}
		w.searchAlive(c, l, numbers(rest))
	case "ESEARCH":
		if cut {
			return
		}
		tag, uids, ok := esearchAll(rest)
		if !ok {
			return
		}
		if cmd, found := c.cmds[tag]; found && cmd.search != nil {
			cmd.search.results = append(cmd.search.results, uids...)
			cmd.search.lines = append(cmd.search.lines, l)
		}
		w.searchAlive(c, l, uids)
	case "STATUS":
		if !cut {
			w.status(c, l, rest)
		}
	}
}

func (r *rfcState) spell(f string) {
	if strings.HasPrefix(f, `\`) {
		return
	}
	k := strings.ToLower(f)
	for _, s := range strings.Split(r.spellings[k], "\x00") {
		if s == f {
			return
		}
	}
	if r.spellings[k] == "" {
		r.spellings[k] = f
	} else {
		r.spellings[k] += "\x00" + f
	}
}

var legitimateNo = map[string]bool{
	"TRYCREATE": true, "OVERQUOTA": true, "LIMIT": true, "READ-ONLY": true, "NOPERM": true,
	"CANNOT": true, "INUSE": true, "EXPUNGEISSUED": true, "NONEXISTENT": true, "TOOBIG": true,
	"SERVERBUG": true, "UNAVAILABLE": true, // S9's
}

func (w *wireChecker) rfcTagged(c *connState, l WireLine) {
	tag, rest, _ := strings.Cut(l.Text, " ")
	status, text, _ := strings.Cut(rest, " ")
	status = strings.ToUpper(status)
	cmd, ok := c.cmds[tag]
	if !ok {
		return
	}
	delete(c.cmds, tag)
	if cmd.span >= 0 {
		w.spans[cmd.span].end = l.Time
	}
	code, _, _ := responseCode(text)
	if status == "NO" || status == "BAD" {
		w.internalError(c, l, cmd.text, code)
	}
	switch {
	case status == "NO" && !w.opts.Injected && !legitimateNo[code] &&
		(cmd.verb == "UID FETCH" || cmd.verb == "UID STORE" || cmd.verb == "UID COPY" || cmd.verb == "UID MOVE"):
		why := "without a response code"
		if code != "" {
			why = "with [" + code + "]"
		}
		w.reportCmd(S10NoOnUID, l, cmd.text, cmd.selected, fmt.Sprintf("the server refused %s %s: UIDs that do not exist are ignored, and no legitimate reason was given", cmd.verb, why))
	case status == "NO" && cmd.verb == "CREATE" && code != "ALREADYEXISTS" && strings.Contains(strings.ToLower(text), "exist"):
		w.reportCmd(S11ResponseCode, l, cmd.text, cmd.selected, "the server refused CREATE of an existing mailbox without [ALREADYEXISTS]")
	}
	if status == "OK" && (cmd.verb == "UID MOVE" || cmd.verb == "UID EXPUNGE") && c.sel.active && cmd.selected == c.sel.mailbox {
		w.judgeExpunges(c, l, cmd)
	}
	if status == "OK" && cmd.search != nil && c.sel.active && cmd.selected == c.sel.mailbox {
		w.judgeSearch(c, l, cmd)
	}
	if status == "OK" && tag == c.selectTag && c.sel.mailbox != "" && c.sel.uidValidity != 0 && c.sel.uidNext != 0 {
		w.checkUIDNext(l, cmd.text, mbKey{c.sel.mailbox, c.sel.uidValidity}, c.sel.uidNext, cmd.sent)
	}
}

// internalError reports S9 for a NO, BAD or BYE with [SERVERBUG] or [UNAVAILABLE].
func (w *wireChecker) internalError(c *connState, l WireLine, cmd, code string) {
	if w.opts.Injected || (code != "SERVERBUG" && code != "UNAVAILABLE") {
		return
	}
	w.reportCmd(S9InternalError, l, cmd, c.sel.mailbox, fmt.Sprintf("the server reported an internal failure ([%s])", code))
}

// responseCode reads "[CODE arg] text": the code's name in upper case and its argument.
func responseCode(s string) (code, arg string, ok bool) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return "", "", false
	}
	inner, _, closed := strings.Cut(s[1:], "]")
	if !closed {
		return "", "", false
	}
	// A list argument (PERMANENTFLAGS (\Seen \*)) holds no ']'.
	name, arg, _ := strings.Cut(inner, " ")
	return strings.ToUpper(name), arg, true
}

// malformed says what is wrong with the syntax of a server line, or "".
func malformed(text string) string {
	if !strings.HasPrefix(text, "* ") {
		tag, rest, _ := strings.Cut(text, " ")
		status, after, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(status) {
		case "OK", "NO", "BAD":
			return badCode(after)
		}
		return fmt.Sprintf("tagged response %s with status %q (want OK, NO or BAD)", tag, status)
	}
	first, rest, _ := strings.Cut(text[2:], " ")
	if _, err := strconv.ParseUint(first, 10, 32); err == nil {
		kind, items, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(kind) {
		case "EXISTS", "RECENT", "EXPUNGE":
			if strings.TrimSpace(items) != "" {
				return fmt.Sprintf("%s followed by %q", strings.ToUpper(kind), items)
			}
		case "FETCH":
			v, after, ok := fetchValue(strings.TrimSpace(items))
			if !ok || !strings.HasPrefix(v, "(") || strings.TrimSpace(after) != "" {
				return "FETCH data is not one parenthesised list"
			}
		default:
			return fmt.Sprintf("unknown message data %q", kind)
		}
		return ""
	}
	switch strings.ToUpper(first) {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		return badCode(rest)
	case "SEARCH":
		f := strings.Fields(rest)
		for i, t := range f {
			if strings.HasPrefix(t, "(") {
				if i == len(f)-2 && strings.EqualFold(t, "(MODSEQ") && strings.HasSuffix(f[i+1], ")") {
					break
				}
				return fmt.Sprintf("SEARCH result %q is not a number", t)
			}
			if n, err := strconv.ParseUint(t, 10, 32); err != nil || n == 0 {
				return fmt.Sprintf("SEARCH result %q is not a number", t)
			}
		}
	}
	return ""
}

// badCode checks the response code at the start of a status response's text.
func badCode(s string) string {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return ""
	}
	inner, _, closed := strings.Cut(s[1:], "]")
	if !closed {
		return "response code not closed by ]"
	}
	if strings.Contains(inner, "[") {
		return fmt.Sprintf("response code [%s] holds a [", inner)
	}
	name, arg, _ := strings.Cut(inner, " ")
	args := strings.Fields(arg)
	number := func(a string) bool { _, err := strconv.ParseUint(a, 10, 32); return err == nil }
	set := func(a string) bool {
		for _, p := range strings.Split(a, ",") {
			lo, hi, r := strings.Cut(p, ":")
			if !number(lo) || (r && !number(hi)) {
				return false
			}
		}
		return true
	}
	switch strings.ToUpper(name) {
	case "UIDNEXT", "UIDVALIDITY", "UNSEEN":
		if len(args) != 1 || !number(args[0]) {
			return fmt.Sprintf("[%s] wants one number", inner)
		}
	case "APPENDUID":
		if len(args) != 2 || !number(args[0]) || !set(args[1]) {
			return fmt.Sprintf("[%s] wants a UIDVALIDITY and a UID set", inner)
		}
	case "COPYUID":
		if len(args) != 3 || !number(args[0]) || !set(args[1]) || !set(args[2]) {
			return fmt.Sprintf("[%s] wants a UIDVALIDITY and two UID sets", inner)
		}
	}
	return ""
}

// fetchFlags records the FLAGS a FETCH shows and judges S12 for a UID STORE in progress.
func (w *wireChecker) fetchFlags(c *connState, l WireLine, uid uint32, items string) {
	flags, ok := fetchFlagList(items)
	if !ok {
		return
	}
	for _, f := range flags {
		defer c.rfc.spell(f) // after the judgement: a spelling is "seen before" only if it was
	}
	c.rfc.flags[uid] = flagSeen{flags: flags, from: c.since(l)}
	w.searchThenFlags(c, l, uid, flags)
	for _, t := range c.outstanding {
		cmd, ok := c.cmds[t]
		if !ok || cmd.store == nil || !cmd.store.uids[uid] || cmd.store.judged[uid] {
			continue
		}
		cmd.store.judged[uid] = true
		if w.disturbed(c.key, cmd.sent, l.Time) {
			continue
		}
		for _, kw := range cmd.store.keywords {
			if slices.Contains(flags, kw) {
				continue
			}
			if !c.rfc.permAll && (c.rfc.perm == nil || !c.rfc.perm[strings.ToLower(kw)]) {
				continue // the mailbox may not keep it
			}
			other := ""
			for _, f := range flags {
				if strings.EqualFold(f, kw) {
					other = f
				}
			}
			switch {
			case other == "":
				w.reportCmd(S12Keywords, l, cmd.text, c.sel.mailbox, fmt.Sprintf("the server lost keyword %s: the STORE set it on UID %d, its FLAGS lack it", kw, uid))
			case !slices.Contains(strings.Split(c.rfc.spellings[strings.ToLower(kw)], "\x00"), other):
				w.reportCmd(S12Keywords, l, cmd.text, c.sel.mailbox, fmt.Sprintf("the server renamed keyword %s to %s on UID %d", kw, other, uid))
			}
		}
	}
}

// fetchFlagList finds the FLAGS item of a FETCH response's list.
func fetchFlagList(items string) ([]string, bool) {
	s := strings.TrimSpace(items)
	if !strings.HasPrefix(s, "(") {
		return nil, false
	}
	s = s[1:]
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" || s[0] == ')' {
			return nil, false
		}
		name, rest := fetchName(s)
		if name == "" {
			return nil, false
		}
		value, rest, ok := fetchValue(strings.TrimLeft(rest, " "))
		if !ok {
			return nil, false
		}
		if strings.EqualFold(name, "FLAGS") {
			return flagList(value), true
		}
		s = rest
	}
}

// disturbed reports whether the server's state may have changed between from and to out
// of conn's sight: another connection's mutating command or a server step overlaps.
func (w *wireChecker) disturbed(conn connKey, from, to time.Duration) bool {
	for _, s := range w.spans {
		if s.conn == conn {
			continue
		}
		if s.start <= to && (s.end < 0 || s.end >= from) {
			return true
		}
	}
	return false
}

// judgeExpunges reports S8 when a UID MOVE or UID EXPUNGE was answered with more EXPUNGE
// responses than the UIDs it named: each further one takes an innocent message from the
// client's view. Judged only when nothing else changed the mailbox since the connection
// selected it (another session's expunge may be announced with the command's own).
func (w *wireChecker) judgeExpunges(c *connState, l WireLine, cmd sentCommand) {
	set, _, _ := strings.Cut(strings.TrimSpace(cmd.args), " ")
	uids, ok := expandSet(set)
	if !ok || *cmd.expunges <= len(uids) || w.disturbed(c.key, c.sel.since, l.Time) {
		return
	}
	w.reportCmd(S8ExpungeOnce, l, cmd.text, c.sel.mailbox, fmt.Sprintf("%s named %d UID(s) and was answered with %d EXPUNGE responses: each EXPUNGE removes one message that is gone", cmd.verb, len(uids), *cmd.expunges))
}

// searchThenFlags checks FLAGS that answer a command sent after a UID SEARCH by flags
// completed against what that SEARCH listed (S13), when nothing could have changed them
// in between: no mutating command of this connection or another, no server step.
func (w *wireChecker) searchThenFlags(c *connState, l WireLine, uid uint32, flags []string) {
	since := c.since(l)
	for _, ds := range c.rfc.searched {
		if ds.reported || !ds.results[uid] || since < ds.cmd.sent || c.rfc.changes != ds.changes ||
			w.disturbed(c.key, ds.cmd.sent, l.Time) {
			continue
		}
		for _, cond := range ds.cmd.search.conds {
			has := false
			for _, f := range flags {
				has = has || strings.EqualFold(f, cond.flag)
			}
			if has == cond.not {
				ds.reported = true
				w.reportCmd(S13Search, l, ds.cmd.text, c.sel.mailbox, fmt.Sprintf("SEARCH %s listed UID %d, whose FLAGS (%s) the server sent right after, and nothing changed them in between", cond.key, uid, strings.Join(flags, " ")))
				break
			}
		}
	}
}

// judgeSearch checks a completed UID SEARCH by flags against the FLAGS the connection was
// sent (S13), and keeps it for the FLAGS sent after it (searchThenFlags).
func (w *wireChecker) judgeSearch(c *connState, l WireLine, cmd sentCommand) {
	ds := &doneSearch{cmd: cmd, results: map[uint32]bool{}, changes: c.rfc.changes}
	for _, uid := range cmd.search.results {
		ds.results[uid] = true
	}
	c.rfc.searched = append(c.rfc.searched, ds)
	for _, uid := range cmd.search.results {
		seen, ok := c.rfc.flags[uid]
		if !ok || w.disturbed(c.key, seen.from, l.Time) {
			continue
		}
		for _, cond := range cmd.search.conds {
			has := false
			for _, f := range seen.flags {
				has = has || strings.EqualFold(f, cond.flag)
			}
			if has == cond.not {
				at := l
				if len(cmd.search.lines) > 0 {
					at = cmd.search.lines[0]
				}
				w.reportCmd(S13Search, at, cmd.text, c.sel.mailbox, fmt.Sprintf("SEARCH %s listed UID %d, whose FLAGS (%s) the server had sent this session, and nothing changed them since", cond.key, uid, strings.Join(seen.flags, " ")))
				return
			}
		}
	}
}

// checkUIDNext records an announced UIDNEXT and reports S7 when it is below one announced
// before the command was sent.
func (w *wireChecker) checkUIDNext(l WireLine, cmd string, k mbKey, next uint32, sent time.Duration) {
	prev, ok := w.uidNext[k]
	if ok && next < prev.value && sent > prev.at {
		w.reportCmd(S7UIDNextMonotone, l, cmd, k.mailbox, fmt.Sprintf("UIDNEXT of %s (UIDVALIDITY %d) went down from %d (seen on %s) to %d", dashed(k.mailbox), k.uidValidity, prev.value, prev.where, next))
	}
	if !ok || next > prev.value {
		w.uidNext[k] = uidNextSeen{value: next, at: l.Time, where: fmt.Sprintf("%s connection %d", l.Device, l.Conn)}
	}
}

// status reads "* STATUS mailbox (… UIDNEXT n UIDVALIDITY v …)" for S7.
func (w *wireChecker) status(c *connState, l WireLine, rest string) {
	mb := mailboxArg(rest)
	open := strings.LastIndexByte(rest, '(')
	if mb == "" || open < 0 {
		return
	}
	f := flagList(rest[open:])
	var next, uv uint64
	for i := 0; i+1 < len(f); i += 2 {
		n, err := strconv.ParseUint(f[i+1], 10, 32)
		if err != nil {
			return
		}
		switch strings.ToUpper(f[i]) {
		case "UIDNEXT":
			next = n
		case "UIDVALIDITY":
			uv = n
		}
	}
	if next == 0 || uv == 0 {
		return
	}
	cmd, ok := c.answering(l.Text)
	if !ok {
		return
	}
	w.checkUIDNext(l, cmd.text, mbKey{mb, uint32(uv)}, uint32(next), cmd.sent)
}

// noteExpunged remembers a UID the server reported expunged (S8).
func (w *wireChecker) noteExpunged(c *connState, l WireLine, uid uint32) {
	if uid == 0 || c.sel.mailbox == "" || c.sel.uidValidity == 0 {
		return
	}
	k := uidKey{c.sel.mailbox, c.sel.uidValidity, uid}
	if _, ok := w.expunged[k]; !ok {
		w.expunged[k] = expungeSeen{at: l.Time, where: fmt.Sprintf("%s connection %d: %s", l.Device, l.Conn, l.Text)}
	}
	delete(c.rfc.flags, uid)
	if c.sel.gone == nil {
		c.sel.gone = map[uint32]bool{}
	}
	c.sel.gone[uid] = true
}

// checkAlive reports S8 when a message the server reported expunged shows up again in an
// answer to a command sent after that, on a connection that must know it is gone: one
// that was itself told (its EXPUNGE), or that selected the mailbox after the expunge. A
// session selected before may still list it until the server tells it (RFC 3501 §7.4.1:
// its sequence numbers keep the message until its own EXPUNGE), so that is no finding.
func (w *wireChecker) checkAlive(c *connState, l WireLine, uid uint32) {
	if c.sel.mailbox == "" || c.sel.uidValidity == 0 {
		return
	}
	k := uidKey{c.sel.mailbox, c.sel.uidValidity, uid}
	e, ok := w.expunged[k]
	if !ok {
		return
	}
	cmd, ok := c.answering(l.Text)
	if !ok || cmd.sent <= e.at || !c.sel.gone[uid] && c.sel.since <= e.at {
		return
	}
	w.reportCmd(S8ExpungeOnce, l, cmd.text, c.sel.mailbox, fmt.Sprintf("UID %d of %s is still there, but the server had reported it expunged (%s)", uid, dashed(c.sel.mailbox), e.where))
}

func (w *wireChecker) searchAlive(c *connState, l WireLine, uids []uint32) {
	cmd, ok := c.answering(l.Text)
	if !ok || !strings.HasPrefix(cmd.verb, "UID ") {
		return
	}
	for _, uid := range uids {
		w.checkAlive(c, l, uid)
	}
}

// numbers returns the numbers among the words of s.
func numbers(s string) []uint32 {
	var out []uint32
	for _, f := range strings.Fields(s) {
		if n, err := strconv.ParseUint(f, 10, 32); err == nil {
			out = append(out, uint32(n))
		}
	}
	return out
}

// maxSetSize bounds how many numbers a set given as ranges is expanded to.
const maxSetSize = 1 << 16

// esearchAll reads an ESEARCH response (RFC 4731): the tag it answers and the UIDs of its
// ALL result (none when it has no ALL); ok is false for a response the checker cannot
// follow (no tag, not UIDs, a set too large).
func esearchAll(rest string) (tag string, uids []uint32, ok bool) {
	rest = strings.TrimSpace(rest)
	if !strings.HasPrefix(strings.ToUpper(rest), "(TAG ") {
		return "", nil, false
	}
	end := strings.Index(rest, ")")
	if end < 0 {
		return "", nil, false
	}
	tag = strings.Trim(strings.TrimSpace(rest[len("(TAG "):end]), `"`)
	toks := strings.Fields(rest[end+1:])
	if len(toks) == 0 || !strings.EqualFold(toks[0], "UID") {
		return "", nil, false
	}
	for i := 1; i+1 < len(toks); i += 2 {
		if strings.EqualFold(toks[i], "ALL") {
			uids, ok = expandSet(toks[i+1])
			return tag, uids, ok
		}
	}
	return tag, nil, true
}

// expandSet returns the numbers of a sequence set without "*"; ok is false for anything
// else, or a set of more than maxSetSize numbers.
func expandSet(set string) ([]uint32, bool) {
	var out []uint32
	for _, part := range strings.Split(set, ",") {
		a, b, isRange := strings.Cut(part, ":")
		lo, err := strconv.ParseUint(a, 10, 32)
		if err != nil {
			return nil, false
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(b, 10, 32); err != nil {
				return nil, false
			}
		}
		if hi < lo {
			lo, hi = hi, lo
		}
		if len(out)+int(hi-lo)+1 > maxSetSize {
			return nil, false
		}
		for n := lo; n <= hi; n++ {
			out = append(out, uint32(n))
		}
	}
	return out, true
}
