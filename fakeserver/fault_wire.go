package fakeserver

import (
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
)

// Wire bugs are known-bad modes that make the fake server answer as servers were seen to
// answer in the field, so that the server invariants seen on the wire (S5–S13) and the
// attribution of failures to the server are tested without those servers. Each rewrites
// the IMAP stream of every connection opened while it is on; the model underneath stays
// correct unless the bug says otherwise.
var wireBugDocs = map[string]string{
	"search-lies":                "UID SEARCH by a flag (SEARCH or ESEARCH) also lists a message the session was told lacks it, in this or an earlier selection of the mailbox (S13)",
	"malformed-copyuid":          "COPY and MOVE answer [COPYUID v T<uid> NO [SERVERBUG] Internal server error (S5)",
	"double-expunge":             "MOVE and EXPUNGE announce their first expunged message twice (S8)",
	"seq-zero":                   "the first FETCH answering each UID FETCH names message 0 (S6)",
	"serverbug-on-rename":        "a session whose selected mailbox was renamed away and re-created gets NO [SERVERBUG], and so does every later SELECT of it, as Dovecot 2.3.19 does (S9)",
	"no-on-vanished-store":       "UID STORE of UIDs that are all gone answers NO No messages matched (S10)",
	"create-exists-without-code": "CREATE of an existing mailbox answers NO without [ALREADYEXISTS] (S11)",
	"lowercase-keywords":         "keywords are stored lower-cased (S12)",
	"no-copy-within-mailbox":     "COPY into the selected mailbox answers NO [CANNOT], a limitation some servers have: a scenario that needs it (a device's copy or a server copy within one mailbox) is skipped with the server's answer",
}

// WireBugNames returns the names of the wire bugs, sorted.
func WireBugNames() []string {
	out := make([]string, 0, len(wireBugDocs))
	for n := range wireBugDocs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// WireBugDoc returns what the wire bug name does, or "" for an unknown name.
func WireBugDoc(name string) string { return wireBugDocs[name] }

// WireBug switches a wire bug on or off, for connections opened from then on.
type WireBug struct {
	Bug string
	On  bool
}

// Name returns "wire-bug".
func (WireBug) Name() string { return "wire-bug" }

func (f WireBug) apply(s *Server) error {
	if _, ok := wireBugDocs[f.Bug]; !ok {
		return fmt.Errorf("fakeserver: wire bug %q: want one of %s", f.Bug, strings.Join(WireBugNames(), ", "))
	}
	s.bugMu.Lock()
	if s.bugs == nil {
		s.bugs = map[string]bool{}
	}
	s.bugs[f.Bug] = f.On
	s.bugMu.Unlock()
	s.record(Event{Kind: "wire-bug", Detail: fmt.Sprintf("%s %v", f.Bug, f.On)})
	return nil
}

const copyWithinText = "Cannot copy messages into the mailbox they are in"

// CopyRefusal returns the NO the server answers a COPY from mailbox src to dest with, or
// nil: under no-copy-within-mailbox, a COPY within one mailbox is refused, also when the
// harness asks for it directly.
func (s *Server) CopyRefusal(src, dest string) error {
	s.bugMu.Lock()
	on := s.bugs["no-copy-within-mailbox"]
	s.bugMu.Unlock()
	if !on || src != dest {
		return nil
	}
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: copyWithinText}
}

// wrapBugs returns nc, rewritten by the wire bugs that are on.
func (s *Server) wrapBugs(nc net.Conn) net.Conn {
	nc = s.wrapModes(nc) // mode_wire.go
	s.bugMu.Lock()
	defer s.bugMu.Unlock()
	on := map[string]bool{}
	for b, v := range s.bugs {
		if v {
			on[b] = true
		}
	}
	if len(on) == 0 {
		return nc
	}
	c := &bugConn{srv: s, on: on, cmds: map[string]bugCmd{}, fail: map[string]string{}, flags: map[uint32][]string{}}
	c.lineConn = lineConn{Conn: nc, client: c.clientLine, server: c.serverLine}
	return c
}

type bugCmd struct {
	verb, args string
	fetched    bool // a FETCH answered it
	expunged   bool // an EXPUNGE answered it
}

