package scenarios

import (
	"fmt"
	"strings"
)

// Reference returns the Markdown reference of the scenario language: the file format,
// the words, guards and options, the checks lint makes, then every command of Commands
// with its usage, summary and example. docs/scenarios.md is this text.
func Reference() string {
	var b strings.Builder
	b.WriteString(referenceIntro)
	b.WriteString("\n## Commands at a glance\n\n")
	b.WriteString("| Command | What it does |\n|---|---|\n")
	for _, c := range Commands() {
		usage, _, _ := strings.Cut(c.Usage, "\n")
		fmt.Fprintf(&b, "| `%s` | %s |\n", tableEscape(usage), tableEscape(firstSentence(c.Summary)))
	}
	section := ""
	for _, c := range Commands() {
		if c.Section != section {
			section = c.Section
			fmt.Fprintf(&b, "\n## %s\n\n%s\n", section, sectionIntro[section])
		}
		title := c.Name
		if c.Actor == "server" {
			title = "server " + c.Name
		} else if c.Actor == "device" {
			title = "DEVICE " + c.Name
		}
		fmt.Fprintf(&b, "\n### %s\n\n```\n%s\n```\n\n%s\n\nExample:\n\n```\n%s\n```\n", title, c.Usage, c.Summary, c.Example)
	}
	b.WriteString(limitsReference())
	b.WriteString(referenceErrors)
	return b.String()
}

func tableEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i >= 0 {
		return s[:i+1]
	}
	return s
}

var sectionIntro = map[string]string{
	secSetup: "Setup commands come first, before any other step: `devices` on the first line, " +
		"then the mailboxes, the mail already there and the server's capabilities. They take no guard.",
	secDevice: "A device action is written `DEVICE VERB …` and changes only that device's local replica, " +
		"offline, as a user would in a mail app; the server and the other devices see it after the device syncs. " +
		"Messages are named by label; MAILBOX must exist on that device at that point of the script.",
	secConn: "These control a device's sync rounds, its network and its life.",
	secServer: "`server VERB …` changes the server directly, as another mail client or the administrator " +
		"would, at once. The devices see it on their next sync.",
	secFaults: "Faults the harness injects on the server side. On a remote server, a fault the target cannot " +
		"produce makes the scenario skip with the reason; guard such lines with `[fake]` to run the rest.",
	secFlow: "Flow commands group and repeat steps. Blocks end with `end`; indentation inside them is " +
		"cosmetic (`syncharness fmt` indents by two spaces).",
	secChecks: "A check fails the scenario when it does not hold at that point of the script. Every form " +
		"takes `within=DURATION`: the check is then retried until it holds or the time runs out " +
		"(for push mode and other asynchronous changes). In deterministic mode on the fake server " +
		"(the default) the wait is on the logical clock instead: the check waits until every device " +
		"in push mode has fetched what the server told it and idles again, then holds or fails at " +
		"once, and fails too if that took longer than DURATION (one millisecond per IMAP command); " +
		"the report shows that wait as the step's time. `expect` without `server` or a device name " +
		"checks the server. After the last step the harness always settles (every device syncs in turn " +
		"until a round changes nothing) and checks every convergence invariant, so `expect` lines only " +
		"pin down outcomes that the invariants allow in more than one way.",
}

