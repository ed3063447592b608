package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
	"github.com/syncharness/syncharness/harness/proxy"
	"github.com/syncharness/syncharness/scenarios"
)

// EngineDevice is the DeviceFactory of the syncharness engine: an in-memory or on-disk
// store, as cfg.Store says.
func EngineDevice(ctx context.Context, cfg DeviceConfig) (clients.Device, error) {
	return engineDevice(cfg, 0)
}

// BrokenEngineDevice returns a DeviceFactory for the syncharness engine with deliberately
// broken behaviour, to prove that the checker catches the mistake.
func BrokenEngineDevice(q engine.Quirks) DeviceFactory {
	return func(ctx context.Context, cfg DeviceConfig) (clients.Device, error) {
		return engineDevice(cfg, q)
	}
}

func engineDevice(cfg DeviceConfig, q engine.Quirks) (clients.Device, error) {
	var store engine.Store
	switch cfg.Store {
	case "", "memory":
		store = engine.NewMemoryStore()
	case "disk":
		s, err := engine.OpenDiskStore(cfg.Dir)
		if err != nil {
			return nil, err
		}
		store = s
	default:
		return nil, fmt.Errorf("unknown store %q (want memory or disk)", cfg.Store)
	}
	return engine.NewDevice(cfg.Name, engine.Options{
		Dial:     cfg.Dial,
		Username: cfg.Username,
		Password: cfg.Password,
		Store:    store,
		Logger:   cfg.Logger,
		Quirks:   q,
	})
}

// device is one scenario device: the device itself, its proxy and its watch loop.
type device struct {
	name    string
	dev     clients.Device
	proxy   *proxy.Proxy
	dirs    []string // store directories, one per incarnation
	wiped   bool
	offline bool // the scenario took the device offline

	// Deterministic push (nil otherwise): the scheduler that orders the watch loop's
	// rounds, and whether the device is quiet in push mode (see runner.quiet).
	gate  *Scheduler
	quiet func() bool

	mu          sync.Mutex
	watchCancel context.CancelFunc
	watchDone   chan error
}

func (r *runner) newDevice(ctx context.Context, name string) (*device, error) {
	popts := proxy.Options{Name: name, Upstream: r.server.Dial, Start: r.start}
	if r.gate != nil {
		popts.Gate, popts.Clock = r.gate, r.since
		popts.OnIdle = r.gate.Poke
		if fs := r.fakeServer(); fs != nil && r.logicalClock() {
			popts.PushStamp = fs.PushStamp
		}
	}
	p, err := proxy.New(popts)
	if err != nil {
		return nil, fmt.Errorf("device %s: proxy: %w", name, err)
	}
	if len(r.maskedCaps) > 0 {
		p.MaskCaps(r.maskedCaps...)
	}
	d := &device{name: name, proxy: p}
	if fs := r.fakeServer(); fs != nil && r.gate != nil {
		d.gate = r.gate
		d.quiet = func() bool { return idleQuiet(p, fs) }
	}
	if err := r.incarnate(ctx, d); err != nil {
		p.Close()
		return nil, err
	}
	return d, nil
}

// incarnate builds the device behind d afresh: at the start, and after a wipe.
func (r *runner) incarnate(ctx context.Context, d *device) error {
	dir, err := os.MkdirTemp(r.tempDir, d.name+"-")
	if err != nil {
		return err
	}
	d.dirs = append(d.dirs, dir)
	user, pass := r.server.Credentials()
	factory := r.opts.NewDevice
	if factory == nil {
		factory = EngineDevice
	}
	dial := d.proxy.Dial
	if r.gate != nil {
		dial = func(ctx context.Context) (net.Conn, error) {
			c, err := d.proxy.Dial(ctx)
			if err != nil {
				return nil, err
			}
			return &canonicalConn{Conn: c}, nil
		}
	}
	dev, err := factory(ctx, DeviceConfig{
		Name:     d.name,
		Dial:     dial,
		Username: user,
		Password: pass,
		Store:    r.opts.Store,
		Dir:      filepath.Clean(dir),
		Logger:   r.opts.logger().With("device", d.name),
	})
	if err != nil {
		return fmt.Errorf("device %s: %w", d.name, err)
	}
	d.dev = dev
	return nil
}

// startWatch puts the device in push mode on mailbox.
func (d *device) startWatch(ctx context.Context, mailbox string) error {
	w, ok := d.dev.(clients.Watcher)
	if !ok {
		return fmt.Errorf("%w: device %s cannot watch (no push support)", ErrUnsupported, d.name)
	}
	d.stopWatch()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	d.mu.Lock()
	d.watchCancel, d.watchDone = cancel, done
	d.mu.Unlock()
	if d.gate != nil {
		d.gate.SetWatcher(d.name, d.quiet)
	}
	go func() { done <- w.Watch(wctx, mailbox) }()
	return nil
}

// watching reports whether the device is in push mode.
func (d *device) watching() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.watchCancel != nil
}

// stopWatch ends push mode, if on, and waits for the watch loop to return. In
// deterministic mode it first waits until the device is quiet, so that push mode always
// ends at the same point of its work.
func (d *device) stopWatch() {
	d.mu.Lock()
	cancel, done := d.watchCancel, d.watchDone
	d.mu.Unlock()
	if cancel == nil {
		return
	}
	if d.gate != nil {
		d.waitQuiet(context.Background())
		d.gate.ClearWatcher(d.name)
	}
	d.mu.Lock()
	d.watchCancel, d.watchDone = nil, nil
	d.mu.Unlock()
	cancel()
	<-done
}

// QuietStall bounds how long the harness waits for a device in push mode to become quiet
// while its transcript does not grow: a device that stops talking without settling into
// IDLE is let go after it, and the wait is counted as a scheduler fallback.
const QuietStall = 5 * time.Second

