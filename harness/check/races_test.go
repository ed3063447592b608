package check_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/harness/check"
)

// start: m1 and m2 in INBOX, mailboxes A and B, phone and laptop synced.
func start(more ...any) []check.Op {
	return hist(append([]any{
		op("setup", "create", "A"),
		op("setup", "create", "B"),
		op("setup", "deliver", "INBOX", "m1", "m2"),
		sync("phone"), sync("laptop"),
	}, more...)...)
}

var (
	concurrentMoves = start(
		dest(op("phone", "move", "INBOX", "m1"), "A"),
		dest(op("laptop", "move", "INBOX", "m1"), "B"),
		group(1, sync("phone"), sync("laptop")),
	)
	moveVsDelete = start(
		dest(op("phone", "move", "INBOX", "m1"), "A"),
		op("laptop", "delete", "INBOX", "m1"),
		group(1, sync("phone"), sync("laptop")),
	)
	setVsClear = start(
		op("phone", "read", "INBOX", "m1"),
		op("laptop", "unread", "INBOX", "m1"),
		group(1, sync("phone"), sync("laptop")),
	)
	staleMove = start(
		dest(op("phone", "move", "INBOX", "m1"), "A"), sync("phone"),
		dest(op("laptop", "move", "INBOX", "m1"), "B"), sync("laptop"),
	)
	flagFollowsMove = start(
		dest(op("phone", "move", "INBOX", "m1"), "A"),
		flag(op("laptop", "flag", "INBOX", "m1"), `\Flagged`),
		group(1, sync("phone"), sync("laptop")),
	)
	copied = start(dest(op("phone", "copy", "INBOX", "m1"), "A"), sync("phone"))
	reset  = start(op("server", "uidvalidity-reset", "INBOX"), sync("phone"), sync("laptop"))
	rename = start(
		dest(op("phone", "move", "INBOX", "m1"), "A"), sync("phone"),
		dest(op("laptop", "rename", "A"), "C"), sync("laptop"),
	)
	interrupted = start(
		op("phone", "read", "INBOX", "m1"),
		failed(sync("phone")),
		flag(op("server", "unflag", "INBOX", "m1"), `\Seen`),
		sync("phone"),
	)
	watching = start(
		op("phone", "watch", "INBOX"),
		op("phone", "read", "INBOX", "m1"),
		flag(op("server", "unflag", "INBOX", "m1"), `\Seen`),
		op("phone", "unwatch", ""),
	)
	interruptedMove = start(
		dest(op("phone", "move", "INBOX", "m1"), "A"),
		failed(sync("phone")),
		failed(dest(op("server", "move", "INBOX", "m1"), "B")),
		sync("phone"),
	)
	wiped   = start(op("phone", "read", "INBOX", "m1"), op("phone", "wipe", ""), sync("phone"))
	removed = start(
		dest(op("phone", "move", "INBOX", "m1"), "A"), sync("phone"),
		op("laptop", "remove", "A"), sync("laptop"),
	)
	unsynced = start(op("phone", "delete", "INBOX", "m2")) // reaches the server at settle
	// The phone appends m3 to A while the server removes A: the engine rescues m3 to INBOX.
	appendToRemoved = start(
		op("phone", "append", "A", "m3"),
		op("server", "remove", "A"),
		sync("phone"),
	)
	replied = start(reply("phone", "INBOX", "m1", "r1", "Sent"), sync("phone"))
	// The phone's read is in flight when its sync fails; the laptop's copy may be made
	// before or after it reaches the server, and takes the flags of that moment.
	copyDuringFlight = start(
		op("phone", "read", "INBOX", "m1"),
		failed(sync("phone")),
		dest(op("laptop", "copy", "INBOX", "m1"), "A"), sync("laptop"),
		sync("phone"),
	)
	// The phone's copy is in flight when its sync fails; the laptop's flag may reach the
	// original before or after the copy is made.
	flagDuringCopy = start(
		dest(op("phone", "copy", "INBOX", "m1"), "A"),
		failed(sync("phone")),
		flag(op("laptop", "flag", "INBOX", "m1"), `\Flagged`), sync("laptop"),
		sync("phone"),
	)
	// The laptop moves m1 to A and copies it on to B; the phone's flag on m1 cannot tell
	// the moved message from its copy (same Message-ID, same content).
	movedAndCopied = start(
		dest(op("laptop", "move", "INBOX", "m1"), "A"), sync("laptop"),
		dest(op("laptop", "copy", "A", "m1"), "B"), sync("laptop"),
		flag(op("phone", "flag", "INBOX", "m1"), `\Flagged`), sync("phone"),
	)
	// As movedAndCopied, but the phone saw the copy before the move: no ambiguity.
	copiedThenMoved = start(
		dest(op("laptop", "copy", "INBOX", "m1"), "B"), sync("laptop"), sync("phone"),
		dest(op("laptop", "move", "INBOX", "m1"), "A"), sync("laptop"),
		flag(op("phone", "flag", "INBOX", "m1"), `\Flagged`), sync("phone"),
	)
	// The watching phone's move may reach the server before the laptop syncs: the laptop
	// then flags m1 where it found it.
	flagAfterWatchedMove = start(
		op("phone", "watch", "INBOX"),
		dest(op("phone", "move", "INBOX", "m1"), "A"),
		sync("laptop"),
		flag(op("laptop", "flag", "A", "m1"), `\Flagged`), sync("laptop"),
		op("phone", "unwatch", ""),
	)
	// The phone copies m1 to A while the server removes A.
	copyToRemoved = start(
		dest(op("phone", "copy", "INBOX", "m1"), "A"),
		op("server", "remove", "A"),
		sync("phone"),
	)
	// The watching phone's new message may reach the server before the laptop syncs: the
	// laptop then reads it, before the model has it on the server.
	readWatchedAppend = start(
		op("phone", "watch", "INBOX"),
		op("phone", "append", "INBOX", "m3"),
		sync("laptop"),
		op("laptop", "read", "INBOX", "m3"), sync("laptop"),
		op("phone", "unwatch", ""),
	)
	// The phone appends m3 to A and moves it to B while the server removes B.
	appendMovedToRemoved = start(
		op("phone", "append", "A", "m3"),
		dest(op("phone", "move", "A", "m3"), "B"),
		op("server", "remove", "B"),
		sync("phone"),
	)
	// The laptop deletes m1 while the phone marks m2 \Deleted, on a server without UIDPLUS:
	// the laptop's EXPUNGE may take m2 too (RFC 4549 §4.2.4 leaves that window open).
	deleteRace = func(without ...string) []check.Op {
		return append([]check.Op{caps(without...)}, start(
			flag(op("phone", "flag", "INBOX", "m2"), `\Deleted`),
			op("laptop", "delete", "INBOX", "m1"),
			group(1, sync("phone"), sync("laptop")),
		)...)
	}
	// The phone's move without MOVE is cut short and the phone wiped: the copy and the
	// original marked \Deleted may both stay.
	wipedMove = func(without ...string) []check.Op {
		return append([]check.Op{caps(without...)}, start(
			dest(op("phone", "move", "INBOX", "m1"), "A"),
			failed(sync("phone")),
			op("phone", "wipe", ""), sync("phone"),
		)...)
	}
	// The phone's append to A is in flight when the server renames A to C.
	appendThenRename = start(
		op("phone", "append", "A", "m3"),
		failed(sync("phone")),
		dest(op("server", "rename", "A"), "C"),
		sync("phone"),
	)
	// The laptop's copy into A, removed by the server, is rescued to INBOX while the phone
	// syncs: the phone's read may find one m1 in INBOX or two.
	readRescuedCopy = hist(
		op("setup", "create", "A"),
		op("setup", "deliver", "INBOX", "m1"),
		sync("phone"), sync("laptop"),
		dest(op("laptop", "copy", "INBOX", "m1"), "A"),
		op("server", "remove", "A"),
		group(1, sync("phone"), sync("laptop")),
		op("phone", "read", "INBOX", "m1"),
	)
	// The phone's read is in flight when its sync fails; it then marks m1 unread again,
	// and the server copies m1 before the phone syncs.
	readFailedThenUnread = start(
		op("phone", "read", "INBOX", "m1"),
		failed(sync("phone")),
		op("phone", "unread", "INBOX", "m1"),
		dest(op("server", "copy", "INBOX", "m1"), "A"),
		sync("phone"),
	)
	// The phone moves m1 to A and on to B while the server removes B.
	chainToRemoved = start(
		dest(op("phone", "move", "INBOX", "m1"), "A"),
		dest(op("phone", "move", "A", "m1"), "B"),
		op("server", "remove", "B"),
		sync("phone"),
	)
	// The laptop's move into A is in flight when the phone removes A.
	moveThenRemoved = start(
		dest(op("laptop", "move", "INBOX", "m1"), "A"),
		failed(sync("laptop")),
		op("phone", "remove", "A"), sync("phone"),
		sync("laptop"),
	)
	// The laptop's \Flagged is in flight when the phone syncs: the phone may have seen it
	// and then writes nothing for its own \Flagged; the laptop clears it last.
	flagSeenInFlight = start(
		flag(op("laptop", "flag", "INBOX", "m1"), `\Flagged`),
		failed(sync("laptop")),
		sync("phone"),
		flag(op("laptop", "unflag", "INBOX", "m1"), `\Flagged`),
		flag(op("phone", "flag", "INBOX", "m1"), `\Flagged`), sync("phone"),
		sync("laptop"),
	)
	// The watching phone's move to A may reach the server before the laptop syncs; the
	// phone then moves m1 on to B, and the laptop flags m1 where it found it.
	flagAfterEarlyMove = start(
		op("phone", "watch", "INBOX"),
		dest(op("phone", "move", "INBOX", "m1"), "A"),
		op("phone", "unwatch", ""),
		dest(op("phone", "move", "A", "m1"), "B"),
		sync("laptop"),
		flag(op("laptop", "flag", "A", "m1"), "$Work"), sync("laptop"),
		sync("phone"),
	)
	// The phone's delete is in flight when it is wiped: m1 may be marked \Deleted only.
	wipedDelete = start(
		op("phone", "delete", "INBOX", "m1"),
		failed(sync("phone")),
		op("phone", "wipe", ""), sync("phone"),
	)
	// The laptop's read is in flight when the phone copies m1; the laptop then marks it
	// unread again, after the copy.
	copyAfterInFlightRead = start(
		op("laptop", "read", "INBOX", "m1"),
		dest(op("phone", "copy", "INBOX", "m1"), "A"),
		op("laptop", "append", "A", "m3"),
		failed(sync("laptop")),
		op("laptop", "unread", "INBOX", "m1"),
		group(1, sync("phone"), sync("laptop")),
	)
	// The phone's unread is in flight in a block where the laptop reads m1; it may land
	// after the laptop's read, before the server copies m1.
	unreadLandsMidway = start(
		op("laptop", "read", "INBOX", "m1"),
		op("phone", "read", "INBOX", "m1"),
		op("phone", "unread", "INBOX", "m1"),
		group(1, failed(sync("phone")), sync("laptop")),
		dest(op("server", "copy", "INBOX", "m1"), "A"),
		sync("phone"),
	)
	// The phone's read reached the server in a round cut short; the laptop then copied m1
	// (with \Seen), and the phone's unread went out in another cut round: the read is a
	// fact from the laptop's sync on, the unread cannot have arrived before that sync.
	readCutUnreadCut = start(
		op("phone", "read", "INBOX", "m1"),
		failed(sync("phone")),
		op("phone", "unread", "INBOX", "m1"),
		dest(op("laptop", "copy", "INBOX", "m1"), "A"), sync("laptop"),
		failed(sync("phone")),
	)
	// As readCutUnreadCut, but the unread was made before the first cut round: read and
	// unread went out together, and no copy can have seen \Seen between them.
	readUnreadCut = start(
		op("phone", "read", "INBOX", "m1"),
		op("phone", "unread", "INBOX", "m1"),
		failed(sync("phone")),
		dest(op("laptop", "copy", "INBOX", "m1"), "A"), sync("laptop"),
		failed(sync("phone")),
	)
	// The server copies m1 to A and expunges the original while the phone, offline, flags
	// m1 in INBOX: to the phone that is a move (a COPY and an EXPUNGE), and the flag may
	// follow the copy.
	copiedThenExpunged = start(
		flag(op("phone", "flag", "INBOX", "m1"), "$Work"),
		dest(op("server", "copy", "INBOX", "m1"), "A"),
		op("server", "expunge", "INBOX", "m1"),
		sync("phone"),
	)
	// As copiedThenExpunged, with the original left in place.
	copiedOnly = start(
		flag(op("phone", "flag", "INBOX", "m1"), "$Work"),
		dest(op("server", "copy", "INBOX", "m1"), "A"),
		sync("phone"),
	)
	stale = start(
		op("phone", "delete", "INBOX", "m1"), sync("phone"),
		op("laptop", "read", "INBOX", "m1"), sync("laptop"),
	)
)

