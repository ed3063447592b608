package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
)

// A Namespace confines an IMAP session to one folder of an account. The client sees a
// virtual account whose mailboxes are the folder's children: the client's INBOX is
// Root/INBOX on the server and its mailbox NAME is Root/NAME (Sep is the server's
// hierarchy delimiter). Mailbox names in client commands are rewritten on the way in, and
// names in LIST, LSUB and STATUS responses on the way out; LIST entries outside Root are
// dropped. A command that could reach anything outside Root, or that the confinement does
// not understand, is answered BAD and never reaches the server.
type Namespace struct {
	// Root is the confining folder on the server, for example "syncharness-1a2b/move_one".
	Root string
	// Sep is the server's hierarchy delimiter; zero means '/'.
	Sep byte
}

// ErrEscape is wrapped by Namespace.ToServer for a mailbox name that cannot be confined.
var ErrEscape = errors.New("mailbox name not allowed inside the confinement")

func (n Namespace) sep() string {
	if n.Sep == 0 {
		return "/"
	}
	return string(n.Sep)
}

// ToServer maps a client mailbox name to the server's name under Root. INBOX (in any case)
// maps to Root/INBOX. The name is checked as the server will read it, decoded from
// modified UTF-7 (RFC 3501 §5.1.3; "&AC4-&AC4-" is refused rather than read as ".."), and
// refused with an error wrapping ErrEscape when it is empty, is not valid modified UTF-7,
// has empty or "." or ".." levels, leading or trailing delimiters, wildcards or control
// characters, starts with '#' or '~' (other namespaces, home directories), or spells INBOX
// in another case with levels below it ("inbox/sub"): RFC 3501 §5.1 leaves it to the
// server whether that is INBOX's child, and below the run's folder the server would tell
// it from INBOX/sub.
func (n Namespace) ToServer(name string) (string, error) {
	if err := n.valid(name, false); err != nil {
		return "", err
	}
	return n.Root + n.sep() + canonInbox(name, n.sep()), nil
}

// pattern maps a LIST pattern (wildcards allowed) under Root. The empty pattern, which
// asks for the delimiter only, stays empty.
func (n Namespace) pattern(ref, pat string) (string, error) {
	full := ref + pat
	if full == "" {
		return "", nil
	}
	if err := n.valid(full, true); err != nil {
		return "", err
	}
	return n.Root + n.sep() + canonInbox(full, n.sep()), nil
}

func (n Namespace) valid(name string, wildcards bool) error {
	bad := func(why string) error { return fmt.Errorf("%w: %q %s", ErrEscape, name, why) }
	decoded, err := decodeMailbox(name)
	if err != nil {
		return bad(err.Error())
	}
	for _, s := range []string{name, decoded} {
		switch {
		case s == "":
			return bad("is empty")
		case s[0] == '#' || s[0] == '~':
			return bad("names another namespace")
		case strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f }):
			return bad("holds a control character")
		case !wildcards && strings.ContainsAny(s, "*%"):
			return bad("holds a wildcard")
		}
		levels := strings.Split(s, n.sep())
		for _, level := range levels {
			if level == "" || level == "." || level == ".." {
				return bad("has an empty, '.' or '..' level")
			}
		}
		if len(levels) > 1 && levels[0] != "INBOX" && strings.EqualFold(levels[0], "INBOX") {
			return bad("spells INBOX in another case above a level: write INBOX" + n.sep() + "…")
		}
	}
	return nil
}

// FromServer maps a server mailbox name back to the client's name; ok is false for a name
// outside Root (and for Root itself).
func (n Namespace) FromServer(name string) (client string, ok bool) {
	rest, ok := strings.CutPrefix(name, n.Root+n.sep())
	if !ok || rest == "" {
		return "", false
	}
	return rest, true
}

// canonInbox spells a first level INBOX in upper case, as IMAP treats it case-insensitively.
func canonInbox(name, sep string) string {
	first, rest, found := strings.Cut(name, sep)
	if strings.EqualFold(first, "INBOX") {
		if found {
			return "INBOX" + sep + rest
		}
		return "INBOX"
	}
	return name
}

