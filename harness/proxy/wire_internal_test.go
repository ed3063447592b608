package proxy

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("literalAt", func() {
	DescribeTable("finds a literal announcement only at the end of a segment",
		func(segment string, size int64, sync bool, found bool) {
			n, _, ok := literalAt([]byte(segment))
			Expect(ok).To(Equal(found))
			Expect(n).To(Equal(size))
			Expect(isSyncLiteral([]byte(segment))).To(Equal(sync))
		},
		Entry("synchronizing", "a1 APPEND INBOX {523}\r\n", int64(523), true, true),
		Entry("non-synchronizing", "a1 APPEND INBOX {523+}\r\n", int64(523), false, true),
		Entry("literal8", "a1 APPEND INBOX ~{7}\r\n", int64(7), true, true),
		Entry("literal8, non-synchronizing", "a1 APPEND INBOX ~{7+}\r\n", int64(7), false, true),
		Entry("bare LF", "* 1 FETCH (BODY[] {0}\n", int64(0), true, true),
		Entry("no line ending", "{12}", int64(12), true, true),
		Entry("not at the end", "a1 SEARCH {3} x\r\n", int64(0), false, false),
		Entry("no digits", "a1 NOOP {}\r\n", int64(0), false, false),
		Entry("not a number", "a1 NOOP {x}\r\n", int64(0), false, false),
		Entry("no opening brace", "a1 NOOP 12}\r\n", int64(0), false, false),
		Entry("absurdly long", "a1 NOOP {1234567890123456789}\r\n", int64(0), false, false),
		Entry("inside a quoted string", "a1 SEARCH SUBJECT \"{5}\"\r\n", int64(0), false, false),
	)
})

var _ = Describe("capMask", func() {
	DescribeTable("removes masked capabilities and codes, and leaves other lines as they are",
		func(caps []string, line, want string) {
			Expect(string(newCapMask(caps).apply([]byte(line)))).To(Equal(want))
		},
		Entry("CAPABILITY response", []string{"MOVE"},
			"* CAPABILITY IMAP4rev1 MOVE UIDPLUS\r\n", "* CAPABILITY IMAP4rev1 UIDPLUS\r\n"),
		Entry("the last capability", []string{"uidplus"},
			"* CAPABILITY IMAP4rev1 MOVE UIDPLUS\r\n", "* CAPABILITY IMAP4rev1 MOVE\r\n"),
		Entry("greeting code", []string{"MOVE"},
			"* OK [CAPABILITY IMAP4rev1 MOVE] ready\r\n", "* OK [CAPABILITY IMAP4rev1] ready\r\n"),
		Entry("PREAUTH code", []string{"IDLE"},
			"* PREAUTH [CAPABILITY IMAP4rev1 IDLE] hi\r\n", "* PREAUTH [CAPABILITY IMAP4rev1] hi\r\n"),
		Entry("tagged code", []string{"CONDSTORE"},
			"a1 OK [CAPABILITY IMAP4rev1 CONDSTORE QRESYNC] in\r\n", "a1 OK [CAPABILITY IMAP4rev1] in\r\n"),
		Entry("APPENDUID with UIDPLUS", []string{"UIDPLUS"},
			"a2 OK [APPENDUID 7 12] APPEND completed\r\n", "a2 OK APPEND completed\r\n"),
		Entry("COPYUID with UIDPLUS", []string{"UIDPLUS"},
			"* OK [COPYUID 7 1:2 5:6] moved\r\n", "* OK moved\r\n"),
		Entry("APPENDUID without UIDPLUS masked", []string{"MOVE"},
			"a2 OK [APPENDUID 7 12] APPEND completed\r\n", "a2 OK [APPENDUID 7 12] APPEND completed\r\n"),
		Entry("a capability named in text", []string{"MOVE"},
			"a3 OK MOVE completed\r\n", "a3 OK MOVE completed\r\n"),
		Entry("a capability as a prefix of another", []string{"AUTH"},
			"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n", "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"),
		Entry("a data line", []string{"MOVE"},
			"* 1 FETCH (FLAGS (MOVE))\r\n", "* 1 FETCH (FLAGS (MOVE))\r\n"),
		Entry("nothing masked", nil,
			"* CAPABILITY IMAP4rev1 MOVE\r\n", "* CAPABILITY IMAP4rev1 MOVE\r\n"),
	)

	DescribeTable("names the extension of a command that exists only with it",
		func(caps []string, command string, masked bool) {
			_, ok := newCapMask(caps).command(command)
			Expect(ok).To(Equal(masked))
		},
		Entry("UID MOVE without MOVE", []string{"MOVE"}, "UID MOVE", true),
		Entry("MOVE without MOVE", []string{"move"}, "MOVE", true),
		Entry("UID EXPUNGE without UIDPLUS", []string{"UIDPLUS"}, "UID EXPUNGE", true),
		Entry("EXPUNGE without UIDPLUS", []string{"UIDPLUS"}, "EXPUNGE", false),
		Entry("UID MOVE with MOVE", []string{"UIDPLUS"}, "UID MOVE", false),
		Entry("IDLE without IDLE", []string{"IDLE"}, "IDLE", true),
	)
})
