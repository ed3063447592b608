// Package check decides whether a scenario run converged: it compares the server's state
// (read over IMAP, so the same code serves the fake server and third-party servers), every
// device's view and sync state, and the history of what users and the server did, against
// the invariants I1–I11 and the server invariants seen on the wire (DESIGN.md §2).
//
// The expected-state model behind I3–I7 replays the history under the sync engine's
// conflict rules. Where actions on one message race, it allows every outcome the rules
// admit for some order of arrival at the server, and nothing else.
package check

import (
	"time"

	"github.com/syncharness/syncharness/clients"
)

// Input is everything the checker looks at, collected after every device settled.
type Input struct {
	Server  ServerState
	Devices []Device
	History []Op
	// Wire holds every device's proxy transcript, in order per device and connection, for
	// the server invariants seen on the wire. Empty: those invariants are not checked.
	// With the proxy's times and the server steps as spans ('M' lines), S7, S8, S12 and S13
	// are judged across devices; all times zero, every connection overlaps every other.
	Wire []WireLine
	// Reads are the harness's own reads of the server, on the clock of Wire, judged with
	// it for S3 (wire_reads.go).
	Reads []ServerRead
}

// Device is one device's final view and, where it can show it, its sync state.
type Device struct {
	Name string
	View clients.Replica
	// State is the device's sync state; nil when the device cannot show it. I2, I9 and
	// I10 are then reported as not applicable.
	State *clients.SyncState
	// Extra is the idempotence round (I8); nil if it was not run.
	Extra *ExtraRound
	// Wiped reports that the device was replaced by a new one during the scenario.
	Wiped bool
}

// ExtraRound is one more sync round run after settle, to check idempotence (I8).
type ExtraRound struct {
	Stats  clients.SyncStats
	Before clients.Replica // the device's view before the round
	After  clients.Replica // the device's view after the round
}

// Op is one step of the history, in the order the harness executed it.
type Op struct {
	Seq   int    // position in the history, from 1
	Line  int    // scenario line
	Actor string // "server", a device name, or "setup" for setup lines
	// Kind is one of: deliver, append, read, unread, flag, unflag, move, copy, delete,
	// trash, reply, forward, create, remove, rename, uidvalidity-bump, uidvalidity-reset,
	// renumber-silently, sync, crash, wipe, offline, online, drop, fail. Server "expunge"
	// is accepted as a synonym of delete.
	Kind    string
	Mailbox string
	// Dest is the move/copy destination, the new name of rename, or the NEWLABEL of
	// reply/forward.
	Dest   string
	Labels []string
	Flag   string   // flag/unflag; read/unread imply `\Seen`
	Flags  []string // initial flags of deliver/append
	Group  int      // >0: the ops of one `concurrently` block, which race
	// Err is set when the step failed or was cut (e.g. a sync interrupted): its effects may
	// be partial.
	Err   string
	Trash string // trash: the \Trash mailbox name
	Sent  string // reply/forward: the \Sent mailbox name NEWLABEL is appended to
}

// Result is one failed (or not applicable) invariant.
type Result struct {
	Invariant string // "I4", or "S1"… for the server invariants seen on the wire
	Title     string // the guarantee in words: "no duplicates"
	Message   string // what broke, short and concrete: "m3 is twice in Archive on the server"
	// Devices are the devices involved: the device at fault for I1, I2 and I8–I10 and the
	// server invariants; for I3–I7 (checked on the server) the devices whose view shows the
	// same wrong state.
	Devices []string
	Labels  []string // the message labels involved
	// Table shows expected vs seen (for I3–I7: label, mailbox, expected, server and one
	// column per device), at most 20 rows and a last one counting the rest.
	Table *Table
	// Server reports a server invariant seen on the wire: the server, not a device, is at
	// fault.
	Server bool
	// At is when the first line that broke a server invariant crossed the proxy (WireLine
	// Time); zero for the other invariants.
	At time.Duration
	// NotApplicable reports an invariant that could not be checked (e.g. a device without
	// sync state): neither passed nor failed.
	NotApplicable bool
}

// Table is a small expected-vs-seen table for a report.
type Table struct {
	Columns []string
	Rows    [][]string
}

// Info describes one invariant, for documentation and reports.
type Info struct {
	ID    string // "I4"
	Title string // "no duplicates"
	Doc   string // what the invariant guarantees, one or two sentences
}

// injectsFailures reports whether the history makes the server fail commands on purpose.
func injectsFailures(h []Op) bool {
	for _, op := range h {
		if op.Actor == "server" && op.Kind == "fail" {
			return true
		}
	}
	return false
}

// Check runs every invariant on in and returns every failed or not applicable one, in the
// order of Invariants and, within one invariant, by device, mailbox and label. An empty
// result means every invariant holds. Check does not modify in.
func Check(in Input) []Result {
	c := newChecker(in)
	var out []Result
	out = append(out, c.converged()...)
	out = append(out, c.uidIntegrity()...)
	out = append(out, c.modelResults()...)
	out = append(out, c.idempotent()...)
	out = append(out, c.journals()...)
	out = append(out, c.watermarks()...)
	out = append(out, c.quarantine()...)
	out = append(out, CheckPush(in.Wire)...)
	out = append(out, CheckWireWith(in.Wire, WireOptions{Injected: injectsFailures(in.History), Reads: in.Reads})...)
	return out
}
