package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// drainTimeout bounds how long a cut connection keeps reading (and discarding) what the
// server still sends after it was told the client is gone.
const drainTimeout = 2 * time.Second

// conn is one client connection through the proxy and its upstream connection. It is run
// by two goroutines: the client pump (client → server, the goroutine of run) and the server
// pump (server → client).
type conn struct {
	p      *Proxy   // immutable
	id     int      // immutable
	client net.Conn // immutable

	ctx    context.Context // ends when the connection is cut
	cancel context.CancelFunc

	mu        sync.Mutex
	server    net.Conn    // nil until the upstream is dialled
	cutDone   bool        // cut has run
	authTag   string      // tag of an AUTHENTICATE in progress: client lines are SASL data
	switchTag string      // tag of a STARTTLS or COMPRESS awaiting the server's answer
	verdict   chan bool   // the answer to switchTag: true when the stream turns opaque
	litTag    string      // tag of a command waiting to send a synchronizing literal
	litGo     chan bool   // the answer to litTag: true for "+", false for a tagged refusal
	lost      *lostAnswer // the command whose answer is being dropped (LoseAnswer), or nil

	toClientMu sync.Mutex    // held while a whole line is written to the client
	toClient   *bufio.Writer // to the client; guarded by toClientMu
}

func newConn(p *Proxy, id int, client net.Conn) *conn {
	ctx, cancel := context.WithCancel(p.ctx)
	return &conn{p: p, id: id, client: client, ctx: ctx, cancel: cancel,
		verdict: make(chan bool, 1), litGo: make(chan bool, 1),
		toClient: bufio.NewWriterSize(client, readBufferSize)}
}

func (c *conn) event(format string, args ...any) {
	c.p.transcript.add(time.Now(), c.id, DirEvent,
		fmt.Sprintf("connection %d ", c.id)+fmt.Sprintf(format, args...))
}

// run serves the connection until either side closes it or it is cut.
func (c *conn) run() {
	defer c.p.wg.Done()
	defer c.p.forget(c)
	defer c.cancel()

	c.event("opened")
	server, err := c.p.upstream(c.ctx)
	if err != nil {
		c.cut(fmt.Sprintf("upstream dial failed: %v", err))
		return
	}
	c.mu.Lock()
	if c.cutDone {
		c.mu.Unlock()
		_ = server.Close() // cut while dialling: the upstream connection was never used
		return
	}
	c.server = server
	c.mu.Unlock()
	c.p.idle.opened(c.id, server)
	defer c.p.idle.forget(c.id)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.serverPump(server)
	}()
	c.clientPump(server)
	wg.Wait()
	_ = server.Close() // both pumps are done; a close error changes nothing for anyone
}

// cut closes the client side at once and ends the connection. The server side is
// half-closed, so the server still receives everything already forwarded, then end of
// stream; what it sends afterwards is read and discarded for at most drainTimeout.
func (c *conn) cut(reason string) {
	c.mu.Lock()
	if c.cutDone {
		c.mu.Unlock()
		return
	}
	c.cutDone = true
	server := c.server
	c.mu.Unlock()

	c.cancel()
	c.event("%s", reason)
	// No longer idling from this moment, not once the pumps have drained: a watcher whose
	// connection was just cut must not look quiet to the scheduler while it reconnects.
	c.p.idle.forget(c.id)
	_ = c.client.Close() // the client learns of the cut from its own reads and writes
	if server == nil {
		return
	}
	if hc, ok := server.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
		_ = server.SetReadDeadline(time.Now().Add(drainTimeout))
	} else {
		_ = server.Close()
	}
}

// closeHard cuts the connection and closes the server side at once (Proxy.Close).
func (c *conn) closeHard() {
	c.cut("closed by the proxy")
	c.mu.Lock()
	server := c.server
	c.mu.Unlock()
	if server != nil {
		_ = server.Close() // ends the server pump's drain at once
	}
}

// endReason describes why a side stopped, for the transcript.
func endReason(side string, err error) string {
	if errors.Is(err, io.EOF) {
		return "closed by " + side
	}
	return fmt.Sprintf("%s connection failed: %v", side, err)
}

