package maildir_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients/maildir"
)

// names returns the file names in one subdirectory of the Maildir.
func names(root, sub string) []string {
	entries, err := os.ReadDir(filepath.Join(root, sub))
	Expect(err).NotTo(HaveOccurred())
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

var _ = Describe("A Maildir", func() {
	var (
		root string
		md   *maildir.Dir
	)

	BeforeEach(func() {
		root = filepath.Join(GinkgoT().TempDir(), "Mail")
		var err error
		md, err = maildir.Open(root, maildir.Options{Hostname: "host.example"})
		Expect(err).NotTo(HaveOccurred())
	})

	It("creates tmp, new and cur on open", func() {
		for _, sub := range []string{"tmp", "new", "cur"} {
			Expect(filepath.Join(root, sub)).To(BeADirectory())
		}
		Expect(md.Path()).To(Equal(root))
	})

	It("delivers a message into new through tmp and leaves nothing in tmp", func() {
		m, err := md.Deliver(strings.NewReader("Subject: a\r\n\r\nbody\r\n"))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.New).To(BeTrue())
		Expect(m.Flags).To(BeZero())
		Expect(names(root, "new")).To(Equal([]string{m.Key}))
		Expect(names(root, "tmp")).To(BeEmpty())
		Expect(names(root, "cur")).To(BeEmpty())
		Expect(md.ReadMessage(m.Key)).To(Equal([]byte("Subject: a\r\n\r\nbody\r\n")))
	})

	It("adds a message into cur with its flags in the :2, suffix", func() {
		m, err := md.Add(strings.NewReader("x"), maildir.Seen|maildir.Flagged)
		Expect(err).NotTo(HaveOccurred())
		Expect(m.New).To(BeFalse())
		Expect(names(root, "cur")).To(Equal([]string{m.Key + ":2,FS"}))
		Expect(m.Path).To(Equal(filepath.Join(root, "cur", m.Key+":2,FS")))
		Expect(names(root, "tmp")).To(BeEmpty())
	})

	It("names messages seconds.M<usec>P<pid>Q<n>R<random>.host", func() {
		m, err := md.Deliver(strings.NewReader("x"))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Key).To(MatchRegexp(`^\d+\.M\d+P%dQ\d+R[0-9a-f]{12}\.host\.example$`, os.Getpid()))
	})

	It("encodes / and : in the host name as the specification says", func() {
		md2, err := maildir.Open(root, maildir.Options{Hostname: "a/b:c", NoSync: true})
		Expect(err).NotTo(HaveOccurred())
		m, err := md2.Deliver(strings.NewReader("x"))
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Key).To(HaveSuffix(`.a\057b\072c`))
		Expect(md2.ReadMessage(m.Key)).To(Equal([]byte("x")))
	})

	It("gives distinct keys to many concurrent deliveries", func() {
		const n = 200
		keys := make(chan string, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer GinkgoRecover()
				defer wg.Done()
				m, err := md.Deliver(strings.NewReader(fmt.Sprint(i)))
				Expect(err).NotTo(HaveOccurred())
				keys <- m.Key
			}(i)
		}
		wg.Wait()
		close(keys)
		seen := map[string]bool{}
		for k := range keys {
			Expect(seen).NotTo(HaveKey(k))
			seen[k] = true
		}
		list, err := md.List()
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(HaveLen(n))
	})

	It("lists new and cur sorted by key, ignoring dot files and tmp", func() {
		a, err := md.Deliver(strings.NewReader("a"))
		Expect(err).NotTo(HaveOccurred())
		b, err := md.Add(strings.NewReader("b"), maildir.Replied)
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(filepath.Join(root, "cur", ".hidden:2,S"), nil, 0o600)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(root, "tmp", "partial"), []byte("half"), 0o600)).To(Succeed())

		list, err := md.List()
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(HaveLen(2))
		Expect(list[0].Key < list[1].Key).To(BeTrue())
		byKey := map[string]maildir.Message{}
		for _, m := range list {
			byKey[m.Key] = m
		}
		Expect(byKey[a.Key].New).To(BeTrue())
		Expect(byKey[b.Key].Flags).To(Equal(maildir.Replied))
	})

	It("changes flags by renaming, keeping the key and the content", func() {
		m, err := md.Add(strings.NewReader("content"), maildir.Seen)
		Expect(err).NotTo(HaveOccurred())
		m2, err := md.SetFlags(m.Key, maildir.Seen|maildir.Trashed|maildir.Draft)
		Expect(err).NotTo(HaveOccurred())
		Expect(m2.Key).To(Equal(m.Key))
		Expect(names(root, "cur")).To(Equal([]string{m.Key + ":2,DST"}))
		Expect(md.ReadMessage(m.Key)).To(Equal([]byte("content")))

		_, err = md.SetFlags(m.Key, 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(names(root, "cur")).To(Equal([]string{m.Key + ":2,"}))
	})

	It("moves a message from new to cur when its flags are set", func() {
		m, err := md.Deliver(strings.NewReader("x"))
		Expect(err).NotTo(HaveOccurred())
		m2, err := md.SetFlags(m.Key, maildir.Seen)
		Expect(err).NotTo(HaveOccurred())
		Expect(m2.New).To(BeFalse())
		Expect(names(root, "new")).To(BeEmpty())
		Expect(names(root, "cur")).To(Equal([]string{m.Key + ":2,S"}))
	})

	It("keeps letters it does not know (another program's keyword letters) on a rename", func() {
		Expect(os.WriteFile(filepath.Join(root, "cur", "123.other:2,Sab"), []byte("x"), 0o600)).To(Succeed())
		m, err := md.Lookup("123.other")
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Flags).To(Equal(maildir.Seen))
		Expect(m.Other).To(Equal("ab"))
		_, err = md.SetFlags("123.other", maildir.Flagged)
		Expect(err).NotTo(HaveOccurred())
		Expect(names(root, "cur")).To(Equal([]string{"123.other:2,Fab"}))
	})

	It("finds a message again after another program renamed it", func() {
		m, err := md.Add(strings.NewReader("x"), 0)
		Expect(err).NotTo(HaveOccurred())
		_, err = md.Lookup(m.Key) // the index now knows the old name
		Expect(err).NotTo(HaveOccurred())
		Expect(os.Rename(m.Path, filepath.Join(root, "cur", m.Key+":2,RS"))).To(Succeed())

		Expect(md.ReadMessage(m.Key)).To(Equal([]byte("x")))
		got, err := md.Lookup(m.Key)
		Expect(err).NotTo(HaveOccurred())
		Expect(got.Flags).To(Equal(maildir.Replied | maildir.Seen))
		_, err = md.SetFlags(m.Key, maildir.Seen)
		Expect(err).NotTo(HaveOccurred())
		Expect(names(root, "cur")).To(Equal([]string{m.Key + ":2,S"}))
	})

	It("renames a message from the name its caller knew, or finds it where another program put it", func() {
		for _, k := range []string{"1.a", "2.b", "3.c"} {
			Expect(os.WriteFile(filepath.Join(root, "cur", k+":2,S"), []byte(k), 0o600)).To(Succeed())
		}
		Expect(os.WriteFile(filepath.Join(root, "new", "4.d"), []byte("4.d"), 0o600)).To(Succeed())
		// A new process: nothing of the directory is known.
		fresh, err := maildir.Open(root, maildir.Options{Hostname: "host.example"})
		Expect(err).NotTo(HaveOccurred())
		m, err := fresh.SetFlagsFrom("1.a", maildir.Seen, maildir.Seen|maildir.Flagged)
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Flags).To(Equal(maildir.Seen | maildir.Flagged))
		_, err = fresh.SetFlagsFrom("2.b", maildir.Flagged, 0) // the caller was wrong: found by reading
		Expect(err).NotTo(HaveOccurred())
		_, err = fresh.SetFlagsFrom("4.d", 0, maildir.Seen) // still in new
		Expect(err).NotTo(HaveOccurred())
		_, err = fresh.SetFlagsFrom("3.c", maildir.Seen, maildir.Seen)
		Expect(err).NotTo(HaveOccurred())
		Expect(names(root, "cur")).To(Equal([]string{"1.a:2,FS", "2.b:2,", "3.c:2,S", "4.d:2,S"}))
		Expect(names(root, "new")).To(BeEmpty())
		Expect(fresh.ReadMessage("1.a")).To(Equal([]byte("1.a")))
		_, err = fresh.SetFlagsFrom("5.e", 0, maildir.Seen)
		Expect(err).To(MatchError(maildir.ErrNotFound))
	})

	It("opens a message for streaming", func() {
		m, err := md.Add(strings.NewReader("streamed"), 0)
		Expect(err).NotTo(HaveOccurred())
		f, err := md.OpenMessage(m.Key)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(f.Close)
		Expect(io.ReadAll(f)).To(Equal([]byte("streamed")))
	})

	It("removes a message, and reports a second removal as not found", func() {
		m, err := md.Add(strings.NewReader("x"), maildir.Seen)
		Expect(err).NotTo(HaveOccurred())
		Expect(md.Remove(m.Key)).To(Succeed())
		Expect(names(root, "cur")).To(BeEmpty())
		Expect(md.Remove(m.Key)).To(MatchError(maildir.ErrNotFound))
		_, err = md.ReadMessage(m.Key)
		Expect(err).To(MatchError(maildir.ErrNotFound))
	})

	It("rejects keys that are not file name parts", func() {
		for _, k := range []string{"", "a/b", "a:2,S", ".dot"} {
			_, err := md.Lookup(k)
			Expect(err).To(MatchError(ContainSubstring("invalid key")), k)
		}
	})

	It("leaves a message that was only half written (a crash in tmp) invisible, and cleans it", func() {
		Expect(os.WriteFile(filepath.Join(root, "tmp", "1.crashed.host"), []byte("Subj"), 0o600)).To(Succeed())
		list, err := md.List()
		Expect(err).NotTo(HaveOccurred())
		Expect(list).To(BeEmpty())

		n, err := md.CleanTmp(time.Hour)
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(0), "a fresh tmp file may be a delivery in progress")
		old := time.Now().Add(-2 * time.Hour)
		Expect(os.Chtimes(filepath.Join(root, "tmp", "1.crashed.host"), old, old)).To(Succeed())
		n, err = md.CleanTmp(time.Hour)
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(1))
		Expect(names(root, "tmp")).To(BeEmpty())
	})

	It("cleans every tmp file when asked with no age", func() {
		Expect(os.WriteFile(filepath.Join(root, "tmp", "x"), nil, 0o600)).To(Succeed())
		Expect(md.CleanTmp(0)).To(Equal(1))
	})

	It("syncs a batch of messages written without fsync, and names a key it cannot find", func() {
		lazy, err := maildir.Open(root, maildir.Options{Hostname: "h", NoSync: true})
		Expect(err).NotTo(HaveOccurred())
		var keys []string
		for i := 0; i < 20; i++ {
			m, err := lazy.Add(strings.NewReader(fmt.Sprint(i)), maildir.Seen)
			Expect(err).NotTo(HaveOccurred())
			keys = append(keys, m.Key)
		}
		Expect(lazy.SyncMessages(keys)).To(Succeed())
		Expect(lazy.SyncMessages(nil)).To(Succeed())
		Expect(lazy.SyncMessages(append(keys, "1.missing.h"))).To(MatchError(maildir.ErrNotFound))
	})

	It("delivers a large message intact", func() {
		big := bytes.Repeat([]byte("0123456789abcdef\r\n"), 1<<16)
		m, err := md.Add(bytes.NewReader(big), 0)
		Expect(err).NotTo(HaveOccurred())
		Expect(md.ReadMessage(m.Key)).To(Equal(big))
	})
})

