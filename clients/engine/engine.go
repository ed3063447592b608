// Package engine is a two-way IMAP sync engine: it keeps a local replica of an account's
// mailboxes in a Store, applies the user's changes to the replica offline (journalled by
// local id), and reconciles both sides in Sync rounds, after mbsync and RFC 4549: per-flag
// three-way merges, +FLAGS/-FLAGS only, UID MOVE and UID EXPUNGE only, APPEND journalled
// with the server's UIDNEXT, data committed before watermarks, and UIDVALIDITY changes
// re-matched by Message-ID, size and content instead of re-downloading or duplicating mail.
//
// The engine is safe for concurrent use; rounds and local changes are serialised.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/syncharness/syncharness/clients"
)

// Options configures an Engine.
type Options struct {
	// Dial returns a fresh connection to the server (plain IMAP, the greeting not yet read).
	Dial func(ctx context.Context) (net.Conn, error)
	// Username and Password log in.
	Username, Password string
	// Store keeps the replica. The engine does not close it.
	Store Store
	// Logger receives progress and decisions; nil discards them.
	Logger *slog.Logger
	// CommandTimeout bounds the wait for each command's completion; the connection is closed
	// when it passes. 0 means 30 seconds.
	CommandTimeout time.Duration
	// MaxMessageSize is the largest message the engine downloads, in bytes: a bigger one
	// (by its RFC822.SIZE, or by the literal the server sends) fails the round with an error
	// naming its mailbox and UID, so that what a server sends never grows memory without
	// bound. 0 means 64 MiB.
	MaxMessageSize int64
	// Quirks switches on deliberately wrong behaviour, only for proving that checkers catch
	// the bugs real engines have. Zero for a correct engine.
	Quirks Quirks
}

// DefaultMaxMessageSize is the MaxMessageSize of Options that leave it 0.
const DefaultMaxMessageSize = 64 << 20

// Engine syncs one account between a server and a Store.
type Engine struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex           // serialises rounds and local changes
	cn        atomic.Pointer[conn] // the connection kept between rounds; nil when none
	closed    bool
	done      chan struct{} // closed by Close: stops Watch and retries
	closeOnce sync.Once
	// unfinished is set while records may be stranded in mailboxes the replica no longer
	// has: set when a round finds a mailbox gone (mailboxGone), when the engine opens and
	// when a round fails; cleared by a round that settled every record it found nowhere
	// (finishVanished). The reconciliation looks for stranded records while it is set.
	unfinished atomic.Bool
}

// ErrEngineClosed is returned by an Engine's methods after Close.
var ErrEngineClosed = errors.New("engine: closed")

// Open returns an engine on opts.Store. It does no network I/O: the first Sync connects.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Store == nil {
		return nil, fmt.Errorf("engine: open: no store")
	}
	if opts.Dial == nil {
		return nil, fmt.Errorf("engine: open: no Dial function")
	}
	if opts.CommandTimeout <= 0 {
		opts.CommandTimeout = 30 * time.Second
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = DefaultMaxMessageSize
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e := &Engine{opts: opts, log: log, done: make(chan struct{})}
	e.unfinished.Store(true)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return e, nil
}

// Close drops the connection. A round in progress fails; afterwards every method returns
// ErrEngineClosed. The store stays open (its owner closes it).
func (e *Engine) Close() error {
	e.closeOnce.Do(func() { close(e.done) })
	e.dropConn()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	e.dropConn()
	return nil
}

// dropConn closes the current connection without waiting for the engine lock, so that a
// round blocked on the network ends at once.
func (e *Engine) dropConn() {
	if cn := e.cn.Swap(nil); cn != nil {
		cn.close()
	}
}

// closing reports whether Close was called (Close may still wait for a round to end).
func (e *Engine) closing() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// lock takes the engine lock, failing if the engine is closed.
func (e *Engine) lock() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrEngineClosed
	}
	return nil
}

