package check

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
)

// ServerState is the server's state as read over IMAP.
type ServerState struct {
	Mailboxes []ServerMailbox // sorted by name
}

// ServerMailbox is one mailbox on the server.
type ServerMailbox struct {
	Name          string
	UIDValidity   uint32
	UIDNext       uint32
	HighestModSeq uint64
	Messages      []ServerMessage // sorted by UID
}

// ServerMessage is one message on the server.
type ServerMessage struct {
	UID       uint32
	Label     string // clients.Label of the raw message
	Hash      string // clients.ContentHash of the raw message
	Flags     []string
	Size      int64
	MessageID string
}

// Find returns the mailbox named name, or nil.
func (s ServerState) Find(name string) *ServerMailbox {
	i := sort.Search(len(s.Mailboxes), func(i int) bool { return s.Mailboxes[i].Name >= name })
	if i < len(s.Mailboxes) && s.Mailboxes[i].Name == name {
		return &s.Mailboxes[i]
	}
	for i := range s.Mailboxes { // not sorted after all
		if s.Mailboxes[i].Name == name {
			return &s.Mailboxes[i]
		}
	}
	return nil
}

// ReadOptions tunes ReadServer.
type ReadOptions struct {
	// Prefix, when set, limits the read to the mailboxes under Prefix and the server's
	// hierarchy delimiter; their names are returned without it, so the scenario's INBOX is
	// Prefix/INBOX. The server's real INBOX is then ignored.
	Prefix string
}

// ReadServer reads the whole state of the account c is logged in to: LIST, then for every
// selectable mailbox EXAMINE (read-only, so no flag changes) and UID FETCH 1:* of UID,
// FLAGS, RFC822.SIZE and BODY.PEEK[]. It leaves the last mailbox examined; the caller owns
// c. The same code serves the fake server and third-party servers.
func ReadServer(ctx context.Context, c *imapclient.Client, opts ReadOptions) (ServerState, error) {
	if err := ctx.Err(); err != nil {
		return ServerState{}, fmt.Errorf("check: read server: %w", err)
	}
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		return ServerState{}, fmt.Errorf("check: read server: LIST: %w", err)
	}
	var st ServerState
	for _, l := range list {
		if hasAttr(l.Attrs, imap.MailboxAttrNoSelect) || hasAttr(l.Attrs, imap.MailboxAttrNonExistent) {
			continue
		}
		name := l.Mailbox
		if opts.Prefix != "" {
			if l.Delim == 0 {
				continue
			}
			rest, ok := strings.CutPrefix(name, opts.Prefix+string(l.Delim))
			if !ok || rest == "" {
				continue
			}
			name = rest
		}
		if err := ctx.Err(); err != nil {
			return ServerState{}, fmt.Errorf("check: read server: %w", err)
		}
		mb, err := readMailbox(c, l.Mailbox)
		if err != nil {
			return ServerState{}, err
		}
		mb.Name = name
		st.Mailboxes = append(st.Mailboxes, mb)
	}
	sort.Slice(st.Mailboxes, func(i, j int) bool { return st.Mailboxes[i].Name < st.Mailboxes[j].Name })
	return st, nil
}

func readMailbox(c *imapclient.Client, name string) (ServerMailbox, error) {
	sel, err := c.Select(name, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		return ServerMailbox{}, fmt.Errorf("check: read server: EXAMINE %q: %w", name, err)
	}
	mb := ServerMailbox{
		Name:          name,
		UIDValidity:   sel.UIDValidity,
		UIDNext:       uint32(sel.UIDNext),
		HighestModSeq: sel.HighestModSeq,
	}
	if sel.NumMessages == 0 {
		return mb, nil
	}
	var all imap.UIDSet
	all.AddRange(1, 0) // 1:*
	msgs, err := c.Fetch(all, &imap.FetchOptions{
		UID:         true,
		Flags:       true,
		RFC822Size:  true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		return ServerMailbox{}, fmt.Errorf("check: read server: UID FETCH 1:* in %q: %w", name, err)
	}
	for _, m := range msgs {
		if m.UID == 0 {
			continue // not a message of this selection (see imapmemserver's `* 0 FETCH`)
		}
		var raw []byte
		for _, b := range m.BodySection {
			raw = b.Bytes
		}
		flags := make([]string, 0, len(m.Flags))
		for _, f := range m.Flags {
			if strings.EqualFold(string(f), `\Recent`) {
				continue
			}
			flags = append(flags, string(f))
		}
		sort.Strings(flags)
		mb.Messages = append(mb.Messages, ServerMessage{
			UID:       uint32(m.UID),
			Label:     clients.Label(raw),
			Hash:      clients.ContentHash(raw),
			Flags:     flags,
			Size:      m.RFC822Size,
			MessageID: clients.MessageID(raw),
		})
	}
	sort.Slice(mb.Messages, func(i, j int) bool { return mb.Messages[i].UID < mb.Messages[j].UID })
	return mb, nil
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}