// confinedCaps are hidden from a confined client: their commands name mailboxes in ways the
// confinement does not rewrite, or turn the stream opaque.
var confinedCaps = newCapMask([]string{"STARTTLS", "COMPRESS=DEFLATE", "NOTIFY", "MULTISEARCH",
	"CATENATE", "URLAUTH", "URL-PARTIAL", "METADATA", "METADATA-SERVER", "ACL", "QUOTA",
	"CONVERT", "FILTERS", "CONTEXT=SEARCH", "CONTEXT=SORT", "SEARCHRES", "REPLACE", "PREVIEW", "SAVEDATE"})

// neverFails are the commands Intercept is not asked about: they do not reach a mail
// store, so a server never fails them.
var neverFails = map[string]bool{"CAPABILITY": true, "NOOP": true, "LOGOUT": true, "ENABLE": true,
	"STARTTLS": true}

// cutWord reports whether s starts with the word w (case-insensitively) and returns the rest.
func cutWord(s, w string) (string, bool) {
	if len(s) < len(w) || !strings.EqualFold(s[:len(w)], w) || (len(s) > len(w) && s[len(w)] != ' ') {
		return "", false
	}
	return strings.TrimSpace(s[len(w):]), true
}

func (c *confined) hidden() capMask {
	if c.opts.Hidden == nil {
		return nil
	}
	return newCapMask(c.opts.Hidden())
}

// commands the confinement forwards without looking at their arguments: none names a
// mailbox.
var plainCommands = map[string]bool{
	"CAPABILITY": true, "NOOP": true, "LOGOUT": true, "LOGIN": true, "AUTHENTICATE": true,
	"ENABLE": true, "ID": true, "IDLE": true, "CHECK": true, "CLOSE": true, "UNSELECT": true,
	"EXPUNGE": true, "SEARCH": true, "FETCH": true, "STORE": true, "SORT": true, "THREAD": true,
	"NAMESPACE": true, "UID EXPUNGE": true, "UID FETCH": true, "UID STORE": true,
	"UID SEARCH": true, "UID SORT": true, "UID THREAD": true,
}

// ConfineOptions configure Confine.
type ConfineOptions struct {
	// Namespace is the folder the session is confined to. Required.
	Namespace Namespace
	// Intercept, if set, is asked about each client command before it is forwarded, with
	// the command's upper-cased name ("SELECT", "UID STORE"). A non-empty answer is sent
	// to the client instead of forwarding the command: a status response such as
	// `NO [UNAVAILABLE] try later` is sent tagged, and one starting with BYE is sent as
	// an untagged BYE, after which the connection is closed. It may block (to delay the
	// command) and is called from one goroutine per connection.
	Intercept func(command string) string
	// Hidden, if set, returns capabilities to hide from the client in addition to those
	// the confinement always hides; commands of a hidden extension are answered BAD.
	Hidden func() []string
	// SpecialUse, if set, returns a special-use attribute (`\Trash`) to add to the LIST
	// responses for a client mailbox name, as a server configured with it would show; ""
	// adds nothing.
	SpecialUse func(mailbox string) string
}

// Confine returns a connection that speaks to upstream through opts.Namespace: what is
// written to it is a client's IMAP stream, rewritten before it reaches upstream, and what
// is read from it is upstream's responses, rewritten back. Closing the returned connection
// closes upstream. Dial functions wrap their connections with it so that every client of a
// target (devices through their proxies, the harness's own reads and server steps) sees
// the same confined account. Once upstream has advertised LOGINDISABLED, a LOGIN or
// AUTHENTICATE is answered BAD and its password never forwarded.
func Confine(upstream net.Conn, opts ConfineOptions) net.Conn {
	local, remote := net.Pipe()
	c := &confined{ns: opts.Namespace, opts: opts, client: remote, server: upstream,
		toClient: bufio.NewWriterSize(remote, readBufferSize), litGo: make(chan bool, 1),
		done: make(chan struct{})}
	go c.clientPump()
	go c.serverPump()
	return local
}

