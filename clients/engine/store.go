package engine

import (
	"errors"
	"sort"
	"strings"
)

// A Store keeps an engine's replica: its mailboxes, the messages in them with their bodies,
// and the journal of local changes not yet on the server.
//
// Every read happens inside View and every write inside Update. An Update is atomic: when
// fn returns nil all of its writes are committed together; when fn returns an error (or the
// store crashes before the commit) none of them is. A committed Update survives a crash of
// the process; nothing else does. Implementations: MemoryStore (NewMemoryStore) and the disk
// store (bbolt for state and journal, a Maildir for bodies).
//
// The engine never holds a transaction across network I/O (a BodyStager takes bodies as
// they arrive, before the transaction).
type Store interface {
	// View runs fn in a read-only transaction.
	View(fn func(Tx) error) error
	// Update runs fn in a read-write transaction and commits it if fn returns nil.
	Update(fn func(Tx) error) error
	// Close releases the store. Committed data stays where the store keeps it.
	Close() error
}

// A Tx is one transaction of a Store. Write methods fail with ErrReadOnly in a View.
// Records are values: a change is only stored by the Put method that follows it.
type Tx interface {
	// Mailboxes returns every mailbox record, sorted by name.
	Mailboxes() ([]MailboxRecord, error)
	// Mailbox returns the record of the mailbox called name.
	Mailbox(name string) (MailboxRecord, bool, error)
	// PutMailbox inserts or replaces the record of m.Name.
	PutMailbox(m MailboxRecord) error
	// DeleteMailbox removes the mailbox record called name. It does not touch messages.
	DeleteMailbox(name string) error

	// NextID allocates a new local message id, never handed out before by this store.
	NextID() (LocalID, error)
	// Message returns the message record with local id id.
	Message(id LocalID) (MessageRecord, bool, error)
	// Messages returns the records whose Mailbox is mailbox, sorted by local id.
	Messages(mailbox string) ([]MessageRecord, error)
	// MessagesByUID returns the records whose Mailbox is mailbox and whose UID is uid (not
	// 0), sorted by local id: one at most while the records follow one UIDVALIDITY, more
	// while records of an old one keep their UIDs (orphans, quarantined). The store keeps
	// an index, so a lookup costs the same however large the mailbox.
	MessagesByUID(mailbox string, uid uint32) ([]MessageRecord, error)
	// AllMessages returns every message record, sorted by local id.
	AllMessages() ([]MessageRecord, error)
	// Counts returns the tallies of the records whose Mailbox (or MoveTo) is mailbox. The
	// store keeps them as records change, so that a round can tell a mailbox is as it left
	// it without reading its records.
	Counts(mailbox string) (MessageCounts, error)
	// InUse returns, sorted, every mailbox name that a message record's Mailbox or MoveTo
	// names.
	InUse() ([]string, error)
	// PutMessage inserts or replaces the record with local id m.ID.
	PutMessage(m MessageRecord) error
	// DeleteMessage removes a message record and its body. Deleting an unknown id is not an
	// error.
	DeleteMessage(id LocalID) error
	// PutBody stores the raw message of id (bodies never change once written).
	PutBody(id LocalID, raw []byte) error
	// Body returns the raw message of id, or ErrNoBody.
	Body(id LocalID) ([]byte, error)

	// Journal returns every journal entry, in Seq order.
	Journal() ([]JournalEntry, error)
	// AddJournal appends e with a new Seq (greater than every Seq before) and returns it.
	AddJournal(e JournalEntry) (uint64, error)
	// PutJournal replaces the entry with the same Seq.
	PutJournal(e JournalEntry) error
	// DeleteJournal removes the entry seq (the entry is done). Unknown seq is not an error.
	DeleteJournal(seq uint64) error
}

// A BodyStager is a Store that takes a message body before the transaction that stores
// its record: the disk store writes it to its Maildir at once, so that a round downloading
// many messages holds none of their bodies in memory. A staged body is put with
// StagedPutter.PutStagedBody in a later transaction (whose Tx implements StagedPutter), or
// dropped; one neither put nor dropped (a crash) is removed when the store opens again.
// Without staging, a round holds a batch's bodies until its transaction.
type BodyStager interface {
	StageBody(raw []byte) (StagedBody, error)
	DropStaged(b StagedBody)
}

