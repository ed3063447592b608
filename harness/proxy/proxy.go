// Package proxy is the in-process IMAP fault proxy that sits between every simulated device
// and the server. It speaks IMAP at the line level in both directions (literals, IDLE,
// AUTHENTICATE, STARTTLS and COMPRESS included), forwards bytes exactly as received, and
// injects network faults: latency, dropped connections, a device going offline, a cut
// after a number of commands, and a cut that loses the answer to a command the server
// carried out (LoseAnswer). It can hide capabilities (MaskCaps), answering commands of a
// hidden extension itself as a server without it would. It keeps a transcript per device
// with credentials redacted, and can hold each command at a Gate so that concurrent devices
// interleave in a reproducible order.
//
// Because it works on the wire, the same faults apply to the in-process fake server and to
// any third-party IMAP server.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOffline is returned (wrapped, with the device's name) by Dial while the device is
// offline.
var ErrOffline = errors.New("the device is offline")

// ErrClosed is returned (wrapped, with the device's name) by Dial after Close.
var ErrClosed = errors.New("the proxy is closed")

// Options configure a Proxy.
type Options struct {
	// Name is the device's name, used in transcripts and errors.
	Name string
	// Upstream dials the real server. It is called once per client connection, with a
	// context that ends when the proxy closes. Required.
	Upstream func(ctx context.Context) (net.Conn, error)
	// Start is the origin of transcript times. Zero means the time New was called.
	Start time.Time
	// Gate, if not nil, is asked before each client command is forwarded.
	Gate Gate
	// Clock, if not nil, gives the time of each transcript line instead of the wall clock
	// since Start: a logical clock makes transcripts of a deterministic run reproducible
	// byte for byte. It must be safe for concurrent use.
	Clock func() time.Duration
	// PushStamp, if not nil (and with Clock), dates the server's lines about changes (an
	// EXISTS, EXPUNGE or FETCH) that arrive on a connection while it idles: it is given the
	// connection's upstream address (see IdleConn.Upstream) and returns the time at which
	// the server made the change, or false to date the line by Clock as any other. A
	// server pushes such lines on its own time, not in answer to a command, so on a
	// logical clock the time at which the proxy happens to read them depends on timing;
	// the time of the change does not. It is asked once per such line, in order.
	PushStamp func(upstream string) (time.Duration, bool)
	// OnIdle, if not nil, is called whenever a connection starts or stops idling, or is
	// woken by the server while idling (see Idling). It must not call back into the proxy
	// synchronously with a lock held that the proxy's users take.
	OnIdle func()
}

// Gate is called before each client command line is forwarded (deterministic scheduling).
// Wait must return nil when the command may go, or an error to cut the connection. It is
// called once per command: not for literal data or the continuation of a command line, not
// for DONE ending IDLE, not for AUTHENTICATE exchange lines. command is the command's first
// line as the transcript shows it (redacted). ctx ends when the connection is cut or the
// proxy closes; Wait must then return promptly. Wait may be called from several connections
// at once.
type Gate interface {
	Wait(ctx context.Context, device string, command string) error
}

// A Proxy forwards IMAP connections from one device to the server and injects faults into
// them. All methods are safe for concurrent use; faults take effect on open connections.
type Proxy struct {
	name       string                                      // immutable
	upstream   func(ctx context.Context) (net.Conn, error) // immutable
	gate       Gate                                        // immutable
	pushStamp  func(upstream string) (time.Duration, bool) // immutable; nil without Options.Clock
	ln         net.Listener                                // immutable
	transcript *transcript                                 // immutable pointer
	idle       *idleTracker                                // immutable pointer

	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection's goroutines

	latency atomic.Int64 // time.Duration
	mask    atomic.Pointer[capMask]

	mu       sync.Mutex
	conns    map[*conn]struct{}
	nextConn int
	offline  bool
	closed   bool
	commands int           // client commands forwarded
	cutArmed bool          // a CutAfter or LoseAnswer is pending
	cutLeft  int           // commands still to forward before the cut
	cutStays bool          // the proxy goes offline when the cut fires (CutAfterOffline)
	cutLose  bool          // the last command forwarded loses its answer (LoseAnswer)
	cutGen   uint64        // counts armings, so a lost answer fires only its own
	cutCh    chan struct{} // closed when the armed CutAfter fires
}

