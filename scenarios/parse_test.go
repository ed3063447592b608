package scenarios_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/scenarios"
)

// preamble is the setup every step of the table runs after.
const preamble = `# Table scenario.
devices phone laptop
mailbox Archive
mailbox Trash \Trash
mailbox Sent \Sent
deliver INBOX m1 m2 m3
`

const attachment = "-- m5.eml --\nSubject: m5\n\nm5\n"

// parseStep parses line in a scenario (after the setup, or in it) and returns its step,
// with the fields that do not come from the line itself cleared.
func parseStep(line string, setup bool) *scenarios.Step {
	GinkgoHelper()
	prefix := preamble
	if !setup {
		prefix += "sync\n"
	}
	s, err := scenarios.Parse("table.scn", []byte(prefix+line+"\n"+attachment))
	Expect(err).NotTo(HaveOccurred())
	st := s.Steps[len(s.Steps)-1]
	Expect(st.Line).To(Equal(strings.Count(prefix, "\n") + 1))
	return clean(st)
}

func clean(st *scenarios.Step) *scenarios.Step {
	c := *st
	c.Line, c.Before, c.EndBefore = 0, nil, nil
	if len(c.Options) == 0 {
		c.Options = nil
	}
	if c.Expect != nil {
		e := *c.Expect
		c.Expect = &scenarios.Expect{Kind: e.Kind, Where: e.Where, Mailbox: e.Mailbox, Labels: e.Labels,
			Flags: e.Flags, N: e.N, Mailboxes: e.Mailboxes, Within: e.Within}
	}
	var body []*scenarios.Step
	for _, b := range c.Body {
		body = append(body, clean(b))
	}
	c.Body = body
	return &c
}

func ls(s ...string) []string { return s }