type confined struct {
	ns     Namespace
	opts   ConfineOptions
	client net.Conn // our end of the pipe
	server net.Conn

	mu      sync.Mutex
	authTag string        // an AUTHENTICATE in progress: client lines are SASL data
	noLogin bool          // the server advertised LOGINDISABLED
	litTag  string        // a command waiting for the server's answer to a synchronizing literal
	litGo   chan bool     // true for "+", false for a tagged refusal
	closed  bool          // close has run
	done    chan struct{} // closed by close

	toClientMu sync.Mutex
	toClient   *bufio.Writer
}

func (c *confined) close() {
	c.mu.Lock()
	done := c.closed
	c.closed = true
	c.mu.Unlock()
	if !done {
		close(c.done)
		_ = c.client.Close()
		_ = c.server.Close()
	}
}

func (c *confined) clientPump() {
	defer c.close()
	lr := newLineReader(c.client)
	w := bufio.NewWriterSize(c.server, readBufferSize)
	idle := false
	for {
		if err := flushBeforeRead(lr.br, w); err != nil {
			return
		}
		seg, _, err := lr.readSegment()
		if err != nil {
			return
		}
		c.mu.Lock()
		authenticating := c.authTag != ""
		c.mu.Unlock()
		if authenticating || (idle && bytes.EqualFold(trimEOL(seg), []byte("DONE"))) {
			idle = false
			if _, err := w.Write(seg); err != nil {
				return
			}
			continue
		}
		idle = false
		tag, name := commandName(seg)
		out, refusal := c.rewriteCommand(seg, name)
		c.mu.Lock()
		noLogin := c.noLogin
		c.mu.Unlock()
		if refusal == "" && noLogin && (name == "LOGIN" || name == "AUTHENTICATE") {
			refusal = "the server advertises LOGINDISABLED: the password is not sent (use TLS)"
		}
		if refusal == "" {
			if capName, masked := confinedCaps.command(name); masked {
				refusal = capName + " is not available inside the confinement"
			} else if capName, masked := c.hidden().command(name); masked {
				refusal = fmt.Sprintf("%s is not supported (%s is disabled)", name, capName)
			}
		}
		if refusal == "" && c.opts.Intercept != nil && !neverFails[name] {
			if resp := c.opts.Intercept(name); resp != "" {
				if err := c.skipCommand(lr, seg); err != nil {
					return
				}
				if bye, ok := cutWord(resp, "BYE"); ok {
					_ = c.writeClient([]byte("* BYE " + bye + "\r\n"))
					return
				}
				if err := c.writeClient([]byte(tag + " " + resp + "\r\n")); err != nil {
					return
				}
				continue
			}
		}
		if refusal != "" {
			if err := c.skipCommand(lr, seg); err != nil {
				return
			}
			if err := c.writeClient([]byte(tag + " BAD " + refusal + "\r\n")); err != nil {
				return
			}
			continue
		}
		switch name {
		case "AUTHENTICATE":
			c.mu.Lock()
			c.authTag = tag
			c.mu.Unlock()
		case "IDLE":
			idle = true
		}
		if err := c.forwardCommand(lr, w, out, tag); err != nil {
			return
		}
	}
}

// forwardCommand writes the rewritten first segment and passes the command's literals
// and later segments through unchanged.
func (c *confined) forwardCommand(lr *lineReader, w *bufio.Writer, seg []byte, tag string) error {
	for {
		if isSyncLiteral(seg) {
			c.mu.Lock()
			c.litTag = tag
			c.mu.Unlock()
		}
		if _, err := w.Write(seg); err != nil {
			return err
		}
		size, _, ok := literalAt(seg)
		if !ok {
			return nil
		}
		if isSyncLiteral(seg) {
			if err := w.Flush(); err != nil {
				return err
			}
			select {
			case ok := <-c.litGo:
				if !ok {
					return nil
				}
			case <-c.done:
				return net.ErrClosed
			}
		}
		if err := copyLiteral(lr.br, w, size); err != nil {
			return err
		}
		if err := flushBeforeRead(lr.br, w); err != nil {
			return err
		}
		next, _, err := lr.readSegment()
		if err != nil {
			return err
		}
		seg = next
	}
}