func reply(dev, mb, label, newLabel, sent string) check.Op {
	o := op(dev, "reply", mb, label)
	o.Dest, o.Sent = newLabel, sent
	return o
}

// caps is the scenario's caps line: the capabilities named are switched off.
func caps(without ...string) check.Op {
	o := op("setup", "caps", "")
	o.Flags = without
	return o
}

func withSent(h []check.Op) []check.Op {
	return append([]check.Op{op("setup", "create", "Sent")}, h...)
}

var _ = Describe("The expected-state model", func() {
	DescribeTable("accepts every outcome the conflict rules allow for some order of arrival",
		func(h []check.Op, boxes ...mbox) {
			rs := check.Check(input(serverOf(boxes...), h, "phone", "laptop"))
			Expect(rs).To(BeEmpty())
		},
		Entry("two concurrent moves: the phone's arrives first", concurrentMoves,
			box("A", m("m1")), box("B"), box("INBOX", m("m2"))),
		Entry("two concurrent moves: the laptop's arrives first", concurrentMoves,
			box("A"), box("B", m("m1")), box("INBOX", m("m2"))),
		Entry("move against delete: the delete wins", moveVsDelete,
			box("A"), box("B"), box("INBOX", m("m2"))),
		Entry(`set against clear of \Seen: set last`, setVsClear,
			box("A"), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))),
		Entry(`set against clear of \Seen: clear last`, setVsClear,
			box("A"), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a stale device's move loses to the first", staleMove,
			box("A", m("m1")), box("B"), box("INBOX", m("m2"))),
		Entry("a flag follows the message another device moved", flagFollowsMove,
			box("A", m("m1", `\Flagged`)), box("B"), box("INBOX", m("m2"))),
		Entry("a copy is one more instance of the label", copied,
			box("A", m("m1")), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a UIDVALIDITY reset loses nothing", reset,
			box("A"), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a renamed mailbox keeps its messages", rename,
			box("B"), box("C", m("m1")), box("INBOX", m("m2"))),
		Entry("an interrupted sync's write may arrive before the server's", interrupted,
			box("A"), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))),
		Entry("an interrupted sync's write may arrive after the server's", interrupted,
			box("A"), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a watching device's change may reach the server before a later server change", watching,
			box("A"), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a watching device's change may reach the server after a later server change", watching,
			box("A"), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))),
		Entry("a sync of every device in turn, recorded as one step", start(
			dest(op("phone", "move", "INBOX", "m1"), "A"), op("laptop", "read", "INBOX", "m2"), op("", "sync", "")),
			box("A", m("m1")), box("B"), box("INBOX", m("m2", `\Seen`))),
		Entry("a mailbox a device created before moving a message into it", start(
			op("phone", "create", "N"), dest(op("phone", "move", "INBOX", "m1"), "N"), sync("phone")),
			box("A"), box("B"), box("INBOX", m("m2")), box("N", m("m1"))),
		Entry("an interrupted sync's move may have reached the server before the server's own", interruptedMove,
			box("A", m("m1")), box("B"), box("INBOX", m("m2"))),
		Entry("an interrupted sync's move may have lost to the server's own", interruptedMove,
			box("A"), box("B", m("m1")), box("INBOX", m("m2"))),
		Entry("a wipe loses the device's unsynced changes", wiped,
			box("A"), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a removed mailbox takes its messages with it", removed,
			box("B"), box("INBOX", m("m2"))),
		Entry("a new message whose mailbox the server removed is rescued to INBOX", appendToRemoved,
			box("B"), box("INBOX", m("m1"), m("m2"), m("m3"))),
		Entry("local changes never synced reach the server at settle", unsynced,
			box("A"), box("B"), box("INBOX", m("m1"))),
		Entry("a reply marks the original and adds the new message to Sent", withSent(replied),
			box("A"), box("B"), box("INBOX", m("m1", `\Answered`), m("m2")), box("Sent", m("r1", `\Seen`))),
		Entry("a parent the server made for a nested mailbox", start(op("phone", "create", "Work/Projects"), sync("phone")),
			box("A"), box("B"), box("INBOX", m("m1"), m("m2")), box("Work"), box("Work/Projects")),
		Entry(`\Recent, a session flag, is not a message's flag`, start(),
			box("A"), box("B"), box("INBOX", m("m1", `\Recent`), m("m2"))),
		Entry("a copy made before an in-flight flag reached the server lacks it", copyDuringFlight,
			box("A", m("m1")), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))),
		Entry("a copy made after an in-flight flag reached the server has it", copyDuringFlight,
			box("A", m("m1", `\Seen`)), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))),
		Entry("an in-flight copy made before the flag lacks it", flagDuringCopy,
			box("A", m("m1")), box("B"), box("INBOX", m("m1", `\Flagged`), m("m2"))),
		Entry("an in-flight copy made after the flag has it", flagDuringCopy,
			box("A", m("m1", `\Flagged`)), box("B"), box("INBOX", m("m1", `\Flagged`), m("m2"))),
		Entry("a flag follows the message moved and copied elsewhere: to the moved one", movedAndCopied,
			box("A", m("m1", `\Flagged`)), box("B", m("m1")), box("INBOX", m("m2"))),
		Entry("a flag follows the message moved and copied elsewhere: to the copy", movedAndCopied,
			box("A", m("m1")), box("B", m("m1", `\Flagged`)), box("INBOX", m("m2"))),
		Entry("a flag set where a watching device's move had already put the message", flagAfterWatchedMove,
			box("A", m("m1", `\Flagged`)), box("B"), box("INBOX", m("m2"))),
		Entry("a copy whose mailbox the server removed is rescued to INBOX", copyToRemoved,
			box("B"), box("INBOX", m("m1"), m("m1"), m("m2"))),
		Entry("a copy whose mailbox the server removed may be dropped", copyToRemoved,
			box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a flag set on a watching device's new message that reached the server early", readWatchedAppend,
			box("A"), box("B"), box("INBOX", m("m1"), m("m2"), m("m3", `\Seen`))),
		Entry("a new message moved into a mailbox the server removed stays where it was", appendMovedToRemoved,
			box("A", m("m3")), box("INBOX", m("m1"), m("m2"))),
		Entry("a new message moved into a mailbox the server removed is rescued to INBOX", appendMovedToRemoved,
			box("A"), box("INBOX", m("m1"), m("m2"), m("m3"))),
		Entry("without UIDPLUS, an expunge that raced takes another message marked \\Deleted", deleteRace("-UIDPLUS"),
			box("A"), box("B"), box("INBOX")),
		Entry("without MOVE, a wiped device's half-done move leaves copy and original", wipedMove("-MOVE"),
			box("A", m("m1")), box("B"), box("INBOX", m("m1", `\Deleted`), m("m2"))),
		Entry("an in-flight append that landed before the server renamed its mailbox", appendThenRename,
			box("B"), box("C", m("m3")), box("INBOX", m("m1"), m("m2"))),
		Entry("an in-flight append rescued after the server renamed its mailbox", appendThenRename,
			box("B"), box("C"), box("INBOX", m("m1"), m("m2"), m("m3"))),
		Entry("a read of a label the device may have seen once or twice", readRescuedCopy,
			box("INBOX", m("m1", `\Seen`), m("m1"))),
		Entry("a copy made between an in-flight write and a later local one has the first", readFailedThenUnread,
			box("A", m("m1", `\Seen`)), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("two moves, the second into a removed mailbox: the first stands", chainToRemoved,
			box("A", m("m1")), box("INBOX", m("m2"))),
		Entry("two moves, the second into a removed mailbox: folded into one and given up", chainToRemoved,
			box("A"), box("INBOX", m("m1"), m("m2"))),
		Entry("an in-flight move into a mailbox another device then removed goes with it", moveThenRemoved,
			box("B"), box("INBOX", m("m2"))),
		Entry("an in-flight move that arrived after the mailbox was removed is given up", moveThenRemoved,
			box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a device that saw another's in-flight flag may write nothing for its own", flagSeenInFlight,
			box("A"), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a flag set where another device's early move had put the message follows it on", flagAfterEarlyMove,
			box("A"), box("B", m("m1", "$Work")), box("INBOX", m("m2"))),
		Entry("a wiped device's half-done delete may leave the message marked \\Deleted", wipedDelete,
			box("A"), box("B"), box("INBOX", m("m1", `\Deleted`), m("m2"))),
		Entry("a copy made after another device's in-flight read and before its unread is read", copyAfterInFlightRead,
			box("A", m("m1", `\Seen`), m("m3")), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("in-flight work that landed after the other events of its block", unreadLandsMidway,
			box("A", m("m1")), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a flag set on a message deleted elsewhere is lost with it", stale,
			box("A"), box("B"), box("INBOX", m("m2"))),
		Entry("a copy made after a cut round's read reached the server, before a later cut round's unread", readCutUnreadCut,
			box("A", m("m1", `\Seen`)), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a flag on a message copied and then expunged since the device looked follows the copy", copiedThenExpunged,
			box("A", m("m1", "$Work")), box("B"), box("INBOX", m("m2"))),
		Entry("a flag on a message copied and then expunged since the device looked may be lost with it", copiedThenExpunged,
			box("A", m("m1")), box("B"), box("INBOX", m("m2"))),
		Entry("a copy made before a cut round's read reached the server", readCutUnreadCut,
			box("A", m("m1")), box("B"), box("INBOX", m("m1"), m("m2"))),
	)

	DescribeTable("rejects what no order of arrival explains",
		func(h []check.Op, want []string, boxes ...mbox) {
			rs := check.Check(input(serverOf(boxes...), h, "phone", "laptop"))
			Expect(ids(rs)).To(Equal(want), "%+v", rs)
		},
		Entry("two concurrent moves: a copy in both", concurrentMoves, []string{"I4"},
			box("A", m("m1")), box("B", m("m1")), box("INBOX", m("m2"))),
		Entry("two concurrent moves: in neither", concurrentMoves, []string{"I3"},
			box("A"), box("B"), box("INBOX", m("m2"))),
		Entry("move against delete: the move arrived first and the delete did not follow it", moveVsDelete, []string{"I5"},
			box("A", m("m1")), box("B"), box("INBOX", m("m2"))),
		Entry("move against delete: back in the source", moveVsDelete, []string{"I5"},
			box("A"), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a stale device's move wins", staleMove, []string{"I3", "I4"},
			box("A"), box("B", m("m1")), box("INBOX", m("m2"))),
		Entry("a flag lost when another device moved the message", flagFollowsMove, []string{"I6"},
			box("A", m("m1")), box("B"), box("INBOX", m("m2"))),
		Entry("an interrupted sync's move and the server's both applied", interruptedMove, []string{"I4"},
			box("A", m("m1")), box("B", m("m1")), box("INBOX", m("m2"))),
		Entry("a copy missing", copied, []string{"I3"},
			box("A"), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a UIDVALIDITY reset that duplicates", reset, []string{"I4", "I4"},
			box("A"), box("B"), box("INBOX", m("m1"), m("m1"), m("m2"), m("m2"))),
		Entry("a renamed mailbox resurrected", rename, []string{"I7"},
			box("A"), box("B"), box("C", m("m1")), box("INBOX", m("m2"))),
		Entry("a wiped device's lost change applied anyway", wiped, []string{"I6"},
			box("A"), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))),
		Entry("a removed mailbox's message kept elsewhere", removed, []string{"I5"},
			box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("local changes never synced are never applied", unsynced, []string{"I5"},
			box("A"), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a copy with a flag nobody set", copyDuringFlight, []string{"I6"},
			box("A", m("m1", `\Flagged`)), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))),
		Entry("an in-flight copy made twice", flagDuringCopy, []string{"I4"},
			box("A", m("m1"), m("m1")), box("B"), box("INBOX", m("m1", `\Flagged`), m("m2"))),
		Entry("a flag that followed a copy the device already knew instead of the moved message", copiedThenMoved, []string{"I6", "I6"},
			box("A", m("m1")), box("B", m("m1", `\Flagged`)), box("INBOX", m("m2"))),
		Entry("a copy whose mailbox the server removed, rescued twice", copyToRemoved, []string{"I4"},
			box("B"), box("INBOX", m("m1"), m("m1"), m("m1"), m("m2"))),
		Entry("a flag nobody set on a watching device's new message", readWatchedAppend, []string{"I6"},
			box("A"), box("B"), box("INBOX", m("m1"), m("m2"), m("m3", `\Seen`, `\Flagged`))),
		Entry("a new message moved into a mailbox the server removed, kept twice", appendMovedToRemoved, []string{"I4"},
			box("A", m("m3")), box("INBOX", m("m1"), m("m2"), m("m3"))),
		Entry("with UIDPLUS, an expunge that takes another message marked \\Deleted", deleteRace(), []string{"I3"},
			box("A"), box("B"), box("INBOX")),
		Entry("with MOVE, a wiped device's move that leaves copy and original", wipedMove(), []string{"I4"},
			box("A", m("m1")), box("B"), box("INBOX", m("m1", `\Deleted`), m("m2"))),
		Entry("an in-flight append kept twice across the rename", appendThenRename, []string{"I4"},
			box("B"), box("C", m("m3")), box("INBOX", m("m1"), m("m2"), m("m3"))),
		Entry("a later local write that reached the server before the sync", readFailedThenUnread, []string{"I6"},
			box("A", m("m1", `\Seen`)), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))),
		Entry("two moves, the second into a removed mailbox: lost", chainToRemoved, []string{"I3"},
			box("A"), box("INBOX", m("m2"))),
		Entry("a later cut round's unread that arrived before the earlier one's read", readCutUnreadCut, []string{"I6"},
			box("A", m("m1", `\Seen`)), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))),
		Entry("a flag that went to a copy while the original stayed", copiedOnly, []string{"I6", "I6"},
			box("A", m("m1", "$Work")), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a copy that saw a read its unread undid in the same cut round", readUnreadCut, []string{"I6"},
			box("A", m("m1", `\Seen`)), box("B"), box("INBOX", m("m1"), m("m2"))),
		Entry("a stale device's flag resurrects a deleted message", stale, []string{"I5"},
			box("A"), box("B"), box("INBOX", m("m1", `\Seen`), m("m2"))),
	)
})

