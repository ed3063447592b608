package check

import (
	"fmt"
	"slices"
	"strings"
)

// The expected-state model is two things kept apart: rules, one deterministic step per
// kind of operation (applyOp), and relaxations, each a named "may" that widens the
// outcome of a step under a narrow condition. A relaxation is either a fact of the
// protocol (any correct engine may end there, because of what IMAP allows or because the
// model cannot know what a device saw) or a policy: a choice an engine makes, such as
// rescuing mail into INBOX. Protocol relaxations always apply; policies only for engines
// that declare them (Input.Policies).

// RelaxationKind says why a relaxation exists.
type RelaxationKind string

const (
	// Protocol: any correct engine may end there, because of what IMAP allows.
	Protocol RelaxationKind = "protocol"
	// Policy: a choice of an engine; it applies only to engines that declare it.
	Policy RelaxationKind = "policy"
)

// Relaxation is one named widening of the model's rules.
type Relaxation struct {
	ID   string         // "R7"
	Name string         // "fold-moves"
	Kind RelaxationKind // protocol or policy
	Doc  string         // what may happen, in one line
	// When is the condition: the kinds of events that must race (or be in flight) for it.
	When string
	// Widens is how the outcome grows: which states become allowed besides the rule's.
	Widens string
}

// String is the relaxation as verdicts name it: "R7 fold-moves".
func (r Relaxation) String() string { return r.ID + " " + r.Name }

// relaxID indexes the registry; its order is the registry's.
type relaxID int

const (
	rFailedStep relaxID = iota
	rInFlight
	rSeenInFlight
	rNoWriteSeen
	rEarlyFlag
	rFlagToCopies
	rFlagToCopyExpunged
	rCopyFlagsInFlight
	rDeletedLostNoMove
	rExpungeNoUIDPlus
	rWipedMoveNoMove
	rWipedDelete
	rCopyFollowsMove
	rRescueInbox
	rFoldMoves
	numRelax
)

