package scenarios

import (
	"strings"
)

// A Command documents one command of the scenario language.
type Command struct {
	Name    string // "move", or "expect converged" for the forms of expect
	Actor   string // "setup", "device", "server", "flow" or "check"
	Section string // heading the command is listed under in the reference
	Usage   string // "DEVICE move MAILBOX LABEL… DEST"
	Summary string // what it does, in sentences
	Example string // one or more example lines
}

// Commands returns every command of the language, documented, in reference order. The
// slice is fresh on each call.
func Commands() []Command {
	out := make([]Command, 0, len(specList))
	for _, sp := range specList {
		out = append(out, sp.doc)
	}
	return out
}

// A spec is a command's documentation and how to parse its arguments.
type spec struct {
	doc   Command
	opts  []string // options it takes: "flags", "size", "no-message-id", …
	file  bool     // takes "< FILE"
	parse func(*lineParser)
}

// Sections of the reference.
const (
	secSetup   = "Setup"
	secDevice  = "Device actions"
	secConn    = "Device connection and lifecycle"
	secServer  = "Server as another client"
	secFaults  = "Server faults"
	secFlow    = "Flow"
	secChecks  = "Checks"
	deviceWord = "device"
)

// specs indexes specList by "class verb" ("device move", "server fail", "check expect").
var specs = func() map[string]*spec {
	m := map[string]*spec{}
	for _, sp := range specList {
		if sp.parse == nil {
			continue
		}
		verb, _, _ := strings.Cut(sp.doc.Name, " ")
		m[sp.doc.Actor+" "+verb] = sp
	}
	return m
}()

// verbsOf lists the verbs of an actor class, in reference order.
func verbsOf(class string) []string {
	var out []string
	for _, sp := range specList {
		if sp.doc.Actor == class && sp.parse != nil {
			out = append(out, sp.doc.Name)
		}
	}
	return out
}

// Argument shapes.

func parseMailboxLabels(lp *lineParser) {
	lp.st.Mailbox = lp.mailbox()
	lp.st.Labels = lp.labels(1, 0)
}

func parseMailboxLabelsFlag(lp *lineParser) {
	lp.st.Mailbox = lp.mailbox()
	lp.st.Labels = lp.labels(1, 1)
	if t, ok := lp.next(); ok {
		lp.st.Flag = lp.settableFlag(t.text)
	}
}

func parseMailboxLabelsDest(lp *lineParser) {
	lp.st.Mailbox = lp.mailbox()
	lp.st.Labels = lp.labels(1, 1)
	if t, ok := lp.next(); ok {
		lp.st.Dest = lp.checkMailbox(t)
	}
}

func parseMailbox(lp *lineParser) { lp.st.Mailbox = lp.mailbox() }

func parseNothing(*lineParser) {}

func parseRename(lp *lineParser) {
	lp.st.Mailbox = lp.mailbox()
	if t, ok := lp.next(); ok {
		lp.st.Dest = lp.checkMailbox(t)
	}
}

func parseDeliver(lp *lineParser) {
	lp.st.Mailbox = lp.mailbox()
	lp.st.Labels = lp.labels(1, 0)
	if lp.file != nil && len(lp.st.Labels) > 1 {
		lp.errorf("a message read from a file takes one label, not %d", len(lp.st.Labels))
	}
}

func parseAppend(lp *lineParser) {
	lp.st.Mailbox = lp.mailbox()
	lp.st.Labels = []string{lp.label()}
}

func parseReply(lp *lineParser) {
	lp.st.Mailbox = lp.mailbox()
	lp.st.Labels = []string{lp.label()}
	lp.st.Dest = lp.label()
}

func parseLatency(lp *lineParser) {
	if t, ok := lp.next(); ok {
		lp.st.Duration = lp.duration(t.text, "latency", 0)
	}
}