// New starts a proxy listening on 127.0.0.1:0. The caller must call Close.
func New(opts Options) (*Proxy, error) {
	if opts.Upstream == nil {
		return nil, fmt.Errorf("proxy: new %q: Options.Upstream is required", opts.Name)
	}
	start := opts.Start
	if start.IsZero() {
		start = time.Now()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: new %q: listen: %w", opts.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		name:       opts.Name,
		upstream:   opts.Upstream,
		gate:       opts.Gate,
		ln:         ln,
		transcript: &transcript{start: start, clock: opts.Clock},
		idle:       newIdleTracker(opts.OnIdle),
		ctx:        ctx,
		cancel:     cancel,
		conns:      map[*conn]struct{}{},
		cutCh:      make(chan struct{}),
	}
	if opts.Clock != nil {
		p.pushStamp = opts.PushStamp
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr returns the proxy's listening address (host:port). Connecting to it directly works
// like Dial, except that a refused connection is closed instead of returning an error.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Dial opens a new client connection through the proxy. While the proxy is offline it fails
// at once with an error wrapping ErrOffline; after Close, with one wrapping ErrClosed.
func (p *Proxy) Dial(ctx context.Context) (net.Conn, error) {
	p.mu.Lock()
	offline, closed := p.offline, p.closed
	p.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("proxy: dial for device %q: %w", p.name, ErrClosed)
	case offline:
		return nil, fmt.Errorf("proxy: dial for device %q: %w", p.name, ErrOffline)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.Addr())
	if err != nil {
		return nil, fmt.Errorf("proxy: dial for device %q: %w", p.name, err)
	}
	return c, nil
}

// SetLatency delays each forwarded line, in both directions, by d from the moment it
// reached the proxy. Lines that arrive together are delayed together (the delay is a
// network's latency, not a bandwidth limit). Zero turns latency off. Raw passthrough after
// STARTTLS or COMPRESS is not delayed.
func (p *Proxy) SetLatency(d time.Duration) {
	p.latency.Store(int64(max(d, 0)))
}

// Drop cuts every open connection now. The client sees its connection closed at once; the
// server receives everything forwarded so far and then end of stream. New connections are
// accepted as usual.
func (p *Proxy) Drop() {
	p.cutAll("dropped")
}

// SetOffline takes the device off the network (true) or back on (false). Going offline cuts
// every open connection as Drop does; while offline, Dial fails at once with ErrOffline and
// direct connections to Addr are closed on accept.
func (p *Proxy) SetOffline(off bool) {
	p.mu.Lock()
	changed := p.offline != off
	p.offline = off
	p.mu.Unlock()
	if changed {
		state := "online"
		if off {
			state = "offline"
		}
		p.transcript.add(time.Now(), 0, DirEvent, "device "+state)
	}
	if off {
		p.cutAll("device offline")
	}
}

// CutAfter arms a cut: the next n client commands (counted across all connections) are
// forwarded, and the connection that sends the one after them is cut before that command
// reaches the server. CutAfter(0) (or a negative n) disarms a pending cut. Each call
// replaces the previous arming, LoseAnswer's too.
func (p *Proxy) CutAfter(n int) {
	p.arm(n, false, false)
}

// CutAfterOffline is CutAfter, and when the cut fires the proxy also goes offline, in the
// same instant, until SetOffline(false): the device cannot reconnect and finish its work
// behind the cut, as a process that crashed there could not.
func (p *Proxy) CutAfterOffline(n int) {
	p.arm(n, true, false)
}

func (p *Proxy) arm(n int, offline, lose bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutArmed = n > 0
	p.cutLeft = max(n, 0)
	p.cutStays = offline && n > 0
	p.cutLose = lose && n > 0
	p.cutGen++
	p.cutCh = make(chan struct{})
}

// Cut returns a channel that is closed when the cut armed by the latest CutAfter or
// LoseAnswer fires. It is never closed if that call disarmed, or if it is replaced before
// firing.
func (p *Proxy) Cut() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cutCh
}

