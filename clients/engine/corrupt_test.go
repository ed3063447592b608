package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing/iotest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/clients/engine"
	"github.com/syncharness/syncharness/fakeserver"
)

// A corruption is one way to spoil one server response: it returns what is sent instead
// (nil drops the response) and false when it does not apply to resp.
type corruption struct {
	name  string
	apply func(resp []byte) ([]byte, bool)
	// hangUp closes the connection after what apply returned: a tagged answer lost on the
	// way is a server gone without a word (a command never answered at all is the
	// watchdog's, specified in hostile_test.go).
	hangUp bool
	// late sends the response after the next one (an untagged answer after its command's
	// completion).
	late bool
}

var (
	numberRE   = regexp.MustCompile(`\b\d+\b`)
	flagListRE = regexp.MustCompile(`FLAGS \(([^)]*)\)`)
	taggedOKRE = regexp.MustCompile(`^[A-Za-z0-9]+ OK`)
	mutatingRE = regexp.MustCompile(`(?i)^\S+ (UID )?(STORE|MOVE|COPY|APPEND|EXPUNGE|CREATE|DELETE|RENAME)\b`)
)

// firstLineOf returns resp's first line, without its CRLF.
func firstLineOf(resp []byte) []byte {
	line, _, _ := bytes.Cut(resp, []byte("\r\n"))
	return line
}

// corruptionsOf lists every corruption that applies to resp, an answer to cmd: dropped,
// sent twice, replaced by a BYE or by a line no server sends (a tagged answer dropped or
// replaced so is followed by a hang-up), an untagged one sent after the next response
// (after its command's completion, when it was the last), its first line cut short, each number in its
// first line one more and one less (not below zero), a flag list with a flag left out or
// \Deleted added, and a tagged OK turned into BAD (into NO as well for a command that
// reads: a NO to a change is a refusal the engine may take back the change for, which
// would give another final state).
func corruptionsOf(cmd string, resp []byte) []corruption {
	line := firstLineOf(resp)
	tagged := !bytes.HasPrefix(line, []byte("* "))
	out := []corruption{
		{name: "dropped", apply: func([]byte) ([]byte, bool) { return nil, true }, hangUp: tagged},
		{name: "sent twice", apply: func(r []byte) ([]byte, bool) { return append(append([]byte(nil), r...), r...), true }},
		{name: "replaced by a BYE", apply: func([]byte) ([]byte, bool) { return []byte("* BYE corrupted\r\n"), true }},
		{name: "replaced by an unknown line", apply: func([]byte) ([]byte, bool) { return []byte("* 1 BOGUS (X)\r\n"), true }, hangUp: tagged},
	}
	if !tagged {
		out = append(out, corruption{name: "sent after the next response", late: true, apply: func(r []byte) ([]byte, bool) { return r, true }})
	}
	if len(line) > 4 {
		out = append(out, corruption{name: "cut short", apply: func(r []byte) ([]byte, bool) {
			l := firstLineOf(r)
			return append(append([]byte(nil), l[:len(l)/2]...), "\r\n"...), true
		}})
	}
	// Each corruption below finds its place in the response it is given, the same as the
	// recorded one unless the run went otherwise.
	for i := range numberRE.FindAllIndex(line, -1) {
		for _, d := range []int64{+1, -1} {
			out = append(out, corruption{name: fmt.Sprintf("number %d of the first line %+d", i+1, d), apply: func(r []byte) ([]byte, bool) {
				locs := numberRE.FindAllIndex(firstLineOf(r), -1)
				if i >= len(locs) {
					return nil, false
				}
				loc := locs[i]
				n, err := strconv.ParseInt(string(r[loc[0]:loc[1]]), 10, 64)
				if err != nil || n+d < 0 {
					return nil, false
				}
				return []byte(string(r[:loc[0]]) + strconv.FormatInt(n+d, 10) + string(r[loc[1]:])), true
			}})
		}
	}
	if flagListRE.Match(line) {
		out = append(out, corruption{name: "a flag left out", apply: func(r []byte) ([]byte, bool) {
			m := flagListRE.FindSubmatchIndex(firstLineOf(r))
			if m == nil || len(strings.Fields(string(r[m[2]:m[3]]))) == 0 {
				return nil, false
			}
			flags := strings.Fields(string(r[m[2]:m[3]]))
			return []byte(string(r[:m[2]]) + strings.Join(flags[1:], " ") + string(r[m[3]:])), true
		}}, corruption{name: `\Deleted added`, apply: func(r []byte) ([]byte, bool) {
			m := flagListRE.FindSubmatchIndex(firstLineOf(r))
			if m == nil {
				return nil, false
			}
			inner := strings.TrimSpace(string(r[m[2]:m[3]]) + ` \Deleted`)
			return []byte(string(r[:m[2]]) + inner + string(r[m[3]:])), true
		}})
	}
	if taggedOKRE.Match(line) {
		tag, _, _ := bytes.Cut(line, []byte(" "))
		out = append(out, corruption{name: "OK turned into BAD", apply: func([]byte) ([]byte, bool) {
			return []byte(string(tag) + " BAD corrupted\r\n"), true
		}})
		if !mutatingRE.MatchString(cmd) {
			out = append(out, corruption{name: "OK turned into NO", apply: func([]byte) ([]byte, bool) {
				return []byte(string(tag) + " NO corrupted\r\n"), true
			}})
		}
	}
	return out
}

