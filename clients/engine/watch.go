package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
)

// Watch is push mode: it keeps a second connection with mailbox selected (read-only), runs
// a round, then waits with IDLE until the server reports a change there (new, expunged or
// re-flagged mail) and runs a round again. The mailbox is selected before each round, so
// nothing that happens during a round is missed. When a round fails or a connection drops,
// Watch logs it, waits a little (20 ms, doubling up to 2 s) and starts again, as a phone
// would. It returns nil when ctx ends and ErrEngineClosed once the engine is closed.
func (e *Engine) Watch(ctx context.Context, mailbox string) error {
	backoff := 20 * time.Millisecond
	for {
		err := e.watchOnce(ctx, mailbox, func() { backoff = 20 * time.Millisecond })
		if ctx.Err() != nil {
			return nil
		}
		if e.closing() {
			return ErrEngineClosed
		}
		e.log.Warn("watch: reconnecting", "mailbox", mailbox, "err", err, "after", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-e.done:
			t.Stop()
			return ErrEngineClosed
		case <-t.C:
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// watchOnce runs Watch on one IDLE connection until it fails; ok is called after every
// successful round.
func (e *Engine) watchOnce(ctx context.Context, mailbox string, ok func()) error {
	changed := make(chan struct{}, 1)
	signal := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	nc, err := e.opts.Dial(ctx)
	if err != nil {
		return fmt.Errorf("engine: watch: dial: %w", err)
	}
	c := imapclient.New(nc, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Expunge: func(uint32) { signal() },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				signal()
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			_, _ = m.Collect()
			signal()
		},
	}})
	var st clients.SyncStats
	cn := &conn{c: c, timeout: e.opts.CommandTimeout, stats: &st}
	defer cn.close()
	cn.bind(ctx)
	done := cn.watch()
	err = c.Login(e.opts.Username, e.opts.Password).Wait()
	done()
	if err != nil {
		return fail("LOGIN", "", err)
	}
	done = cn.watch()
	_, err = c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	done()
	if err != nil {
		return fail("EXAMINE", mailbox, err)
	}
	// From here on the end of ctx ends IDLE with DONE, and the answer is awaited before the
	// connection closes (the command timeout still bounds it): a watch that stops does so
	// the same way every time, never by closing the connection under a DONE in flight.
	cn.bind(context.WithoutCancel(ctx))
	for {
		select {
		case <-changed:
		default:
		}
		if _, err := e.Sync(ctx); err != nil {
			return err
		}
		ok()
		idle, err := c.Idle()
		if err != nil {
			return fail("IDLE", mailbox, err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
		case <-c.Closed():
		case <-e.done:
		}
		done := cn.watch()
		cerr := idle.Close()
		werr := idle.Wait()
		done()
		if ctx.Err() != nil || e.closing() {
			return nil
		}
		if err := errors.Join(cerr, werr); err != nil {
			return fail("IDLE", mailbox, err)
		}
		if cn.closed() {
			return fail("IDLE", mailbox, errors.New("connection lost"))
		}
	}
}
