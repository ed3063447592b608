package explore

import (
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// has reports whether s has a step line equal to line (in a block or not), and its index
// in the order of lines.
func lineIndex(s *script, line string) int {
	n := 0
	for _, it := range s.items {
		lines := [][]string{it.words}
		if it.block {
			lines = it.body
		}
		for _, l := range lines {
			if strings.Join(l, " ") == line {
				return n
			}
			n++
		}
	}
	return -1
}

var _ = Describe("The shrinker", func() {
	It("cuts a script down to the steps, devices, messages and mailboxes the failure needs", func() {
		s := generate(11, GenOptions{Devices: 3, Steps: 40})
		// A failure that needs the server to flag m2 \Deleted and, later, laptop to delete m3
		// in INBOX; everything else is noise.
		s.setup = [][]string{{"devices", "phone", "laptop", "tablet"}, {"mailbox", "Archive"},
			{"mailbox", "Trash", `\Trash`}, {"deliver", "INBOX", "m1", "m2", "m3", "m4"}}
		s.items = append([]*item{{words: []string{"server", "flag", "INBOX", "m2", `\Deleted`}}}, s.items...)
		s.items = append(s.items, &item{block: true, body: [][]string{
			{"phone", "sync"}, {"laptop", "delete", "INBOX", "m3"}, {"tablet", "sync", "crash-after=7"}}})
		fails := func(c *script) bool {
			if _, err := c.parse("shrink_test"); err != nil {
				return false
			}
			a, b := lineIndex(c, `server flag INBOX m2 \Deleted`), lineIndex(c, "laptop delete INBOX m3")
			return a >= 0 && b > a
		}
		Expect(fails(s)).To(BeTrue())
		sh := &shrinker{fails: fails, budget: 1000}
		small := sh.shrink(s)
		Expect(small.text()).To(HaveSuffix("devices laptop\ndeliver INBOX m2 m3\nserver flag INBOX m2 \\Deleted\nlaptop delete INBOX m3\n"))
		Expect(sh.tries).To(BeNumerically("<", 1000))
	})

	It("stops at its budget and returns a script that still fails", func() {
		s := generate(12, GenOptions{Steps: 30})
		calls := 0
		fails := func(c *script) bool {
			calls++
			return len(c.items) > 3
		}
		small := (&shrinker{fails: fails, budget: 5}).shrink(s)
		Expect(calls).To(Equal(5))
		Expect(len(small.items)).To(BeNumerically(">", 3))
	})

	It("drops the options a failure does not need and lowers the numbers of those it does", func() {
		s := &script{setup: [][]string{{"devices", "phone"}}, items: []*item{
			{words: []string{"phone", "sync", "crash-after=9"}},
			{words: []string{"phone", "sync", "interrupt-after=8"}},
		}}
		fails := func(c *script) bool {
			for _, it := range c.items {
				if slices.ContainsFunc(it.words, func(w string) bool { return strings.HasPrefix(w, "crash-after=") && w >= "crash-after=2" }) {
					return true
				}
			}
			return false
		}
		small := (&shrinker{fails: fails, budget: 100}).shrink(s)
		Expect(small.text()).To(Equal("devices phone\nphone sync crash-after=2\n"))
	})

	It("drops the setup's mailboxes no remaining step needs, even when they go only all together", func() {
		s := &script{setup: [][]string{
			{"devices", "phone", "laptop"}, {"mailbox", "Archive"}, {"mailbox", "Trash", `\Trash`},
			{"mailbox", "Sent", `\Sent`}, {"mailbox", "日本"}, {"mailbox", `"My Folder"`},
			{"deliver", "INBOX", "m1", "m2"}, {"deliver", `"My Folder"`, "m3"},
		}, items: []*item{
			{words: []string{"phone", "sync"}},
			{words: []string{"phone", "move", "INBOX", "m1", "Archive"}},
			{words: []string{"laptop", "trash", "INBOX", "m2"}},
			{words: []string{"phone", "sync"}},
		}}
		// The failure needs the move and the trash, and m3 delivered to "My Folder" (a line
		// of the setup names it); as with a seeded server whose state depends on how many
		// mailboxes it has, it also needs Sent and 日本 both there or both gone.
		fails := func(c *script) bool {
			if _, err := c.parse("shrink_test"); err != nil {
				return false
			}
			text := c.text()
			n := strings.Count(text, "mailbox Sent") + strings.Count(text, "mailbox 日本")
			return lineIndex(c, "phone move INBOX m1 Archive") >= 0 && lineIndex(c, "laptop trash INBOX m2") >= 0 &&
				strings.Contains(text, `deliver "My Folder" m3`) && n != 1
		}
		Expect(fails(s)).To(BeTrue())
		small := (&shrinker{fails: fails, budget: 200}).shrink(s)
		Expect(small.text()).To(Equal("devices phone laptop\nmailbox Archive\nmailbox Trash \\Trash\nmailbox \"My Folder\"\n" +
			"deliver INBOX m1 m2\ndeliver \"My Folder\" m3\nphone move INBOX m1 Archive\nlaptop trash INBOX m2\n"))
	})
})
