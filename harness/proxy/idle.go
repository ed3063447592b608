package proxy

import (
	"bytes"
	"context"
	"net"
	"sort"
	"strings"
	"sync"
)

// IdleConn is a connection of the device that is idling: it sent IDLE, the server answered
// with its continuation request, and no DONE has been sent since.
type IdleConn struct {
	ID int // the connection's number in the transcript
	// Upstream is the proxy's local address on the connection to the server: the server
	// sees it as the client's address.
	Upstream string
	// Woken is true when the server sent untagged data since the continuation request: the
	// client has something to react to.
	Woken bool
}

// idleTracker follows the IDLE state of every connection of a proxy.
type idleTracker struct {
	notify func() // immutable; may be nil

	mu    sync.Mutex
	conns map[int]*idleState
}

type idleState struct {
	upstream string
	greeting chan struct{} // closed when the server's first line arrived
	sent     bool          // IDLE was forwarded, no DONE or other command since
	idling   bool          // the server's continuation request for it came back
	woken    bool          // untagged data arrived while idling
}

func newIdleTracker(notify func()) *idleTracker {
	return &idleTracker{notify: notify, conns: map[int]*idleState{}}
}

// opened notes a connection whose upstream connection is server.
func (t *idleTracker) opened(id int, server net.Conn) {
	t.mu.Lock()
	t.conns[id] = &idleState{upstream: server.LocalAddr().String(), greeting: make(chan struct{})}
	t.mu.Unlock()
}

// forget drops a connection that ended.
func (t *idleTracker) forget(id int) {
	t.mu.Lock()
	st := t.conns[id]
	delete(t.conns, id)
	t.mu.Unlock()
	if st != nil && st.idling {
		t.changed()
	}
}

// client notes a client line before it is forwarded: a command (name is its name) or
// another line (DONE, literal data, SASL exchange).
func (t *idleTracker) client(id int, isCommand bool, name string, line []byte) {
	t.mu.Lock()
	st := t.conns[id]
	was := false
	if st != nil {
		was = st.idling
		switch {
		case isCommand:
			st.sent, st.idling, st.woken = strings.EqualFold(name, "IDLE"), false, false
		case st.sent && bytes.EqualFold(bytes.TrimSpace(line), []byte("DONE")):
			st.sent, st.idling, st.woken = false, false, false
		}
	}
	t.mu.Unlock()
	if was {
		t.changed()
	}
}

// server notes a server line (first is its first token) before it is forwarded.
func (t *idleTracker) server(id int, first []byte) {
	t.mu.Lock()
	st := t.conns[id]
	changed := false
	if st != nil && st.greeting != nil {
		close(st.greeting)
		st.greeting = nil
	}
	if st != nil && st.sent {
		switch {
		case len(first) == 1 && first[0] == '+':
			changed = !st.idling
			st.idling = true
		case len(first) == 1 && first[0] == '*':
			changed = st.idling && !st.woken
			st.woken = st.woken || st.idling
		default: // the tagged completion of IDLE: it is over
			changed = st.idling
			st.sent, st.idling, st.woken = false, false, false
		}
	}
	t.mu.Unlock()
	if changed {
		t.changed()
	}
}

// awaitGreeting returns once the server's greeting on connection id has arrived, or ctx
// ended. With a gate, a connection's first command waits for it: a client that does not wait
// for the greeting itself (go-imap sends LOGIN at once) would otherwise have its command and
// the greeting cross the proxy in an order that depends on timing.
func (t *idleTracker) awaitGreeting(ctx context.Context, id int) {
	t.mu.Lock()
	var ch chan struct{}
	if st := t.conns[id]; st != nil {
		ch = st.greeting
	}
	t.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case <-ch:
	case <-ctx.Done():
	}
}

func (t *idleTracker) changed() {
	if t.notify != nil {
		t.notify()
	}
}

// idlingUpstream returns the upstream address of connection id and whether it idles.
func (t *idleTracker) idlingUpstream(id int) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.conns[id]
	if st == nil || !st.idling {
		return "", false
	}
	return st.upstream, true
}

// Idling returns the device's connections that are idling, by connection number.
func (p *Proxy) Idling() []IdleConn {
	t := p.idle
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []IdleConn
	for id, st := range t.conns {
		if st.idling {
			out = append(out, IdleConn{ID: id, Upstream: st.upstream, Woken: st.woken})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Conns returns every open connection of the device (Woken is false for all), by number.
func (p *Proxy) Conns() []IdleConn {
	t := p.idle
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]IdleConn, 0, len(t.conns))
	for id, st := range t.conns {
		out = append(out, IdleConn{ID: id, Upstream: st.upstream})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Lines returns how many lines (protocol lines and events) the transcript holds: a cheap
// way to see whether a device is still talking.
func (p *Proxy) Lines() int {
	p.transcript.mu.Lock()
	defer p.transcript.mu.Unlock()
	return len(p.transcript.lines)
}