var _ = Describe("A race of more devices than the model orders exhaustively", func() {
	devices := []string{"d1", "d2", "d3", "d4", "d5", "d6"}
	history := func() []check.Op {
		h := []check.Op{op("setup", "deliver", "INBOX", "m1")}
		for _, d := range devices {
			h = append(h, op("setup", "create", "F"+d))
		}
		for _, d := range devices {
			h = append(h, sync(d))
		}
		for _, d := range devices {
			h = append(h, dest(op(d, "move", "INBOX", "m1"), "F"+d))
		}
		var syncs []check.Op
		for _, d := range devices {
			syncs = append(syncs, sync(d))
		}
		return append(h, group(1, syncs...)...)
	}
	boxesWith := func(holders ...string) []mbox {
		out := []mbox{box("INBOX")}
		for _, d := range devices {
			b := box("F" + d)
			for _, h := range holders {
				if h == d {
					b.msgs = append(b.msgs, m("m1"))
				}
			}
			out = append(out, b)
		}
		return out
	}

	It("accepts the message in any one device's destination", func() {
		for _, d := range devices {
			Expect(check.Check(input(serverOf(boxesWith(d)...), history(), devices...))).To(BeEmpty(), d)
		}
	})

	It("rejects it in two destinations", func() {
		rs := check.Check(input(serverOf(boxesWith("d2", "d5")...), history(), devices...))
		Expect(ids(rs)).To(Equal([]string{"I4"}))
		Expect(rs[0].Message).To(Equal("m1 is in Fd2 and Fd5 on the server; the history allows once"))
	})
})

