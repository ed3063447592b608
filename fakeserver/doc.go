// Package fakeserver is the in-process IMAP server every syncharness scenario runs
// against by default. It is a backend for go-imap's imapserver (v2.0.0-beta.8) with its
// own data model, built to be more correct than the servers sync engines meet in the wild,
// and to misbehave exactly when a scenario asks.
//
// # Using it
//
//	srv := fakeserver.New(fakeserver.Options{Seed: 1})
//	srv.AddUser("alice", "secret")            // with an empty INBOX
//	addr, err := srv.Listen("127.0.0.1:0")    // serves in the background
//	defer srv.Close()
//	srv.Apply(fakeserver.Deliver{User: "alice", Mailbox: "INBOX", Body: msg})
//	srv.Apply(fakeserver.UIDValidityReset{User: "alice", Mailbox: "INBOX"})
//	snap, err := srv.Snapshot("alice")        // the whole state, without IMAP
//	events := srv.History()                   // every change, in clock order
//
// From the command line, "syncharness serve --listen 127.0.0.1:1143 --user alice:secret"
// runs one in the foreground for trying other clients against it.
//
// # Data model
//
// Each user has mailboxes (hierarchy delimiter "/") with UIDVALIDITY, UIDNEXT, a
// subscription flag, SPECIAL-USE attributes (\All, \Archive, \Drafts, \Flagged, \Junk,
// \Sent, \Trash) and messages with UID, flags and keywords, INTERNALDATE, size and body.
// Every mailbox keeps a MODSEQ counter, raised on every change and stored on each message;
// go-imap's wire layer cannot carry CONDSTORE yet, so it shows only in Snapshot. One lock
// per user guards all of that user's mailboxes, so operations across two mailboxes (COPY,
// MOVE, RENAME) cannot deadlock. Messages are kept sorted by UID and found by binary
// search: no command scans a mailbox to find one UID.
//
// UIDs are strictly ascending and never reused within one UIDVALIDITY, and UIDNEXT is
// always above every UID (unless the known-bad mode ReuseExpungedUIDs is on). UIDVALIDITY
// values come from a generator seeded by Options.Seed and the user name, so the same seed
// gives the same values and the same reset orders.
//
// Mailbox operations follow RFC 3501: CREATE makes missing parents; DELETE of a mailbox
// with children keeps it as \Noselect; RENAME renames the children too and makes missing
// parents of the new name; RENAME INBOX moves INBOX's messages to the new mailbox and
// leaves INBOX empty; creating a \Noselect name makes it selectable again.
//
// # Protocol
//
// IMAP4rev1 with UIDPLUS, MOVE, IDLE, ESEARCH, LIST-EXTENDED, LIST-STATUS, SPECIAL-USE,
// LITERAL+, NAMESPACE, UNSELECT and APPENDLIMIT. Each session keeps its own view of the
// selected mailbox (the UIDs it has been told about), so that:
//   - other sessions learn of EXISTS, EXPUNGE and flag changes with sequence numbers of
//     their own view, at their next command or at once while in IDLE;
//   - "*" means the last message of the session's view, and UID FETCH n:* never answers
//     for a message the session has not been told about;
//   - the mover of a MOVE gets COPYUID, then exactly one EXPUNGE per moved message;
//   - COPY or MOVE of UIDs that are already gone answers OK without COPYUID.
//
// EXPUNGEs are held back after FETCH, STORE and SEARCH (RFC 3501 7.4.1). A FETCH of a body
// section without PEEK sets \Seen. EXAMINE opens a mailbox read-only.
//
// Sessions that have a mailbox selected when it is deleted, renamed, or its UIDs or
// UIDVALIDITY change receive an untagged BYE and are disconnected: go-imap cannot push a
// new UIDVALIDITY or a mailbox name change to a selected session. A session that deletes
// its own selected mailbox stays connected and gets NO [NONEXISTENT] until it selects
// another one; one that renames it stays on it under the new name. RENAME INBOX keeps
// INBOX, so sessions on INBOX are told about the moved messages with EXPUNGEs.
//
// # Limits
//
// An APPEND message may be at most Options.MaxLiteralSize bytes (DefaultMaxLiteralSize, 64
// MiB, when zero; at most 4 GiB - 1), advertised as APPENDLIMIT=N; a larger one is refused
// with NO [TOOBIG] before it is sent. go-imap limits the literals of every other command
// to 4,096 bytes, and answers some malformed arguments (such as a bad sequence set) with
// NO [SERVERBUG] instead of BAD; the connection stays usable in both cases. Bodies are held
// in memory.
//
// # Faults
//
// Faults are values passed to Server.Apply, callable while clients are connected. Their
// Name is the verb of the scenario language; FaultNames lists them all.
//
//   - uidvalidity-bump (UIDValidityBump): new UIDVALIDITY, same UIDs.
//   - uidvalidity-reset (UIDValidityReset): new UIDVALIDITY, UIDs renumbered 1..n in a
//     seeded random order.
//   - renumber-silently (RenumberSilently): new UIDs with the same UIDVALIDITY, a server
//     bug a client must detect. The history event of each of these three maps every old
//     UID (UIDs) to its new one (DestUIDs).
//   - drop (Drop): close every connection, one user's, or one session's, without BYE.
//   - fail (Fail): the next N commands, or the next N of one command name, get the given
//     NO, BAD or BYE response with its response code, e.g. `NO [UNAVAILABLE] try later`.
//     CAPABILITY, NOOP, LOGOUT, ENABLE and STARTTLS never reach the backend and cannot fail.
//     AUTHENTICATE (PLAIN, the one mechanism offered) fails as AUTHENTICATE before its SASL
//     exchange starts, so a BYE answers it as it answers any other command.
//   - latency (Latency): delay every response by D.
//   - caps (SetCaps): switch UIDPLUS, MOVE, IDLE, ESEARCH, LIST-EXTENDED, LIST-STATUS,
//     SPECIAL-USE, LITERAL+ or NAMESPACE off or on; Options.DisabledCaps sets the start.
//     New connections get the new set, open ones from their next command. Without MOVE,
//     MOVE answers BAD; without UIDPLUS, APPEND and COPY carry no APPENDUID or COPYUID and
//     UID EXPUNGE answers BAD. go-imap always advertises IDLE once logged in: without
//     IDLE the server still advertises it but answers the IDLE command BAD after its
//     continuation request. go-imap also answers SEARCH RETURN (...) with ESEARCH even
//     when ESEARCH is off, and LIST ... RETURN (STATUS ...) even when LIST-STATUS is off:
//     for those only the advertisement changes. Without SPECIAL-USE, LIST shows no
//     special-use attributes.
//   - deliver, flag, unflag, move, copy, expunge, create, rename, remove (Deliver, Store,
//     MoveMessages, CopyMessages, ExpungeMessages, CreateMailbox, RenameMailbox,
//     DeleteMailbox): changes as another client would make them, with the usual
//     notifications to selected sessions. They change nothing and fail when a UID or
//     mailbox they name does not exist.
//   - Known-bad modes, to prove a checker catches server bugs: ReuseExpungedUIDs makes
//     APPEND and COPY give new messages expunged UIDs; OmitExpungeNotifications stops
//     telling other sessions about EXPUNGEs.
//
// # History and snapshots
//
// History returns every state change (login, append, store, expunge, move, copy, create,
// rename, delete, subscribe, UIDVALIDITY changes) and every fault that took effect, with a
// logical clock, the user, the session (0 for Apply), the mailboxes and UIDs involved.
// Snapshot returns a user's whole state.
package fakeserver