// skipCommand reads past the literals a refused command sends without waiting.
func (c *confined) skipCommand(lr *lineReader, seg []byte) error {
	for {
		size, _, ok := literalAt(seg)
		if !ok || isSyncLiteral(seg) {
			return nil // a client waiting for "+" reads the refusal instead
		}
		if _, err := io.CopyN(io.Discard, lr.br, size); err != nil {
			return err
		}
		next, _, err := lr.readSegment()
		if err != nil {
			return err
		}
		seg = next
	}
}

func (c *confined) writeClient(b []byte) error {
	c.toClientMu.Lock()
	defer c.toClientMu.Unlock()
	if _, err := c.toClient.Write(b); err != nil {
		return err
	}
	return c.toClient.Flush()
}

// rewriteCommand returns the first segment of a client command with its mailbox names
// mapped under the namespace, or a reason to refuse the command.
func (c *confined) rewriteCommand(seg []byte, name string) ([]byte, string) {
	if plainCommands[name] {
		return seg, ""
	}
	line := trimEOL(seg)
	eol := seg[len(line):]
	p := &argParser{s: line}
	// Skip the tag and the command name (two words for UID commands).
	words := 2
	if strings.HasPrefix(name, "UID ") {
		words = 3
	}
	for range words {
		if _, ok := p.next(); !ok {
			return nil, "malformed command"
		}
	}
	var edits []edit
	mailbox := func() string {
		a, ok := p.next()
		switch {
		case !ok:
			return "missing mailbox name"
		case a.literal:
			return "mailbox names sent as literals are not accepted inside the confinement"
		case a.list:
			return "malformed mailbox name"
		}
		mapped, err := c.ns.ToServer(a.value)
		if err != nil {
			return err.Error()
		}
		edits = append(edits, edit{a.start, a.end, quote(mapped)})
		return ""
	}
	var why string
	switch name {
	case "SELECT", "EXAMINE", "CREATE", "DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "STATUS":
		why = mailbox()
	case "APPEND":
		why = mailbox()
		if why == "" {
			if a, ok := p.next(); ok && !a.list && !a.literal && strings.EqualFold(a.value, "CATENATE") {
				why = "APPEND CATENATE is not available inside the confinement"
			}
		}
	case "RENAME":
		if why = mailbox(); why == "" {
			why = mailbox()
		}
	case "COPY", "MOVE", "UID COPY", "UID MOVE":
		if _, ok := p.next(); !ok {
			why = "missing sequence set"
		} else {
			why = mailbox()
		}
	case "LIST", "LSUB":
		why = c.rewriteList(p, name == "LIST", &edits)
	default:
		why = name + " is not available inside the confinement"
	}
	if why != "" {
		return nil, why
	}
	if name == "DELETE" && len(edits) == 1 && edits[0].text == quote(c.ns.Root+c.ns.sep()+"INBOX") {
		return nil, "INBOX cannot be deleted"
	}
	out := make([]byte, 0, len(seg)+64)
	last := 0
	for _, e := range edits {
		out = append(out, line[last:e.start]...)
		out = append(out, e.text...)
		last = e.end
	}
	out = append(out, line[last:]...)
	return append(out, eol...), ""
}

// rewriteList maps the reference and patterns of LIST [(options)] ref pattern|(patterns)
// or LSUB ref pattern.
func (c *confined) rewriteList(p *argParser, extended bool, edits *[]edit) string {
	a, ok := p.next()
	if ok && extended && a.list {
		a, ok = p.next() // selection options: nothing to rewrite
	}
	if !ok || a.list || a.literal {
		return "malformed LIST reference"
	}
	ref := a
	pats, ok := p.next()
	if !ok || pats.literal {
		return "malformed LIST pattern (literals are not accepted inside the confinement)"
	}
	var values []arg
	if pats.list {
		if !extended {
			return "malformed LSUB pattern"
		}
		inner := &argParser{s: p.s[:pats.end-1], i: pats.start + 1}
		for {
			x, ok := inner.next()
			if !ok {
				break
			}
			if x.list || x.literal {
				return "malformed LIST pattern"
			}
			values = append(values, x)
		}
	} else {
		values = []arg{pats}
	}
	*edits = append(*edits, edit{ref.start, ref.end, `""`})
	for _, v := range values {
		mapped, err := c.ns.pattern(ref.value, v.value)
		if err != nil {
			return err.Error()
		}
		*edits = append(*edits, edit{v.start, v.end, quote(mapped)})
	}
	return ""
}