// bugConn rewrites one connection's IMAP stream. Lines are rewritten whole; literals pass
// through untouched.
type bugConn struct {
	lineConn
	srv *Server
	on  map[string]bool

	mu        sync.Mutex
	cmds      map[string]bugCmd
	fail      map[string]string              // tag → the tagged answer to send instead
	pending   map[string]string              // SELECT tag → mailbox
	sel       *selection                     // the selected mailbox on record (serverbug-on-rename)
	flags     map[uint32][]string            // FLAGS sent for the selected mailbox, by UID
	flagsBy   map[string]map[uint32][]string // flags of each mailbox selected so far (search-lies)
	lastFetch string                         // tag of the UID FETCH whose first FETCH was rewritten
	lastTag   string                         // the command sent last
	selected  string                         // the selected mailbox (no-copy-within-mailbox)
}

func splitCommand(l string) (tag, verb, args string) {
	tag, rest, _ := strings.Cut(l, " ")
	verb, args, _ = strings.Cut(rest, " ")
	verb = strings.ToUpper(verb)
	if verb == "UID" {
		v, a, _ := strings.Cut(args, " ")
		verb, args = "UID "+strings.ToUpper(v), a
	}
	return tag, verb, args
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, `"`) {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
		return strings.Trim(s, `"`)
	}
	if strings.EqualFold(s, "INBOX") {
		return "INBOX"
	}
	return s
}

var keywordList = regexp.MustCompile(`\(([^()]*)\)`)

