package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/syncharness/syncharness/clients"
)

// Device runs an Engine as a simulated device of the harness. It implements clients.Device,
// clients.SyncStater and clients.Watcher.
type Device struct {
	name string

	mu   sync.Mutex // guards opts.Store and eng across Crash
	opts Options
	eng  *Engine
}

var (
	_ clients.Device     = (*Device)(nil)
	_ clients.SyncStater = (*Device)(nil)
	_ clients.Watcher    = (*Device)(nil)
)

// A ReopenableStore is a store that lives outside the process (on disk): Reopen closes it
// and opens it again as a restarted process would, losing whatever was not committed.
type ReopenableStore interface {
	Store
	Reopen() (Store, error)
}

// NewDevice returns a device named name running an engine with opts. opts.Store must be a
// *MemoryStore or a ReopenableStore for Crash to work.
func NewDevice(name string, opts Options) (*Device, error) {
	eng, err := Open(context.Background(), opts)
	if err != nil {
		return nil, fmt.Errorf("engine: device %s: %w", name, err)
	}
	return &Device{name: name, opts: opts, eng: eng}, nil
}

// Name returns the device's name.
func (d *Device) Name() string { return d.name }

// Engine returns the device's current engine (a new one after each Crash).
func (d *Device) Engine() *Engine {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.eng
}

// Do applies a local user action. Labels are resolved in a.Mailbox: every message the user
// sees there with that label. An unknown label or mailbox is an error naming it.
func (d *Device) Do(ctx context.Context, a clients.Action) error {
	e := d.Engine()
	ids := func() ([]LocalID, error) {
		var mbOK bool
		if err := e.opts.Store.View(func(tx Tx) error {
			mb, ok, err := tx.Mailbox(a.Mailbox)
			mbOK = ok && mb.State != MailboxDeleting
			return err
		}); err != nil {
			return nil, err
		}
		if !mbOK {
			return nil, fmt.Errorf("%s: %s: unknown mailbox %q", d.name, a.Kind, a.Mailbox)
		}
		msgs, err := e.Messages(ctx, a.Mailbox)
		if err != nil {
			return nil, err
		}
		var out []LocalID
		for _, l := range a.Labels {
			n := 0
			for _, m := range msgs {
				if m.Label == l {
					out = append(out, m.ID)
					n++
				}
			}
			if n == 0 {
				return nil, fmt.Errorf("%s: %s: no message %q in %q", d.name, a.Kind, l, a.Mailbox)
			}
		}
		return out, nil
	}
	var err error
	switch a.Kind {
	case clients.ActRead, clients.ActUnread, clients.ActFlag, clients.ActUnflag:
		var list []LocalID
		if list, err = ids(); err != nil {
			return err
		}
		flag := a.Flag
		if a.Kind == clients.ActRead || a.Kind == clients.ActUnread {
			flag = `\Seen`
		}
		if a.Kind == clients.ActRead || a.Kind == clients.ActFlag {
			err = e.SetFlags(ctx, list, []string{flag})
		} else {
			err = e.ClearFlags(ctx, list, []string{flag})
		}
	case clients.ActMove, clients.ActCopy, clients.ActDelete, clients.ActTrash:
		var list []LocalID
		if list, err = ids(); err != nil {
			return err
		}
		switch a.Kind {
		case clients.ActMove:
			err = e.Move(ctx, list, a.Dest)
		case clients.ActCopy:
			_, err = e.Copy(ctx, list, a.Dest)
		case clients.ActDelete:
			err = e.Delete(ctx, list)
		default:
			err = e.Trash(ctx, list)
		}
	case clients.ActAppend:
		_, err = e.Append(ctx, a.Mailbox, a.Message, a.Flags, a.Date)
	case clients.ActCreateMailbox:
		err = e.CreateMailbox(ctx, a.Mailbox)
	case clients.ActRenameMailbox:
		err = e.RenameMailbox(ctx, a.Mailbox, a.Dest)
	case clients.ActDeleteMailbox:
		err = e.DeleteMailbox(ctx, a.Mailbox)
	default:
		return fmt.Errorf("%s: unknown action %q", d.name, a.Kind)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", d.name, err)
	}
	return nil
}

// Sync runs one round. Its error is the engine's, without the device's name: the caller,
// which may hold several devices, names the one that failed.
func (d *Device) Sync(ctx context.Context) (clients.SyncStats, error) {
	return d.Engine().Sync(ctx)
}

// View returns the replica.
func (d *Device) View(ctx context.Context) (clients.Replica, error) { return d.Engine().View(ctx) }

// SyncState returns the sync state.
func (d *Device) SyncState(ctx context.Context) (clients.SyncState, error) {
	return d.Engine().SyncState(ctx)
}

// Watch syncs, then waits on mailbox with IDLE and syncs after each change, until ctx ends.
func (d *Device) Watch(ctx context.Context, mailbox string) error {
	return d.Engine().Watch(ctx, mailbox)
}

// Crash simulates a process crash and restart: the connection drops, the store loses what
// was not committed (a MemoryStore crashes, a ReopenableStore is reopened) and a new engine
// opens on it.
func (d *Device) Crash() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.eng.Close(); err != nil {
		return fmt.Errorf("%s: crash: %w", d.name, err)
	}
	switch s := d.opts.Store.(type) {
	case *MemoryStore:
		s.Crash()
	case ReopenableStore:
		ns, err := s.Reopen()
		if err != nil {
			return fmt.Errorf("%s: crash: reopen store: %w", d.name, err)
		}
		d.opts.Store = ns
	default:
		return fmt.Errorf("%s: crash: store %T cannot simulate a crash", d.name, d.opts.Store)
	}
	if d.opts.Quirks.Has(QuirkForgetJournalOnCrash) {
		// Deliberately wrong: the offline journal is lost.
		if err := d.opts.Store.Update(func(tx Tx) error {
			j, err := tx.Journal()
			if err != nil {
				return err
			}
			for _, en := range j {
				if err := tx.DeleteJournal(en.Seq); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("%s: crash: %w", d.name, err)
		}
	}
	eng, err := Open(context.Background(), d.opts)
	if err != nil {
		return fmt.Errorf("%s: crash: reopen: %w", d.name, err)
	}
	d.eng = eng
	return nil
}

// Close closes the engine and the store.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := d.eng.Close()
	if cerr := d.opts.Store.Close(); err == nil {
		err = cerr
	}
	return err
}
