package scenarios_test

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/scenarios"
)

// lintErrors parses data as limits.scn and returns its errors, one a string.
func lintErrors(data string) []string {
	GinkgoHelper()
	_, err := scenarios.Parse("limits.scn", []byte(data))
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// nested returns a script of depth nested blocks of kind around one step, closed.
func nested(depth int, open string) string {
	var b strings.Builder
	b.WriteString("devices phone\ndeliver INBOX m1\n")
	for i := 0; i < depth; i++ {
		b.WriteString(open + "\n")
	}
	b.WriteString("phone sync\n")
	for i := 0; i < depth; i++ {
		b.WriteString("end\n")
	}
	return b.String()
}

var _ = Describe("Limits", func() {
	DescribeTable("a file past a limit is an error at the line that goes past it",
		func(script string, want ...string) {
			Expect(lintErrors(script)).To(Equal(want))
		},
		Entry("three nested repeat 1000: 10^9 steps",
			"devices phone\nrepeat 1000\n  repeat 1000\n    repeat 1000\n      phone sync\n    end\n  end\nend\n",
			"limits.scn:5: sync: more than 100000 steps with repeat blocks expanded (this line runs 1000000000 times: repeat on line 2, 3, 4)"),
		Entry("steps added up over the script",
			"devices phone\nrepeat 1000\n  phone sync\n  repeat 99\n    phone sync\n  end\nend\nphone sync\n",
			"limits.scn:8: sync: more than 100000 steps with repeat blocks expanded"),
		Entry("size=2000000000",
			"devices phone\ndeliver INBOX m1 size=2000000000\n",
			"limits.scn:2: deliver: size=2000000000 is too large (at most 50000000 bytes)"),
		Entry("size= at the limit, repeated past the bytes held",
			"devices phone\nsync\nrepeat 21\n  server deliver INBOX m1 size=50000000\nend\n",
			"limits.scn:4: deliver: more than 1000000000 bytes of messages padded by size= with repeat blocks expanded (this line runs 21 times: repeat on line 3)"),
		Entry("messages made",
			"devices phone\nsync\nrepeat 1000\n  repeat 10\n    server deliver INBOX "+labels(11)+"\n  end\nend\n",
			"limits.scn:5: deliver: more than 100000 messages made with repeat blocks expanded (this line runs 10000 times: repeat on line 3, 4)"),
		Entry("17 devices",
			"devices "+devices(17)+"\nsync\n",
			"limits.scn:1: devices: 17 devices (at most 16)"),
		Entry("a mailbox name of 256 bytes",
			"devices phone\nmailbox "+strings.Repeat("a", 256)+"\n",
			"limits.scn:2: mailbox: mailbox name of 256 bytes is too long (at most 255): \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"…"),
		Entry("1001 mailboxes",
			"devices phone\n"+mailboxes(1001),
			"limits.scn:1002: mailbox: more than 1000 distinct mailbox names"),
		Entry("blocks nested 11 deep",
			nested(11, "repeat 1"),
			"limits.scn:13: repeat: blocks nested 11 deep (at most 10)"),
	)

	It("accepts a file at every limit", func() {
		script := "devices " + devices(16) + "\nmailbox " + strings.Repeat("a", 255) + "\n" + mailboxes(998) +
			"deliver INBOX m0 size=50000000\nsync\n" +
			"repeat 1000\n  repeat 99\n    d1 sync\n  end\nend\nd1 sync\n"
		Expect(lintErrors(script)).To(BeEmpty())
		Expect(lintErrors(nested(10, "repeat 1"))).To(BeEmpty())
	})

	It("lists every limit in the reference", func() {
		ref := scenarios.Reference()
		Expect(ref).To(ContainSubstring("\n## Limits\n"))
		for _, l := range scenarios.Limits() {
			Expect(ref).To(ContainSubstring("| " + l.Name + " | "))
		}
		Expect(ref).To(ContainSubstring("| message size | 50,000,000 bytes |"))
	})

	// 20,000 nested blocks once took 41 s and 1.6 GB: the checks copied the list of
	// enclosing blocks at every level.
	It("rejects 20,000 nested blocks at once, in memory linear in the file", func() {
		for _, open := range []string{"repeat 2", "concurrently"} {
			data := []byte(nested(20_000, open))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := scenarios.Parse("deep.scn", data)
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			Expect(err).To(HaveOccurred())
			lines := strings.Split(err.Error(), "\n")
			Expect(lines).To(ContainElement("deep.scn:13: " + strings.Fields(open)[0] + ": blocks nested 11 deep (at most 10)"))
			allocated := after.TotalAlloc - before.TotalAlloc
			GinkgoWriter.Printf("%s ×20000 (%d bytes): %s, %d bytes allocated, %d errors\n", open, len(data), elapsed, allocated, len(lines))
			Expect(allocated).To(BeNumerically("<", 200*len(data)), "allocated %d bytes for a file of %d", allocated, len(data))
			Expect(elapsed).To(BeNumerically("<", 5*time.Second))
		}
	})

	DescribeTable("a file that is not text is one error naming the first binary byte",
		func(data string, want string) {
			for _, parse := range []func(string, []byte) (*scenarios.Scenario, error){scenarios.Parse, scenarios.ParseSyntax} {
				_, err := parse("bin.scn", []byte(data))
				Expect(err).To(MatchError(want))
			}
		},
		Entry("a NUL byte", "devices phone\nsy\x00nc\n", "bin.scn: not a text file (binary data at byte 16)"),
		Entry("a PNG", "\x89PNG\r\n\x1a\n\x00\x00", "bin.scn: not a text file (binary data at byte 0)"),
		Entry("invalid UTF-8 in the script", "# caf\xe9\ndevices phone\n", "bin.scn: not a text file (binary data at byte 5)"),
		Entry("a NUL in an attached file", "devices phone\ndeliver INBOX m1 < m1.eml\n-- m1.eml --\nSubject: m1\n\n\x00\n", "bin.scn: not a text file (binary data at byte 66)"),
	)

	It("takes an attached message in an 8-bit charset", func() {
		_, err := scenarios.Parse("latin1.scn", []byte("devices phone\ndeliver INBOX m1 < m1.eml\n-- m1.eml --\nSubject: m1\nContent-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9 m1\n"))
		Expect(err).NotTo(HaveOccurred())
	})
})

func devices(n int) string {
	d := make([]string, n)
	for i := range d {
		d[i] = fmt.Sprintf("d%d", i+1)
	}
	return strings.Join(d, " ")
}

func labels(n int) string {
	l := make([]string, n)
	for i := range l {
		l[i] = fmt.Sprintf("m%d", i+1)
	}
	return strings.Join(l, " ")
}

func mailboxes(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "mailbox box%d\n", i)
	}
	return b.String()
}