func (c *bugConn) clientLine(l string) string {
	tag, verb, args := splitCommand(l)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cmds[tag] = bugCmd{verb: verb, args: args}
	c.lastTag = tag
	switch verb {
	case "SELECT", "EXAMINE":
		if c.pending == nil {
			c.pending = map[string]string{}
		}
		c.pending[tag] = unquote(args)
	}
	if c.on["lowercase-keywords"] && (verb == "STORE" || verb == "UID STORE" || verb == "APPEND") {
		l = keywordList.ReplaceAllStringFunc(l, func(list string) string {
			f := strings.Fields(strings.Trim(list, "()"))
			for i, k := range f {
				if !strings.HasPrefix(k, `\`) {
					f[i] = strings.ToLower(k)
				}
			}
			return "(" + strings.Join(f, " ") + ")"
		})
	}
	if c.on["no-copy-within-mailbox"] && (verb == "COPY" || verb == "UID COPY") && c.selected != "" {
		if _, dest, ok := strings.Cut(strings.TrimSpace(args), " "); ok && unquote(dest) == c.selected {
			c.fail[tag] = "NO [CANNOT] " + copyWithinText
			return tag + " NOOP"
		}
	}
	if c.on["serverbug-on-rename"] && verb != "LOGOUT" && c.brokenLocked(verb, args) {
		c.fail[tag] = "NO [SERVERBUG] Internal error occurred. Refer to server log for more information."
		return tag + " NOOP"
	}
	return l
}

// brokenLocked reports whether a command meets the Dovecot rename bug (serverbug-on-rename):
// a mailbox renamed away while a session had it selected, and then re-created under its
// name (CREATE, or another mailbox renamed to it), is broken for good: every SELECT,
// EXAMINE or STATUS of the name fails, and so does every command of a session that had it
// selected. Dovecot 2.3.19 does this because the old session keeps writing the index files
// at the name's path, which then belong to the new mailbox. The fake server itself closes
// such a session with BYE at the rename (go-imap cannot tell it otherwise), so the rule is
// decided from the selections on record, not from the sessions still open: whether the
// bug strikes does not depend on when the engine reconnects.
func (c *bugConn) brokenLocked(verb, args string) bool {
	s := c.srv
	s.bugMu.Lock()
	defer s.bugMu.Unlock()
	s.scanRenamesLocked()
	switch verb {
	case "SELECT", "EXAMINE", "STATUS":
		if s.brokenNames[unquote(firstArg(args))] {
			return true
		}
	}
	return c.sel != nil && c.sel.broken
}

// scanRenamesLocked reads the history since it last did and marks broken names.
func (s *Server) scanRenamesLocked() {
	for _, e := range s.History() {
		if e.Clock <= s.bugScanned {
			continue
		}
		s.bugScanned = e.Clock
		var recreated string
		switch e.Kind {
		case "rename":
			for _, sel := range s.selections {
				if sel.mailbox == e.Mailbox && sel.from < e.Clock && (sel.to == 0 || sel.to >= e.Clock) {
					if s.renamedOpen == nil {
						s.renamedOpen = map[string]bool{}
					}
					s.renamedOpen[e.Mailbox] = true
				}
			}
			recreated = e.Dest
		case "create":
			recreated = e.Mailbox
		}
		if recreated != "" && s.renamedOpen[recreated] {
			if s.brokenNames == nil {
				s.brokenNames = map[string]bool{}
			}
			s.brokenNames[recreated] = true
			for _, sel := range s.selections {
				if sel.mailbox == recreated && sel.to == 0 {
					sel.broken = true
				}
			}
		}
	}
}

// selection is a span of server clock in which one connection had a mailbox selected.
type selection struct {
	mailbox  string
	from, to uint64 // to is 0 while it lasts
	broken   bool   // the mailbox was re-created under its name meanwhile
}

// selectLocked records that c selected mailbox ("" for none) at the server's clock now.
func (c *bugConn) selectLocked(mailbox string) {
	s := c.srv
	s.histMu.Lock()
	now := s.clock
	s.histMu.Unlock()
	if !c.on["serverbug-on-rename"] {
		return
	}
	s.bugMu.Lock()
	defer s.bugMu.Unlock()
	if c.sel != nil && c.sel.to == 0 {
		c.sel.to = now
	}
	c.sel = nil
	if mailbox != "" {
		c.sel = &selection{mailbox: mailbox, from: now}
		s.selections = append(s.selections, c.sel)
	}
}

// Close ends the connection's selection before it closes the connection.
func (c *bugConn) Close() error {
	c.mu.Lock()
	c.selectLocked("")
	c.mu.Unlock()
	return c.Conn.Close()
}

func firstArg(args string) string {
	args = strings.TrimSpace(args)
	if strings.HasPrefix(args, `"`) {
		for i := 1; i < len(args); i++ {
			if args[i] == '\\' {
				i++
			} else if args[i] == '"' {
				return args[:i+1]
			}
		}
	}
	a, _, _ := strings.Cut(args, " ")
	return a
}

var (
	fetchUID   = regexp.MustCompile(`\bUID (\d+)`)
	fetchFlags = regexp.MustCompile(`\bFLAGS \(([^)]*)\)`)
	copyUID    = regexp.MustCompile(`\[COPYUID (\d+) (\S+) (\S+)\].*$`)
)

var searchFlag = map[string]string{"DELETED": `\Deleted`, "FLAGGED": `\Flagged`, "SEEN": `\Seen`, "ANSWERED": `\Answered`, "DRAFT": `\Draft`}

func (c *bugConn) serverLine(l string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !strings.HasPrefix(l, "* ") {
		return c.taggedLocked(l)
	}
	cur, curTag := c.currentLocked()
	fields := strings.Fields(l)
	switch {
	case len(fields) >= 3 && fields[2] == "FETCH":
		if _, ok := c.cmds[curTag]; ok {
			cur.fetched = true
			c.cmds[curTag] = cur
		}
		if m := fetchUID.FindStringSubmatch(l); m != nil {
			uid, _ := strconv.ParseUint(m[1], 10, 32)
			if f := fetchFlags.FindStringSubmatch(l); f != nil {
				c.flags[uint32(uid)] = strings.Fields(f[1])
			}
		}
		if c.on["seq-zero"] && cur.verb == "UID FETCH" && c.lastFetch != curTag {
			c.lastFetch = curTag
			return "* 0 " + strings.Join(fields[2:], " ")
		}
	case len(fields) == 3 && fields[2] == "EXPUNGE":
		if c.on["double-expunge"] && !cur.expunged && (strings.HasSuffix(cur.verb, "MOVE") || strings.HasSuffix(cur.verb, "EXPUNGE")) {
			cur.expunged = true
			c.cmds[curTag] = cur
			return l + "\r\n" + l
		}
	case len(fields) >= 2 && (fields[1] == "SEARCH" || fields[1] == "ESEARCH") && c.on["search-lies"] && cur.verb == "UID SEARCH":
		return c.lieLocked(l, cur.args)
	case c.on["malformed-copyuid"] && strings.Contains(l, "[COPYUID "):
		return copyUID.ReplaceAllString(l, "[COPYUID $1 T$2 NO [SERVERBUG] Internal server error")
	}
	return l
}

// currentLocked returns the command in progress the untagged line answers (the one sent
// last: the engine sends one at a time).
func (c *bugConn) currentLocked() (bugCmd, string) {
	return c.cmds[c.lastTag], c.lastTag
}

// lieLocked adds to a SEARCH or ESEARCH by a flag the lowest UID the session was told
// lacks it.
func (c *bugConn) lieLocked(l, args string) string {
	var flag string
	for _, t := range strings.Fields(strings.ToUpper(args)) {
		if f := searchFlag[t]; f != "" {
			flag = f
		}
	}
	if flag == "" {
		return l
	}
	fields := strings.Fields(l)
	esearch := fields[1] == "ESEARCH"
	listed := map[uint32]bool{}
	all := -1 // the index in fields of an ESEARCH's ALL set
	if esearch {
		for i := 2; i+1 < len(fields); i++ {
			if strings.EqualFold(fields[i], "ALL") {
				all = i + 1
				for _, u := range expandUIDs(fields[all]) {
					listed[u] = true
				}
			}
		}
	} else {
		for _, f := range fields[2:] {
			if n, err := strconv.ParseUint(f, 10, 32); err == nil {
				listed[uint32(n)] = true
			}
		}
	}
	var lie uint32
	for uid, flags := range c.flags {
		if listed[uid] || slices.ContainsFunc(flags, func(f string) bool { return strings.EqualFold(f, flag) }) {
			continue
		}
		if lie == 0 || uid < lie {
			lie = uid
		}
	}
	if lie == 0 {
		return l
	}
	n := strconv.FormatUint(uint64(lie), 10)
	switch {
	case !esearch:
		return l + " " + n
	case all < 0:
		return l + " ALL " + n
	default:
		fields[all] += "," + n
		return strings.Join(fields, " ")
	}
}

// expandUIDs returns the numbers of a UID set without "*" (a bounded number of them).
func expandUIDs(set string) []uint32 {
	var out []uint32
	for _, part := range strings.Split(set, ",") {
		a, b, isRange := strings.Cut(part, ":")
		lo, err := strconv.ParseUint(a, 10, 32)
		if err != nil {
			continue
		}
		hi := lo
		if isRange {
			if hi, err = strconv.ParseUint(b, 10, 32); err != nil {
				continue
			}
		}
		for u := min(lo, hi); u <= max(lo, hi) && len(out) < 1<<16; u++ {
			out = append(out, uint32(u))
		}
	}
	return out
}

func (c *bugConn) taggedLocked(l string) string {
	tag, rest, _ := strings.Cut(l, " ")
	cmd, ok := c.cmds[tag]
	delete(c.cmds, tag)
	if answer, bad := c.fail[tag]; bad {
		delete(c.fail, tag)
		return tag + " " + answer
	}
	if !ok {
		return l
	}
	status, text, _ := strings.Cut(rest, " ")
	switch {
	case (cmd.verb == "SELECT" || cmd.verb == "EXAMINE") && status == "OK":
		c.selectLocked(c.pending[tag])
		c.selected = c.pending[tag]
		// search-lies remembers what earlier selections of the mailbox were told: an
		// engine that selects anew each round and searches before it fetches meets it.
		if c.flagsBy == nil {
			c.flagsBy = map[string]map[uint32][]string{}
		}
		mb := c.pending[tag]
		if c.flagsBy[mb] == nil {
			c.flagsBy[mb] = map[uint32][]string{}
		}
		c.flags = c.flagsBy[mb]
	case cmd.verb == "SELECT" || cmd.verb == "EXAMINE":
		c.selectLocked("")
		c.selected = ""
	case c.on["no-on-vanished-store"] && cmd.verb == "UID STORE" && status == "OK" && !cmd.fetched && !strings.Contains(strings.ToUpper(cmd.args), ".SILENT"):
		return tag + " NO No messages matched"
	case c.on["create-exists-without-code"] && cmd.verb == "CREATE" && status == "NO" && strings.HasPrefix(text, "[ALREADYEXISTS]"):
		return tag + " NO Mailbox already exists"
	case c.on["malformed-copyuid"] && strings.Contains(l, "[COPYUID "):
		return copyUID.ReplaceAllString(l, "[COPYUID $1 T$2 NO [SERVERBUG] Internal server error")
	}
	return l
}