var _ = Describe("A device that synced while another device's work was in flight", func() {
	// The tablet's read is in flight when the laptop syncs: the laptop may see m1 read, and
	// its own read then writes nothing. The phone's unread, last, stands.
	history := func() []check.Op {
		return hist(
			op("setup", "deliver", "INBOX", "m1"),
			sync("phone"), sync("laptop"), sync("tablet"),
			op("tablet", "read", "INBOX", "m1"), failed(sync("tablet")),
			sync("laptop"),
			sync("tablet"),
			sync("phone"),
			op("phone", "unread", "INBOX", "m1"),
			op("laptop", "read", "INBOX", "m1"),
			sync("phone"), sync("laptop"),
		)
	}

	It("may have seen that work and written nothing for the same value", func() {
		rs := check.Check(input(serverOf(box("INBOX", m("m1"))), history(), "phone", "laptop", "tablet"))
		Expect(rs).To(BeEmpty())
	})

	It("still wrote a value it had not seen", func() {
		h := history()
		h[len(h)-3].Kind, h[len(h)-3].Flag = "flag", `\Flagged` // the laptop flags instead
		rs := check.Check(input(serverOf(box("INBOX", m("m1"))), h, "phone", "laptop", "tablet"))
		Expect(ids(rs)).To(Equal([]string{"I6"}))
	})
})
