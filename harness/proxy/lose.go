package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// LoseAnswer arms a lost answer: the next n client commands (counted across all
// connections) are forwarded, and the server carries out the n-th as usual, but everything
// it sends on that connection after the command line is dropped, its tagged completion
// included; continuation requests still pass, so the command's literals reach the server.
// Once the tagged completion has reached the proxy, the connection is cut: the client
// learns only that its connection broke, after the server acted on the command (failure F5
// of the design: an APPEND stored, its APPENDUID never seen). Commands the client sends on
// that connection meanwhile never reach the server; one sent on another connection is cut
// before it does. LoseAnswer(0) (or a negative n) disarms, as CutAfter(0) does; each call
// replaces the previous arming, CutAfter's too. Cut's channel is closed when the
// connection is cut.
func (p *Proxy) LoseAnswer(n int) {
	p.arm(n, false, true)
}

// LoseAnswerOffline is LoseAnswer, and when the connection is cut the proxy also goes
// offline, in the same instant, until SetOffline(false), as CutAfterOffline does.
func (p *Proxy) LoseAnswerOffline(n int) {
	p.arm(n, true, true)
}

// lostAnswer is the command of a connection whose answer LoseAnswer drops.
type lostAnswer struct {
	tag     string // the command's tag: its tagged completion ends the drop
	gen     uint64 // the arming it belongs to (Proxy.cutGen)
	command string // the command as the transcript shows it
}

// losing reports whether the answer to a command of this connection is being dropped.
func (c *conn) losing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lost != nil
}

// holdUntilCut keeps the client pump from forwarding anything more once a command's
// answer is being dropped: it sends what was already forwarded and waits for the cut.
func (c *conn) holdUntilCut(w *bufio.Writer) {
	if err := w.Flush(); err != nil {
		c.cut(endReason("server", err))
		return
	}
	<-c.ctx.Done()
}

// dropServerLine reads a server line whose first segment is seg, with its literals when
// data is true, and drops it instead of forwarding it: the proxy's events record it. When
// it is the tagged completion of the command whose answer is lost, it cuts the connection
// and returns false, which stops the server pump.
func (c *conn) dropServerLine(lr *lineReader, seg []byte, data bool) bool {
	var lt lineText
	lt.segment(seg)
	first, second, _ := firstTokens(seg)
	for data {
		size, _, ok := literalAt(seg)
		if !ok {
			break
		}
		if _, err := io.CopyN(io.Discard, lr.br, size); err != nil {
			c.cut(endReason("server", err))
			return false
		}
		next, _, err := lr.readSegment()
		lt.segment(next)
		if err != nil {
			c.cut(endReason("server", err))
			return false
		}
		seg = next
	}
	c.event("dropped S: %s", lt.String())

	c.mu.Lock()
	lost := c.lost
	c.mu.Unlock()
	if !bytes.Equal(first, []byte(lost.tag)) || !isStatusWord(second) {
		return true
	}
	// What the server answered before the lost command still reaches the client.
	_ = c.flushToClient() // a failure here is the client gone: the cut follows anyway
	c.p.loseFired(lost.gen)
	c.cut(fmt.Sprintf("cut by LoseAnswer after the server completed %q", lost.command))
	return false
}

// loseFired fires the cut of arming gen once the answer it dropped is complete, unless a
// command on another connection fired it first or the arming was replaced.
func (p *Proxy) loseFired(gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cutArmed && p.cutGen == gen {
		p.fireLocked()
	}
}