// View returns the local replica as the user sees it.
func (e *Engine) View(ctx context.Context) (clients.Replica, error) {
	var r clients.Replica
	err := e.opts.Store.View(func(tx Tx) error {
		mbs, err := tx.Mailboxes()
		if err != nil {
			return err
		}
		idx := map[string]int{}
		deleting := map[string]bool{}
		for _, mb := range mbs {
			if mb.State == MailboxDeleting {
				deleting[mb.Name] = true
				continue
			}
			idx[mb.Name] = len(r.Mailboxes)
			r.Mailboxes = append(r.Mailboxes, clients.Mailbox{Name: mb.Name, Messages: []clients.Message{}})
		}
		msgs, err := tx.AllMessages()
		if err != nil {
			return err
		}
		for _, m := range msgs {
			where := m.Visible()
			if where == "" {
				continue
			}
			i, ok := idx[where]
			if !ok && deleting[where] {
				continue
			}
			if !ok {
				// A record stranded where a round cut short left it: its mailbox left the
				// server (deleted, or renamed by another client) and the next round finds
				// it elsewhere or lets it go. Until then it is where the user last saw it.
				i = len(r.Mailboxes)
				idx[where] = i
				r.Mailboxes = append(r.Mailboxes, clients.Mailbox{Name: where, Messages: []clients.Message{}})
			}
			r.Mailboxes[i].Messages = append(r.Mailboxes[i].Messages, clients.Message{
				Label: m.Label, Hash: hashString(m.Hash), Flags: viewFlags(m.Flags),
			})
		}
		return nil
	})
	if err != nil {
		return clients.Replica{}, fmt.Errorf("engine: view: %w", err)
	}
	sort.SliceStable(r.Mailboxes, func(a, b int) bool { return r.Mailboxes[a].Name < r.Mailboxes[b].Name })
	for i := range r.Mailboxes {
		ms := r.Mailboxes[i].Messages
		sort.Slice(ms, func(a, b int) bool {
			if ms[a].Label != ms[b].Label {
				return ms[a].Label < ms[b].Label
			}
			return ms[a].Hash < ms[b].Hash
		})
	}
	return r, ctx.Err()
}

func viewFlags(f Flags) []string {
	n := f.Names()
	if n == nil {
		return []string{}
	}
	return n
}

// SyncState returns the engine's view of the server: UIDs, watermarks and its journal.
func (e *Engine) SyncState(ctx context.Context) (clients.SyncState, error) {
	var st clients.SyncState
	err := e.opts.Store.View(func(tx Tx) error {
		mbs, err := tx.Mailboxes()
		if err != nil {
			return err
		}
		for _, mb := range mbs {
			if mb.State == MailboxDeleting {
				continue
			}
			ms := clients.MailboxState{Name: mb.Name, UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext,
				HighestModSeq: mb.HighestModSeq}
			msgs, err := tx.Messages(mb.Name)
			if err != nil {
				return err
			}
			for _, m := range msgs {
				switch m.State {
				case MsgQuarantined:
					st.Quarantined = append(st.Quarantined, m.Label)
					continue
				case MsgDeleted:
					continue
				}
				ms.Messages = append(ms.Messages, clients.MessageState{Label: m.Label, Hash: hashString(m.Hash), UID: m.UID})
			}
			st.Mailboxes = append(st.Mailboxes, ms)
		}
		j, err := tx.Journal()
		if err != nil {
			return err
		}
		for _, en := range j {
			if en.Op == OpCarry {
				continue // a contingency, not work for the server
			}
			st.Pending++
			st.PendingDesc = append(st.PendingDesc, describeEntry(tx, en))
		}
		return nil
	})
	if err != nil {
		return clients.SyncState{}, fmt.Errorf("engine: sync state: %w", err)
	}
	return st, ctx.Err()
}

func describeEntry(tx Tx, en JournalEntry) string {
	state := "pending"
	if en.State == EntryInFlight {
		state = "in flight"
	}
	switch en.Op {
	case OpRemark:
		return fmt.Sprintf("%s %s of %d messages in %q", state, en.Op, len(en.UIDs), en.Mailbox)
	case OpCreateMailbox, OpDeleteMailbox:
		return fmt.Sprintf("%s %s %q", state, en.Op, en.Mailbox)
	case OpRenameMailbox:
		return fmt.Sprintf("%s %s %q to %q", state, en.Op, en.Mailbox, en.Dest)
	}
	label := "?"
	where := ""
	if m, ok, err := tx.Message(en.Message); err == nil && ok {
		label, where = m.Label, m.Mailbox
	}
	return fmt.Sprintf("%s %s %s in %q (local id %d)", state, en.Op, label, where, en.Message)
}
