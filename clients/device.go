// Package clients defines what the harness needs from a simulated device: a local replica
// plus whatever keeps it in sync with the server. The sync engine in clients/engine is one
// implementation; external engines (mbsync, OfflineIMAP over a Maildir) can be others.
//
// The interface is deliberately small. Capabilities that not every device has are optional
// interfaces, discovered by type assertion (SyncStater, Watcher).
package clients

import (
	"context"
	"time"
)

// A Device is one simulated user device: a local replica plus whatever keeps it in sync.
type Device interface {
	// Name is the device's name in the scenario ("phone").
	Name() string
	// Do applies a local user action to the replica, offline. It never talks to the
	// server: the change reaches the server on the next Sync.
	Do(ctx context.Context, a Action) error
	// Sync runs one full synchronisation round.
	Sync(ctx context.Context) (SyncStats, error)
	// View returns what the user sees now.
	View(ctx context.Context) (Replica, error)
	// Crash simulates a process crash: everything not committed to the device's store is
	// lost. The device must be usable again afterwards (as after a restart).
	Crash() error
	// Close releases the device's resources.
	Close() error
}

// ActionKind names a local user action.
type ActionKind string

// The local user actions of the scenario language (DESIGN.md §3).
const (
	ActRead          ActionKind = "read"   // set \Seen
	ActUnread        ActionKind = "unread" // clear \Seen
	ActFlag          ActionKind = "flag"   // set Flag
	ActUnflag        ActionKind = "unflag" // clear Flag
	ActMove          ActionKind = "move"   // move to Dest
	ActCopy          ActionKind = "copy"   // copy to Dest
	ActDelete        ActionKind = "delete" // expunge
	ActTrash         ActionKind = "trash"  // move to the \Trash mailbox (Dest: its name in the scenario)
	ActAppend        ActionKind = "append" // add Message to Mailbox with Flags
	ActCreateMailbox ActionKind = "create" // create Mailbox
	ActRenameMailbox ActionKind = "rename" // rename Mailbox to Dest
	ActDeleteMailbox ActionKind = "remove" // delete Mailbox
)

// An Action is one local user action. Messages are named by label (see Label); a device
// resolves labels against its own replica.
type Action struct {
	Kind    ActionKind
	Mailbox string
	Labels  []string // the messages acted on (read, flag, move, copy, delete, trash)
	Flag    string   // flag or keyword for flag/unflag, e.g. `\Flagged` or `$Label1`
	Dest    string   // destination mailbox for move/copy and trash; new name for rename
	Message []byte   // the raw RFC 5322 message for append
	Flags   []string // initial flags for append
	Date    time.Time
}

// SyncStats counts what one Sync round did.
type SyncStats struct {
	Commands      int // IMAP commands sent
	Mutations     int // mutating commands sent: APPEND, STORE, COPY, MOVE, EXPUNGE, CREATE, DELETE, RENAME
	BytesFetched  int64
	Uploaded      int // messages appended
	Downloaded    int // message bodies downloaded
	Expunged      int // messages expunged on the server by this device
	Conflicts     int // conflicts resolved by the merge rules
	LocalChanges  int // changes made to the local replica (new, removed, moved or re-flagged messages, mailboxes)
	Quarantined   int // messages set aside after an unrecoverable UIDVALIDITY change
	MailboxesSeen int
}

// Changed reports whether the round changed anything on either side.
func (s SyncStats) Changed() bool { return s.Mutations > 0 || s.LocalChanges > 0 }

// Add adds o to s.
func (s *SyncStats) Add(o SyncStats) {
	s.Commands += o.Commands
	s.Mutations += o.Mutations
	s.BytesFetched += o.BytesFetched
	s.Uploaded += o.Uploaded
	s.Downloaded += o.Downloaded
	s.Expunged += o.Expunged
	s.Conflicts += o.Conflicts
	s.LocalChanges += o.LocalChanges
	s.Quarantined += o.Quarantined
	s.MailboxesSeen += o.MailboxesSeen
}

// A Replica is what a device shows its user: mailboxes and the messages in them.
type Replica struct {
	Mailboxes []Mailbox // sorted by name
}

// Mailbox is one mailbox of a Replica.
type Mailbox struct {
	Name     string
	Messages []Message // sorted by label, then hash
}

// Message is one message of a Replica.
type Message struct {
	Label string   // see Label; "" if the message carries none
	Hash  string   // ContentHash of the raw message
	Flags []string // sorted; system flags with their backslash, keywords as they are
}

// Find returns the mailbox named name, or nil.
func (r Replica) Find(name string) *Mailbox {
	for i := range r.Mailboxes {
		if r.Mailboxes[i].Name == name {
			return &r.Mailboxes[i]
		}
	}
	return nil
}

// SyncStater is implemented by devices that can show their sync state, for the checks
// that need it (UID integrity, journals drained, watermarks). For a device that cannot,
// those checks are reported as not applicable.
type SyncStater interface {
	SyncState(ctx context.Context) (SyncState, error)
}

// SyncState is a device's view of the server: UIDs, watermarks, its journal.
type SyncState struct {
	Mailboxes   []MailboxState
	Pending     int      // journal entries pending or in flight
	PendingDesc []string // one line per such entry, for reports
	Quarantined []string // labels of messages set aside after a UIDVALIDITY change
}

// MailboxState is a device's sync state for one mailbox.
type MailboxState struct {
	Name          string
	UIDValidity   uint32
	UIDNext       uint32 // the saved watermark: every server UID below it is known
	HighestModSeq uint64
	Messages      []MessageState
}

// MessageState is what a device knows of one message's server identity.
type MessageState struct {
	Label string
	Hash  string
	UID   uint32 // 0: not on the server yet
}

// Watcher is implemented by devices that can wait for server pushes (IDLE).
type Watcher interface {
	// Watch syncs once, then waits on mailbox for a change and syncs again after each,
	// until ctx is done.
	Watch(ctx context.Context, mailbox string) error
}