// waitLatency holds a line that arrived at arrival until the configured latency has passed.
// It calls flush first, so earlier lines are not held with it.
func (c *conn) waitLatency(arrival time.Time, flush func() error) error {
	d := time.Duration(c.p.latency.Load())
	if d <= 0 {
		return nil
	}
	wait := time.Until(arrival.Add(d))
	if wait <= 0 {
		return nil
	}
	if err := flush(); err != nil {
		return err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
}

// flushBeforeRead flushes w unless a complete line is already buffered in r, so the proxy
// never holds forwarded bytes while it waits for more input.
func flushBeforeRead(r *bufio.Reader, w *bufio.Writer) error {
	if w.Buffered() == 0 {
		return nil
	}
	if n := r.Buffered(); n > 0 {
		if b, _ := r.Peek(n); bytes.IndexByte(b, '\n') >= 0 {
			return nil
		}
	}
	return w.Flush()
}

// copyLiteral forwards n literal bytes from r to w.
func copyLiteral(r *bufio.Reader, w *bufio.Writer, n int64) error {
	if int64(r.Buffered()) < n {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	_, err := io.CopyN(w, r, n)
	return err
}

// forwardRest forwards the literals and continuation segments of a line whose first
// segment seg has already been written, updating the transcript line idx. On the client
// side tag is the command's tag: before a synchronizing literal it waits for the server's
// answer, and if the server refused the literal with a tagged response, the command is
// over and forwardRest returns.
func (c *conn) forwardRest(lr *lineReader, w *bufio.Writer, seg []byte, lt *lineText, idx int, tag string) error {
	for {
		size, _, ok := literalAt(seg)
		if !ok {
			return nil
		}
		if tag != "" && isSyncLiteral(seg) {
			if err := w.Flush(); err != nil {
				return err
			}
			select {
			case accepted := <-c.litGo:
				if !accepted {
					return nil
				}
			case <-c.ctx.Done():
				return c.ctx.Err()
			}
		}
		if err := copyLiteral(lr.br, w, size); err != nil {
			return err
		}
		if err := flushBeforeRead(lr.br, w); err != nil {
			return err
		}
		next, _, err := lr.readSegment()
		if len(next) > 0 {
			if tag != "" {
				c.expectContinuation(tag, next)
			}
			if _, werr := w.Write(next); werr != nil {
				return werr
			}
			lt.segment(next)
			c.p.transcript.set(idx, lt.String())
		}
		if err != nil {
			return err
		}
		seg = next
	}
}

// expectContinuation notes, before a client segment is written, that it ends with a
// synchronizing literal: the server will answer with a continuation request or, refusing
// it, with the tagged completion of tag.
func (c *conn) expectContinuation(tag string, seg []byte) {
	if !isSyncLiteral(seg) {
		return
	}
	c.mu.Lock()
	c.litTag = tag
	c.mu.Unlock()
}

// continued notes a continuation request from the server ("+ …"). It releases a client
// waiting to send a synchronizing literal.
func (c *conn) continued() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.litTag != "" {
		c.litTag = ""
		c.litGo <- true
	}
}

// clientPump forwards client → server until the client closes or the connection is cut.
func (c *conn) clientPump(server net.Conn) {
	lr := newLineReader(c.client)
	w := bufio.NewWriterSize(server, readBufferSize)
	idle := false // an IDLE command was sent: a DONE line ends it
	for {
		if err := flushBeforeRead(lr.br, w); err != nil {
			c.cut(endReason("server", err))
			return
		}
		seg, arrival, err := lr.readSegment()
		if err != nil {
			if len(seg) > 0 && c.ctx.Err() == nil {
				_, _ = w.Write(seg) // a last unterminated fragment, passed on as received
				_ = w.Flush()
			}
			c.cut(endReason("client", err))
			return
		}

		c.mu.Lock()
		authenticating := c.authTag != ""
		c.mu.Unlock()
		var lt lineText
		isCommand := false
		var tag, name string
		switch {
		case authenticating:
			if bytes.Equal(trimEOL(seg), []byte("*")) {
				lt.segment(seg)
			} else {
				lt = lineText{b: []byte(Redacted), fixed: true}
			}
		case idle && bytes.EqualFold(trimEOL(seg), []byte("DONE")):
			idle = false
			lt.segment(seg)
		default:
			idle = false
			isCommand = true
			tag, name = commandName(seg)
			if text, ok := redactCommand(name, seg); ok {
				lt = lineText{b: []byte(text), fixed: true}
			} else {
				lt.segment(seg)
			}
		}

		if isCommand && c.losing() {
			// The answer to an earlier command is being dropped: nothing more reaches
			// the server on this connection, which is cut once that command completes.
			c.holdUntilCut(w)
			return
		}
		if isCommand && c.p.gate != nil {
			c.p.idle.awaitGreeting(c.ctx, c.id)
			if err := w.Flush(); err != nil {
				c.cut(endReason("server", err))
				return
			}
			if err := c.p.gate.Wait(c.ctx, c.p.name, lt.String()); err != nil {
				c.cut(fmt.Sprintf("cut by the gate before %q: %v", lt.String(), err))
				return
			}
		}
		if err := c.waitLatency(arrival, w.Flush); err != nil {
			c.cut(endReason("server", err))
			return
		}
		if isCommand {
			if m := c.p.mask.Load(); m != nil {
				if capName, masked := m.command(name); masked {
					if !c.refuseCommand(lr, seg, arrival, tag, name, capName, &lt) {
						return
					}
					continue
				}
			}
			verdict, gen := c.p.admit()
			if verdict == admitCut {
				if err := w.Flush(); err != nil {
					c.cut(endReason("server", err))
					return
				}
				c.cut(fmt.Sprintf("cut by CutAfter before %q", lt.String()))
				return
			}
			// Set the protocol state before the server can answer the command.
			c.mu.Lock()
			switch name {
			case "AUTHENTICATE":
				c.authTag = tag
			case "STARTTLS", "COMPRESS":
				c.switchTag = tag
			}
			if verdict == admitLose {
				c.lost = &lostAnswer{tag: tag, gen: gen, command: lt.String()}
			}
			c.mu.Unlock()
			idle = name == "IDLE"
		}

		idx := c.p.transcript.add(arrival, c.id, DirClient, lt.String())
		c.p.idle.client(c.id, isCommand, name, seg)
		if isCommand {
			c.expectContinuation(tag, seg)
		}
		if _, err := w.Write(seg); err != nil {
			c.cut(endReason("server", err))
			return
		}
		if isCommand {
			if err := c.forwardRest(lr, w, seg, &lt, idx, tag); err != nil {
				c.cut(endReason("client", err))
				return
			}
		}
		if isCommand && (name == "STARTTLS" || name == "COMPRESS") {
			if !c.awaitSwitch(lr, w, server) {
				return
			}
		}
	}
}

// refuseCommand answers a command that uses a masked extension with BAD instead of
// forwarding it, reading and discarding the rest of the command. It returns false when the
// pump must stop.
func (c *conn) refuseCommand(lr *lineReader, seg []byte, arrival time.Time, tag, name, capName string, lt *lineText) bool {
	idx := c.p.transcript.add(arrival, c.id, DirClient, lt.String())
	c.event("refused %s: %s is masked", name, capName)
	if _, _, ok := literalAt(seg); ok && !isSyncLiteral(seg) {
		// The client sends the literal without waiting: read past it.
		discard := bufio.NewWriter(io.Discard)
		if err := c.forwardRest(lr, discard, seg, lt, idx, ""); err != nil {
			c.cut(endReason("client", err))
			return false
		}
	}
	if err := c.refuse(tag, fmt.Sprintf("%s is not supported (%s is masked by the proxy)", name, capName)); err != nil {
		c.cut(endReason("client", err))
		return false
	}
	return true
}

// awaitSwitch waits for the server's answer to STARTTLS or COMPRESS. If the server accepted,
// the stream is no longer IMAP text: it copies client → server raw until the end and
// returns false. It returns true to go on reading lines.
func (c *conn) awaitSwitch(lr *lineReader, w *bufio.Writer, server net.Conn) bool {
	if err := w.Flush(); err != nil {
		c.cut(endReason("server", err))
		return false
	}
	select {
	case ok := <-c.verdict:
		if !ok {
			return true
		}
	case <-c.ctx.Done():
		return false
	}
	_, err := lr.br.WriteTo(server)
	if err == nil {
		err = io.EOF
	}
	c.cut(endReason("client", err))
	return false
}

// serverPump forwards server → client until the server closes or the connection is cut.
// It holds toClientMu while it writes a protocol line, so a response the proxy makes up
// itself (see refuse) never lands inside one.
func (c *conn) serverPump(server net.Conn) {
	lr := newLineReader(server)
	w := c.toClient
	defer func() {
		// After a cut, read what the server still sends until it closes (or the drain
		// deadline set by cut passes), so it can finish the commands it already received.
		_, _ = io.Copy(io.Discard, lr.br)
	}()
	for {
		c.toClientMu.Lock()
		err := flushBeforeRead(lr.br, w)
		c.toClientMu.Unlock()
		if err != nil {
			c.cut(endReason("client", err))
			return
		}
		seg, arrival, err := lr.readSegment()
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			if len(seg) > 0 {
				c.toClientMu.Lock()
				_, _ = w.Write(seg) // a last unterminated fragment, passed on as received
				_ = w.Flush()
				c.toClientMu.Unlock()
			}
			c.cut(endReason("server", err))
			return
		}
		if !c.forwardServerLine(lr, seg, arrival) {
			return
		}
	}
}

