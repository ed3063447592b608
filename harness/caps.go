package harness

import (
	"context"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2/imapclient"
)

// caps returns the capabilities devices see: the server's, after login, less those the
// scenario masks in the proxies.
func (r *runner) caps(ctx context.Context) (map[string]bool, error) {
	r.capsMu.Lock()
	defer r.capsMu.Unlock()
	if r.serverCaps != nil {
		return r.serverCaps, nil
	}
	conn, err := r.server.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	c := imapclient.New(conn, nil)
	defer c.Close()
	user, pass := r.server.Credentials()
	if err := c.Login(user, pass).Wait(); err != nil {
		return nil, fmt.Errorf("capabilities: login: %w", err)
	}
	caps, err := c.Capability().Wait()
	if err != nil {
		return nil, fmt.Errorf("capabilities: %w", err)
	}
	out := map[string]bool{}
	for c := range caps {
		out[strings.ToUpper(string(c))] = true
	}
	for _, m := range r.maskedCaps {
		delete(out, m)
		if m == "CONDSTORE" {
			delete(out, "QRESYNC")
		}
	}
	_ = c.Logout().Wait()
	r.serverCaps = out
	return out, nil
}

// forgetCaps makes the next guard ask the server again (after a capability change).
func (r *runner) forgetCaps() {
	r.capsMu.Lock()
	defer r.capsMu.Unlock()
	r.serverCaps = nil
}