const referenceIntro = "# The scenario language\n\n" +
	"A scenario scripts what the users of one mail account and its server do, step by step: " +
	"several devices (phone, laptop…) each with their own sync engine and local replica, " +
	"the server, and faults such as dropped connections, crashes and UIDVALIDITY resets. " +
	"`syncharness run` plays it, lets every device settle, then checks that all replicas " +
	"converged with the server without losing, duplicating or resurrecting mail.\n\n" +
	"```\n" +
	"# A message read on the phone while the laptop archives it ends up archived and read.\n" +
	"devices phone laptop\n" +
	"mailbox Archive\n" +
	"deliver INBOX m1 m2 m3\n" +
	"sync\n" +
	"\n" +
	"phone read INBOX m1\n" +
	"laptop move INBOX m1 Archive\n" +
	"concurrently\n" +
	"  phone sync\n" +
	"  laptop sync\n" +
	"end\n" +
	"\n" +
	"expect converged\n" +
	"expect server Archive m1 flags \\Seen\n" +
	"expect server INBOX m2 m3\n" +
	"```\n\n" +
	"Read it as: two devices share an account whose INBOX holds three messages, and both have " +
	"synced them. Offline, the phone reads m1 while the laptop archives it; then both sync at " +
	"the same time. In the end everybody sees m1 in Archive, read, and m2 and m3 still in INBOX.\n\n" +
	"Check a file without running it with `syncharness lint FILE…`, put it in canonical form " +
	"with `syncharness fmt -w FILE…`, and run it with `syncharness run FILE…`.\n\n" +
	"## The file\n\n" +
	"- A scenario file is named `CATEGORY_WHAT.scn` (`move_concurrent_read.scn`); the part " +
	"before the first `_` is its category, which `run --filter` and the test labels use.\n" +
	"- It is a [txtar](https://pkg.go.dev/golang.org/x/tools/txtar) archive: the script comes first; " +
	"files attached after it, each introduced by a line `-- NAME --`, hold message bodies for " +
	"`deliver … < NAME`.\n" +
	"- One step a line. Words are separated by spaces; a word with spaces or special characters " +
	"is written in double quotes (`\"Sent Items\"`, with `\\\"` and `\\\\` inside).\n" +
	"- `#` starts a comment, on a line of its own or after a step (after a space). The first " +
	"comment lines, before the first step, describe the scenario: say in one sentence what it shows.\n" +
	"- Blank lines and indentation are cosmetic.\n" +
	"- Steps run in order, each after the previous one has finished, except inside `concurrently`.\n\n" +
	"A file with an attached message, for mail the harness cannot make itself (odd headers, " +
	"no Message-ID, a shared Message-ID):\n\n" +
	"```\n" +
	"# Two messages with the same Message-ID stay two messages on every device.\n" +
	"devices phone laptop\n" +
	"deliver INBOX a1 < same-id-1.eml\n" +
	"deliver INBOX a2 < same-id-2.eml\n" +
	"sync\n" +
	"expect count phone INBOX 2\n" +
	"-- same-id-1.eml --\n" +
	"Message-ID: <dup@example.org>\n" +
	"Subject: a1\n" +
	"\n" +
	"a1\n" +
	"-- same-id-2.eml --\n" +
	"Message-ID: <dup@example.org>\n" +
	"Subject: a2\n" +
	"\n" +
	"a2\n" +
	"```\n\n" +
	"An attached message carries its label in its Subject or its first body line.\n\n" +
	"## How a scenario runs\n\n" +
	"- The server starts with the setup: INBOX, the `mailbox` lines and the `deliver`ed mail. " +
	"Devices start empty, as new devices: most scenarios `sync` once after the setup so " +
	"that every device has the mail before the story begins.\n" +
	"- A device action changes only the device's replica; nothing reaches the server until that " +
	"device syncs. A `server` step changes the server at once; devices see it on their next sync " +
	"(or at once when they `watch`).\n" +
	"- A sync that fails (the device is offline, the server fails its commands, the connection is " +
	"cut) is not by itself a failure of the scenario: the device must recover on a later sync.\n" +
	"- After the last step the harness settles: it brings every device back online, stops push " +
	"mode and latency, and every device syncs in turn until a whole " +
	"round changes nothing (too many rounds is the failure \"did not converge\"). Then it checks " +
	"every invariant: all devices converged with the server, no message lost, duplicated or " +
	"resurrected, flags merged as written, mailboxes created, renamed and deleted as asked, one more " +
	"round changes nothing, journals drained.\n" +
	"- So a scenario needs no `expect` to be useful; `expect` lines pin down the outcome where " +
	"the invariants allow more than one (which of two racing moves wins) and check intermediate " +
	"states.\n\n" +
	"## Words\n\n" +
	"| Word | Meaning |\n|---|---|\n" +
	"| `DEVICE` | a name from the `devices` line: a letter, then letters, digits, `-`, `_` |\n" +
	"| `MAILBOX`, `DEST`, `OLD`, `NEW` | a mailbox name. `INBOX` always exists (any case). Levels are separated by `/` (`Archive/2026`). " +
	"Others must be made first: by `mailbox`, by `create` (on a device or the server) or by `rename` |\n" +
	"| `LABEL`, `NEWLABEL` | a message, by its label: letters, digits, `-`, `_` (`m1`, `draft-2`). " +
	"The harness writes the label into the Message-ID, the Subject and the first body line of every message it makes, " +
	"so a device's view maps back to labels. A label is made by `deliver`, `append`, `reply` or `forward` and kept by `copy` |\n" +
	"| `FLAG`, `F` | a system flag (`\\Seen`, `\\Answered`, `\\Flagged`, `\\Deleted`, `\\Draft`, any case) " +
	"or a keyword, an IMAP atom without backslash (`$Forwarded`, `$Junk`, `Work`). `\\Recent` cannot be set |\n" +
	"| `CAP` | a capability name: " + "`MOVE`, `UIDPLUS`, `IDLE`, `ESEARCH`, `LIST-STATUS`, `SPECIAL-USE`, `LITERAL+`, `NAMESPACE`, " +
	"`CONDSTORE`, `QRESYNC`, `ENABLE`, `UNSELECT`, `CHILDREN`, `SASL-IR`, `IMAP4rev2`, `UTF8=ACCEPT`, `STATUS=SIZE`, `BINARY` |\n" +
	"| `N` | a whole number |\n" +
	"| `DURATION` | a number with a unit: `20ms`, `1.5s`, `2m` (at most 10 minutes) |\n\n" +
	"## Options\n\n" +
	"Options are written `key=value` after the arguments, in any order; each command takes only those listed in its usage.\n\n" +
	"| Option | Commands | Meaning |\n|---|---|---|\n" +
	"| `flags=F,…` | `deliver`, `append` | flags the new message has (comma-separated, no spaces) |\n" +
	"| `size=N` | `deliver` | pad the body to at least N bytes |\n" +
	"| `no-message-id` | `deliver`, `append` | leave out the Message-ID header (the label is still in the Subject and body) |\n" +
	"| `< FILE` | `deliver` | the message is the attached file FILE, as it is |\n" +
	"| `interrupt-after=N` | `DEVICE sync` | cut the connection after N IMAP commands of this round |\n" +
	"| `crash-after=N` | `DEVICE sync` | crash the device after N IMAP commands of this round |\n" +
	"| `lose-answer=N` | `DEVICE sync` | the server carries out command N of this round; its answer is lost and the connection cut |\n" +
	"| `crash-lose-answer=N` | `DEVICE sync` | as `lose-answer=N`, then crash the device |\n" +
	"| `command=NAME` | `server fail` | fail only commands named NAME |\n" +
	"| `within=DURATION` | every `expect` | retry the check until it holds or DURATION has passed (deterministic mode: wait until the devices in push mode are idle again, on the logical clock) |\n\n" +
	"## Guards\n\n" +
	"A step can start with guards in square brackets; it runs only where all of them hold, and is " +
	"skipped elsewhere. A guard on `concurrently` or `repeat` applies to the whole block.\n\n" +
	"| Guard | Holds when |\n|---|---|\n" +
	"| `[fake]` | the server is the built-in fake server |\n" +
	"| `[remote]` | the server is a real IMAP server, not the built-in fake one |\n" +
	"| `[cap:NAME]` | the server announces capability NAME (after `caps`) |\n" +
	"| `[!fake]`, `[!remote]`, `[!cap:NAME]` | the guard without `!` does not hold |\n\n" +
	"```\n[fake] server renumber-silently INBOX\n[!cap:MOVE] expect count server INBOX 2\n[fake] [cap:UIDPLUS] phone sync\n```\n"