func parseFail(lp *lineParser) {
	t, ok := lp.next()
	if !ok {
		return
	}
	lp.st.N = lp.number(t.text, "the number of commands to fail", 1)
	if len(lp.pos) == 0 {
		lp.usageErr()
		return
	}
	words := make([]string, len(lp.pos))
	for i, w := range lp.pos {
		words[i] = w.text
	}
	lp.pos = nil
	resp := strings.Join(words, " ")
	lp.st.Response = resp
	kind, _, _ := strings.Cut(resp, " ")
	switch strings.ToUpper(kind) {
	case "NO", "BAD", "BYE":
	default:
		lp.errorf("response %q must start with NO, BAD or BYE", resp)
	}
}

func parseCaps(lp *lineParser) {
	if len(lp.pos) == 0 {
		lp.usageErr()
		return
	}
	for _, t := range lp.pos {
		c := t.text
		if len(c) < 2 || c[0] != '-' && c[0] != '+' {
			lp.errorf("bad capability change %q: write -NAME to remove a capability or +NAME to add one", c)
			continue
		}
		name, ok := canonicalCap(c[1:])
		if !ok {
			lp.errorf("unknown capability %q (known: %s)", c[1:], strings.Join(knownCaps, " "))
			continue
		}
		lp.st.Caps = append(lp.st.Caps, c[:1]+name)
	}
	lp.pos = nil
}

func parseDevices(lp *lineParser) {
	if len(lp.pos) == 0 {
		lp.usageErr()
		return
	}
	for _, t := range lp.pos {
		if !isDeviceName(t.text) {
			lp.errorf("bad device name %q: a letter followed by letters, digits, '-' or '_'", t.text)
		}
		lp.st.Devices = append(lp.st.Devices, t.text)
	}
	lp.pos = nil
}

func parseMailboxDecl(lp *lineParser) {
	lp.st.Mailbox = lp.mailbox()
	if len(lp.pos) > 0 {
		t := lp.pos[0]
		lp.pos = lp.pos[1:]
		u, ok := canonicalSpecialUse(t.text)
		if !ok {
			lp.errorf("unknown special use %q (one of %s)", t.text, strings.Join(specialUses, " "))
		}
		lp.st.SpecialUse = u
	}
}

func parseRepeat(lp *lineParser) {
	if t, ok := lp.next(); ok {
		lp.st.N = lp.number(t.text, "repeat", 1)
		if lp.st.N > maxRepeat {
			lp.errorf("repeat %d is too many (at most %d)", lp.st.N, maxRepeat)
		}
	}
}

const maxRepeat = 1000

// expectUsages are the usage lines of the forms of expect, by kind.
var expectUsages = map[string]string{
	ExpectConverged:   "expect converged [within=DURATION]",
	ExpectContents:    "expect [server|DEVICE] MAILBOX [LABEL…] [within=DURATION]",
	ExpectFlags:       "expect [server|DEVICE] MAILBOX LABEL… flags [FLAG…] [within=DURATION]",
	ExpectMissing:     "expect missing [server|DEVICE] LABEL… [within=DURATION]",
	ExpectCount:       "expect count [server|DEVICE] MAILBOX N [within=DURATION]",
	ExpectMailboxes:   "expect mailboxes [server|DEVICE] NAME… [within=DURATION]",
	ExpectIdempotent:  "expect idempotent [within=DURATION]",
	ExpectQuarantined: "expect DEVICE quarantined [LABEL…] [within=DURATION]",
}

