package engine

import (
	"context"
	"fmt"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
)

// Watch syncs once, then waits on mailbox with IDLE on a connection of its own and runs a
// round after each change the server reports, until ctx ends (then it returns nil). A
// failed round or a dropped connection is returned as an error.
func (e *Engine) Watch(ctx context.Context, mailbox string) error {
	for {
		if _, err := e.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := e.idleOnce(ctx, mailbox); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// idleOnce waits until the server reports a change in mailbox (or ctx ends).
func (e *Engine) idleOnce(ctx context.Context, mailbox string) error {
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
		Fetch: func(*imapclient.FetchMessageData) { signal() },
	}})
	var st clients.SyncStats
	cn := &conn{c: c, timeout: e.opts.CommandTimeout, stats: &st}
	defer cn.close()
	cn.bind(ctx)
	if err := c.Login(e.opts.Username, e.opts.Password).Wait(); err != nil {
		return fail("LOGIN", "", err)
	}
	if _, err := cn.selectBox(mailbox); err != nil {
		return err
	}
	// Anything that arrived while selecting counts too: drain the signal of SELECT's EXISTS.
	select {
	case <-changed:
	default:
	}
	idle, err := c.Idle()
	if err != nil {
		return fail("IDLE", mailbox, err)
	}
	select {
	case <-changed:
	case <-ctx.Done():
	case <-c.Closed():
		return fail("IDLE", mailbox, fmt.Errorf("connection lost"))
	}
	if err := idle.Close(); err != nil && ctx.Err() == nil {
		return fail("IDLE", mailbox, err)
	}
	if err := idle.Wait(); err != nil && ctx.Err() == nil {
		return fail("IDLE", mailbox, err)
	}
	return nil
}