// corruptingRewriter counts the responses of the connections through rw from the moment
// it is armed and spoils the one at index at with c; without c (the calm run) it records
// them instead.
type corruptingRewriter struct {
	mu       sync.Mutex
	n        int
	at       int
	c        *corruption
	recorded []recordedResponse
	applied  string
	late     []byte // a response held back for after the next (corruption.late)
}

type recordedResponse struct {
	cmd  string
	resp []byte
}

func (cr *corruptingRewriter) answer(cmd string, resp []byte) io.Reader {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	i := cr.n
	cr.n++
	if cr.c == nil { // the calm run: its responses are the ones the sweep spoils
		cr.recorded = append(cr.recorded, recordedResponse{cmd, append([]byte(nil), resp...)})
	}
	if cr.late != nil && i == cr.at+1 {
		late := cr.late
		cr.late = nil
		return io.MultiReader(bytes.NewReader(resp), bytes.NewReader(late))
	}
	if cr.c == nil || i != cr.at {
		return bytes.NewReader(resp)
	}
	out, ok := cr.c.apply(resp)
	if !ok {
		return bytes.NewReader(resp)
	}
	cr.applied = fmt.Sprintf("response %d (to %q): %q, %s: %q", i, cmd, firstLineOf(resp), cr.c.name, firstLineOf(out))
	if cr.c.late {
		cr.late = append([]byte(nil), resp...)
		return nil
	}
	if cr.c.hangUp {
		cr.applied += ", then the connection closed"
		return io.MultiReader(bytes.NewReader(out), iotest.ErrReader(errors.New("hung up")))
	}
	if out == nil {
		return nil
	}
	return bytes.NewReader(out)
}

// labelsOf lists the labels of every message in d's replica, in any mailbox.
func labelsOf(d interface {
	View(context.Context) (clients.Replica, error)
}) []string {
	GinkgoHelper()
	r, err := d.View(context.Background())
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, mb := range r.Mailboxes {
		for _, m := range mb.Messages {
			out = append(out, m.Label)
		}
	}
	return out
}

// corruptedRound is one world built up to the round under test (see sweepCorruptions).
type corruptedRound struct {
	run   func() error // the round under test, through the armed rewriter
	check func()       // the assertions after it, against a sane server
	stop  func()       // closes the world
}

