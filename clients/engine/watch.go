package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
)

// Watch is push mode: it keeps a second connection with mailbox selected (read-only), runs
// a round, then waits with IDLE until the server reports a change there (new, expunged or
// re-flagged mail) and runs a round again, until ctx ends (then it returns nil). The
// mailbox is selected before the first round, so nothing that happens during a round is
// missed. A failed round or a dropped connection is returned as an error, and
// ErrEngineClosed once the engine is closed.
func (e *Engine) Watch(ctx context.Context, mailbox string) error {
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
		return e.watchErr(ctx, fail("LOGIN", "", err))
	}
	done = cn.watch()
	_, err = c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	done()
	if err != nil {
		return e.watchErr(ctx, fail("EXAMINE", mailbox, err))
	}
	for {
		select {
		case <-changed:
		default:
		}
		if _, err := e.Sync(ctx); err != nil {
			return e.watchErr(ctx, err)
		}
		idle, err := c.Idle()
		if err != nil {
			return e.watchErr(ctx, fail("IDLE", mailbox, err))
		}
		select {
		case <-changed:
		case <-ctx.Done():
		case <-c.Closed():
		case <-e.done:
		}
		cerr := idle.Close()
		werr := idle.Wait()
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-e.done:
			return ErrEngineClosed
		default:
		}
		if err := errors.Join(cerr, werr); err != nil {
			return fail("IDLE", mailbox, err)
		}
		if cn.closed() {
			return fail("IDLE", mailbox, errors.New("connection lost"))
		}
	}
}

func (e *Engine) watchErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	if e.closing() {
		return ErrEngineClosed
	}
	return err
}