// specList is the language: every command with its documentation, in reference order.
// Entries without parse document a form of a command parsed by another entry (expect).
var specList = []*spec{
	// Setup.
	{doc: Command{Name: "devices", Actor: "setup", Section: secSetup,
		Usage:   "devices NAME…",
		Summary: "Declares the devices that share the account, each with its own sync engine and local store. It is the first command of every scenario and appears once. A device name is a letter followed by letters, digits, '-' or '_'; it cannot be `server` or another command's name. A device that has not synced yet is new: its first sync brings it everything.",
		Example: "devices phone laptop tablet"},
		parse: parseDevices},
	{doc: Command{Name: "mailbox", Actor: "setup", Section: secSetup,
		Usage:   `mailbox NAME [\SpecialUse]`,
		Summary: "Creates a mailbox on the server before the devices start, optionally with an RFC 6154 special use (`\\All`, `\\Archive`, `\\Drafts`, `\\Flagged`, `\\Junk`, `\\Sent`, `\\Trash`). INBOX always exists. `trash` needs a `\\Trash` mailbox and `reply`/`forward` a `\\Sent` one. Levels are separated by `/`.",
		Example: "mailbox Archive\nmailbox Trash \\Trash\nmailbox Archive/2026"},
		parse: parseMailboxDecl},
	{doc: Command{Name: "deliver", Actor: "setup", Section: secSetup,
		Usage:   "deliver MAILBOX LABEL… [flags=F,…] [no-message-id] [size=N]\ndeliver MAILBOX LABEL [flags=F,…] < FILE",
		Summary: "Puts new messages on the server before the devices start, one per label, in the order given. The harness makes each message and writes its label in the Message-ID, the Subject and the first body line. `flags=` sets flags on arrival, `no-message-id` leaves the Message-ID header out, `size=N` pads the body to at least N bytes. With `< FILE` the message is the attached file of that name, taken as it is.",
		Example: "deliver INBOX m1 m2 m3\ndeliver INBOX m4 flags=\\Seen,$Work size=20000\ndeliver INBOX m5 < m5.eml"},
		opts: []string{"flags", "no-message-id", "size"}, file: true, parse: parseDeliver},
	{doc: Command{Name: "caps", Actor: "setup", Section: secSetup,
		Usage:   "caps -CAP… +CAP…",
		Summary: "Changes the capabilities the server announces for the whole scenario: `-MOVE` hides MOVE. The proxy strips hidden capabilities from CAPABILITY responses, so a device's fallback paths run even against a server that has the extension. At the start the server has all its capabilities on, so `+NAME` changes nothing here; use `server caps +NAME` to switch one back on later.",
		Example: "caps -MOVE -UIDPLUS"},
		parse: parseCaps},

	// Device actions.
	{doc: Command{Name: "read", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE read MAILBOX LABEL…",
		Summary: "Marks messages read (sets `\\Seen`) on the device. Like every device action it changes the local replica only; the server sees it when the device syncs.",
		Example: "phone read INBOX m1 m2"},
		parse: parseMailboxLabels},
	{doc: Command{Name: "unread", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE unread MAILBOX LABEL…",
		Summary: "Marks messages unread (clears `\\Seen`) on the device.",
		Example: "laptop unread INBOX m1"},
		parse: parseMailboxLabels},
	{doc: Command{Name: "flag", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE flag MAILBOX LABEL… FLAG",
		Summary: "Sets a flag on messages: a system flag (`\\Seen`, `\\Answered`, `\\Flagged`, `\\Deleted`, `\\Draft`) or a keyword (an IMAP atom such as `$Forwarded` or `Work`). `\\Deleted` marks without expunging.",
		Example: "phone flag INBOX m1 m2 \\Flagged\nlaptop flag INBOX m3 $Work"},
		parse: parseMailboxLabelsFlag},
	{doc: Command{Name: "unflag", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE unflag MAILBOX LABEL… FLAG",
		Summary: "Clears a flag or keyword on messages.",
		Example: "phone unflag INBOX m1 \\Flagged"},
		parse: parseMailboxLabelsFlag},
	{doc: Command{Name: "move", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE move MAILBOX LABEL… DEST",
		Summary: "Moves messages from MAILBOX to the mailbox DEST. Their flags go with them.",
		Example: "laptop move INBOX m1 Archive"},
		parse: parseMailboxLabelsDest},
	{doc: Command{Name: "copy", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE copy MAILBOX LABEL… DEST",
		Summary: "Copies messages to DEST. A copy keeps its label, so the label is then in both mailboxes.",
		Example: "phone copy INBOX m2 Archive"},
		parse: parseMailboxLabelsDest},
	{doc: Command{Name: "delete", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE delete MAILBOX LABEL…",
		Summary: "Deletes messages for good (`\\Deleted` and expunge of exactly these messages).",
		Example: "tablet delete INBOX m3"},
		parse: parseMailboxLabels},
	{doc: Command{Name: "trash", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE trash MAILBOX LABEL…",
		Summary: "Moves messages to the mailbox declared with `\\Trash`, as a mail app's delete button does.",
		Example: "phone trash INBOX m1"},
		parse: parseMailboxLabels},
	{doc: Command{Name: "append", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE append MAILBOX LABEL [flags=F,…] [no-message-id]",
		Summary: "Adds a new message written on the device (a draft, a saved copy) to MAILBOX; it is uploaded on the next sync. The harness makes the message as for `deliver`; `flags=` and `no-message-id` work the same way.",
		Example: "laptop append Drafts d1 flags=\\Draft"},
		opts: []string{"flags", "no-message-id"}, parse: parseAppend},
	{doc: Command{Name: "resave", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE resave MAILBOX LABEL [size=N] [flags=F,…]",
		Summary: "Saves a message again with an edit, as a mail app saves a draft: deletes it and appends a new text in its place under the same Message-ID and at the same size, with other bytes (a later Date header). Give `size=` as the message was made with. `flags=` sets the new text's flags.",
		Example: "phone resave INBOX m1 flags=\\Draft"},
		opts: []string{"flags", "size"}, parse: parseAppend},
	{doc: Command{Name: "reply", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE reply MAILBOX LABEL NEWLABEL",
		Summary: "Replies to LABEL: sets `\\Answered` on it and appends the reply, labelled NEWLABEL, to the `\\Sent` mailbox.",
		Example: "phone reply INBOX m1 r1"},
		parse: parseReply},
	{doc: Command{Name: "forward", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE forward MAILBOX LABEL NEWLABEL",
		Summary: "Forwards LABEL: sets the keyword `$Forwarded` on it and appends NEWLABEL to the `\\Sent` mailbox.",
		Example: "laptop forward INBOX m2 f1"},
		parse: parseReply},
	{doc: Command{Name: "create", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE create MAILBOX",
		Summary: "Creates a mailbox on the device.",
		Example: "phone create Receipts"},
		parse: parseMailbox},
	{doc: Command{Name: "remove", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE remove MAILBOX",
		Summary: "Deletes a mailbox and the messages in it on the device. INBOX cannot be removed. The name is unknown afterwards, unless created again.",
		Example: "laptop remove Receipts"},
		parse: parseMailbox},
	{doc: Command{Name: "rename", Actor: deviceWord, Section: secDevice,
		Usage:   "DEVICE rename OLD NEW",
		Summary: "Renames a mailbox on the device; its messages keep their labels and flags.",
		Example: "phone rename Receipts Bills"},
		parse: parseRename},

	// Device connection and lifecycle.
	{doc: Command{Name: "sync", Actor: deviceWord, Section: secConn,
		Usage: "DEVICE sync [interrupt-after=N | crash-after=N | lose-answer=N | crash-lose-answer=N]",
		Summary: "Runs one sync round on the device. `interrupt-after=N` cuts its connection after N IMAP commands of that round (the round fails; the next one must finish the work); `crash-after=N` crashes the device after N commands: what it had not committed is lost. " +
			"Both cut before command N+1 reaches the server, so the device has seen the answers to the N before. " +
			"`lose-answer=N` lets command N reach the server and be carried out, then loses its answer: the proxy drops all the server sends after it and cuts the connection once the server has completed it (the round fails, the device never learns what its last command did: an APPEND's new UID, a MOVE's COPYUID); " +
			"`crash-lose-answer=N` does the same and crashes the device. At most one of the four is given.",
		Example: "phone sync\nlaptop sync interrupt-after=3\ntablet sync crash-after=5\nphone sync lose-answer=4\nlaptop sync crash-lose-answer=6"},
		opts: []string{"interrupt-after", "crash-after", "lose-answer", "crash-lose-answer"}, parse: parseNothing},
	{doc: Command{Name: "offline", Actor: deviceWord, Section: secConn,
		Usage:   "DEVICE offline",
		Summary: "Takes the device off the network: its syncs fail until `online`. Local actions still work. The settle at the end brings every device back online.",
		Example: "tablet offline"},
		parse: parseNothing},
	{doc: Command{Name: "online", Actor: deviceWord, Section: secConn,
		Usage:   "DEVICE online",
		Summary: "Puts the device back on the network.",
		Example: "tablet online"},
		parse: parseNothing},
	{doc: Command{Name: "crash", Actor: deviceWord, Section: secConn,
		Usage:   "DEVICE crash",
		Summary: "Crashes the device now: everything it had not committed to its store is lost, then it restarts.",
		Example: "phone crash"},
		parse: parseNothing},
	{doc: Command{Name: "wipe", Actor: deviceWord, Section: secConn,
		Usage:   "DEVICE wipe",
		Summary: "Loses the device's whole local store, as when a phone is replaced: the device is new again and its next sync must bring it everything without deleting anything on the server.",
		Example: "phone wipe"},
		parse: parseNothing},
	{doc: Command{Name: "latency", Actor: deviceWord, Section: secConn,
		Usage:   "DEVICE latency DURATION",
		Summary: "Delays every line between this device and the server by DURATION (`0` turns it off).",
		Example: "phone latency 20ms"},
		parse: parseLatency},
	{doc: Command{Name: "drop", Actor: deviceWord, Section: secConn,
		Usage:   "DEVICE drop",
		Summary: "Drops the device's connection now; it reconnects on its next sync.",
		Example: "laptop drop"},
		parse: parseNothing},
	{doc: Command{Name: "watch", Actor: deviceWord, Section: secConn,
		Usage:   "DEVICE watch MAILBOX",
		Summary: "Starts push mode: the device syncs, then IDLEs on MAILBOX and syncs again on each change, until `unwatch`. Use `expect … within=` to wait for a push to arrive. With a seed on the fake server, push rounds take their turn at the scheduler and every step starts once the watching devices idle again, so push replays exactly.",
		Example: "phone watch INBOX"},
		parse: parseMailbox},
	{doc: Command{Name: "unwatch", Actor: deviceWord, Section: secConn,
		Usage:   "DEVICE unwatch",
		Summary: "Stops push mode.",
		Example: "phone unwatch"},
		parse: parseNothing},

	// Server as another client.
	{doc: Command{Name: "deliver", Actor: "server", Section: secServer,
		Usage:   "server deliver MAILBOX LABEL… [flags=F,…] [no-message-id] [size=N]\nserver deliver MAILBOX LABEL [flags=F,…] < FILE",
		Summary: "New mail arrives while the scenario runs. Options as for the setup `deliver`.",
		Example: "server deliver INBOX m9"},
		opts: []string{"flags", "no-message-id", "size"}, file: true, parse: parseDeliver},
	{doc: Command{Name: "read", Actor: "server", Section: secServer,
		Usage:   "server read MAILBOX LABEL…",
		Summary: "Another client marks messages read (sets `\\Seen`).",
		Example: "server read INBOX m1"},
		parse: parseMailboxLabels},
	{doc: Command{Name: "unread", Actor: "server", Section: secServer,
		Usage:   "server unread MAILBOX LABEL…",
		Summary: "Another client marks messages unread (clears `\\Seen`).",
		Example: "server unread INBOX m1"},
		parse: parseMailboxLabels},
	{doc: Command{Name: "flag", Actor: "server", Section: secServer,
		Usage:   "server flag MAILBOX LABEL… FLAG",
		Summary: "Another client sets a flag or keyword on messages.",
		Example: "server flag INBOX m1 \\Seen"},
		parse: parseMailboxLabelsFlag},
	{doc: Command{Name: "unflag", Actor: "server", Section: secServer,
		Usage:   "server unflag MAILBOX LABEL… FLAG",
		Summary: "Another client clears a flag or keyword.",
		Example: "server unflag INBOX m1 \\Seen"},
		parse: parseMailboxLabelsFlag},
	{doc: Command{Name: "move", Actor: "server", Section: secServer,
		Usage:   "server move MAILBOX LABEL… DEST",
		Summary: "Another client moves messages.",
		Example: "server move INBOX m2 Archive"},
		parse: parseMailboxLabelsDest},
	{doc: Command{Name: "copy", Actor: "server", Section: secServer,
		Usage:   "server copy MAILBOX LABEL… DEST",
		Summary: "Another client copies messages.",
		Example: "server copy INBOX m2 Archive"},
		parse: parseMailboxLabelsDest},
	{doc: Command{Name: "expunge", Actor: "server", Section: secServer,
		Usage:   "server expunge MAILBOX LABEL…",
		Summary: "Another client deletes messages for good.",
		Example: "server expunge INBOX m3"},
		parse: parseMailboxLabels},
	{doc: Command{Name: "create", Actor: "server", Section: secServer,
		Usage:   "server create MAILBOX",
		Summary: "Another client creates a mailbox.",
		Example: "server create Projects"},
		parse: parseMailbox},
	{doc: Command{Name: "rename", Actor: "server", Section: secServer,
		Usage:   "server rename OLD NEW",
		Summary: "Another client renames a mailbox.",
		Example: "server rename Projects Done"},
		parse: parseRename},
	{doc: Command{Name: "remove", Actor: "server", Section: secServer,
		Usage:   "server remove MAILBOX",
		Summary: "Another client deletes a mailbox with its messages.",
		Example: "server remove Projects"},
		parse: parseMailbox},

	// Server faults.
	{doc: Command{Name: "uidvalidity-bump", Actor: "server", Section: secFaults,
		Usage:   "server uidvalidity-bump MAILBOX",
		Summary: "Gives MAILBOX a new UIDVALIDITY while every message keeps its UID (a spurious change). Sessions with the mailbox selected are disconnected.",
		Example: "server uidvalidity-bump INBOX"},
		parse: parseMailbox},
	{doc: Command{Name: "uidvalidity-reset", Actor: "server", Section: secFaults,
		Usage:   "server uidvalidity-reset MAILBOX",
		Summary: "A genuine reset: a new UIDVALIDITY and every message renumbered in a new order. Devices must re-match messages by content, never by old UIDs.",
		Example: "server uidvalidity-reset INBOX"},
		parse: parseMailbox},
	{doc: Command{Name: "renumber-silently", Actor: "server", Section: secFaults,
		Usage:   "server renumber-silently MAILBOX",
		Summary: "A known server bug: messages get new UIDs but UIDVALIDITY stays the same. Only the fake server can do it; guard it with `[fake]`.",
		Example: "[fake] server renumber-silently INBOX"},
		parse: parseMailbox},
	{doc: Command{Name: "drop", Actor: "server", Section: secFaults,
		Usage:   "server drop",
		Summary: "Drops every device's connection now.",
		Example: "server drop"},
		parse: parseNothing},
	{doc: Command{Name: "fail", Actor: "server", Section: secFaults,
		Usage:   `server fail N "RESPONSE" [command=NAME]`,
		Summary: "The next N commands from any device fail with RESPONSE, which starts with NO, BAD or BYE; a BYE also closes the connection. With `command=NAME` only commands of that name count: `FETCH` matches FETCH and UID FETCH, `\"UID FETCH\"` only the latter. CAPABILITY, NOOP and LOGOUT never fail.",
		Example: "server fail 2 \"NO [UNAVAILABLE] try later\"\nserver fail 1 \"NO [INUSE] busy\" command=APPEND"},
		opts: []string{"command"}, parse: parseFail},
	{doc: Command{Name: "latency", Actor: "server", Section: secFaults,
		Usage:   "server latency DURATION",
		Summary: "The server answers every command DURATION late, for every device (`0` turns it off).",
		Example: "server latency 20ms"},
		parse: parseLatency},
	{doc: Command{Name: "caps", Actor: "server", Section: secFaults,
		Usage:   "server caps -CAP… +CAP…",
		Summary: "Switches capabilities off (`-NAME`) or back on (`+NAME`) from now on, as after a server upgrade or downgrade. New connections get the new set, open ones from their next command. The fake server can switch UIDPLUS, MOVE, IDLE, ESEARCH, LIST-STATUS, SPECIAL-USE, LITERAL+ and NAMESPACE.",
		Example: "server caps -MOVE -UIDPLUS\nserver caps +MOVE"},
		parse: parseCaps},

	// Flow.
	{doc: Command{Name: "sync", Actor: "flow", Section: secFlow,
		Usage:   "sync",
		Summary: "Syncs every device in turn, in the order of `devices`. The sync of an offline device fails, as it would on a phone without network, and the others go on.",
		Example: "sync"},
		parse: parseNothing},
	{doc: Command{Name: "concurrently", Actor: "flow", Section: secFlow,
		Usage:   "concurrently\n  STEP…\nend",
		Summary: "Runs the steps up to `end` at the same time; with a seed the interleaving is the same on every run. Blocks of this kind do not nest, and checks cannot run inside.",
		Example: "concurrently\n  phone sync\n  laptop sync\nend"},
		parse: parseNothing},
	{doc: Command{Name: "repeat", Actor: "flow", Section: secFlow,
		Usage:   "repeat N\n  STEP…\nend",
		Summary: "Runs the steps up to `end` N times (1 to 1000).",
		Example: "repeat 3\n  phone read INBOX m1\n  phone sync\n  phone unread INBOX m1\n  phone sync\nend"},
		parse: parseRepeat},
	{doc: Command{Name: "end", Actor: "flow", Section: secFlow,
		Usage:   "end",
		Summary: "Closes the innermost `concurrently` or `repeat`.",
		Example: "end"}},

	// Checks.
	{doc: Command{Name: "expect converged", Actor: "check", Section: secChecks,
		Usage:   expectUsages[ExpectConverged],
		Summary: "Every device has the server's mailboxes and, in each, the same messages with the same flags. The harness first settles the devices, as at the end of a scenario (every device back online, push mode and latency stopped, syncs in turn until a round changes nothing), so this checks where the devices end up from here.",
		Example: "expect converged"},
		opts: []string{"within"}, parse: parseExpect},
	{doc: Command{Name: "expect contents", Actor: "check", Section: secChecks,
		Usage:   expectUsages[ExpectContents],
		Summary: "MAILBOX holds exactly these labels (each as often as written), on the server unless a device is named. With no label the mailbox must be empty.",
		Example: "expect server INBOX m2 m3\nexpect phone Archive m1\nexpect Trash"}},
	{doc: Command{Name: "expect flags", Actor: "check", Section: secChecks,
		Usage:   expectUsages[ExpectFlags],
		Summary: "Each of these messages in MAILBOX has exactly these flags and keywords; `flags` with nothing after it means none.",
		Example: "expect server Archive m1 flags \\Seen\nexpect laptop INBOX m2 m3 flags"}},
	{doc: Command{Name: "expect missing", Actor: "check", Section: secChecks,
		Usage:   expectUsages[ExpectMissing],
		Summary: "These messages are in no mailbox of the server (or of the device named): deleted, expunged, or never uploaded.",
		Example: "expect missing m3\nexpect missing phone m3"}},
	{doc: Command{Name: "expect count", Actor: "check", Section: secChecks,
		Usage:   expectUsages[ExpectCount],
		Summary: "MAILBOX holds exactly N messages.",
		Example: "expect count server INBOX 3\nexpect count phone Archive 0"}},
	{doc: Command{Name: "expect mailboxes", Actor: "check", Section: secChecks,
		Usage:   expectUsages[ExpectMailboxes],
		Summary: "Exactly these mailboxes exist; INBOX is always expected, whether listed or not.",
		Example: "expect mailboxes INBOX Archive Trash"}},
	{doc: Command{Name: "expect idempotent", Actor: "check", Section: secChecks,
		Usage:   expectUsages[ExpectIdempotent],
		Summary: "One more sync round of every device sends no mutating command and changes no replica.",
		Example: "expect idempotent"}},
	{doc: Command{Name: "expect quarantined", Actor: "check", Section: secChecks,
		Usage:   expectUsages[ExpectQuarantined],
		Summary: "The device set exactly these messages aside (reported, neither dropped nor uploaded again) after a UIDVALIDITY change it could not match them across; none when no label is given.",
		Example: "expect phone quarantined m4"}},
}