func (c *confined) serverPump() {
	defer c.close()
	lr := newLineReader(c.server)
	for {
		c.toClientMu.Lock()
		err := flushBeforeRead(lr.br, c.toClient)
		c.toClientMu.Unlock()
		if err != nil {
			return
		}
		seg, _, err := lr.readSegment()
		if err != nil {
			return
		}
		first, second, _ := firstTokens(seg)
		switch {
		case len(first) == 1 && first[0] == '+':
			c.mu.Lock()
			if c.litTag != "" {
				c.litTag = ""
				c.litGo <- true
			}
			c.mu.Unlock()
		case isStatusWord(second) && !(len(first) == 1 && first[0] == '*'):
			c.mu.Lock()
			if string(first) == c.authTag {
				c.authTag = ""
			}
			if string(first) == c.litTag {
				c.litTag = ""
				c.litGo <- false
			}
			c.mu.Unlock()
		}
		if string(first) == "*" && (bytes.EqualFold(second, []byte("LIST")) ||
			bytes.EqualFold(second, []byte("LSUB")) || bytes.EqualFold(second, []byte("STATUS"))) {
			line, err := readWhole(lr, seg)
			if err != nil {
				return
			}
			out, keep := c.rewriteResponse(line, bytes.EqualFold(second, []byte("STATUS")))
			if keep {
				if err := c.writeClient(out); err != nil {
					return
				}
			}
			continue
		}
		if string(first) == "*" && bytes.Contains(bytes.ToUpper(seg), []byte("LOGINDISABLED")) &&
			bytes.Contains(bytes.ToUpper(seg), []byte("CAPABILITY")) {
			c.mu.Lock()
			c.noLogin = true
			c.mu.Unlock()
		}
		seg = confinedCaps.apply(seg)
		if bytes.Contains(seg, []byte("CAPABILITY")) || bytes.Contains(seg, []byte("ENABLED")) {
			seg = c.hidden().apply(seg)
		}
		if !c.forwardResponse(lr, seg) {
			return
		}
	}
}

// forwardResponse passes a server response and its literals to the client.
func (c *confined) forwardResponse(lr *lineReader, seg []byte) bool {
	c.toClientMu.Lock()
	defer c.toClientMu.Unlock()
	for {
		if _, err := c.toClient.Write(seg); err != nil {
			return false
		}
		size, _, ok := literalAt(seg)
		if !ok {
			return true
		}
		if err := copyLiteral(lr.br, c.toClient, size); err != nil {
			return false
		}
		if err := flushBeforeRead(lr.br, c.toClient); err != nil {
			return false
		}
		next, _, err := lr.readSegment()
		if err != nil {
			return false
		}
		seg = next
	}
}

// readWhole reads a response whose first segment is seg, literals included, into one
// buffer (LIST, LSUB and STATUS responses are short).
func readWhole(lr *lineReader, seg []byte) ([]byte, error) {
	line := append([]byte(nil), seg...)
	for {
		size, _, ok := literalAt(seg)
		if !ok {
			return line, nil
		}
		if size > 1<<16 {
			return nil, fmt.Errorf("proxy: confine: literal of %d bytes in a mailbox response", size)
		}
		lit := make([]byte, size)
		if _, err := io.ReadFull(lr.br, lit); err != nil {
			return nil, err
		}
		line = append(line, lit...)
		next, _, err := lr.readSegment()
		if err != nil {
			return nil, err
		}
		line = append(line, next...)
		seg = next
	}
}

