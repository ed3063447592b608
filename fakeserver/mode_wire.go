package fakeserver

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
)

// go-imap v2.0.0-beta.8's server knows neither METADATA (RFC 5464) nor OBJECTID (RFC
// 8474), so the modes that need them are emulated on the stream, as the wire bugs are:
//   - specialuse-toplevel: SETMETADATA mailbox (/private/specialuse NIL) removes the
//     mailbox's special use (the only entry emulated; anything else is answered NO), and
//     CREATE-SPECIAL-USE (which go-imap's CREATE understands) and METADATA are advertised;
//   - mailboxid: OBJECTID is advertised; SELECT and EXAMINE get * OK [MAILBOXID (id)]
//     before their tagged OK, CREATE gets OK [MAILBOXID (id)], and STATUS answers the item
//     MAILBOXID (taken out of the command before go-imap sees it).

// wrapModes returns nc, rewritten by the modes that need the stream, if any is on.
func (s *Server) wrapModes(nc net.Conn) net.Conn {
	if !s.wireModes() {
		return nc
	}
	c := &modeConn{srv: s, tags: map[string]modeCmd{}}
	c.lineConn = lineConn{Conn: nc, client: c.clientLine, server: c.serverLine}
	return c
}

type modeCmd struct {
	verb    string
	mailbox string
	status  bool   // STATUS asked for MAILBOXID
	answer  string // the tagged answer to send instead of go-imap's (SETMETADATA)
	created bool
}

// modeConn rewrites one connection's stream for the server modes.
type modeConn struct {
	lineConn
	srv *Server

	mu   sync.Mutex
	user string
	tags map[string]modeCmd
}

// modeUser returns the account the connection logged in as, or the only account.
func (c *modeConn) modeUser() *user {
	c.mu.Lock()
	name := c.user
	c.mu.Unlock()
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	if u, ok := c.srv.users[name]; ok {
		return u
	}
	if len(c.srv.users) == 1 {
		for _, u := range c.srv.users {
			return u
		}
	}
	return nil
}

func (c *modeConn) on(mode string) bool {
	u := c.modeUser()
	if u == nil {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.mode(mode)
}

var (
	setMetadataNil = regexp.MustCompile(`(?i)^\(\s*"?/private/specialuse"?\s+NIL\s*\)$`)
	statusItems    = regexp.MustCompile(`\(([^()]*)\)\s*$`)
)

func (c *modeConn) clientLine(l string) string {
	tag, verb, args := splitCommand(l)
	switch verb {
	case "LOGIN":
		c.mu.Lock()
		c.user = unquote(firstArg(args))
		c.mu.Unlock()
	case "SETMETADATA":
		if !c.on("specialuse-toplevel") {
			return l
		}
		name := firstArg(args)
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(args), name))
		answer := "OK SETMETADATA completed"
		if !setMetadataNil.MatchString(rest) {
			answer = "NO [METADATA] only (/private/specialuse NIL) is supported"
		} else if err := c.srv.clearSpecialUse(c.modeUser(), canonicalName(unquote(name))); err != nil {
			answer = "NO [NONEXISTENT] No such mailbox"
		}
		c.mu.Lock()
		c.tags[tag] = modeCmd{verb: verb, answer: answer}
		c.mu.Unlock()
		return tag + " NOOP"
	case "SELECT", "EXAMINE", "CREATE":
		c.mu.Lock()
		c.tags[tag] = modeCmd{verb: verb, mailbox: canonicalName(unquote(firstArg(args)))}
		c.mu.Unlock()
	case "STATUS":
		m := statusItems.FindStringSubmatch(args)
		if m == nil {
			return l
		}
		var kept []string
		asked := false
		for _, it := range strings.Fields(m[1]) {
			if strings.EqualFold(it, "MAILBOXID") {
				asked = true
				continue
			}
			kept = append(kept, it)
		}
		if !asked || !c.on("mailboxid") {
			return l
		}
		if len(kept) == 0 {
			kept = []string{"UIDVALIDITY"}
		}
		c.mu.Lock()
		c.tags[tag] = modeCmd{verb: verb, mailbox: canonicalName(unquote(firstArg(args))), status: true}
		c.mu.Unlock()
		return l[:len(l)-len(m[0])] + "(" + strings.Join(kept, " ") + ")"
	}
	return l
}

var capLine = regexp.MustCompile(`^(\* CAPABILITY .*|.*\[CAPABILITY [^\]]*)`)

func (c *modeConn) serverLine(l string) string {
	if m := capLine.FindStringSubmatchIndex(l); m != nil {
		extra := ""
		if c.on("mailboxid") && !strings.Contains(l, " OBJECTID") {
			extra += " OBJECTID"
		}
		if c.on("specialuse-toplevel") {
			for _, cp := range []string{"CREATE-SPECIAL-USE", "METADATA"} {
				if !strings.Contains(l, " "+cp) {
					extra += " " + cp
				}
			}
		}
		return l[:m[3]] + extra + l[m[3]:]
	}
	if strings.HasPrefix(l, "* STATUS ") {
		return c.statusLine(l)
	}
	tag, rest, _ := strings.Cut(l, " ")
	c.mu.Lock()
	cmd, ok := c.tags[tag]
	delete(c.tags, tag)
	c.mu.Unlock()
	if !ok {
		return l
	}
	if cmd.answer != "" {
		return tag + " " + cmd.answer
	}
	if !strings.HasPrefix(rest, "OK") || !c.on("mailboxid") {
		return l
	}
	id := c.srv.mailboxID(c.modeUser(), cmd.mailbox)
	if id == "" {
		return l
	}
	switch cmd.verb {
	case "SELECT", "EXAMINE":
		return fmt.Sprintf("* OK [MAILBOXID (%s)] Ok\r\n%s", id, l)
	case "CREATE":
		if !strings.HasPrefix(rest, "OK [") {
			return fmt.Sprintf("%s OK [MAILBOXID (%s)]%s", tag, id, strings.TrimPrefix(rest, "OK"))
		}
	}
	return l
}

// statusLine adds MAILBOXID to the STATUS answer of a command that asked for it.
func (c *modeConn) statusLine(l string) string {
	name := canonicalName(unquote(firstArg(strings.TrimPrefix(l, "* STATUS "))))
	c.mu.Lock()
	asked := false
	for _, cmd := range c.tags {
		if cmd.status && cmd.mailbox == name {
			asked = true
		}
	}
	c.mu.Unlock()
	if !asked || !strings.HasSuffix(l, ")") {
		return l
	}
	id := c.srv.mailboxID(c.modeUser(), name)
	if id == "" {
		return l
	}
	return strings.TrimSuffix(l, ")") + " MAILBOXID (" + id + "))"
}

// mailboxID returns the MAILBOXID of the mailbox name, or "".
func (s *Server) mailboxID(u *user, name string) string {
	if u == nil {
		return ""
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if m, ok := u.mailboxes[name]; ok && !m.noSelect {
		return m.id
	}
	return ""
}

// clearSpecialUse removes the special use of a mailbox (SETMETADATA … NIL).
func (s *Server) clearSpecialUse(u *user, name string) error {
	if u == nil {
		return fmt.Errorf("not logged in")
	}
	u.mu.Lock()
	m, ok := u.mailboxes[name]
	if !ok {
		u.mu.Unlock()
		return errNoMailbox(name)
	}
	old := m.specialUse
	m.specialUse = nil
	u.mu.Unlock()
	s.record(Event{User: u.name, Kind: "setmetadata", Mailbox: name, Flags: old, Detail: "/private/specialuse NIL"})
	return nil
}