// waitQuiet waits until the device, in push mode with deterministic push, is quiet: its
// IDLE connection is idling, the server has nothing it has not yet written to it, and the
// device has not been woken since. It reports false when it gave up (see QuietStall).
func (d *device) waitQuiet(ctx context.Context) bool {
	if d.quiet == nil || !d.watching() {
		return true
	}
	lines, last := d.proxy.Lines(), time.Now()
	for wait := 50 * time.Microsecond; !d.quiet(); wait = min(2*wait, 2*time.Millisecond) {
		if ctx.Err() != nil {
			return false
		}
		if n := d.proxy.Lines(); n != lines {
			lines, last = n, time.Now()
		} else if time.Since(last) > QuietStall {
			d.gate.CountFallback()
			return false
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	return true
}

// idleQuiet reports whether a device in push mode is quiet, seen from its proxy and from
// the fake server: it has a connection idling, and on every such connection the server
// has written nothing since the IDLE began and has nothing waiting to be written.
func idleQuiet(p *proxy.Proxy, fs *fakeserver.Server) bool {
	conns := p.Idling()
	if len(conns) == 0 {
		return false
	}
	for _, c := range conns {
		if c.Woken {
			return false
		}
		if known, quiet := fs.IdleQuiet(c.Upstream); !known || !quiet {
			return false
		}
	}
	return true
}

// fakeServer returns the in-process fake server when the scenario runs on one, else nil.
func (r *runner) fakeServer() *fakeserver.Server {
	if f, ok := r.server.(interface{ Fake() *fakeserver.Server }); ok {
		return f.Fake()
	}
	return nil
}

// quiesce waits until every device in push mode is quiet (deterministic push only): the
// server's changes reached every watcher and every round they started has finished. A
// watcher's round may wake another, so it goes round until all are quiet at once.
func (r *runner) quiesce(ctx context.Context) {
	for {
		all := true
		for _, d := range r.devices {
			if d.quiet == nil || !d.watching() || d.quiet() {
				continue
			}
			all = false
			if !d.waitQuiet(ctx) {
				return
			}
		}
		if all || ctx.Err() != nil {
			return
		}
	}
}

// pushStep prepares a top-level step in deterministic mode. It waits until every device in
// push mode is quiet (an expectation with within= waits in its own time instead, so that
// its report shows the wait), and while a device watches it makes the step's participant
// active at the scheduler, so that the rounds the step sets off on watching devices
// interleave with its commands by seed. done ends that.
func (r *runner) pushStep(ctx context.Context, st *scenarios.Step) (_ context.Context, done func()) {
	if st.Verb != "expect" || st.Expect == nil || st.Expect.Within <= 0 {
		r.gate.Unhold()
		r.quiesce(ctx)
	}
	// Watchers' rounds wait from the end of this step to the start of the next (exec
	// unholds once it has read the step's start on the logical clock).
	after := func() {
		r.awaitServerClosed(ctx)
		if r.watchingAny() {
			r.gate.Hold()
		}
	}
	if threadOf(ctx) != nil || !r.watchingAny() {
		return ctx, after
	}
	t := &thread{gate: r.gate}
	return withThread(ctx, t), func() {
		t.done()
		after()
	}
}

// awaitServerClosed waits until every connection the fake server closed (a drop, a BYE)
// is gone from the proxies too, so that a device's next command never races the close:
// it then always finds its connection closed. Deterministic mode on the fake server only.
func (r *runner) awaitServerClosed(ctx context.Context) {
	fs := r.fakeServer()
	if fs == nil || r.gate == nil {
		return
	}
	for _, d := range r.devices {
		start := time.Now()
		for {
			closing := false
			for _, c := range d.proxy.Conns() {
				closing = closing || fs.ClosedConn(c.Upstream)
			}
			if !closing || ctx.Err() != nil {
				break
			}
			if time.Since(start) > QuietStall {
				r.gate.CountFallback()
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// watchingAny reports whether a device is in push mode under the deterministic scheduler.
func (r *runner) watchingAny() bool {
	for _, d := range r.devices {
		if d.gate != nil && d.watching() {
			return true
		}
	}
	return false
}

func (d *device) close() {
	d.stopWatch()
	if d.dev != nil {
		d.dev.Close()
	}
	d.proxy.Close()
}

// Quirks names the deliberately broken engine behaviours that `syncharness run
// --broken-engine` and the checker's own tests use, after the failures they reproduce.
var Quirks = map[string]engine.Quirks{
	"pair-by-uid":        engine.QuirkPairByUID,
	"whole-flag-set":     engine.QuirkWholeFlagSet,
	"plain-expunge":      engine.QuirkPlainExpunge,
	"watermark-first":    engine.QuirkWatermarkFirst,
	"forget-journal":     engine.QuirkForgetJournalOnCrash,
	"reupload":           engine.QuirkReupload,
	"drop-orphans":       engine.QuirkDropOrphans,
	"append-search-past": engine.QuirkSearchPastInFlight,
	"append-unmarked":    engine.QuirkUnmarkedAppend,
	"skip-deleted":       engine.QuirkSkipDeleted,
}

// ParseQuirks turns a comma-separated list of Quirks names into engine quirks.
func ParseQuirks(list string) (engine.Quirks, error) {
	var q engine.Quirks
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		v, ok := Quirks[name]
		if !ok {
			names := make([]string, 0, len(Quirks))
			for n := range Quirks {
				names = append(names, n)
			}
			sort.Strings(names)
			return 0, fmt.Errorf("unknown broken behaviour %q (known: %s)", name, strings.Join(names, ", "))
		}
		q |= v
	}
	return q, nil
}