// sweepCorruptions records the round setup builds as the server answers it, then builds
// the world again for every corruption of every response of that round, and collects
// each corruption whose check fails, and each that its run never reached (the round went
// otherwise than recorded: then it tested nothing). A deterministic server (the fake
// one) must reach every one; a real one dates its answers by the clock, so a number
// there may differ between runs: those are only reported.
func sweepCorruptions(setup func(cr *corruptingRewriter) corruptedRound, deterministic bool) {
	GinkgoHelper()
	calm := &corruptingRewriter{}
	w := setup(calm)
	Expect(w.run()).To(Succeed())
	w.check()
	w.stop()
	Expect(len(calm.recorded)).To(BeNumerically(">=", 20), "responses in the round")

	var failures, missed []string
	cases := 0
	for at, r := range calm.recorded {
		for _, c := range corruptionsOf(r.cmd, r.resp) {
			if _, ok := c.apply(r.resp); !ok {
				continue // not for this response (one less than zero, a flag out of none)
			}
			cases++
			cr := &corruptingRewriter{at: at, c: &c}
			w := setup(cr)
			roundErr := w.run()
			if msg := InterceptGomegaFailure(w.check); msg != nil {
				failures = append(failures, fmt.Sprintf("%s\n  the round: %v\n  %v", cr.applied, roundErr, msg))
				GinkgoWriter.Println("FAILED:", failures[len(failures)-1])
			}
			if cr.applied == "" {
				missed = append(missed, fmt.Sprintf("response %d (to %q): %q, %s", at, r.cmd, firstLineOf(r.resp), c.name))
			}
			w.stop()
		}
	}
	AddReportEntry("corruptions", fmt.Sprintf("%d responses, %d corruptions, %d not reached", len(calm.recorded), cases, len(missed)))
	Expect(failures).To(BeEmpty(), "%d of %d corruptions", len(failures), cases)
	if deterministic {
		Expect(missed).To(BeEmpty(), "corruptions the round never reached, of %d", cases)
	}
}

// A corruptionScene is the users' work before the round under test and what it must
// come to. The sweep spoils each response of the tablet's round; whatever that round
// does (it may fail, and so may the first round after it), no message in keep leaves the
// tablet's replica, in that round or the ones after, and once the server answers sanely
// again every device converges on final: nothing lost (pending work included), nothing
// twice, nothing back from the dead. (A body may be fetched once more than unspoiled: a
// message another device moved is matched by its INTERNALDATE and size, and where a
// corrupted answer gave another, by its content.)
type corruptionScene struct {
	name  string
	start map[string][]string // mailbox → labels on the server before the devices' first sync
	// work does the users' work, after both devices synced: deliver puts a new message
	// on the server.
	work func(tablet, phone clients.Device, deliver func(mailbox, label string))
	// reset names a mailbox whose UIDVALIDITY the server resets after the work, its
	// messages renumbered (the fake server only).
	reset string
	final []string
	keep  []string // the tablet holds these before its round and must hold them after
	// sized gives each message a size of its own, as real mail has: a misread UID that
	// names another message the server no longer has is then told apart by its size
	// (checkReused). With every message the same size (the first scene), it cannot be.
	sized bool
}

// body returns the message labelled label for sc.
func (sc corruptionScene) body(label string) []byte {
	if !sc.sized {
		return msg(label)
	}
	return sizedBody(label)
}

// sizedBody returns the message labelled label, of a size of its own.
func sizedBody(label string) []byte {
	size := 600
	for _, c := range label {
		size += 37 * int(c)
	}
	return clients.MakeMessage(clients.MessageSpec{Label: label, Run: run, Size: size})
}

// sweepDate dates every message of the scenes: the clock's date would make the numbers of
// a response (INTERNALDATE's) differ between the recorded round and a spoiled one, and a
// number one less than zero cannot be made.
var sweepDate = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