// Commands returns the number of client commands forwarded so far, over all connections.
// Literal data, continuation lines, DONE and AUTHENTICATE exchange lines are not commands;
// commands the proxy answered itself (see MaskCaps) or cut are not counted.
func (p *Proxy) Commands() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.commands
}

// MaskCaps hides capabilities from the client, as if the server lacked them: they are
// removed from `* CAPABILITY` and `* ENABLED` responses and from `[CAPABILITY …]` response
// codes (greeting, LOGIN, AUTHENTICATE), compared case-insensitively; masking CONDSTORE also
// masks QRESYNC. Masking UIDPLUS also removes `[APPENDUID …]` and `[COPYUID …]` codes.
// Commands that exist only with a masked extension (MOVE and UID MOVE for MOVE, UID EXPUNGE
// for UIDPLUS, IDLE, NAMESPACE, UNSELECT, ENABLE, ID, STARTTLS, COMPRESS) are answered
// `BAD` by the proxy and never reach the server; they pass the Gate but are not counted by
// Commands or CutAfter. Command arguments of an extension (CONDSTORE's CHANGEDSINCE, ESEARCH's
// RETURN) are still forwarded. Each call replaces the previous set; MaskCaps() with no
// argument masks nothing. It takes effect at once, on open connections too.
func (p *Proxy) MaskCaps(caps ...string) {
	m := newCapMask(caps)
	p.mask.Store(&m)
}

// Close stops the proxy: it stops accepting, closes every connection on both sides, and
// waits for all its goroutines to end. Calling Close again returns nil.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()

	p.cancel()
	err := p.ln.Close()
	for _, c := range conns {
		c.closeHard()
	}
	p.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("proxy: close %q: %w", p.name, err)
	}
	return nil
}

func (p *Proxy) cutAll(reason string) {
	p.mu.Lock()
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.cut(reason)
	}
}

// admission is admit's verdict on a client command.
type admission int

const (
	admitForward admission = iota // forward it
	admitCut                      // cut the connection before it reaches the server
	admitLose                     // forward it, drop its answer, then cut (LoseAnswer)
)

// admit decides whether a client command may be forwarded now, counting it if so. It
// returns admitCut when an armed cut fires on this command, and admitLose, with the
// arming's generation for loseFired, when this is the command whose answer LoseAnswer
// loses. After that one, the cut stays armed so that a command sent meanwhile on another
// connection is cut before it reaches the server.
func (p *Proxy) admit() (admission, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cutArmed {
		if p.cutLeft == 0 {
			p.fireLocked()
			return admitCut, 0
		}
		p.cutLeft--
		if p.cutLeft == 0 && p.cutLose {
			p.cutLose = false
			p.commands++
			return admitLose, p.cutGen
		}
	}
	p.commands++
	return admitForward, 0
}

// fireLocked fires the armed cut: it disarms it, takes the proxy offline if it was armed
// to, and closes the Cut channel. p.mu must be held.
func (p *Proxy) fireLocked() {
	p.cutArmed = false
	if p.cutStays {
		p.offline = true // new connections are refused from now on
	}
	close(p.cutCh)
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		nc, err := p.ln.Accept()
		if err != nil {
			// The listener only fails for good when Close closed it.
			return
		}
		p.mu.Lock()
		if p.closed || p.offline {
			p.mu.Unlock()
			_ = nc.Close() // refused: nothing to report to anyone but the client
			continue
		}
		p.nextConn++
		c := newConn(p, p.nextConn, nc)
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go c.run()
	}
}

func (p *Proxy) forget(c *conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