var registry = [numRelax]Relaxation{
	rFailedStep: {ID: "R1", Name: "failed-step", Kind: Protocol,
		Doc:    "A step that reported an error, or a device's action on a message it may not have had where it acted, may or may not have taken effect.",
		When:   "a server step or device sync that failed; a device action whose target the device may not have seen in that mailbox",
		Widens: "the state before the operation stays allowed beside the state after it"},
	rInFlight: {ID: "R2", Name: "in-flight-early", Kind: Protocol,
		Doc:    "Work of a failed sync or of a watching device may have reached the server at any point between its start and the device's next successful sync, in waves, one per cut round.",
		When:   "a device's sync failed (or it watched the server) with work pending, and other clusters followed before its next successful sync",
		Widens: "the outcome of the work replayed before each of those clusters in turn (and before the events racing it) is allowed too"},
	rSeenInFlight: {ID: "R3", Name: "seen-in-flight", Kind: Protocol,
		Doc:    "A device that synced while other events raced it, or while another device's work was in flight, may have seen the state before or after them.",
		When:   "a device's sync raced other events, or synced after a failed sync (or watch) of another device and before that device's next successful sync",
		Widens: "the device's view of a message unites those states: it may find the message where in-flight work put it, and may have seen flags that work wrote"},
	rNoWriteSeen: {ID: "R4", Name: "no-write-seen-value", Kind: Protocol,
		Doc:    "A flag change to a value the device already showed is no change to its engine, which may write nothing.",
		When:   "a device's flag change whose value the device may have seen already (its view, or another device's in-flight write)",
		Widens: "the flag's value before the write stays allowed"},
	rEarlyFlag: {ID: "R5", Name: "early-flag", Kind: Protocol,
		Doc:    "A flag written on another device's new message that reached the server early (in flight) is allowed once the model makes that message.",
		When:   "a device's flag change on a message that another device's in-flight append, copy or reply made",
		Widens: "the written value is allowed on the message when it is made"},
	rFlagToCopies: {ID: "R6", Name: "flag-follows-copies", Kind: Protocol,
		Doc:    "A flag change to a message another device moved and then copied, both unseen by the changing device, may land on the moved message or on a copy: they share Message-ID and content.",
		When:   "a device's flag change racing (or after) another actor's move and copy of the same message made since the device last synced",
		Widens: "the written value and the value before are allowed on the moved message and on each copy"},
	rFlagToCopyExpunged: {ID: "R7", Name: "flag-follows-copy-expunged", Kind: Protocol,
		Doc:    "A flag change to a message that was copied and then expunged since the device looked may land on the copy: to the device a COPY and an EXPUNGE are a move.",
		When:   "a device's flag change on a message gone from the server that another actor copied since the device last synced",
		Widens: "the written value is allowed on each copy beside its own value"},
	rCopyFlagsInFlight: {ID: "R8", Name: "copy-flags-in-flight", Kind: Protocol,
		Doc:    "A copy takes its source's flags as they were on the server when it was made: with or without flag changes then in flight.",
		When:   "a copy made while another device's flag changes on its source were in flight",
		Widens: "the copy may have the source's flags before or after the in-flight changes"},
	rDeletedLostNoMove: {ID: "R9", Name: "deleted-lost-without-move", Kind: Protocol,
		Doc:    "Without MOVE, a device's \\Deleted that races another device's move of the same message may be lost on the copy: the mover sets \\Deleted too, and neither can tell the two apart.",
		When:   "MOVE switched off; a device's \\Deleted on a message racing another device's move or trash of it",
		Widens: "the \\Deleted flag's value before stays allowed"},
	rExpungeNoUIDPlus: {ID: "R10", Name: "expunge-without-uidplus", Kind: Protocol,
		Doc:    "Without UIDPLUS, a device's expunge may take another message marked \\Deleted while it ran: the expunge of RFC 4549 §4.2.4 leaves that window open.",
		When:   "UIDPLUS switched off; a device's delete (or move without MOVE) racing a \\Deleted on another message of that mailbox, or another expunge there",
		Widens: "such a message marked \\Deleted may be gone"},
	rWipedMoveNoMove: {ID: "R11", Name: "wiped-move-without-move", Kind: Protocol,
		Doc:    "Without MOVE, a device wiped while a move was in flight may leave both the copy and the original marked \\Deleted: nobody is left to finish it.",
		When:   "MOVE switched off; a device wiped after a failed sync with a move pending",
		Widens: "a copy in the destination, and \\Deleted on the original, are allowed"},
	rWipedDelete: {ID: "R12", Name: "wiped-delete-half-done", Kind: Protocol,
		Doc:    "A device wiped while a delete was in flight may leave the message marked \\Deleted and not expunged.",
		When:   "a device wiped after a failed sync with a delete pending",
		Widens: "\\Deleted on the message is allowed"},
	rCopyFollowsMove: {ID: "R13", Name: "copy-follows-move", Kind: Policy,
		Doc:    "A device's copy of a message another actor moved away meanwhile may be made from where the message went.",
		When:   "a device's copy racing (or after, unseen) another actor's move of its source",
		Widens: "the copy may exist in its destination although its source left the mailbox"},
	rRescueInbox: {ID: "R14", Name: "rescue-to-inbox", Kind: Policy,
		Doc:    "A device's new message (append, copy, reply, forward, or its new message moved) whose mailbox is gone from the server is rescued into INBOX rather than lost.",
		When:   "a device's append, copy, reply, forward or move of its new message racing (or after) the removal of the mailbox it went to",
		Widens: "the message may be in INBOX"},
	rFoldMoves: {ID: "R15", Name: "fold-moves", Kind: Policy,
		Doc:    "An engine may fold a device's two moves of one message into one move from where the first started; given up as a whole, it leaves the message there.",
		When:   "a device's two moves of one message in one sync, the second into a mailbox removed meanwhile",
		Widens: "the message may stay where the first move started"},
}

// Relaxations returns the registry of relaxations, in ID order.
func Relaxations() []Relaxation { return append([]Relaxation(nil), registry[:]...) }

// Policies names the policy relaxations an engine follows, by ID ("R14") or name
// ("rescue-to-inbox"). Protocol relaxations always apply. A nil Policies means every
// policy (the syncharness engine's); an empty, non-nil one (NoPolicies) means none, which
// is what --strict and an engine that declares nothing get.
type Policies []string

// AllPolicies returns every policy relaxation's ID: the syncharness engine's policies.
func AllPolicies() Policies {
	out := Policies{}
	for _, r := range registry {
		if r.Kind == Policy {
			out = append(out, r.ID)
		}
	}
	return out
}

// NoPolicies declares no policy: only protocol relaxations apply.
func NoPolicies() Policies { return Policies{} }

// ParsePolicies reads a comma-separated list of policy IDs or names ("none" or "" for
// none, "all" for every policy), refusing unknown names and protocol relaxations.
func ParsePolicies(s string) (Policies, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", "none":
		return NoPolicies(), nil
	case "all":
		return AllPolicies(), nil
	}
	out := Policies{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		r, ok := lookupRelaxation(part)
		if !ok {
			return nil, fmt.Errorf("unknown policy %q (policies: %s)", part, strings.Join(policyNames(), ", "))
		}
		if r.Kind != Policy {
			return nil, fmt.Errorf("%s is a protocol relaxation, which always applies", r)
		}
		out = append(out, r.ID)
	}
	return out, nil
}