var corruptionScenes = []corruptionScene{{
	// A flag and a move of the tablet's own to push, another device's flag and a new
	// message to bring in.
	name:  "a flag and a move to push, a flag and a message to bring in",
	start: map[string][]string{"INBOX": {"m1", "m2", "m3"}, "Archive": nil},
	work: func(tablet, phone clients.Device, deliver func(mailbox, label string)) {
		do(tablet, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: `\Flagged`})
		do(tablet, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m3"}, Dest: "Archive"})
		do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m2"}, Flag: `\Seen`})
		syncOK(phone)
		deliver("INBOX", "m4")
	},
	final: []string{"Archive: m3", `INBOX: m1[\Flagged] m2[\Seen] m4`},
	keep:  []string{"m1", "m2", "m3"},
}, {
	// Mail that really goes: another device deleted a message the tablet flagged (delete
	// beats flag), moved one and made a mailbox; the tablet deleted one and flagged two.
	name:  "deletes on both sides, a move by another device, a new mailbox",
	start: map[string][]string{"INBOX": {"m1", "m2", "m3", "m4"}, "Archive": {"a1"}},
	work: func(tablet, phone clients.Device, deliver func(mailbox, label string)) {
		do(phone, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m2"}})
		do(phone, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
		do(phone, clients.Action{Kind: clients.ActCreateMailbox, Mailbox: "Projects"})
		syncOK(phone)
		do(tablet, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m2"}, Flag: `\Flagged`})
		do(tablet, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m3"}, Flag: `\Seen`})
		do(tablet, clients.Action{Kind: clients.ActDelete, Mailbox: "INBOX", Labels: []string{"m4"}})
		do(tablet, clients.Action{Kind: clients.ActFlag, Mailbox: "Archive", Labels: []string{"a1"}, Flag: `\Answered`})
		deliver("Archive", "a2")
	},
	final: []string{`Archive: a1[\Answered] a2 m1`, `INBOX: m3[\Seen]`, "Projects:"},
	keep:  []string{"m1", "m3", "a1"},
	sized: true,
}, {
	// What the tablet makes: a message saved (APPEND, APPENDUID), a copy (COPY, COPYUID),
	// a flag in a mailbox another device renamed, beside new mail.
	name:  "a message saved, a copy, a flag in a mailbox another device renamed",
	start: map[string][]string{"INBOX": {"m1", "m2"}, "Archive": {"a1"}, "Projects": {"p1", "p2"}},
	work: func(tablet, phone clients.Device, deliver func(mailbox, label string)) {
		do(phone, clients.Action{Kind: clients.ActRenameMailbox, Mailbox: "Projects", Dest: "Done"})
		syncOK(phone)
		do(tablet, clients.Action{Kind: clients.ActAppend, Mailbox: "INBOX", Message: sizedBody("d1"), Flags: []string{`\Seen`}, Date: sweepDate})
		do(tablet, clients.Action{Kind: clients.ActCopy, Mailbox: "INBOX", Labels: []string{"m1"}, Dest: "Archive"})
		do(tablet, clients.Action{Kind: clients.ActFlag, Mailbox: "Projects", Labels: []string{"p2"}, Flag: `\Flagged`})
		deliver("INBOX", "m3")
	},
	final: []string{"Archive: a1 m1", `Done: p1 p2[\Flagged]`, `INBOX: d1[\Seen] m1 m2 m3`},
	keep:  []string{"m1", "m2", "a1", "p1", "p2", "d1"},
	sized: true,
}, {
	// The server reset INBOX's UIDVALIDITY and renumbered its messages while the tablet
	// had a flag and a move to push there: every record is matched again (Message-ID,
	// size and date, then content), its pending work carried over.
	name:  "a UIDVALIDITY reset under a flag and a move to push",
	start: map[string][]string{"INBOX": {"m1", "m2", "m3", "m4"}, "Archive": {"a1"}},
	work: func(tablet, phone clients.Device, deliver func(mailbox, label string)) {
		do(phone, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m3"}, Flag: `\Seen`})
		syncOK(phone)
		do(tablet, clients.Action{Kind: clients.ActFlag, Mailbox: "INBOX", Labels: []string{"m1"}, Flag: `\Flagged`})
		do(tablet, clients.Action{Kind: clients.ActMove, Mailbox: "INBOX", Labels: []string{"m2"}, Dest: "Archive"})
		deliver("INBOX", "m5")
	},
	reset: "INBOX",
	final: []string{"Archive: a1 m2", `INBOX: m1[\Flagged] m3[\Seen] m4 m5`},
	keep:  []string{"m1", "m2", "m3", "m4", "a1"},
	sized: true,
}}

// corruptedRounds returns the round under test and the checks after it, for a tablet
// whose connections go through rw; converged asserts that the server and both devices
// show the scene's final state.
func corruptedRounds(sc corruptionScene, tablet clients.Device, rw *rewriter, converged func()) (run func() error, check func()) {
	run = func() error {
		_, err := tablet.Sync(context.Background())
		rw.set(nil)
		return err
	}
	check = func() {
		// No message leaves the replica on the strength of the corrupted answer (one the
		// server holds, deleted and fetched again, would converge too).
		Expect(labelsOf(tablet)).To(ContainElements(sc.keep), "the replica after the corrupted round")
		// The first sane round may still refuse: what it hears now may contradict what
		// the corrupted answer said (a UIDNEXT one too high, then the true one). It
		// reports that, and the round after it converges.
		if _, err := tablet.Sync(context.Background()); err != nil {
			GinkgoWriter.Printf("the first round after the corruption: %v\n", err)
		}
		Expect(labelsOf(tablet)).To(ContainElements(sc.keep), "the replica after the first sane round")
		syncOK(tablet)
		Expect(labelsOf(tablet)).To(ContainElements(sc.keep), "the replica after the second sane round")
		converged()
	}
	return run, check
}

var _ = Describe("one corrupted server answer in a round", func() {
	for _, sc := range corruptionScenes {
		for _, kind := range storeKinds {
			It(sc.name+": converges with nothing lost, doubled or resurrected ("+kind.name+" store)", func() {
				sweepCorruptions(func(cr *corruptingRewriter) corruptedRound {
					w := newWorld(fakeserver.Options{Seed: 1})
					w.store = kind.open
					for _, mb := range slices.Sorted(maps.Keys(sc.start)) {
						if mb != "INBOX" {
							w.create(mb)
						}
						for _, l := range sc.start[mb] {
							Expect(w.srv.Apply(fakeserver.Deliver{User: user, Mailbox: mb, Body: sc.body(l), Date: sweepDate})).To(Succeed())
						}
					}
					rw := newRewriter(w.addr)
					o := w.options(kind.open(), 0)
					o.Dial = rw.dial
					// A literal announced longer than it is leaves its command waiting for
					// the watchdog.
					o.CommandTimeout = 2 * time.Second
					tablet, err := engine.NewDevice("tablet", o)
					Expect(err).NotTo(HaveOccurred())
					phone := w.device("phone")
					settle(tablet, phone)
					sc.work(tablet, phone, func(mailbox, label string) {
						Expect(w.srv.Apply(fakeserver.Deliver{User: user, Mailbox: mailbox, Body: sc.body(label), Date: sweepDate})).To(Succeed())
					})
					if sc.reset != "" {
						Expect(w.srv.Apply(fakeserver.UIDValidityReset{User: user, Mailbox: sc.reset})).To(Succeed())
					}
					// The round under test dials afresh: a connection kept from the last round
					// may hold what the server sent meanwhile (a BYE for a selected mailbox
					// another device renamed), read before or after the rewriter is armed
					// as the goroutines run, and the responses would be numbered otherwise.
					rw.close()
					rw.set(cr.answer)
					run, check := corruptedRounds(sc, tablet, rw, func() { w.expectConverged(sc.final, tablet, phone) })
					return corruptedRound{run: run, check: check, stop: func() {
						_ = tablet.Close()
						_ = phone.Close()
						rw.close()
						w.srv.Close()
					}}
				}, true)
			})
		}
	}
})
