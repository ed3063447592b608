package engine

// A round (Sync, sync.go) runs these steps in this order, each in the file named after it:
//
//  1. pushMailboxOps(false), mailboxes.go: mailboxes created and renamed locally.
//  2. pushMessages, push.go: the journal's message operations, per source mailbox
//     (pushBox) and then per destination:
//     - remark and pushDeletes, push_delete.go: \Deleted marked again after an interrupted
//     expunge, then deletes (STORE \Deleted and UID EXPUNGE, or RFC 4549 §4.2.4);
//     - pushMoves, push_move.go: moves (UID MOVE, or COPY and an expunge), adopted in
//     their destination;
//     - pushAppends, push_append.go: new messages and local copies (APPEND, or UID COPY
//     from a copy's source with pushCopy);
//     - pushFlags, push_flags.go: +FLAGS and -FLAGS of the changes since the last agreed
//     flags.
//  3. pushMailboxOps(true), mailboxes.go: mailboxes deleted locally.
//  4. reconcileMailboxes, mailboxes.go: the server's LIST against the local mailboxes.
//  5. scanAll, scan.go: every mailbox's flags, expunges and new messages (prepareScan,
//     scan_prepare.go, with changedRecords in scan_changed.go and the check of known UIDs
//     in reuse.go; a fresh replica downloads there, downloadFresh in scan_fresh.go, its
//     commits beside the download), then per mailbox the
//     matching (matchNew, scan_commit.go, with match.go), the downloads and the commit
//     (commitScan, scan_commit.go).
//  6. finishVanished, scan_vanished.go: records found nowhere are deleted or quarantined.
//  7. pushAgain, sync.go: what the scan made possible, pushed in the same round.
//
// The round's state shared between steps is the round struct (sync.go), with who writes
// and who reads each part.