func policyNames() []string {
	var out []string
	for _, r := range registry {
		if r.Kind == Policy {
			out = append(out, r.Name)
		}
	}
	return out
}

func lookupRelaxation(s string) (Relaxation, bool) {
	for _, r := range registry {
		if strings.EqualFold(s, r.ID) || strings.EqualFold(s, r.Name) {
			return r, true
		}
	}
	return Relaxation{}, false
}

// relaxSet is the relaxations a model may use.
type relaxSet [numRelax]bool

// allowed returns the relaxations that apply under policies.
func allowed(p Policies) relaxSet {
	var s relaxSet
	for i, r := range registry {
		if r.Kind == Protocol || p == nil {
			s[i] = true
			continue
		}
		s[i] = slices.ContainsFunc(p, func(x string) bool {
			return strings.EqualFold(x, r.ID) || strings.EqualFold(x, r.Name)
		})
	}
	return s
}

// relax reports whether relaxation r applies, and notes that its condition held.
func (m *model) relax(r relaxID) bool {
	if !m.allow[r] {
		return false
	}
	m.used[r] = true
	return true
}

// Verdict is what Judge decides.
type Verdict struct {
	// Results are Check's, with I3–I7 judged under the engine's policies.
	Results []Result
	// Relied are the relaxations the outcome on the server needed: with any one of them
	// left out, I3–I7 would fail. Empty when none was needed or when I3–I7 fail.
	Relied []Relaxation
}

// Judge runs every invariant, as Check does, for an engine that follows the policies p
// (nil: every policy, the syncharness engine's; NoPolicies: protocol relaxations only),
// and names the relaxations a passing outcome relied on.
func Judge(in Input, p Policies) Verdict {
	c := newChecker(in)
	c.policies = p
	allow := allowed(p)
	j := c.judge(allow)
	v := Verdict{Results: withModelResults(Check(in), j.results)}
	if len(j.results) > 0 {
		return v
	}
	for r := relaxID(0); r < numRelax; r++ {
		if !j.used[r] {
			continue
		}
		without := allow
		without[r] = false
		if len(c.judge(without).results) > 0 {
			v.Relied = append(v.Relied, registry[r])
		}
	}
	return v
}

// isModelInvariant reports whether id is one of I3–I7, the invariants of the model.
func isModelInvariant(id string) bool {
	switch id {
	case I3NoLoss, I4NoDuplicates, I5NoResurrect, I6Flags, I7Mailboxes:
		return true
	}
	return false
}

// withModelResults replaces the I3–I7 results of rs, in Check's order, by model.
func withModelResults(rs, model []Result) []Result {
	out := make([]Result, 0, len(rs)+len(model))
	at := -1
	for _, r := range rs {
		if isModelInvariant(r.Invariant) {
			continue
		}
		if at < 0 && r.Invariant != I1Converged && r.Invariant != I2UIDIntegrity {
			at = len(out)
		}
		out = append(out, r)
	}
	if at < 0 {
		at = len(out)
	}
	return append(out[:at:at], append(append([]Result(nil), model...), out[at:]...)...)
}

// RelaxationsMarkdown is the reference of the relaxations (docs/relaxations.md, without
// its generated-file header): what each allows, when, and how it widens the outcome.
func RelaxationsMarkdown() string {
	var b strings.Builder
	b.WriteString(`# Relaxations of the expected-state model

The checker's expected-state model (behind I3–I7) replays a scenario's history under
deterministic rules, one per kind of operation, and applies every order of arrival at the
server of the events that race. Every other "may" is a relaxation listed here, applied only
under its condition:

- **protocol**: any correct engine may end there, because of what IMAP allows or because
  the checker cannot know what a device saw. Always applied.
- **policy**: a choice an engine makes. Applied only for an engine that declares it: the
  syncharness engine declares every policy; an external engine declares what its profile
  says (none by default). ` + "`syncharness run --strict`" + ` judges with the protocol
  relaxations only, to show where a choice of ours is doing the work.

A passed scenario lists the relaxations its outcome needed (without any one of them the
checker would have failed it): ` + "`run -v`" + ` prints "accepted under R15 fold-moves", and
the JSON report has them in ` + "`relaxations`" + `. ` + "`make relaxations-unused`" + ` lists those
no scenario of the catalogue needs.

`)
	for _, r := range registry {
		fmt.Fprintf(&b, "## %s %s (%s)\n\n%s\n\n- **When:** %s.\n- **Widens:** %s.\n\n", r.ID, r.Name, r.Kind, r.Doc, r.When, r.Widens)
	}
	return strings.TrimRight(b.String(), "\n") + "\n"
}