// forwardServerLine forwards one server line whose first segment is seg. It returns false
// when the pump must stop.
func (c *conn) forwardServerLine(lr *lineReader, seg []byte, arrival time.Time) bool {
	w := c.toClient
	first, second, _ := firstTokens(seg)
	data := true // a line that may announce a literal
	switchOK := false
	switch {
	case len(first) == 1 && first[0] == '+':
		data = false
		c.continued()
	case isStatusWord(second):
		data = false
		if !(len(first) == 1 && first[0] == '*') {
			switchOK = c.completed(string(first), bytes.EqualFold(second, []byte("OK")))
		}
	}
	pushed, isPushed := c.pushDate(first, seg)
	if !(len(first) == 1 && first[0] == '+') && c.losing() {
		return c.dropServerLine(lr, seg, data)
	}
	if m := c.p.mask.Load(); m != nil {
		seg = m.apply(seg)
	}
	if err := c.waitLatency(arrival, c.flushToClient); err != nil {
		return false
	}

	c.toClientMu.Lock()
	defer c.toClientMu.Unlock()
	var lt lineText
	lt.segment(seg)
	var idx int
	if isPushed {
		idx = c.p.transcript.addDated(pushed, c.id, DirServer, lt.String())
	} else {
		idx = c.p.transcript.add(arrival, c.id, DirServer, lt.String())
	}
	c.p.idle.server(c.id, first)
	if _, err := w.Write(seg); err != nil {
		c.cut(endReason("client", err))
		return false
	}
	if data {
		if err := c.forwardRest(lr, w, seg, &lt, idx, ""); err != nil {
			c.cut(endReason("server", err))
			return false
		}
	}
	if switchOK {
		if err := w.Flush(); err != nil {
			c.cut(endReason("client", err))
			return false
		}
		c.event("passes bytes through unread after %s", lt.String())
		_, err := lr.br.WriteTo(c.client)
		if err == nil {
			err = io.EOF
		}
		c.cut(endReason("server", err))
		return false
	}
	return true
}