// rewriteResponse maps the mailbox name of a LIST, LSUB or STATUS response back to the
// client's view. keep is false for a mailbox outside the namespace.
func (c *confined) rewriteResponse(line []byte, status bool) (out []byte, keep bool) {
	body := trimEOL(line)
	p := &argParser{s: body}
	p.next() // *
	p.next() // LIST, LSUB or STATUS
	var attrs arg
	if !status {
		var ok bool
		if attrs, ok = p.next(); !ok || !attrs.list {
			return nil, false
		}
		if _, ok := p.next(); !ok { // delimiter
			return nil, false
		}
	}
	a, ok := p.next()
	if !ok || a.list {
		return nil, false
	}
	if !status && a.value == "" {
		return line, true // the answer to LIST "" "": the delimiter
	}
	name, ok := c.ns.FromServer(a.value)
	if !ok {
		return nil, false
	}
	rest := body[a.end:]
	if !status && bytes.Contains(bytes.ToUpper(rest), []byte("OLDNAME")) {
		rest = nil // extended data naming another mailbox is dropped
	}
	out = make([]byte, 0, len(line)+16)
	head := body[:a.start]
	if !status && c.opts.SpecialUse != nil {
		if su := c.opts.SpecialUse(name); su != "" && !bytes.Contains(bytes.ToLower(body[attrs.start:attrs.end]), []byte(strings.ToLower(su))) {
			list := body[attrs.start+1 : attrs.end-1]
			sep := " "
			if len(bytes.TrimSpace(list)) == 0 {
				sep = ""
			}
			out = append(out, body[:attrs.end-1]...)
			out = append(out, sep+su+")"...)
			head = body[attrs.end:a.start]
		}
	}
	out = append(out, head...)
	out = append(out, quote(name)...)
	out = append(out, rest...)
	return append(out, "\r\n"...), true
}

type edit struct {
	start, end int
	text       string
}

// arg is one argument of a command or response line.
type arg struct {
	start, end int
	value      string // atoms and strings decoded
	list       bool   // a parenthesised list
	literal    bool   // a literal announcement ending the segment
}

// argParser walks the space-separated arguments of one protocol line. Literals inside a
// whole response (readWhole) are decoded; a literal announcement at the end of a segment
// is reported as such.
type argParser struct {
	s []byte
	i int
}

func (p *argParser) next() (arg, bool) {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
	if p.i >= len(p.s) {
		return arg{}, false
	}
	start := p.i
	switch ch := p.s[p.i]; {
	case ch == '"':
		var b strings.Builder
		p.i++
		for p.i < len(p.s) {
			ch := p.s[p.i]
			p.i++
			if ch == '\\' && p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
				continue
			}
			if ch == '"' {
				return arg{start: start, end: p.i, value: b.String()}, true
			}
			b.WriteByte(ch)
		}
		return arg{}, false
	case ch == '(':
		depth := 0
		for p.i < len(p.s) {
			switch p.s[p.i] {
			case '(':
				depth++
			case ')':
				depth--
			case '"':
				if _, ok := p.next(); !ok {
					return arg{}, false
				}
				continue
			}
			p.i++
			if depth == 0 {
				return arg{start: start, end: p.i, list: true}, true
			}
		}
		return arg{}, false
	case ch == '{' || (ch == '~' && p.i+1 < len(p.s) && p.s[p.i+1] == '{'):
		j := bytes.IndexByte(p.s[p.i:], '}')
		if j < 0 {
			return arg{}, false
		}
		spec := strings.TrimSuffix(strings.TrimSuffix(string(p.s[p.i+1:p.i+j]), "+"), "-")
		spec = strings.TrimPrefix(spec, "{")
		n, err := strconv.Atoi(spec)
		after := p.i + j + 1
		if err != nil {
			return arg{}, false
		}
		if after >= len(p.s) {
			p.i = after
			return arg{start: start, end: after, literal: true}, true
		}
		// A literal inside a whole response: CRLF, then n bytes.
		data := after + 2
		if data+n > len(p.s) {
			return arg{}, false
		}
		p.i = data + n
		return arg{start: start, end: p.i, value: string(p.s[data : data+n])}, true
	default:
		for p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != '(' && p.s[p.i] != ')' {
			if p.s[p.i] == '[' { // BODY[...] and the like: up to the closing bracket
				if j := bytes.IndexByte(p.s[p.i:], ']'); j >= 0 {
					p.i += j
				}
			}
			p.i++
		}
		return arg{start: start, end: p.i, value: string(p.s[start:p.i])}, true
	}
}

// quote returns s as an IMAP quoted string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
