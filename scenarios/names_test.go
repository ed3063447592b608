package scenarios_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/scenarios"
)

var _ = Describe("Mailbox names", func() {
	DescribeTable("a name a real server would read outside the scenario's folder, or as another mailbox, is an error at its line",
		func(line, want string) {
			_, err := scenarios.Parse("n.scn", []byte("# Names.\ndevices phone\nmailbox Archive\n"+line+"\n"))
			Expect(err).To(MatchError(ContainSubstring("n.scn:4: " + want)))
		},
		Entry("a parent level", "mailbox ../INBOX", `mailbox: bad mailbox name "../INBOX": '.' and '..' levels`),
		Entry("parent levels inside", "server create x/../../Outside", `create: bad mailbox name "x/../../Outside"`),
		Entry("a current level as a destination", "phone move INBOX m1 ./Archive", `move: bad mailbox name "./Archive"`),
		Entry("INBOX in lower case above a level", "mailbox inbox/sub", `mailbox: bad mailbox name "inbox/sub": write INBOX in upper case`),
		Entry("INBOX in mixed case above a level, renamed to", "server rename Archive Inbox/Old", `rename: bad mailbox name "Inbox/Old": write INBOX in upper case`),
		Entry("another namespace in an expect", "expect mailboxes INBOX ~bob", `expect: bad mailbox name "~bob": '#' and '~' start`),
	)

	It("takes INBOX in any case alone, and dots inside a level", func() {
		_, err := scenarios.Parse("n.scn", []byte("# Names.\ndevices phone\nmailbox INBOX/sub\nmailbox a..b/.x\nsync\nexpect server inbox\n"))
		Expect(err).NotTo(HaveOccurred())
	})
})