// stagesCopies marks a BodyStager whose StageBody keeps nothing of raw once it returned
// (the disk store writes it to a file), so the engine may reuse the buffer.
type stagesCopies interface{ stagesCopies() }

// StagedBody is a body a BodyStager took; only that store can use it.
type StagedBody interface{ staged() }

// StagedPutter is a Tx that stores a staged body as the body of id (instead of PutBody).
type StagedPutter interface {
	PutStagedBody(id LocalID, b StagedBody) error
}

// Errors returned by stores.
var (
	ErrReadOnly = errors.New("engine: store: write in a read-only transaction")
	ErrNoBody   = errors.New("engine: store: no body for message")
	ErrCrashed  = errors.New("engine: store: crashed before commit")
	ErrClosed   = errors.New("engine: store: closed")
)

// LocalID identifies a message in one replica. It never changes, whatever happens on the
// server (moves, UIDVALIDITY changes), and is never reused.
type LocalID uint64

// MailboxState says how a local mailbox relates to the server.
type MailboxState uint8

// Mailbox states.
const (
	// MailboxSynced: the mailbox existed on the server at the last sync.
	MailboxSynced MailboxState = iota
	// MailboxLocal: created locally; the journal creates it on the server.
	MailboxLocal
	// MailboxDeleting: deleted locally; hidden; the journal deletes it on the server.
	MailboxDeleting
)

// MailboxRecord is the stored state of one mailbox.
type MailboxRecord struct {
	Name          string
	State         MailboxState
	SpecialUse    string // e.g. `\Trash` from LIST; "" if none
	UIDValidity   uint32 // 0: never selected
	UIDNext       uint32 // watermark: every server UID below it is known locally
	HighestModSeq uint64 // CONDSTORE watermark; 0: none
	// MailboxID is the server's MAILBOXID (RFC 8474) for the mailbox under this name when
	// it was last scanned; "" when the server offers none. Another ID under the same name
	// is another mailbox (renamed there, or re-created), whatever its UIDVALIDITY.
	MailboxID string `json:",omitempty"`
}

// MessageCounts tallies the message records of one mailbox.
type MessageCounts struct {
	Records     int // records whose Mailbox is the mailbox
	OnServer    int // of those, with a UID and MsgSynced or MsgDeleted
	Quarantined int // of those, MsgQuarantined
	MovesIn     int // records whose pending move (MoveTo) goes to the mailbox
}

// IsZero reports whether no record counts.
func (c MessageCounts) IsZero() bool { return c == MessageCounts{} }

// addCounts adds (sign 1) or removes (sign -1) m's contribution to the counts of its mailboxes.
func (m MessageRecord) addCounts(counts func(mailbox string) *MessageCounts, sign int) {
	c := counts(m.Mailbox)
	c.Records += sign
	switch {
	case m.State == MsgQuarantined:
		c.Quarantined += sign
	case m.UID != 0 && (m.State == MsgSynced || m.State == MsgDeleted):
		c.OnServer += sign
	}
	if m.MoveTo != "" {
		counts(m.MoveTo).MovesIn += sign
	}
}

// countsClass is what of m addCounts looks at: two records of one class count alike.
type countsClass struct {
	mailbox, moveTo string
	quarantined     bool
	onServer        bool
}

func (m MessageRecord) countsClass() countsClass {
	return countsClass{mailbox: m.Mailbox, moveTo: m.MoveTo, quarantined: m.State == MsgQuarantined,
		onServer: m.State != MsgQuarantined && m.UID != 0 && (m.State == MsgSynced || m.State == MsgDeleted)}
}

// MessageState is the life cycle state of a local message.
type MessageState uint8

// Message states.
const (
	// MsgSynced: the message has a server UID (UID != 0) in Mailbox.
	MsgSynced MessageState = iota
	// MsgNew: created locally (append or copy), not yet on the server (UID == 0).
	MsgNew
	// MsgDeleted: deleted locally; hidden from the user; the journal expunges it.
	MsgDeleted
	// MsgQuarantined: had a UID before a UIDVALIDITY reset and could not be found again;
	// hidden, kept, reported, never uploaded.
	MsgQuarantined
)