// pushDate asks Options.PushStamp for the date of a server line about a change that came
// while the connection idles ("* 3 EXISTS", "* 2 EXPUNGE", "* 1 FETCH (...)").
func (c *conn) pushDate(first, seg []byte) (time.Duration, bool) {
	if c.p.pushStamp == nil || len(first) != 1 || first[0] != '*' {
		return 0, false
	}
	_, _, rest := firstTokens(seg)
	word, _, _ := bytes.Cut(rest, []byte{' '})
	if !isUpdateWord(word) {
		return 0, false
	}
	upstream, idling := c.p.idle.idlingUpstream(c.id)
	if !idling {
		return 0, false
	}
	return c.p.pushStamp(upstream)
}

func (c *conn) flushToClient() error {
	c.toClientMu.Lock()
	defer c.toClientMu.Unlock()
	return c.toClient.Flush()
}

// refuse answers a client command itself with a tagged BAD, as a server without the
// extension would, instead of forwarding it.
func (c *conn) refuse(tag, text string) error {
	line := tag + " BAD " + text
	c.p.transcript.add(time.Now(), c.id, DirServer, line)
	c.toClientMu.Lock()
	defer c.toClientMu.Unlock()
	if _, err := c.toClient.WriteString(line + "\r\n"); err != nil {
		return err
	}
	return c.toClient.Flush()
}

// completed records the tagged completion of tag. It returns true when the command was a
// STARTTLS or COMPRESS the server accepted, after which the stream is opaque.
func (c *conn) completed(tag string, ok bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if tag == c.authTag {
		c.authTag = ""
	}
	if tag == c.litTag {
		c.litTag = ""
		c.litGo <- false
	}
	if tag == c.switchTag {
		c.switchTag = ""
		c.verdict <- ok
		return ok
	}
	return false
}
