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

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/harness/proxy"
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

	mu          sync.Mutex
	watchCancel context.CancelFunc
	watchDone   chan error
}

func (r *runner) newDevice(ctx context.Context, name string) (*device, error) {
	popts := proxy.Options{Name: name, Upstream: r.server.Dial, Start: r.start}
	if r.gate != nil {
		popts.Gate, popts.Clock = r.gate, r.gate.Now
	}
	p, err := proxy.New(popts)
	if err != nil {
		return nil, fmt.Errorf("device %s: proxy: %w", name, err)
	}
	if len(r.maskedCaps) > 0 {
		p.MaskCaps(r.maskedCaps...)
	}
	d := &device{name: name, proxy: p}
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
	go func() { done <- w.Watch(wctx, mailbox) }()
	return nil
}

// stopWatch ends push mode, if on, and waits for the watch loop to return.
func (d *device) stopWatch() {
	d.mu.Lock()
	cancel, done := d.watchCancel, d.watchDone
	d.watchCancel, d.watchDone = nil, nil
	d.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
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