const referenceErrors = "\n## Errors\n\n" +
	"`syncharness lint` (and `run`, before anything runs) reports every problem of a file at once, " +
	"one a line, as `FILE:LINE: COMMAND: what is wrong`:\n\n" +
	"```\n" +
	"move_typo.scn:12: move: unknown mailbox \"Arhive\" (did you mean \"Archive\"?)\n" +
	"move_typo.scn:14: read: unknown device \"phnoe\" (devices: phone laptop)\n" +
	"move_typo.scn:15: flag: not a flag: \"\\\\Important\" (system flags are \\Seen \\Answered \\Flagged \\Deleted \\Draft; keywords have no backslash, e.g. $Forwarded)\n" +
	"```\n\n" +
	"It checks:\n\n" +
	"- syntax: unknown commands and options, missing or extra arguments, bad numbers, " +
	"durations, labels, flags and capabilities, unterminated quotes, `end` without a block, " +
	"a block without `end`, `concurrently` inside `concurrently`, empty blocks;\n" +
	"- setup: `devices` first and once, no device named twice or named after a command " +
	"(`server`, `sync`…), setup commands only before the first other step and outside blocks;\n" +
	"- devices: every `DEVICE` is on the `devices` line;\n" +
	"- mailboxes: every mailbox exists where it is used, following the script: a device's own " +
	"`create`, `rename` and `remove` change what that device knows at once and reach the server " +
	"when it syncs (`DEVICE sync` or `sync`); `server` changes reach a device on its next sync. A " +
	"removed mailbox is unknown afterwards unless created again;\n" +
	"- labels: a label is made (`deliver`, `append`, `reply`, `forward`) before it is used;\n" +
	"- special uses: `trash` needs a `\\Trash` mailbox and `reply`/`forward` a `\\Sent` one;\n" +
	"- attachments: every `< FILE` is attached to the file;\n" +
	"- checks: no `expect` inside `concurrently`; `quarantined` names a device.\n"