var _ = Describe("Maildir flags", func() {
	DescribeTable("are written as letters in ASCII order",
		func(f maildir.Flags, want string) {
			Expect(f.String()).To(Equal(want))
		},
		Entry("none", maildir.Flags(0), ""),
		Entry("all", maildir.Trashed|maildir.Seen|maildir.Replied|maildir.Passed|maildir.Flagged|maildir.Draft, "DFPRST"),
		Entry("seen and flagged", maildir.Seen|maildir.Flagged, "FS"),
		Entry("trashed and draft", maildir.Trashed|maildir.Draft, "DT"),
	)

	DescribeTable("are parsed from a :2, suffix, keeping unknown letters sorted",
		func(letters string, std maildir.Flags, other string) {
			gotStd, gotOther := maildir.ParseFlags(letters)
			Expect(gotStd).To(Equal(std))
			Expect(gotOther).To(Equal(other))
		},
		Entry("empty", "", maildir.Flags(0), ""),
		Entry("standard", "FS", maildir.Flagged|maildir.Seen, ""),
		Entry("out of order", "SF", maildir.Flagged|maildir.Seen, ""),
		Entry("keyword letters", "Scab", maildir.Seen, "abc"),
		Entry("duplicates", "SSaa", maildir.Seen, "a"),
	)

	DescribeTable("map to and from IMAP flags",
		func(imap []string, std maildir.Flags, rest []string) {
			gotStd, gotRest := maildir.FromIMAP(imap)
			Expect(gotStd).To(Equal(std))
			Expect(gotRest).To(Equal(rest))
		},
		Entry("system flags", []string{`\Seen`, `\Answered`, `\Flagged`, `\Deleted`, `\Draft`},
			maildir.Seen|maildir.Replied|maildir.Flagged|maildir.Trashed|maildir.Draft, []string(nil)),
		Entry("case-insensitively", []string{`\SEEN`, `$forwarded`}, maildir.Seen|maildir.Passed, []string(nil)),
		Entry("keywords stay out", []string{`\Seen`, `$Label1`, `\Recent`}, maildir.Seen, []string{`$Label1`, `\Recent`}),
	)

	It("give back the IMAP flags they stand for", func() {
		Expect((maildir.Seen | maildir.Passed | maildir.Trashed).IMAPFlags()).To(Equal([]string{`$Forwarded`, `\Seen`, `\Deleted`}))
		Expect(maildir.Flags(0).IMAPFlags()).To(BeEmpty())
	})

	It("test set membership", func() {
		f := maildir.Seen | maildir.Flagged
		Expect(f.Has(maildir.Seen)).To(BeTrue())
		Expect(f.Has(maildir.Seen | maildir.Flagged)).To(BeTrue())
		Expect(f.Has(maildir.Seen | maildir.Draft)).To(BeFalse())
	})
})
