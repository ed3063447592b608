package check_test

import (
	"context"
	"net"
	"regexp"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/syncharness/syncharness/clients"
	"github.com/syncharness/syncharness/fakeserver"
	"github.com/syncharness/syncharness/harness/check"
	"github.com/syncharness/syncharness/harness/proxy"
)

const user, password = "user", "secret"

var uidField = regexp.MustCompile(`\(UID \d+ `)

// fakeServer starts a fake server on loopback with INBOX m1 (\Seen) m2 m3, Archive m4, and
// the scenario mailboxes under a prefix folder run1: run1/INBOX m5 and run1/Archive.
func fakeServer() *fakeserver.Server {
	s := fakeserver.New(fakeserver.Options{Seed: 1})
	DeferCleanup(s.Close)
	Expect(s.AddUser(user, password)).To(Succeed())
	for _, mb := range []string{"Archive", "run1/INBOX", "run1/Archive"} {
		Expect(s.Apply(fakeserver.CreateMailbox{User: user, Mailbox: mb})).To(Succeed())
	}
	deliver := func(mb, label string, flags ...string) {
		body := clients.MakeMessage(clients.MessageSpec{Label: label, Run: "r1"})
		Expect(s.Apply(fakeserver.Deliver{User: user, Mailbox: mb, Body: body, Flags: flags})).To(Succeed())
	}
	deliver("INBOX", "m1", `\Seen`)
	deliver("INBOX", "m2")
	deliver("INBOX", "m3", `\Flagged`, "$Important")
	deliver("Archive", "m4")
	deliver("run1/INBOX", "m5")
	_, err := s.Listen("127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	return s
}

func login(conn net.Conn) *imapclient.Client {
	c := imapclient.New(conn, nil)
	DeferCleanup(c.Close)
	Expect(c.Login(user, password).Wait()).To(Succeed())
	return c
}

func dial(addr string) *imapclient.Client {
	var d net.Dialer
	conn, err := d.DialContext(context.Background(), "tcp", addr)
	Expect(err).NotTo(HaveOccurred())
	return login(conn)
}

func labelsOf(mb check.ServerMailbox) []string {
	var out []string
	for _, m := range mb.Messages {
		out = append(out, m.Label)
	}
	return out
}

var _ = Describe("ReadServer", func() {
	It("reads every mailbox with UIDs, flags, labels, hashes and sizes, read-only", func(ctx SpecContext) {
		s := fakeServer()
		c := dial(s.Addr().String())
		st, err := check.ReadServer(ctx, c, check.ReadOptions{})
		Expect(err).NotTo(HaveOccurred())

		var names []string
		for _, mb := range st.Mailboxes {
			names = append(names, mb.Name)
		}
		Expect(names).To(Equal([]string{"Archive", "INBOX", "run1", "run1/Archive", "run1/INBOX"}))
		inbox := st.Find("INBOX")
		Expect(labelsOf(*inbox)).To(Equal([]string{"m1", "m2", "m3"}))
		Expect(inbox.UIDValidity).NotTo(BeZero())
		Expect(inbox.UIDNext).To(BeNumerically(">", inbox.Messages[2].UID))
		Expect(inbox.Messages[0].Flags).To(Equal([]string{`\Seen`}))
		Expect(inbox.Messages[1].Flags).To(BeEmpty())
		Expect(inbox.Messages[2].Flags).To(Equal([]string{"$Important", `\Flagged`}))
		raw := clients.MakeMessage(clients.MessageSpec{Label: "m2", Run: "r1"})
		Expect(inbox.Messages[1].Hash).To(Equal(clients.ContentHash(raw)))
		Expect(inbox.Messages[1].Size).To(Equal(int64(len(raw))))
		Expect(inbox.Messages[1].MessageID).To(Equal("m2.r1@" + clients.LabelDomain))

		By("leaving \\Seen unset on messages it read")
		again, err := check.ReadServer(ctx, c, check.ReadOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(again.Find("INBOX").Messages[1].Flags).To(BeEmpty())
	})

	It("reads only the mailboxes under a prefix, named without it", func(ctx SpecContext) {
		s := fakeServer()
		st, err := check.ReadServer(ctx, dial(s.Addr().String()), check.ReadOptions{Prefix: "run1"})
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Mailboxes).To(HaveLen(2))
		Expect(st.Mailboxes[0].Name).To(Equal("Archive"))
		Expect(st.Mailboxes[0].Messages).To(BeEmpty())
		Expect(st.Mailboxes[1].Name).To(Equal("INBOX"))
		Expect(labelsOf(st.Mailboxes[1])).To(Equal([]string{"m5"}))
	})

	It("fails with the context's error when the context is done", func() {
		s := fakeServer()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := check.ReadServer(ctx, dial(s.Addr().String()), check.ReadOptions{})
		Expect(err).To(MatchError(context.Canceled))
	})

	It("sees nothing wrong on the wire of a correct server through the proxy", func(ctx SpecContext) {
		s := fakeServer()
		p, err := proxy.New(proxy.Options{Name: "phone", Upstream: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", s.Addr().String())
		}})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		conn, err := p.Dial(ctx)
		Expect(err).NotTo(HaveOccurred())
		c := login(conn)

		_, err = c.Select("INBOX", nil).Wait()
		Expect(err).NotTo(HaveOccurred())
		var all imap.UIDSet
		all.AddRange(1, 0)
		msgs, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true}).Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(msgs).To(HaveLen(3))
		_, err = c.Move(imap.UIDSetNum(msgs[1].UID), "Archive").Wait()
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Apply(fakeserver.Deliver{User: user, Mailbox: "INBOX",
			Body: clients.MakeMessage(clients.MessageSpec{Label: "m9", Run: "r1"})})).To(Succeed())
		Expect(c.Noop().Wait()).To(Succeed())
		_, err = c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, RFC822Size: true}).Collect()
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Store(imap.UIDSetNum(msgs[0].UID), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()).To(Succeed())
		_, err = c.UIDExpunge(imap.UIDSetNum(msgs[0].UID)).Collect()
		Expect(err).NotTo(HaveOccurred())

		st, err := check.ReadServer(ctx, c, check.ReadOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(labelsOf(*st.Find("INBOX"))).To(Equal([]string{"m3", "m9"}))
		Expect(labelsOf(*st.Find("Archive"))).To(Equal([]string{"m4", "m2"}))

		var lines []check.WireLine
		for _, l := range p.Transcript() {
			lines = append(lines, check.WireLine{Device: "phone", Conn: l.Conn, Dir: l.Dir, Text: l.Text})
		}
		Expect(lines).To(ContainElement(HaveField("Text", ContainSubstring("EXPUNGE"))))
		Expect(check.CheckWire(lines)).To(BeEmpty())

		By("reporting the same transcript with two UIDs swapped")
		tampered := append([]check.WireLine(nil), lines...)
		n := 0
		for i, l := range tampered {
			if l.Dir == 'S' && uidField.MatchString(l.Text) && strings.HasPrefix(l.Text, "* 2 FETCH") {
				tampered[i].Text = uidField.ReplaceAllString(l.Text, "(UID 1 ")
				n++
				break
			}
		}
		Expect(n).To(Equal(1))
		Expect(ids(check.CheckWire(tampered))).To(ContainElement("S1"))
	})
})
