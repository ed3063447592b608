// Package scenarios is the scenario language of syncharness: it parses *.scn files into a
// Scenario, checks them (unknown devices, mailboxes, labels, flags…), formats them in a
// canonical form and documents every command.
//
// A scenario file is a txtar archive. Its comment part is the script, one step a line;
// attached files hold message bodies. See Reference for the language itself.
package scenarios

import "time"

// A Scenario is one parsed *.scn file.
type Scenario struct {
	Name        string            // file base name without ".scn"
	File        string            // path as given to Parse
	Category    string            // Name up to the first '_' ("flags" for flags_basic.scn)
	Description string            // the first comment lines, joined with "\n", without "# "
	Steps       []*Step           // the script, top level; blocks hold their steps in Body
	Files       map[string][]byte // attached txtar files by name
	FileOrder   []string          // attached file names in the order they appear
	Source      []byte            // the file as read

	// Trailer holds the comment and blank lines after the last step ("" for a blank line,
	// else the comment text after '#'). Format keeps them.
	Trailer []string
}

// A Step is one line of the script, or one block (concurrently, repeat) with its body.
type Step struct {
	Line        int
	Guards      []Guard
	Actor       string            // "" for setup/flow/check commands, "server", or a device name
	Verb        string            // "devices","mailbox","deliver","caps","read",...,"sync","concurrently","repeat","expect"
	Devices     []string          // devices
	Mailbox     string            // the MAILBOX argument (source for move/copy; old name for rename)
	Labels      []string          // message labels acted on or delivered
	Dest        string            // move/copy destination; rename new name; reply/forward NEWLABEL
	Flag        string            // flag/unflag
	Flags       []string          // flags=F,… option; expect … flags F…
	SpecialUse  string            // mailbox NAME \Trash
	Caps        []string          // caps: "-MOVE", "+CONDSTORE"
	N           int               // repeat N, fail N, expect count N, size=N
	Options     map[string]string // every key=value option as written (flags, size, interrupt-after, crash-after, lose-answer, crash-lose-answer, within, command)
	Duration    time.Duration     // latency D; within=D for expect
	Response    string            // fail N "RESPONSE"
	File        string            // deliver MAILBOX LABEL < FILE (name of an attached file)
	NoMessageID bool              // deliver/append … no-message-id
	Expect      *Expect           // Verb "expect"
	Body        []*Step           // concurrently, repeat

	// InterruptAfter and CrashAfter are the sync options interrupt-after=N and
	// crash-after=N (0 when not given): the device's connection is cut, or the device
	// crashes, after N IMAP commands of that sync.
	InterruptAfter int
	CrashAfter     int
	// LoseAnswer and CrashLoseAnswer are the sync options lose-answer=N and
	// crash-lose-answer=N (0 when not given): the server carries out command N of that
	// sync, its answer is lost and the connection cut; with the second the device then
	// crashes.
	LoseAnswer      int
	CrashLoseAnswer int
	// Command is the fail option command=NAME: only commands with that name fail ("" for
	// any command).
	Command string

	Comment string // trailing comment (text after '#'), kept by Format

	// Before holds the comment and blank lines just before the step ("" for a blank line,
	// else the comment text after '#'), kept by Format. EndBefore and EndComment do the
	// same for the "end" line of a block.
	Before     []string
	EndBefore  []string
	EndComment string

	invalid bool // the line has a syntax error: the checks only follow its effects
}

// A Guard restricts a step to the targets where it holds: [fake], [remote], [cap:MOVE],
// or negated with '!' ([!cap:CONDSTORE]).
type Guard struct {
	Not  bool
	Name string // "fake", "remote", "cap"
	Arg  string // cap name
}

// String returns the guard as written in a scenario: "[!cap:MOVE]".
func (g Guard) String() string {
	s := "["
	if g.Not {
		s += "!"
	}
	s += g.Name
	if g.Arg != "" {
		s += ":" + g.Arg
	}
	return s + "]"
}

// An Expect is the check of an expect step.
type Expect struct {
	Kind      string   // "converged","contents","flags","missing","count","mailboxes","idempotent","quarantined"
	Where     string   // "server" (also when omitted) or a device name; "" for converged and idempotent
	Mailbox   string   // contents, flags, count
	Labels    []string // contents (exactly these; none: the mailbox is empty), flags, missing, quarantined
	Flags     []string // Kind "flags": exactly these (empty: none)
	N         int      // count
	Mailboxes []string // mailboxes: exactly these
	Within    time.Duration

	explicitWhere bool // "server" was written; Format keeps it
}

// Expect kinds.
const (
	ExpectConverged   = "converged"
	ExpectContents    = "contents"
	ExpectFlags       = "flags"
	ExpectMissing     = "missing"
	ExpectCount       = "count"
	ExpectMailboxes   = "mailboxes"
	ExpectIdempotent  = "idempotent"
	ExpectQuarantined = "quarantined"
)

// Actor values of a Step besides device names.
const (
	ActorServer = "server"
	ActorNone   = ""
)