// MessageRecord is the stored state of one message. Mailbox is where the message is on the
// server (where UID belongs) or, for a new message, where it will be appended. A pending
// local move shows in MoveTo: the user sees the message there.
type MessageRecord struct {
	ID           LocalID
	Mailbox      string
	MoveTo       string // pending local move destination; "" if none
	UID          uint32 // 0: not on the server (yet)
	State        MessageState
	Size         uint32
	InternalDate int64 // Unix seconds
	Hash         [32]byte
	MessageID    string // without angle brackets; "" if none
	Label        string // clients.Label of the body
	Flags        Flags  // what the user sees
	Base         Flags  // the last flags both sides agreed on
	EverUID      bool   // had a UID once: never uploaded again
}

// Visible returns the mailbox the user sees the message in, or "" if the user does not see
// it (deleted or quarantined).
func (m MessageRecord) Visible() string {
	switch m.State {
	case MsgDeleted, MsgQuarantined:
		return ""
	}
	if m.MoveTo != "" {
		return m.MoveTo
	}
	return m.Mailbox
}

// JournalOp names a journalled local change.
type JournalOp uint8

// Journal operations.
const (
	OpFlags         JournalOp = iota + 1 // the message's Flags differ from Base: push the difference
	OpMove                               // move the message to its MoveTo
	OpDelete                             // expunge the message
	OpAppend                             // upload the message (new or copy)
	OpCreateMailbox                      // create Mailbox
	OpRenameMailbox                      // rename Mailbox to Dest
	OpDeleteMailbox                      // delete Mailbox
	// OpCarry is not work for the server but a contingency: the user's flag write (Touched,
	// with the values Want) landed on a message another device had marked \Deleted, as a
	// move without MOVE does between its COPY and its EXPUNGE. If the message vanishes and
	// its copy turns up elsewhere, the write follows it there.
	OpCarry
	// OpRemark restores \Deleted on the messages (UIDs, under UIDValidity, in Mailbox) an
	// expunge without UIDPLUS cleared it on for its EXPUNGE, should the round stop before
	// it marked them again.
	OpRemark
)

var opNames = map[JournalOp]string{
	OpFlags: "flags", OpMove: "move", OpDelete: "delete", OpAppend: "append",
	OpCreateMailbox: "create", OpRenameMailbox: "rename", OpDeleteMailbox: "remove",
	OpCarry: "carry", OpRemark: "remark",
}

// String returns the operation's name.
func (o JournalOp) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return "op?"
}

// EntryState is a journal entry's progress. A done entry is deleted from the journal.
type EntryState uint8

// Journal entry states.
const (
	EntryPending  EntryState = iota // not sent yet
	EntryInFlight                   // possibly sent: the server may or may not have applied it
)

// JournalEntry is one local change waiting for the server, keyed by local id (never by UID).
type JournalEntry struct {
	Seq     uint64
	Op      JournalOp
	State   EntryState
	Message LocalID // message operations
	Mailbox string  // mailbox operations; for OpAppend the mailbox appended to
	Dest    string  // OpRenameMailbox: new name; OpMove: destination
	// UIDNext and UIDValidity of the destination, saved before an APPEND (or a MOVE without
	// COPYUID) is sent: after a crash the engine looks for the message from UIDNext on.
	UIDNext     uint32
	UIDValidity uint32
	// Source is, for an OpAppend made by a local copy, the message copied: while it is on
	// the server the copy is made there (UID COPY, with the flags it has there by then).
	Source LocalID `json:",omitempty"`
	// Touched is, for OpFlags, every flag the user set or cleared since the last push: each
	// is written with its current value (the message's Flags), even if that equals the last
	// agreed one, because the user's write is the newest. For OpCarry, the flags written.
	Touched Flags
	// Want is, for OpCarry, the values the user wrote (of the flags in Touched).
	Want Flags `json:",omitzero"`
	// UIDs is, for OpRemark, the messages to mark \Deleted again, and IDs the local
	// records they were (to find them again after a UIDVALIDITY change).
	UIDs []uint32  `json:",omitempty"`
	IDs  []LocalID `json:",omitempty"`
}

// SystemFlags is a set of IMAP system flags.
type SystemFlags uint8

// System flags.
const (
	FlagSeen SystemFlags = 1 << iota
	FlagAnswered
	FlagFlagged
	FlagDeleted
	FlagDraft
)

