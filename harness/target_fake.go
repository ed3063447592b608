package harness

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/fakeserver"
	"github.com/syncharness/syncharness/harness/check"
)

// FakeTarget runs every scenario against a fresh in-process fake server. Its fields switch
// on the fake server's known-bad modes from the start of every scenario, to prove that the
// checker (and exploration) catch server bugs; the zero value is a correct server.
type FakeTarget struct {
	// ReuseExpungedUIDs gives new messages UIDs expunged earlier (fakeserver.ReuseExpungedUIDs).
	ReuseExpungedUIDs bool
	// OmitExpungeNotifications hides expunges from other sessions
	// (fakeserver.OmitExpungeNotifications).
	OmitExpungeNotifications bool
	// Bugs are wire bugs to switch on (fakeserver.WireBugNames): answers as servers were
	// seen to give in the field, each breaking one server invariant.
	Bugs []string
	// Modes are server modes to switch on (fakeserver.ParseMode: "uidvalidity-clock",
	// "idle-every=60s"): behaviours of real servers the fake server does not have by
	// default. The scenario's own mailboxes are top level on the fake server, so
	// specialuse-toplevel bites only below them (a remote target's run folder is never
	// top level: see RemoteTarget).
	Modes []string
}

// correct reports whether t is the fake server without any known-bad mode.
func (t FakeTarget) correct() bool {
	return !t.ReuseExpungedUIDs && !t.OmitExpungeNotifications && len(t.Bugs) == 0 && len(t.Modes) == 0
}

const (
	fakeUser     = "alice"
	fakePassword = "wonderland"
)

// Name implements Target.
func (FakeTarget) Name() string { return "fake" }

// Kind implements Target.
func (FakeTarget) Kind() string { return "fake" }

// Open implements Target.
func (t FakeTarget) Open(ctx context.Context, cfg ServerConfig) (Server, error) {
	srv := fakeserver.New(fakeserver.Options{Seed: cfg.Seed})
	if err := srv.AddUser(fakeUser, fakePassword); err != nil {
		srv.Close()
		return nil, err
	}
	var modes []fakeserver.Fault
	if t.ReuseExpungedUIDs {
		modes = append(modes, fakeserver.ReuseExpungedUIDs{User: fakeUser, On: true})
	}
	if t.OmitExpungeNotifications {
		modes = append(modes, fakeserver.OmitExpungeNotifications{User: fakeUser, On: true})
	}
	for _, b := range t.Bugs {
		modes = append(modes, fakeserver.WireBug{Bug: b, On: true})
	}
	for _, m := range t.Modes {
		mode, err := fakeserver.ParseMode(m)
		if err != nil {
			srv.Close()
			return nil, err
		}
		mode.User = fakeUser
		modes = append(modes, mode)
	}
	for _, f := range modes {
		if err := srv.Apply(f); err != nil {
			srv.Close()
			return nil, err
		}
	}
	if _, err := srv.Listen("127.0.0.1:0"); err != nil {
		srv.Close()
		return nil, err
	}
	return &fakeServer{srv: srv}, nil
}

type fakeServer struct {
	srv *fakeserver.Server
}

// Fake returns the fake server behind s, for tests.
func (f *fakeServer) Fake() *fakeserver.Server { return f.srv }

func (f *fakeServer) Dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", f.srv.Addr().String())
}

func (f *fakeServer) Credentials() (string, string) { return fakeUser, fakePassword }

func (f *fakeServer) Close() error { return f.srv.Close() }

func (f *fakeServer) State(ctx context.Context) (check.ServerState, error) {
	conn, err := f.Dial(ctx)
	if err != nil {
		return check.ServerState{}, err
	}
	c := imapclient.New(conn, nil)
	defer c.Close()
	if err := c.Login(fakeUser, fakePassword).Wait(); err != nil {
		return check.ServerState{}, fmt.Errorf("login: %w", err)
	}
	st, err := check.ReadServer(ctx, c, check.ReadOptions{})
	if err != nil {
		return st, err
	}
	_ = c.Logout().Wait()
	return st, nil
}