var _ = Describe("Parsing every command into the AST", func() {
	DescribeTable("setup commands",
		func(line string, want scenarios.Step) {
			Expect(parseStep(line, true)).To(Equal(&want))
		},
		Entry("mailbox", "mailbox Projects", scenarios.Step{Verb: "mailbox", Mailbox: "Projects"}),
		Entry("mailbox with a special use, any case", `mailbox Junk \junk`, scenarios.Step{Verb: "mailbox", Mailbox: "Junk", SpecialUse: `\Junk`}),
		Entry("mailbox with a space", `mailbox "Old Mail"`, scenarios.Step{Verb: "mailbox", Mailbox: "Old Mail"}),
		Entry("deliver", "deliver INBOX m4 m6", scenarios.Step{Verb: "deliver", Mailbox: "INBOX", Labels: ls("m4", "m6")}),
		Entry("deliver with every option", `deliver inbox m4 flags=\seen,$Work size=5000 no-message-id`, scenarios.Step{
			Verb: "deliver", Mailbox: "INBOX", Labels: ls("m4"), Flags: ls(`\Seen`, "$Work"), N: 5000, NoMessageID: true,
			Options: map[string]string{"flags": `\seen,$Work`, "size": "5000"}}),
		Entry("deliver from an attached file", "deliver INBOX m5 < m5.eml", scenarios.Step{Verb: "deliver", Mailbox: "INBOX", Labels: ls("m5"), File: "m5.eml"}),
		Entry("deliver from an attached file, no space", "deliver INBOX m5 <m5.eml", scenarios.Step{Verb: "deliver", Mailbox: "INBOX", Labels: ls("m5"), File: "m5.eml"}),
		Entry("caps", "caps -MOVE +condstore -LITERAL+", scenarios.Step{Verb: "caps", Caps: ls("-MOVE", "+CONDSTORE", "-LITERAL+")}),
	)

	DescribeTable("device commands",
		func(line string, want scenarios.Step) {
			Expect(parseStep(line, false)).To(Equal(&want))
		},
		Entry("read", "phone read INBOX m1 m2", scenarios.Step{Actor: "phone", Verb: "read", Mailbox: "INBOX", Labels: ls("m1", "m2")}),
		Entry("unread", "phone unread INBOX m1", scenarios.Step{Actor: "phone", Verb: "unread", Mailbox: "INBOX", Labels: ls("m1")}),
		Entry("flag", `laptop flag INBOX m1 m2 \flagged`, scenarios.Step{Actor: "laptop", Verb: "flag", Mailbox: "INBOX", Labels: ls("m1", "m2"), Flag: `\Flagged`}),
		Entry("flag with a keyword", "laptop flag INBOX m1 $Forwarded", scenarios.Step{Actor: "laptop", Verb: "flag", Mailbox: "INBOX", Labels: ls("m1"), Flag: "$Forwarded"}),
		Entry("unflag", `laptop unflag INBOX m1 Work`, scenarios.Step{Actor: "laptop", Verb: "unflag", Mailbox: "INBOX", Labels: ls("m1"), Flag: "Work"}),
		Entry("move", "laptop move INBOX m1 m3 Archive", scenarios.Step{Actor: "laptop", Verb: "move", Mailbox: "INBOX", Labels: ls("m1", "m3"), Dest: "Archive"}),
		Entry("copy", "phone copy INBOX m2 Archive", scenarios.Step{Actor: "phone", Verb: "copy", Mailbox: "INBOX", Labels: ls("m2"), Dest: "Archive"}),
		Entry("delete", "phone delete INBOX m3", scenarios.Step{Actor: "phone", Verb: "delete", Mailbox: "INBOX", Labels: ls("m3")}),
		Entry("trash", "phone trash INBOX m3", scenarios.Step{Actor: "phone", Verb: "trash", Mailbox: "INBOX", Labels: ls("m3")}),
		Entry("append", `laptop append Sent d1 flags=\Draft,\Seen`, scenarios.Step{Actor: "laptop", Verb: "append", Mailbox: "Sent", Labels: ls("d1"),
			Flags: ls(`\Draft`, `\Seen`), Options: map[string]string{"flags": `\Draft,\Seen`}}),
		Entry("append without a Message-ID", "laptop append INBOX d2 no-message-id", scenarios.Step{Actor: "laptop", Verb: "append", Mailbox: "INBOX", Labels: ls("d2"), NoMessageID: true}),
		Entry("reply", "phone reply INBOX m1 r1", scenarios.Step{Actor: "phone", Verb: "reply", Mailbox: "INBOX", Labels: ls("m1"), Dest: "r1"}),
		Entry("forward", "phone forward INBOX m1 f1", scenarios.Step{Actor: "phone", Verb: "forward", Mailbox: "INBOX", Labels: ls("m1"), Dest: "f1"}),
		Entry("create", "phone create Receipts/2026", scenarios.Step{Actor: "phone", Verb: "create", Mailbox: "Receipts/2026"}),
		Entry("remove", "phone remove Archive", scenarios.Step{Actor: "phone", Verb: "remove", Mailbox: "Archive"}),
		Entry("rename", `phone rename Archive "Old Archive"`, scenarios.Step{Actor: "phone", Verb: "rename", Mailbox: "Archive", Dest: "Old Archive"}),
		Entry("sync", "phone sync", scenarios.Step{Actor: "phone", Verb: "sync"}),
		Entry("sync interrupted", "phone sync interrupt-after=3", scenarios.Step{Actor: "phone", Verb: "sync", InterruptAfter: 3, Options: map[string]string{"interrupt-after": "3"}}),
		Entry("sync crashing", "phone sync crash-after=5", scenarios.Step{Actor: "phone", Verb: "sync", CrashAfter: 5, Options: map[string]string{"crash-after": "5"}}),
		Entry("offline", "phone offline", scenarios.Step{Actor: "phone", Verb: "offline"}),
		Entry("online", "phone online", scenarios.Step{Actor: "phone", Verb: "online"}),
		Entry("crash", "phone crash", scenarios.Step{Actor: "phone", Verb: "crash"}),
		Entry("wipe", "phone wipe", scenarios.Step{Actor: "phone", Verb: "wipe"}),
		Entry("latency", "phone latency 20ms", scenarios.Step{Actor: "phone", Verb: "latency", Duration: 20 * time.Millisecond}),
		Entry("drop", "phone drop", scenarios.Step{Actor: "phone", Verb: "drop"}),
		Entry("watch", "phone watch INBOX", scenarios.Step{Actor: "phone", Verb: "watch", Mailbox: "INBOX"}),
		Entry("unwatch", "phone unwatch", scenarios.Step{Actor: "phone", Verb: "unwatch"}),
		Entry("a trailing comment", "phone sync # after lunch", scenarios.Step{Actor: "phone", Verb: "sync", Comment: " after lunch"}),
		Entry("guards", "[fake] [!cap:MOVE] [remote] phone sync", scenarios.Step{Actor: "phone", Verb: "sync",
			Guards: []scenarios.Guard{{Name: "fake"}, {Not: true, Name: "cap", Arg: "MOVE"}, {Name: "remote"}}}),
	)

	DescribeTable("server commands",
		func(line string, want scenarios.Step) {
			want.Actor = "server"
			Expect(parseStep(line, false)).To(Equal(&want))
		},
		Entry("deliver", "server deliver INBOX m9 size=100", scenarios.Step{Verb: "deliver", Mailbox: "INBOX", Labels: ls("m9"), N: 100, Options: map[string]string{"size": "100"}}),
		Entry("deliver from a file", "server deliver INBOX m5 flags=\\Seen < m5.eml", scenarios.Step{Verb: "deliver", Mailbox: "INBOX", Labels: ls("m5"),
			File: "m5.eml", Flags: ls(`\Seen`), Options: map[string]string{"flags": `\Seen`}}),
		Entry("read", "server read INBOX m1 m2", scenarios.Step{Verb: "read", Mailbox: "INBOX", Labels: ls("m1", "m2")}),
		Entry("unread", "server unread INBOX m1", scenarios.Step{Verb: "unread", Mailbox: "INBOX", Labels: ls("m1")}),
		Entry("flag", `server flag INBOX m1 \Seen`, scenarios.Step{Verb: "flag", Mailbox: "INBOX", Labels: ls("m1"), Flag: `\Seen`}),
		Entry("unflag", `server unflag INBOX m1 \Seen`, scenarios.Step{Verb: "unflag", Mailbox: "INBOX", Labels: ls("m1"), Flag: `\Seen`}),
		Entry("move", "server move INBOX m2 Archive", scenarios.Step{Verb: "move", Mailbox: "INBOX", Labels: ls("m2"), Dest: "Archive"}),
		Entry("copy", "server copy INBOX m2 Archive", scenarios.Step{Verb: "copy", Mailbox: "INBOX", Labels: ls("m2"), Dest: "Archive"}),
		Entry("expunge", "server expunge INBOX m2 m3", scenarios.Step{Verb: "expunge", Mailbox: "INBOX", Labels: ls("m2", "m3")}),
		Entry("create", "server create Projects", scenarios.Step{Verb: "create", Mailbox: "Projects"}),
		Entry("rename", "server rename Archive Done", scenarios.Step{Verb: "rename", Mailbox: "Archive", Dest: "Done"}),
		Entry("remove", "server remove Archive", scenarios.Step{Verb: "remove", Mailbox: "Archive"}),
		Entry("uidvalidity-bump", "server uidvalidity-bump INBOX", scenarios.Step{Verb: "uidvalidity-bump", Mailbox: "INBOX"}),
		Entry("uidvalidity-reset", "server uidvalidity-reset INBOX", scenarios.Step{Verb: "uidvalidity-reset", Mailbox: "INBOX"}),
		Entry("renumber-silently", "[fake] server renumber-silently INBOX", scenarios.Step{Verb: "renumber-silently", Mailbox: "INBOX", Guards: []scenarios.Guard{{Name: "fake"}}}),
		Entry("drop", "server drop", scenarios.Step{Verb: "drop"}),
		Entry("fail", `server fail 2 "NO [UNAVAILABLE] try later"`, scenarios.Step{Verb: "fail", N: 2, Response: "NO [UNAVAILABLE] try later"}),
		Entry("fail for one command", `server fail 1 "BYE going away" command="uid move"`, scenarios.Step{Verb: "fail", N: 1, Response: "BYE going away",
			Command: "UID MOVE", Options: map[string]string{"command": "uid move"}}),
		Entry("latency", "server latency 1.5s", scenarios.Step{Verb: "latency", Duration: 1500 * time.Millisecond}),
		Entry("caps", "server caps -MOVE -UIDPLUS", scenarios.Step{Verb: "caps", Caps: ls("-MOVE", "-UIDPLUS")}),
	)

	DescribeTable("flow commands",
		func(src string, want scenarios.Step) {
			Expect(parseStep(src, false)).To(Equal(&want))
		},
		Entry("sync", "sync", scenarios.Step{Verb: "sync"}),
		Entry("concurrently", "concurrently\n  phone sync\n  laptop sync\nend", scenarios.Step{Verb: "concurrently", Body: []*scenarios.Step{
			{Actor: "phone", Verb: "sync"}, {Actor: "laptop", Verb: "sync"}}}),
		Entry("repeat, guarded, with a nested block", "[fake] repeat 3\nconcurrently\nphone sync\nend\nend", scenarios.Step{Verb: "repeat", N: 3,
			Guards: []scenarios.Guard{{Name: "fake"}}, Body: []*scenarios.Step{{Verb: "concurrently", Body: []*scenarios.Step{{Actor: "phone", Verb: "sync"}}}}}),
	)

	DescribeTable("every form of expect",
		func(line string, want scenarios.Expect) {
			st := parseStep(line, false)
			Expect(st.Verb).To(Equal("expect"))
			Expect(st.Actor).To(BeEmpty())
			Expect(st.Expect).To(Equal(&want))
			Expect(st.Mailbox).To(Equal(want.Mailbox))
			Expect(st.Labels).To(Equal(want.Labels))
			Expect(st.Duration).To(Equal(want.Within))
		},
		Entry("converged", "expect converged", scenarios.Expect{Kind: "converged"}),
		Entry("converged within a time", "expect converged within=2s", scenarios.Expect{Kind: "converged", Within: 2 * time.Second}),
		Entry("idempotent", "expect idempotent", scenarios.Expect{Kind: "idempotent"}),
		Entry("contents on the server", "expect server INBOX m2 m3", scenarios.Expect{Kind: "contents", Where: "server", Mailbox: "INBOX", Labels: ls("m2", "m3")}),
		Entry("contents without a place: the server", "expect INBOX m2", scenarios.Expect{Kind: "contents", Where: "server", Mailbox: "INBOX", Labels: ls("m2")}),
		Entry("contents on a device", "expect phone Archive m1 within=5s", scenarios.Expect{Kind: "contents", Where: "phone", Mailbox: "Archive", Labels: ls("m1"), Within: 5 * time.Second}),
		Entry("an empty mailbox", "expect laptop Trash", scenarios.Expect{Kind: "contents", Where: "laptop", Mailbox: "Trash"}),
		Entry("flags", `expect server Archive m1 flags \Seen $Work`, scenarios.Expect{Kind: "flags", Where: "server", Mailbox: "Archive", Labels: ls("m1"), Flags: ls(`\Seen`, "$Work")}),
		Entry("no flags", "expect phone INBOX m1 m2 flags", scenarios.Expect{Kind: "flags", Where: "phone", Mailbox: "INBOX", Labels: ls("m1", "m2"), Flags: []string{}}),
		Entry("missing", "expect missing m3", scenarios.Expect{Kind: "missing", Where: "server", Labels: ls("m3")}),
		Entry("missing on a device", "expect missing laptop m3 m2", scenarios.Expect{Kind: "missing", Where: "laptop", Labels: ls("m3", "m2")}),
		Entry("count", "expect count INBOX 3", scenarios.Expect{Kind: "count", Where: "server", Mailbox: "INBOX", N: 3}),
		Entry("count on a device", "expect count phone Archive 0", scenarios.Expect{Kind: "count", Where: "phone", Mailbox: "Archive"}),
		Entry("mailboxes", "expect mailboxes INBOX Archive Trash Sent", scenarios.Expect{Kind: "mailboxes", Where: "server", Mailboxes: ls("INBOX", "Archive", "Trash", "Sent")}),
		Entry("mailboxes on a device", "expect mailboxes phone INBOX Archive", scenarios.Expect{Kind: "mailboxes", Where: "phone", Mailboxes: ls("INBOX", "Archive")}),
		Entry("quarantined", "expect phone quarantined m1", scenarios.Expect{Kind: "quarantined", Where: "phone", Labels: ls("m1")}),
		Entry("nothing quarantined", "expect laptop quarantined within=1s", scenarios.Expect{Kind: "quarantined", Where: "laptop", Within: time.Second}),
	)

	Describe("a whole file", func() {
		var s *scenarios.Scenario
		BeforeEach(func() {
			var err error
			s, err = scenarios.Parse("dir/flags_basic.scn", []byte("# First line.\n#   Second line.\n\n# Not the description.\n"+
				"devices phone\n  # indented comment\nphone sync\n-- a.eml --\nA\n-- b.eml --\nB\n"))
			Expect(err).NotTo(HaveOccurred())
		})
		It("takes its name and category from the file name", func() {
			Expect(s.Name).To(Equal("flags_basic"))
			Expect(s.Category).To(Equal("flags"))
			Expect(s.File).To(Equal("dir/flags_basic.scn"))
		})
		It("describes itself with the first comment lines", func() {
			Expect(s.Description).To(Equal("First line.\n  Second line."))
		})
		It("keeps the attached files in order and the source", func() {
			Expect(s.FileOrder).To(Equal(ls("a.eml", "b.eml")))
			Expect(s.Files).To(Equal(map[string][]byte{"a.eml": []byte("A\n"), "b.eml": []byte("B\n")}))
			Expect(string(s.Source)).To(HavePrefix("# First line."))
		})
		It("numbers steps by their line in the file", func() {
			Expect(s.Steps).To(HaveLen(2))
			Expect(s.Steps[0].Line).To(Equal(5))
			Expect(s.Steps[1].Line).To(Equal(7))
			Expect(s.Steps[1].Before).To(Equal(ls(" indented comment")))
		})
	})

	Describe("ParseFS", func() {
		It("parses every *.scn file of a directory, sorted by name, with the errors of all", func() {
			fsys := fstestMap{
				"d/b_two.scn":  "devices phone\nphone sync\n",
				"d/a_one.scn":  "devices phone\nphone sync\n",
				"d/c_bad.scn":  "devices phone\nphnoe sync\n",
				"d/notes.txt":  "not a scenario",
				"d/sub/x.scn":  "not even parsed",
				"d/d_bad2.scn": "devices phone\nexpect nothing here\n",
			}.fs()
			list, err := scenarios.ParseFS(fsys, "d")
			Expect(err).To(MatchError(ContainSubstring(`d/c_bad.scn:2: sync: unknown device "phnoe"`)))
			Expect(err.Error()).To(ContainSubstring("d/d_bad2.scn:2: expect:"))
			names := []string{}
			for _, s := range list {
				names = append(names, s.Name)
			}
			Expect(names).To(Equal(ls("a_one", "b_two")))
		})
	})
})