var systemFlagNames = []struct {
	bit  SystemFlags
	name string
}{
	{FlagAnswered, `\Answered`}, {FlagDeleted, `\Deleted`}, {FlagDraft, `\Draft`},
	{FlagFlagged, `\Flagged`}, {FlagSeen, `\Seen`},
}

// Flags is a flag set: system flags as bits, keywords as a sorted, space-separated string.
// Flag and keyword names are case-insensitive atoms (RFC 3501 §2.3.2): the set operations
// and Equal compare keywords without case, and a keyword keeps the spelling it was given
// (Union keeps the receiver's), so a device shows the user's `$Label1` where the server
// stores `$label1`. Compare flag sets with Equal; == also compares the spelling.
type Flags struct {
	System   SystemFlags
	Keywords string
}

// ParseFlags builds a flag set from flag names. System flags are recognised in any case;
// \Recent and other backslash names that are not system flags are dropped.
func ParseFlags(names []string) Flags {
	var f Flags
	var kws []string
	for _, n := range names {
		if strings.HasPrefix(n, `\`) {
			f.System |= systemFlag(n)
			continue
		}
		if n != "" {
			kws = append(kws, n)
		}
	}
	f.Keywords = joinKeywords(kws)
	return f
}

// systemFlag returns the bit of a system flag name (any case), or 0.
func systemFlag(n string) SystemFlags {
	for _, s := range systemFlagNames {
		if strings.EqualFold(n, s.name) {
			return s.bit
		}
	}
	return 0
}

// joinKeywords sorts kws and drops the keywords that equal an earlier one without case:
// the first spelling wins.
func joinKeywords(kws []string) string {
	switch len(kws) {
	case 0:
		return ""
	case 1:
		return kws[0]
	}
	out := kws[:0]
	for i, k := range kws {
		dup := false
		for _, o := range kws[:i] {
			if strings.EqualFold(k, o) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// keywords returns the keywords as a slice.
func (f Flags) keywords() []string {
	if f.Keywords == "" {
		return nil
	}
	return strings.Fields(f.Keywords)
}

// Names returns the flags sorted: system flags with their backslash first, then keywords.
func (f Flags) Names() []string {
	var out []string
	for _, s := range systemFlagNames {
		if f.System&s.bit != 0 {
			out = append(out, s.name)
		}
	}
	out = append(out, f.keywords()...)
	sort.Strings(out)
	return out
}

// IsZero reports whether the set is empty.
func (f Flags) IsZero() bool { return f.System == 0 && f.Keywords == "" }

// Union returns f ∪ o.
func (f Flags) Union(o Flags) Flags {
	return Flags{System: f.System | o.System, Keywords: joinKeywords(append(f.keywords(), o.keywords()...))}
}

// Minus returns f \ o.
func (f Flags) Minus(o Flags) Flags {
	if f.Keywords == "" || o.Keywords == "" {
		return Flags{System: f.System &^ o.System, Keywords: f.Keywords}
	}
	drop := map[string]bool{}
	for _, k := range o.keywords() {
		drop[strings.ToLower(k)] = true
	}
	var kws []string
	for _, k := range f.keywords() {
		if !drop[strings.ToLower(k)] {
			kws = append(kws, k)
		}
	}
	return Flags{System: f.System &^ o.System, Keywords: joinKeywords(kws)}
}

// Equal reports whether f and o hold the same flags, keywords compared without case.
func (f Flags) Equal(o Flags) bool {
	if f.System != o.System {
		return false
	}
	if f.Keywords == o.Keywords || strings.EqualFold(f.Keywords, o.Keywords) {
		return true
	}
	return f.Minus(o).Keywords == "" && o.Minus(f).Keywords == ""
}

// SpelledAs returns f with each keyword that o also holds spelled as o spells it.
func (f Flags) SpelledAs(o Flags) Flags {
	if f.Keywords == o.Keywords || o.Keywords == "" || f.Keywords == "" {
		return f
	}
	return Flags{System: f.System, Keywords: joinKeywords(append(o.Intersect(f).keywords(), f.keywords()...))}
}

// Intersect returns f ∩ o.
func (f Flags) Intersect(o Flags) Flags { return f.Minus(f.Minus(o)) }

// Has reports whether f contains every flag of o.
func (f Flags) Has(o Flags) bool { return o.Minus(f).IsZero() }