// uids resolves labels to the UIDs of the messages carrying them in mailbox.
func (f *fakeServer) uids(mailbox string, labels []string) ([]uint32, error) {
	snap, err := f.srv.Snapshot(fakeUser)
	if err != nil {
		return nil, err
	}
	want := make(map[string]bool, len(labels))
	for _, l := range labels {
		want[l] = true
	}
	found := make(map[string]bool, len(labels))
	var uids []uint32
	for _, mb := range snap.Mailboxes {
		if mb.Name != mailbox {
			continue
		}
		for _, m := range mb.Messages {
			if l := clients.Label(m.Body); want[l] {
				uids = append(uids, m.UID)
				found[l] = true
			}
		}
	}
	if err := missingLabels(mailbox, labels, found); err != nil {
		return nil, err
	}
	return uids, nil
}

func (f *fakeServer) Do(ctx context.Context, op ServerOp) error {
	var fault fakeserver.Fault
	switch op.Kind {
	case "deliver":
		for _, m := range op.Messages {
			if err := f.srv.Apply(fakeserver.Deliver{User: fakeUser, Mailbox: op.Mailbox, Body: m.Body, Flags: m.Flags, Date: m.Date}); err != nil {
				return err
			}
		}
		return nil
	case "flag", "unflag", "move", "copy", "expunge":
		uids, err := f.uids(op.Mailbox, op.Labels)
		if err != nil {
			return err
		}
		switch op.Kind {
		case "flag", "unflag":
			fault = fakeserver.Store{User: fakeUser, Mailbox: op.Mailbox, UIDs: uids, Add: op.Kind == "flag", Flags: []string{op.Flag}}
		case "move":
			fault = fakeserver.MoveMessages{User: fakeUser, Mailbox: op.Mailbox, UIDs: uids, Dest: op.Dest}
		case "copy":
			if err := f.srv.CopyRefusal(op.Mailbox, op.Dest); err != nil {
				return err
			}
			fault = fakeserver.CopyMessages{User: fakeUser, Mailbox: op.Mailbox, UIDs: uids, Dest: op.Dest}
		case "expunge":
			fault = fakeserver.ExpungeMessages{User: fakeUser, Mailbox: op.Mailbox, UIDs: uids}
		}
	case "create":
		var use []string
		if op.SpecialUse != "" {
			use = []string{op.SpecialUse}
		}
		fault = fakeserver.CreateMailbox{User: fakeUser, Mailbox: op.Mailbox, SpecialUse: use}
	case "rename":
		fault = fakeserver.RenameMailbox{User: fakeUser, Old: op.Mailbox, New: op.Dest}
	case "remove":
		fault = fakeserver.DeleteMailbox{User: fakeUser, Mailbox: op.Mailbox}
	case "uidvalidity-bump":
		fault = fakeserver.UIDValidityBump{User: fakeUser, Mailbox: op.Mailbox}
	case "uidvalidity-reset":
		fault = fakeserver.UIDValidityReset{User: fakeUser, Mailbox: op.Mailbox}
	case "renumber-silently":
		fault = fakeserver.RenumberSilently{User: fakeUser, Mailbox: op.Mailbox}
	case "drop":
		fault = fakeserver.Drop{User: fakeUser}
	case "fail":
		fault = fakeserver.Fail{N: op.N, Command: op.Command, Response: op.Response}
	case "latency":
		fault = fakeserver.Latency{D: op.Duration}
	case "caps":
		var sc fakeserver.SetCaps
		for _, c := range op.Caps {
			if name, ok := strings.CutPrefix(c, "+"); ok {
				sc.Enable = append(sc.Enable, name)
			} else {
				sc.Disable = append(sc.Disable, strings.TrimPrefix(c, "-"))
			}
		}
		fault = sc
	default:
		return fmt.Errorf("server %s: %w", op.Kind, ErrUnsupported)
	}
	return f.srv.Apply(fault)
}

// Snapshot returns the server's state without IMAP, for the timeline.
func (f *fakeServer) Snapshot() (check.ServerState, error) {
	snap, err := f.srv.Snapshot(fakeUser)
	if err != nil {
		return check.ServerState{}, err
	}
	var st check.ServerState
	for _, mb := range snap.Mailboxes {
		if mb.NoSelect {
			continue
		}
		m := check.ServerMailbox{Name: mb.Name, UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext, HighestModSeq: mb.HighestModSeq}
		for _, msg := range mb.Messages {
			m.Messages = append(m.Messages, check.ServerMessage{UID: msg.UID, Label: clients.Label(msg.Body),
				Hash: clients.ContentHash(msg.Body), Flags: msg.Flags, Size: msg.Size, MessageID: clients.MessageID(msg.Body)})
		}
		st.Mailboxes = append(st.Mailboxes, m)
	}
	return st, nil
}
